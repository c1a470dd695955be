//! Templates: minijinja with `secret()`, `configmap()`, `ingress_host()`, `values.*`, and the
//! `output`/`response` of the step that captured them. Everything read from a Secret is
//! registered with the redactor the moment it is read.
//!
//! Rendering that calls a lookup function blocks on a cluster read with
//! `tokio::task::block_in_place`, so it must run on tokio's multi-thread runtime (the binary's
//! `#[tokio::main]` default; tests use `#[tokio::test(flavor = "multi_thread")]`). On any
//! other runtime, or none, the lookup fails with an error instead of panicking.
//!
//! Errors carry the template text and a message, never a rendered value; messages go through
//! the redactor as a second line of defence.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, LazyLock};

use minijinja::machinery::{WhitespaceConfig, ast};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::Kwargs;
use minijinja::{Environment, ErrorKind, UndefinedBehavior};

use crate::cluster::{Cluster, TypeRef};
use crate::engine::redact::Redactor;

use super::dag::PhaseSet;
use super::producers::{ObjectKind, Producers};

/// The lookup functions this build provides, with their parameters.
pub const FUNCTIONS: &[(&str, &[&str])] = &[
    ("secret", &["namespace", "name", "key"]),
    ("configmap", &["namespace", "name", "key"]),
    ("ingress_host", &["namespace", "name"]),
];

/// Variables local to one step: what it captured.
#[derive(Debug, Clone, Default)]
pub struct Locals {
    /// The exec step's captured stdout.
    pub output: Option<serde_json::Value>,
    /// The http step's response body (JSON, or a string).
    pub response: Option<serde_json::Value>,
    /// In an http step's `lookup.delete`: the listed item being deleted.
    pub item: Option<serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
#[error("template `{template}`: {message}")]
pub struct TemplateError {
    /// The template text (never a rendered value).
    pub template: String,
    pub message: String,
}

/// Renders templates against values and the cluster.
pub struct Templater {
    pub values: serde_json::Value,
    pub cluster: Option<Arc<dyn Cluster>>,
    pub redactor: Redactor,
    env: Environment<'static>,
    producers: Arc<std::sync::RwLock<Producers>>,
}

impl Templater {
    pub fn new(
        values: serde_json::Value,
        cluster: Option<Arc<dyn Cluster>>,
        redactor: Redactor,
    ) -> Self {
        let producers = Arc::new(std::sync::RwLock::new(Producers::default()));
        let mut env = base_environment();
        let lookup = Lookup {
            cluster: cluster.clone(),
            redactor: redactor.clone(),
            producers: producers.clone(),
        };
        let l = lookup.clone();
        env.add_function(
            "secret",
            move |ns: &str, name: &str, key: &str, kwargs: Kwargs| {
                l.data_or_default(ObjectKind::Secret, ns, name, key, &kwargs)
            },
        );
        let l = lookup.clone();
        env.add_function(
            "configmap",
            move |ns: &str, name: &str, key: &str, kwargs: Kwargs| {
                l.data_or_default(ObjectKind::ConfigMap, ns, name, key, &kwargs)
            },
        );
        let l = lookup;
        env.add_function("ingress_host", move |ns: &str, name: &str| {
            l.ingress_host(ns, name)
        });
        Templater {
            values,
            cluster,
            redactor,
            env,
            producers,
        }
    }

    /// Lets lookup errors name the step that creates a missing Secret or ConfigMap key.
    pub fn with_phases(self, phases: &PhaseSet) -> Self {
        *self.producers.write().expect("producers lock poisoned") = Producers::of(phases);
        self
    }

    /// Renders one template string. Must be called on a multi-threaded tokio runtime: the
    /// lookup functions block on cluster reads.
    pub fn render(&self, template: &str, locals: &Locals) -> Result<String, TemplateError> {
        if !is_template(template) {
            return Ok(template.to_string());
        }
        let mut context = BTreeMap::new();
        context.insert("values", minijinja::Value::from_serialize(&self.values));
        if let Some(output) = &locals.output {
            context.insert("output", minijinja::Value::from_serialize(output));
        }
        if let Some(response) = &locals.response {
            context.insert("response", minijinja::Value::from_serialize(response));
        }
        if let Some(item) = &locals.item {
            context.insert("item", minijinja::Value::from_serialize(item));
        }
        self.env
            .render_str(template, context)
            .map_err(|error| TemplateError {
                template: template.to_string(),
                message: self
                    .redactor
                    .redact(&self.explain(template, &error, locals)),
            })
    }

    /// Renders every string inside a JSON value.
    pub fn render_json(
        &self,
        value: &serde_json::Value,
        locals: &Locals,
    ) -> Result<serde_json::Value, TemplateError> {
        Ok(match value {
            serde_json::Value::String(s) => serde_json::Value::String(self.render(s, locals)?),
            serde_json::Value::Array(items) => serde_json::Value::Array(
                items
                    .iter()
                    .map(|v| self.render_json(v, locals))
                    .collect::<Result<_, _>>()?,
            ),
            serde_json::Value::Object(map) => serde_json::Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((self.render(k, locals)?, self.render_json(v, locals)?)))
                    .collect::<Result<_, _>>()?,
            ),
            other => other.clone(),
        })
    }

    /// A message for a failed render: our own lookup errors as they are, an undefined value
    /// named by its path, anything else by minijinja's kind and detail.
    fn explain(&self, template: &str, error: &minijinja::Error, locals: &Locals) -> String {
        match error.kind() {
            ErrorKind::InvalidOperation
                if error
                    .detail()
                    .is_some_and(|d| FUNCTIONS.iter().any(|(f, _)| d.starts_with(f))) =>
            {
                error.detail().unwrap_or_default().to_string()
            }
            ErrorKind::UndefinedError => self.name_undefined(template, locals),
            ErrorKind::SyntaxError => match analyze(template) {
                Err(syntax) => format!(
                    "{} (line {}, column {})",
                    syntax.message, syntax.position.line, syntax.position.column
                ),
                Ok(_) => describe(error),
            },
            _ => describe(error),
        }
    }

    fn name_undefined(&self, template: &str, locals: &Locals) -> String {
        let Ok(refs) = analyze(template) else {
            return "undefined value".into();
        };
        for variable in &refs.variables {
            let (root, rest) = (&variable.path[0], &variable.path[1..]);
            let scope = match root.as_str() {
                "values" => Some(&self.values),
                "output" => locals.output.as_ref(),
                "response" => locals.response.as_ref(),
                "item" => locals.item.as_ref(),
                _ => None,
            };
            let Some(scope) = scope else {
                return match root.as_str() {
                    "output" | "response" => {
                        format!(
                            "undefined value `{root}`: only the step that captured it can read it, in `store`"
                        )
                    }
                    _ => format!("undefined variable `{root}`"),
                };
            };
            if let Some(missing) = missing_at(scope, rest) {
                if variable.guarded && missing + 1 == rest.len() {
                    continue;
                }
                let shown = variable.path[..missing + 2].join(".");
                return match root.as_str() {
                    "values" => format!(
                        "undefined value `{shown}`: set it with --set {}=VALUE or in --values FILE",
                        variable.path[1..missing + 2].join(".")
                    ),
                    _ => format!("undefined value `{shown}`: the {root} has no such field"),
                };
            }
        }
        "undefined value".into()
    }
}

/// Whether a string has any template syntax (plain strings skip the engine entirely).
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

fn describe(error: &minijinja::Error) -> String {
    match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.kind().to_string(),
    }
}

/// The index of the first path segment that does not resolve, if any.
pub fn missing_at(root: &serde_json::Value, path: &[String]) -> Option<usize> {
    let mut node = root;
    for (index, segment) in path.iter().enumerate() {
        let next = match node {
            serde_json::Value::Object(map) => map.get(segment),
            serde_json::Value::Array(items) => {
                segment.parse::<usize>().ok().and_then(|i| items.get(i))
            }
            _ => None,
        };
        match next {
            Some(next) => node = next,
            None => return Some(index),
        }
    }
    None
}

fn base_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    // Debug info would print the values of variables next to an error.
    env.set_debug(false);
    env
}

/// An environment with the same functions, filters and tests as a [`Templater`], whose
/// lookups are never called: for asking what exists.
static PROBE: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = base_environment();
    for (name, _) in FUNCTIONS {
        env.add_function(
            *name,
            |_: minijinja::value::Rest<minijinja::Value>| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, "probe"))
            },
        );
    }
    env
});

/// Whether `name` is a function a template can call.
pub fn is_known_function(name: &str) -> bool {
    PROBE.globals().any(|(global, _)| global == name)
}

/// Every function a template can call, sorted.
pub fn known_functions() -> Vec<String> {
    let mut names: Vec<String> = PROBE.globals().map(|(name, _)| name.to_string()).collect();
    names.sort();
    names
}

/// Whether minijinja knows the filter.
pub fn is_known_filter(name: &str) -> bool {
    let template = PROBE
        .template_from_str("")
        .expect("empty template compiles");
    let state = template.new_state();
    !matches!(state.apply_filter(name, &[]), Err(e) if e.kind() == ErrorKind::UnknownFilter)
}

/// Whether minijinja knows the test.
pub fn is_known_test(name: &str) -> bool {
    let template = PROBE
        .template_from_str("")
        .expect("empty template compiles");
    let state = template.new_state();
    !matches!(state.perform_test(name, &[]), Err(e) if e.kind() == ErrorKind::UnknownTest)
}

/// The data lookups behind `secret()`, `configmap()` and `ingress_host()`.
#[derive(Clone)]
struct Lookup {
    cluster: Option<Arc<dyn Cluster>>,
    redactor: Redactor,
    producers: Arc<std::sync::RwLock<Producers>>,
}

impl Lookup {
    fn get(
        &self,
        function: &str,
        ty: TypeRef,
        ns: &str,
        name: &str,
    ) -> Result<Option<serde_json::Value>, minijinja::Error> {
        let fail = |message: String| {
            minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("{function}(): {message}"),
            )
        };
        let cluster = self.cluster.clone().ok_or_else(|| {
            fail(format!(
                "cannot read {} {ns}/{name}: this command runs without a cluster connection",
                ty.kind
            ))
        })?;
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            fail("bug: templates that read the cluster must render inside a tokio runtime".into())
        })?;
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return Err(fail(
                "bug: templates that read the cluster need tokio's multi-thread runtime".into(),
            ));
        }
        let found =
            tokio::task::block_in_place(|| handle.block_on(cluster.get(&ty, Some(ns), name)));
        found.map_err(|error| fail(format!("cannot read {} {ns}/{name}: {error}", ty.kind)))
    }

    /// `secret(ns, name, key, default='...')`: with `default`, a missing object or key gives
    /// the default instead of an error (for checks that run before the object exists).
    fn data_or_default(
        &self,
        kind: ObjectKind,
        ns: &str,
        name: &str,
        key: &str,
        kwargs: &Kwargs,
    ) -> Result<String, minijinja::Error> {
        let default: Option<String> = kwargs.get("default")?;
        kwargs.assert_all_used()?;
        let Some(default) = default else {
            return self.data(kind, ns, name, key);
        };
        let object = self.get(kind.function(), kind.type_ref(), ns, name)?;
        let present = object
            .as_ref()
            .and_then(|o| o.get("data"))
            .and_then(|d| d.get(key))
            .is_some();
        if present {
            self.data(kind, ns, name, key)
        } else {
            Ok(default)
        }
    }

    fn data(
        &self,
        kind: ObjectKind,
        ns: &str,
        name: &str,
        key: &str,
    ) -> Result<String, minijinja::Error> {
        let function = kind.function();
        let fail = |message: String| {
            minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("{function}(): {message}"),
            )
        };
        let producer = || {
            self.producers.read().ok().and_then(|p| p.first(kind, ns, name, key)).map(|full_id| {
                let phase = full_id.split('/').next().unwrap_or_default().to_string();
                format!(
                    "; step `{full_id}` creates it: does phase `{phase}` run before this one? add `{phase}` to depends_on"
                )
            })
        };
        let Some(object) = self.get(function, kind.type_ref(), ns, name)? else {
            let next = producer().unwrap_or_else(|| "; it must exist before this step runs".into());
            return Err(fail(format!(
                "{} {ns}/{name} not found{next}",
                kind.type_ref().kind
            )));
        };
        let data = object.get("data").and_then(|d| d.as_object());
        let Some(raw) = data.and_then(|d| d.get(key)).and_then(|v| v.as_str()) else {
            let keys: Vec<&str> = data
                .map(|d| d.keys().map(String::as_str).collect())
                .unwrap_or_default();
            let present = if keys.is_empty() {
                "it has no keys".to_string()
            } else {
                format!("it has {}", keys.join(", "))
            };
            let next = producer().unwrap_or_default();
            return Err(fail(format!(
                "{} {ns}/{name} has no key `{key}` ({present}){next}",
                kind.type_ref().kind
            )));
        };
        match kind {
            ObjectKind::ConfigMap => Ok(raw.to_string()),
            ObjectKind::Secret => {
                use base64::Engine as _;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(raw)
                    .map_err(|_| {
                        fail(format!(
                            "Secret {ns}/{name} key `{key}` is not valid base64"
                        ))
                    })?;
                let value = String::from_utf8(bytes).map_err(|error| {
                    self.redactor.register_bytes(error.as_bytes());
                    fail(format!("Secret {ns}/{name} key `{key}` is not UTF-8 text"))
                })?;
                self.redactor.register(&value);
                Ok(value)
            }
        }
    }

    fn ingress_host(&self, ns: &str, name: &str) -> Result<String, minijinja::Error> {
        let object = self
            .get("ingress_host", TypeRef::ingress(), ns, name)?
            .ok_or_else(|| {
                minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    format!("ingress_host(): Ingress {ns}/{name} not found"),
                )
            })?;
        object
            .pointer("/spec/rules/0/host")
            .and_then(|h| h.as_str())
            .filter(|h| !h.is_empty())
            .map(str::to_string)
            .ok_or_else(|| {
                minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    format!("ingress_host(): Ingress {ns}/{name} has no spec.rules[0].host"),
                )
            })
    }
}

// ---------------------------------------------------------------------------------------------
// static analysis

/// A place in a template: 1-based line and column (in characters), and the byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct TemplatePosition {
    pub line: usize,
    pub column: usize,
    pub offset: usize,
}

impl TemplatePosition {
    fn at(source: &str, offset: usize) -> Self {
        let offset = offset.min(source.len());
        let before = &source[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        TemplatePosition {
            line,
            column: before[line_start..].chars().count() + 1,
            offset,
        }
    }
}

/// A call of a global function, with its arguments where they are string constants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionCall {
    pub name: String,
    pub args: Vec<Option<String>>,
    /// Whether keyword or splatted arguments were used (arity cannot be checked).
    pub dynamic_args: bool,
    pub position: TemplatePosition,
}

/// A lookup of a variable the template does not define itself, as a path:
/// `values.gitea.host` is `["values", "gitea", "host"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariableRef {
    pub path: Vec<String>,
    /// The operand of a `default` filter or a `defined`/`undefined` test: a missing last
    /// segment is fine.
    pub guarded: bool,
    /// Paths an enclosing `{% if P is defined %}` proved present: if one of them is missing,
    /// this lookup never runs.
    pub guarded_by: Vec<Vec<String>>,
    pub position: TemplatePosition,
}

/// A filter or test used by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedUse {
    pub name: String,
    pub position: TemplatePosition,
}

/// What a template reads: found by walking its syntax tree, without rendering it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateRefs {
    pub calls: Vec<FunctionCall>,
    pub variables: Vec<VariableRef>,
    pub filters: Vec<NamedUse>,
    pub tests: Vec<NamedUse>,
}

impl TemplateRefs {
    /// Names of the functions called.
    pub fn functions(&self) -> HashSet<&str> {
        self.calls.iter().map(|c| c.name.as_str()).collect()
    }

    /// Paths below `values` that are read (`["gitea", "host"]`).
    pub fn values(&self) -> impl Iterator<Item = &[String]> {
        self.variables
            .iter()
            .filter(|v| v.path[0] == "values")
            .map(|v| &v.path[1..])
    }

    /// Whether the template reads this top-level variable (`output`, `response`).
    pub fn reads(&self, root: &str) -> bool {
        self.variables.iter().any(|v| v.path[0] == root)
    }
}

/// A template that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub message: String,
    pub position: TemplatePosition,
}

/// Lists the functions a template calls and the variables (`values.*`, `output`, ...) it
/// reads, without rendering it.
pub fn references(template: &str) -> Result<TemplateRefs, TemplateError> {
    analyze(template).map_err(|syntax| TemplateError {
        template: template.to_string(),
        message: format!(
            "{} (line {}, column {})",
            syntax.message, syntax.position.line, syntax.position.column
        ),
    })
}

/// [`references`] with the position of a syntax error kept apart, for diagnostics.
pub fn analyze(template: &str) -> Result<TemplateRefs, SyntaxError> {
    let whitespace = WhitespaceConfig {
        keep_trailing_newline: true,
        ..Default::default()
    };
    let tree = minijinja::machinery::parse(template, "<template>", SyntaxConfig, whitespace)
        .map_err(|error| {
            let offset = error.range().map(|r| r.start).unwrap_or(0);
            SyntaxError {
                message: format!(
                    "syntax error: {}",
                    error.detail().unwrap_or("invalid template")
                ),
                position: TemplatePosition::at(template, offset),
            }
        })?;
    let mut walker = Walker {
        source: template,
        refs: TemplateRefs::default(),
        assigned: HashSet::new(),
        guards: Vec::new(),
    };
    walker.stmt(&tree);
    Ok(walker.refs)
}

/// Names the engine defines itself inside templates.
const IMPLICIT: &[&str] = &["loop", "self", "super", "caller", "varargs", "kwargs"];

struct Walker<'s> {
    source: &'s str,
    refs: TemplateRefs,
    /// Names the template assigns (set, for, with, macro): not lookups of outside data.
    /// Flat rather than scoped: a name assigned anywhere is treated as local everywhere,
    /// which can hide a lookup but never reports a false one.
    assigned: HashSet<&'s str>,
    /// Paths proven present by enclosing `if ... is defined`.
    guards: Vec<Vec<String>>,
}

impl<'s> Walker<'s> {
    fn position(&self, span: minijinja::machinery::Span) -> TemplatePosition {
        TemplatePosition::at(self.source, span.start_offset as usize)
    }

    fn assign(&mut self, target: &ast::Expr<'s>) {
        match target {
            ast::Expr::Var(var) => {
                self.assigned.insert(var.id);
            }
            ast::Expr::List(list) => list.items.iter().for_each(|item| self.assign(item)),
            _ => {}
        }
    }

    fn body(&mut self, body: &[ast::Stmt<'s>]) {
        body.iter().for_each(|stmt| self.stmt(stmt));
    }

    fn guarded_body(&mut self, guards: Vec<Vec<String>>, body: &[ast::Stmt<'s>]) {
        let depth = self.guards.len();
        self.guards.extend(guards);
        self.body(body);
        self.guards.truncate(depth);
    }

    fn stmt(&mut self, stmt: &ast::Stmt<'s>) {
        match stmt {
            ast::Stmt::Template(t) => self.body(&t.children),
            ast::Stmt::EmitExpr(e) => self.expr(&e.expr, false),
            ast::Stmt::EmitRaw(_) => {}
            ast::Stmt::ForLoop(l) => {
                self.expr(&l.iter, false);
                self.assign(&l.target);
                if let Some(filter) = &l.filter_expr {
                    self.expr(filter, false);
                }
                self.body(&l.body);
                self.body(&l.else_body);
            }
            ast::Stmt::IfCond(c) => {
                self.expr(&c.expr, false);
                self.guarded_body(defined_paths(&c.expr, true), &c.true_body);
                self.guarded_body(defined_paths(&c.expr, false), &c.false_body);
            }
            ast::Stmt::WithBlock(w) => {
                for (target, value) in &w.assignments {
                    self.expr(value, false);
                    self.assign(target);
                }
                self.body(&w.body);
            }
            ast::Stmt::Set(s) => {
                self.expr(&s.expr, false);
                self.assign(&s.target);
            }
            ast::Stmt::SetBlock(s) => {
                self.assign(&s.target);
                if let Some(filter) = &s.filter {
                    self.expr(filter, false);
                }
                self.body(&s.body);
            }
            ast::Stmt::AutoEscape(a) => {
                self.expr(&a.enabled, false);
                self.body(&a.body);
            }
            ast::Stmt::FilterBlock(f) => {
                self.expr(&f.filter, false);
                self.body(&f.body);
            }
            ast::Stmt::Block(b) => self.body(&b.body),
            ast::Stmt::Import(i) => {
                self.expr(&i.expr, false);
                self.assign(&i.name);
            }
            ast::Stmt::FromImport(i) => {
                self.expr(&i.expr, false);
                for (name, alias) in &i.names {
                    self.assign(alias.as_ref().unwrap_or(name));
                }
            }
            ast::Stmt::Extends(e) => self.expr(&e.name, false),
            ast::Stmt::Include(i) => self.expr(&i.name, false),
            ast::Stmt::Macro(m) => {
                self.assigned.insert(m.name);
                self.macro_decl(m);
            }
            ast::Stmt::CallBlock(c) => {
                self.call(&c.call, c.call.span());
                self.macro_decl(&c.macro_decl);
            }
            ast::Stmt::Continue(_) | ast::Stmt::Break(_) => {}
            ast::Stmt::Do(d) => self.call(&d.call, d.call.span()),
        }
    }

    fn macro_decl(&mut self, m: &ast::Macro<'s>) {
        m.args.iter().for_each(|arg| self.assign(arg));
        m.defaults
            .iter()
            .for_each(|default| self.expr(default, false));
        self.body(&m.body);
    }

    fn args(&mut self, args: &[ast::CallArg<'s>]) {
        for arg in args {
            match arg {
                ast::CallArg::Pos(e)
                | ast::CallArg::Kwarg(_, e)
                | ast::CallArg::PosSplat(e)
                | ast::CallArg::KwargSplat(e) => self.expr(e, false),
            }
        }
    }

    fn call(&mut self, call: &ast::Call<'s>, span: minijinja::machinery::Span) {
        match call.identify_call() {
            ast::CallType::Function(name) if !self.assigned.contains(name) => {
                let dynamic_args = call.args.iter().any(|a| !matches!(a, ast::CallArg::Pos(_)));
                let args = call
                    .args
                    .iter()
                    .map(|a| match a {
                        ast::CallArg::Pos(ast::Expr::Const(c)) => {
                            c.value.as_str().map(str::to_string)
                        }
                        _ => None,
                    })
                    .collect();
                let position = self.position(span);
                self.refs.calls.push(FunctionCall {
                    name: name.to_string(),
                    args,
                    dynamic_args,
                    position,
                });
            }
            ast::CallType::Function(_) => {}
            ast::CallType::Method(receiver, _) => self.expr(receiver, false),
            ast::CallType::Block(_) => {}
            ast::CallType::Object(callee) => self.expr(callee, false),
        }
        self.args(&call.args);
    }

    fn expr(&mut self, expr: &ast::Expr<'s>, guarded: bool) {
        if let Some((root, path)) = lookup_path(expr) {
            if !self.assigned.contains(root) && !IMPLICIT.contains(&root) {
                let position = self.position(expr.span());
                let guarded_by = self
                    .guards
                    .iter()
                    .filter(|g| path.starts_with(g) || g.starts_with(&path))
                    .cloned()
                    .collect();
                self.refs.variables.push(VariableRef {
                    path,
                    guarded,
                    guarded_by,
                    position,
                });
            }
            // Subscripts inside the chain may read variables too (`values.x[values.y]`).
            self.subscripts(expr);
            return;
        }
        match expr {
            ast::Expr::Var(_) | ast::Expr::Const(_) => {}
            ast::Expr::Slice(s) => {
                self.expr(&s.expr, false);
                for part in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                    self.expr(part, false);
                }
            }
            ast::Expr::UnaryOp(u) => self.expr(&u.expr, false),
            ast::Expr::BinOp(b) => {
                self.expr(&b.left, false);
                self.expr(&b.right, false);
            }
            ast::Expr::Compare(c) => {
                self.expr(&c.expr, false);
                c.ops.iter().for_each(|op| self.expr(&op.expr, false));
            }
            ast::Expr::IfExpr(i) => {
                self.expr(&i.test_expr, false);
                let depth = self.guards.len();
                self.guards.extend(defined_paths(&i.test_expr, true));
                self.expr(&i.true_expr, false);
                self.guards.truncate(depth);
                if let Some(otherwise) = &i.false_expr {
                    self.guards.extend(defined_paths(&i.test_expr, false));
                    self.expr(otherwise, false);
                    self.guards.truncate(depth);
                }
            }
            ast::Expr::Filter(f) => {
                let position = self.position(f.span());
                self.refs.filters.push(NamedUse {
                    name: f.name.to_string(),
                    position,
                });
                if let Some(operand) = &f.expr {
                    self.expr(operand, matches!(f.name, "default" | "d"));
                }
                self.args(&f.args);
            }
            ast::Expr::Test(t) => {
                let position = self.position(t.span());
                self.refs.tests.push(NamedUse {
                    name: t.name.to_string(),
                    position,
                });
                self.expr(&t.expr, matches!(t.name, "defined" | "undefined"));
                self.args(&t.args);
            }
            ast::Expr::GetAttr(g) => self.expr(&g.expr, false),
            ast::Expr::GetItem(g) => {
                self.expr(&g.expr, false);
                self.expr(&g.subscript_expr, false);
            }
            ast::Expr::Call(c) => self.call(c, c.span()),
            ast::Expr::List(l) => l.items.iter().for_each(|item| self.expr(item, false)),
            ast::Expr::Map(m) => {
                m.keys.iter().for_each(|k| self.expr(k, false));
                m.values.iter().for_each(|v| self.expr(v, false));
            }
        }
    }

    /// Visits the non-constant subscripts of an attribute chain.
    fn subscripts(&mut self, expr: &ast::Expr<'s>) {
        match expr {
            ast::Expr::GetAttr(g) => self.subscripts(&g.expr),
            ast::Expr::GetItem(g) => {
                self.subscripts(&g.expr);
                if !matches!(g.subscript_expr, ast::Expr::Const(_)) {
                    self.expr(&g.subscript_expr, false);
                }
            }
            _ => {}
        }
    }
}

/// `values.a.b`, `values['a'].b`, `output.items[0]`: the root name and the path, up to the
/// first subscript that is not a constant.
fn lookup_path<'s>(expr: &ast::Expr<'s>) -> Option<(&'s str, Vec<String>)> {
    match expr {
        ast::Expr::Var(var) => Some((var.id, vec![var.id.to_string()])),
        ast::Expr::GetAttr(g) => {
            let (root, mut path) = lookup_path(&g.expr)?;
            path.push(g.name.to_string());
            Some((root, path))
        }
        ast::Expr::GetItem(g) => {
            let (root, mut path) = lookup_path(&g.expr)?;
            if let ast::Expr::Const(c) = &g.subscript_expr {
                if let Some(key) = c.value.as_str() {
                    path.push(key.to_string());
                } else if let Some(index) = c.value.as_i64() {
                    path.push(index.to_string());
                }
            }
            Some((root, path))
        }
        _ => None,
    }
}

/// Paths a condition proves present when it is true (`positive`) or false.
fn defined_paths(condition: &ast::Expr<'_>, positive: bool) -> Vec<Vec<String>> {
    match condition {
        ast::Expr::Test(t)
            if (t.name == "defined") == positive && matches!(t.name, "defined" | "undefined") =>
        {
            lookup_path(&t.expr)
                .map(|(_, path)| vec![path])
                .unwrap_or_default()
        }
        ast::Expr::UnaryOp(u) if matches!(u.op, ast::UnaryOpKind::Not) => {
            defined_paths(&u.expr, !positive)
        }
        ast::Expr::BinOp(b) if matches!(b.op, ast::BinOpKind::ScAnd) && positive => {
            let mut paths = defined_paths(&b.left, true);
            paths.extend(defined_paths(&b.right, true));
            paths
        }
        ast::Expr::BinOp(b) if matches!(b.op, ast::BinOpKind::ScOr) && !positive => {
            let mut paths = defined_paths(&b.left, false);
            paths.extend(defined_paths(&b.right, false));
            paths
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::cluster::fake::FakeCluster;

    fn secret(ns: &str, name: &str, data: serde_json::Value) -> serde_json::Value {
        use base64::Engine as _;
        let data: serde_json::Map<String, serde_json::Value> = data
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    json!(base64::engine::general_purpose::STANDARD.encode(v.as_str().unwrap())),
                )
            })
            .collect();
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"namespace": ns, "name": name}, "data": data})
    }

    fn templater(fake: &FakeCluster) -> Templater {
        Templater::new(
            json!({"gitea": {"host": "git.example.com"}}),
            Some(Arc::new(fake.clone())),
            Redactor::new(),
        )
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn secret_reads_the_cluster_and_registers_the_value() {
        let fake = FakeCluster::new();
        fake.insert(secret(
            "gitea",
            "admin",
            json!({"password": "canary-s3cret-value"}),
        ));
        let t = templater(&fake);
        let out = t
            .render(
                "pw={{ secret('gitea', 'admin', 'password') }}",
                &Locals::default(),
            )
            .unwrap();
        assert_eq!(out, "pw=canary-s3cret-value");
        assert_eq!(t.redactor.redact(&out), "pw=[redacted]");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_default_stands_in_for_a_missing_secret_or_key_only() {
        let fake = FakeCluster::new();
        fake.insert(secret(
            "gitea",
            "admin",
            json!({"password": "canary-default-check"}),
        ));
        let t = templater(&fake);
        let render = |template: &str| t.render(template, &Locals::default());
        assert_eq!(
            render("{{ secret('gitea', 'admin', 'password', default='') }}").unwrap(),
            "canary-default-check"
        );
        assert_eq!(
            render("[{{ secret('gitea', 'admin', 'other', default='') }}]").unwrap(),
            "[]"
        );
        assert_eq!(
            render("{{ secret('gitea', 'gone', 'password', default='none') }}").unwrap(),
            "none"
        );
        let error = render("{{ secret('gitea', 'gone', 'password', fallback='x') }}").unwrap_err();
        assert!(error.message.contains("fallback"), "{}", error.message);
        assert_eq!(t.redactor.redact("canary-default-check"), "[redacted]");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_missing_key_names_the_object_the_key_and_the_producer() {
        let fake = FakeCluster::new();
        fake.insert(secret(
            "global-secrets",
            "dex.gitea",
            json!({"other": "canary-s3cret-value"}),
        ));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("10-shared.yaml"),
            "schema: bringup/v1\nphase: shared\nsteps:\n  - id: dex-gitea\n    kind: secret\n    secret: global-secrets/dex.gitea\n    keys:\n      client_secret: {random: {length: 32}}\n",
        )
        .unwrap();
        let phases = crate::phase::load_dir(dir.path(), &crate::phase::Values::default()).unwrap();
        let t = templater(&fake).with_phases(&phases);
        let error = t
            .render(
                "{{ secret('global-secrets', 'dex.gitea', 'client_secret') }}",
                &Locals::default(),
            )
            .unwrap_err();
        assert_eq!(
            error.message,
            "secret(): Secret global-secrets/dex.gitea has no key `client_secret` (it has other); step `shared/dex-gitea` creates it: does phase `shared` run before this one? add `shared` to depends_on"
        );
        assert!(!error.to_string().contains("canary"), "{error}");
        let missing = t
            .render("{{ secret('nope', 'gone', 'k') }}", &Locals::default())
            .unwrap_err();
        assert_eq!(
            missing.message,
            "secret(): Secret nope/gone not found; it must exist before this step runs"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn ingress_host_reads_the_first_rule() {
        let fake = FakeCluster::new();
        fake.insert(json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"namespace": "dex", "name": "dex"}, "spec": {"rules": [{"host": "dex.example.com"}]}}));
        fake.insert(
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"namespace": "dex", "name": "bare"}, "spec": {}}),
        );
        let t = templater(&fake);
        assert_eq!(
            t.render(
                "https://{{ ingress_host('dex', 'dex') }}/cb",
                &Locals::default()
            )
            .unwrap(),
            "https://dex.example.com/cb"
        );
        let error = t
            .render("{{ ingress_host('dex', 'bare') }}", &Locals::default())
            .unwrap_err();
        assert_eq!(
            error.message,
            "ingress_host(): Ingress dex/bare has no spec.rules[0].host"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn configmap_reads_plain_data() {
        let fake = FakeCluster::new();
        fake.insert(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": "a", "name": "b"}, "data": {"k": "v"}}));
        assert_eq!(
            templater(&fake)
                .render("{{ configmap('a', 'b', 'k') }}", &Locals::default())
                .unwrap(),
            "v"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn lookups_on_a_current_thread_runtime_fail_instead_of_panicking() {
        let fake = FakeCluster::new();
        let error = templater(&fake)
            .render("{{ secret('a', 'b', 'c') }}", &Locals::default())
            .unwrap_err();
        assert!(
            error.message.contains("multi-thread runtime"),
            "{}",
            error.message
        );
    }

    #[test]
    fn undefined_values_are_errors_naming_the_path() {
        let t = Templater::new(json!({"gitea": {"host": "h"}}), None, Redactor::new());
        let error = t
            .render("{{ values.gitea.port }}", &Locals::default())
            .unwrap_err();
        assert_eq!(
            error.message,
            "undefined value `values.gitea.port`: set it with --set gitea.port=VALUE or in --values FILE"
        );
        assert_eq!(
            t.render(
                "{{ values.gitea.port | default(3000) }}",
                &Locals::default()
            )
            .unwrap(),
            "3000"
        );
        let unknown = t.render("{{ nope }}", &Locals::default()).unwrap_err();
        assert_eq!(unknown.message, "undefined variable `nope`");
        let response = t
            .render("{{ response.sha1 }}", &Locals::default())
            .unwrap_err();
        assert!(
            response.message.starts_with("undefined value `response`"),
            "{}",
            response.message
        );
    }

    #[test]
    fn locals_are_visible_and_missing_fields_do_not_print_the_response() {
        let t = Templater::new(json!({}), None, Redactor::new());
        let locals = Locals {
            response: Some(json!({"sha1": "abc123canary"})),
            ..Locals::default()
        };
        assert_eq!(
            t.render("{{ response.sha1 }}", &locals).unwrap(),
            "abc123canary"
        );
        let error = t.render("{{ response.token }}", &locals).unwrap_err();
        assert_eq!(
            error.message,
            "undefined value `response.token`: the response has no such field"
        );
        assert!(!error.to_string().contains("abc123canary"));
    }

    #[test]
    fn plain_text_and_trailing_newlines_survive() {
        let t = Templater::new(json!({"a": "x"}), None, Redactor::new());
        assert_eq!(
            t.render("no templates here", &Locals::default()).unwrap(),
            "no templates here"
        );
        assert_eq!(
            t.render("{{ values.a }}\n", &Locals::default()).unwrap(),
            "x\n"
        );
        let json = t
            .render_json(
                &json!({"k": ["{{ values.a }}", 3, true]}),
                &Locals::default(),
            )
            .unwrap();
        assert_eq!(json, json!({"k": ["x", 3, true]}));
    }

    #[test]
    fn references_list_calls_values_and_guards() {
        let refs = references(
            "{{ secret('ns', 'name', 'key') }} {{ values.gitea.host }} {{ values.x | default('d') }}\n\
             {% if values.opt is defined %}{{ values.opt.deep }}{% endif %}{% set local = 1 %}{{ local }}",
        )
        .unwrap();
        assert_eq!(refs.calls.len(), 1);
        assert_eq!(refs.calls[0].name, "secret");
        assert_eq!(
            refs.calls[0].args,
            vec![Some("ns".into()), Some("name".into()), Some("key".into())]
        );
        assert_eq!(
            refs.calls[0].position,
            TemplatePosition {
                line: 1,
                column: 4,
                offset: 3
            }
        );
        let values: Vec<String> = refs.values().map(|p| p.join(".")).collect();
        assert_eq!(values, ["gitea.host", "x", "opt", "opt.deep"]);
        let x = refs
            .variables
            .iter()
            .find(|v| v.path == ["values", "x"])
            .unwrap();
        assert!(x.guarded);
        let deep = refs
            .variables
            .iter()
            .find(|v| v.path == ["values", "opt", "deep"])
            .unwrap();
        assert_eq!(
            deep.guarded_by,
            vec![vec!["values".to_string(), "opt".to_string()]]
        );
        assert_eq!(deep.position.line, 2);
        assert!(!refs.reads("local"));
    }

    #[test]
    fn syntax_errors_carry_a_position_and_no_values() {
        let error = analyze("ok {{ values.a ").unwrap_err();
        assert!(
            error.message.starts_with("syntax error: "),
            "{}",
            error.message
        );
        assert_eq!(error.position.line, 1);
        let error = references("{% if %}").unwrap_err();
        assert_eq!(error.template, "{% if %}");
    }

    #[test]
    fn known_names() {
        assert!(is_known_function("secret") && is_known_function("range"));
        assert!(!is_known_function("secrets"));
        assert!(
            is_known_filter("default") && is_known_filter("tojson") && !is_known_filter("nope")
        );
        assert!(is_known_test("defined") && !is_known_test("nope"));
    }
}
