//! Loading a phases directory: every `*.yaml`/`*.yml` file but values files (`values.yaml`,
//! `*-values.yaml`), in file-name order, parsed with positions, each step dispatched on its `kind`, every problem mapped back
//! to file:line:col. Validation ([`super::validate`]) runs on the result before the DAG is
//! built, so one call reports everything wrong with the directory.

use std::path::{Path, PathBuf};

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{LoadError, LoaderOptions, Node, Span};
use serde::de::DeserializeOwned;

use super::dag::PhaseSet;
use super::diagnostic::{Diagnostic, Diagnostics};
use super::model::{
    ApplyStep, ExecStep, HttpStep, Mode, PHASE_SCHEMA, Phase, PromptStep, SecretStep, SkipIf, Step,
    StepKind, VaultConfigStep, VaultInitStep, VaultKvStep, VaultRootTokenStep, VaultUnsealStep,
    WaitStep, parse_duration,
};
use super::suggest;
use super::validate;
use super::values::{DEFAULTS_FILE, Values};

/// Keys of a phase file.
pub const PHASE_FIELDS: &[&str] = &["schema", "phase", "description", "depends_on", "steps"];
/// Keys every step has, whatever its kind.
pub const COMMON_STEP_FIELDS: &[&str] =
    &["id", "kind", "description", "mode", "timeout", "retries"];

/// The defaults file, and values files kept beside the phases (`sandbox-values.yaml`, passed
/// with `--values`): they hold values, not a phase.
fn is_values_file(path: &std::path::Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    name == DEFAULTS_FILE
        || [".yaml", ".yml"].iter().any(|ext| {
            name.strip_suffix(ext)
                .is_some_and(|stem| stem.ends_with("-values"))
        })
}

/// Loads, validates and orders every phase file in `dir`.
pub fn load_dir(dir: &Path, values: &Values) -> Result<PhaseSet, Diagnostics> {
    let problem = |message: String, hint: &str| {
        Diagnostics(vec![Diagnostic::new(dir, 0, 0, message).hint(hint)])
    };
    let entries = std::fs::read_dir(dir).map_err(|error| {
        problem(
            format!("cannot read the phases directory: {error}"),
            "point --phases at the directory that holds the phase files",
        )
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .filter(|path| {
            matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            )
        })
        .filter(|path| !is_values_file(path))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(problem(
            "no phase files (*.yaml) in this directory".into(),
            "point --phases at the directory that holds the phase files",
        ));
    }
    let mut sources = Vec::new();
    let mut diagnostics = Diagnostics::new();
    for file in files {
        match std::fs::read_to_string(&file) {
            Ok(text) => sources.push((file, text)),
            Err(error) => diagnostics.push(Diagnostic::new(
                &file,
                0,
                0,
                format!("cannot read the file: {error}"),
            )),
        }
    }
    match load_sources(sources, values) {
        Ok(set) if diagnostics.is_empty() => Ok(set),
        Ok(_) => Err(diagnostics.sorted()),
        Err(more) => {
            diagnostics.extend(more);
            Err(diagnostics.sorted())
        }
    }
}

/// Loads, validates and orders phase files given as `(path, text)` in file order.
pub fn load_sources(
    sources: Vec<(PathBuf, String)>,
    values: &Values,
) -> Result<PhaseSet, Diagnostics> {
    let mut diagnostics = Diagnostics::new();
    let mut loaded = Vec::new();
    for (index, (file, text)) in sources.into_iter().enumerate() {
        if let Some(phase) = parse_file(index, &file, text, &mut diagnostics) {
            loaded.push(phase);
        }
    }
    diagnostics.extend(validate::validate(&loaded, values));
    diagnostics.into_result()?;
    PhaseSet::new(loaded.into_iter().map(|l| l.phase).collect()).map_err(|error| {
        // Validation reports these with positions; reaching here is a bug, but say what it is.
        Diagnostics(vec![Diagnostic::new(
            Path::new("."),
            0,
            0,
            error.to_string(),
        )])
    })
}

/// One phase file after parsing: the model, and the YAML nodes for positions.
#[derive(Debug, Clone)]
pub struct LoadedPhase {
    /// Steps that failed to parse are left out (their problems are already reported).
    pub phase: Phase,
    /// Whether `phase:` held a usable name (cross-file checks skip the file otherwise).
    pub named: bool,
    pub text: String,
    pub root: MarkedMappingNode,
    /// The mapping of each step in `phase.steps`, index for index.
    pub steps: Vec<MarkedMappingNode>,
}

impl LoadedPhase {
    pub fn file(&self) -> &Path {
        &self.phase.file
    }
}

/// 1-based line and column of a span's start (0, 0 when unknown).
pub fn start(span: &Span) -> (usize, usize) {
    span.start()
        .map(|m| (m.line(), m.column()))
        .unwrap_or((0, 0))
}

fn at(file: &Path, span: &Span, message: impl Into<String>) -> Diagnostic {
    let (line, column) = start(span);
    Diagnostic::new(file, line, column, message)
}

fn parse_file(
    index: usize,
    file: &Path,
    text: String,
    diagnostics: &mut Diagnostics,
) -> Option<LoadedPhase> {
    // prevent_coercion: a quoted "3" stays text, so manifests and JSON bodies keep YAML's types.
    let options = LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .prevent_coercion(true);
    let root = match marked_yaml::parse_yaml_with_options(index, &text, options) {
        Ok(Node::Mapping(root)) => root,
        Ok(_) => unreachable!("the loader insists on a top-level mapping"),
        Err(error) => {
            diagnostics.push(yaml_error(file, &text, error));
            return None;
        }
    };
    let mut named = false;
    let mut name = String::new();
    let mut description = None;
    let mut depends_on = Vec::new();
    for (key, value) in root.iter() {
        match key.as_str() {
            "schema" => match value.as_scalar() {
                Some(schema) if schema.as_str() == PHASE_SCHEMA => {}
                _ => diagnostics.push(
                    at(
                        file,
                        value.span(),
                        format!("unsupported schema `{}`", scalar_text(value)),
                    )
                    .hint(format!(
                        "this build of bringup reads `schema: {PHASE_SCHEMA}`"
                    )),
                ),
            },
            "phase" => match value.as_scalar() {
                Some(scalar) if !scalar.as_str().is_empty() => {
                    name = scalar.as_str().to_string();
                    named = true;
                }
                _ => diagnostics.push(
                    at(file, value.span(), "`phase` must be the phase name")
                        .hint("write it as `phase: gitea`"),
                ),
            },
            "description" => description = string(file, value, "description", None, diagnostics),
            "depends_on" => match value {
                Node::Sequence(items) => {
                    for item in items.iter() {
                        match item.as_scalar() {
                            Some(s) if !s.as_str().is_empty() => {
                                depends_on.push(s.as_str().to_string())
                            }
                            _ => diagnostics.push(at(
                                file,
                                item.span(),
                                "`depends_on` entries must be phase names",
                            )),
                        }
                    }
                }
                _ => diagnostics.push(
                    at(
                        file,
                        value.span(),
                        "`depends_on` must be a list of phase names",
                    )
                    .hint(format!(
                        "write it as `depends_on: [{}]`",
                        scalar_text(value)
                    )),
                ),
            },
            "steps" => {}
            other => diagnostics.push(
                at(
                    file,
                    key.span(),
                    format!("unknown field `{other}` in the phase file"),
                )
                .hint(suggest::hint(other, PHASE_FIELDS.iter().copied())),
            ),
        }
    }
    let top = Span::new_start(marked_yaml::Marker::new(index, 0, 1, 1));
    if root.get_node("schema").is_none() {
        diagnostics.push(
            at(file, &top, "missing `schema`")
                .hint(format!("add `schema: {PHASE_SCHEMA}` as the first line")),
        );
    }
    if root.get_node("phase").is_none() {
        diagnostics.push(
            at(file, &top, "missing `phase`").hint("add the phase name, e.g. `phase: gitea`"),
        );
    }
    let mut steps = Vec::new();
    let mut step_nodes = Vec::new();
    match root.get_node("steps") {
        None => diagnostics
            .push(at(file, &top, "missing `steps`").hint("add `steps:` with a list of steps")),
        Some(Node::Sequence(items)) => {
            for (position, item) in items.iter().enumerate() {
                if let Some((step, node)) = parse_step(file, &name, position, item, diagnostics) {
                    steps.push(step);
                    step_nodes.push(node);
                }
            }
        }
        Some(other) => diagnostics.push(
            at(file, other.span(), "`steps` must be a list of steps")
                .hint("start each step with `- id: ...`"),
        ),
    }
    let phase = Phase {
        name,
        description,
        depends_on,
        steps,
        file: file.to_path_buf(),
    };
    Some(LoadedPhase {
        phase,
        named,
        text,
        root,
        steps: step_nodes,
    })
}

fn yaml_error(file: &Path, text: &str, error: LoadError) -> Diagnostic {
    let marker = |m: &marked_yaml::Marker| (m.line(), m.column());
    let (position, message, hint) = match &error {
        LoadError::TopLevelMustBeMapping(m) => (
            marker(m),
            "a phase file must be a mapping".to_string(),
            Some(format!("start it with `schema: {PHASE_SCHEMA}`")),
        ),
        LoadError::TopLevelMustBeSequence(m) => {
            (marker(m), "unexpected top-level sequence".into(), None)
        }
        LoadError::UnexpectedAnchor(m) => (
            marker(m),
            "YAML anchors and aliases are not supported".into(),
            Some("repeat the value instead".into()),
        ),
        LoadError::MappingKeyMustBeScalar(m) => {
            (marker(m), "mapping keys must be plain names".into(), None)
        }
        LoadError::UnexpectedTag(m) => (
            marker(m),
            "YAML tags (`!tag`) are not supported".into(),
            Some("remove the tag".into()),
        ),
        LoadError::DuplicateKey(inner) => {
            let first = inner.prev_key.span().start().map(|m| m.line()).unwrap_or(0);
            (
                inner.key.span().start().map(marker).unwrap_or((0, 0)),
                format!(
                    "duplicate key `{}` (first at line {first})",
                    inner.key.as_str()
                ),
                Some("remove one of them".into()),
            )
        }
        LoadError::ScanError(m, scan) => (
            marker(m),
            format!("invalid YAML: {}", scan.info()),
            Some("check the indentation and quoting on this line".into()),
        ),
    };
    // An empty file parses as an empty scalar rather than a mapping.
    let (message, hint) = if text.trim().is_empty() {
        (
            "the file is empty".to_string(),
            Some(format!("start it with `schema: {PHASE_SCHEMA}`")),
        )
    } else {
        (message, hint)
    };
    Diagnostic::new(file, position.0.max(1), position.1.max(1), message).maybe_hint(hint)
}

/// The text of a scalar node, or a short description of a collection.
fn scalar_text(node: &Node) -> String {
    match node {
        Node::Scalar(s) => s.as_str().to_string(),
        Node::Mapping(_) => "a mapping".into(),
        Node::Sequence(_) => "a list".into(),
    }
}

fn string(
    file: &Path,
    node: &Node,
    field: &str,
    step: Option<&str>,
    diagnostics: &mut Diagnostics,
) -> Option<String> {
    match node {
        Node::Scalar(s) if s.as_str().is_empty() && s.may_coerce() => None,
        Node::Scalar(s) => Some(s.as_str().to_string()),
        _ => {
            diagnostics.push(
                at(file, node.span(), format!("`{field}` must be text"))
                    .maybe_step(step.map(str::to_string)),
            );
            None
        }
    }
}

fn parse_step(
    file: &Path,
    phase: &str,
    position: usize,
    node: &Node,
    diagnostics: &mut Diagnostics,
) -> Option<(Step, MarkedMappingNode)> {
    let Node::Mapping(mapping) = node else {
        diagnostics.push(
            at(
                file,
                node.span(),
                format!("step {} must be a mapping", position + 1),
            )
            .hint("write it as `- id: name` followed by `kind:` and the kind's fields"),
        );
        return None;
    };
    let id = mapping
        .get_scalar("id")
        .map(|s| s.as_str().to_string())
        .filter(|s| !s.is_empty());
    let label = match &id {
        Some(id) => format!("{phase}/{id}"),
        None => format!("{phase}/#{}", position + 1),
    };
    let mut report = |diagnostic: Diagnostic| diagnostics.push(diagnostic.step(label.clone()));
    if id.is_none() {
        report(
            at(file, mapping.span(), "missing `id`")
                .hint("add `id: <name>`, unique in the phase ([a-z0-9-])"),
        );
    }
    let kind_node = mapping.get_node("kind");
    let kind = match kind_node {
        None => {
            report(at(file, mapping.span(), "missing `kind`").hint(format!(
                "add `kind:` with one of {}",
                suggest::list(StepKind::NAMES.iter().copied())
            )));
            None
        }
        Some(Node::Scalar(k)) if StepKind::NAMES.contains(&k.as_str()) => {
            Some(k.as_str().to_string())
        }
        Some(other) => {
            let text = scalar_text(other);
            let hint = match suggest::closest(&text, StepKind::NAMES.iter().copied()) {
                Some(best) => format!(
                    "did you mean `{best}`? the kinds are {}",
                    suggest::list(StepKind::NAMES.iter().copied())
                ),
                None => format!(
                    "the kinds are {}",
                    suggest::list(StepKind::NAMES.iter().copied())
                ),
            };
            report(at(file, other.span(), format!("unknown step kind `{text}`")).hint(hint));
            None
        }
    };
    let mut description = None;
    let mut mode = None;
    let mut timeout = None;
    let mut retries = None;
    for (key, value) in mapping.iter() {
        match key.as_str() {
            "description" => match value {
                Node::Scalar(s) if s.as_str().is_empty() && s.may_coerce() => {}
                Node::Scalar(s) => description = Some(s.as_str().to_string()),
                _ => report(at(file, value.span(), "`description` must be text")),
            },
            "mode" => match value.as_scalar().map(MarkedScalarNode::as_str) {
                Some("once") => mode = Some(Mode::Once),
                Some("ensure") => mode = Some(Mode::Ensure),
                _ => {
                    let text = scalar_text(value);
                    report(
                        at(file, value.span(), format!("unknown mode `{text}`"))
                            .hint(suggest::hint(&text, ["once", "ensure"])),
                    )
                }
            },
            "timeout" => match parse_duration(&scalar_text(value)) {
                Ok(duration) if !duration.is_zero() => {
                    timeout = Some(super::model::Duration(duration))
                }
                Ok(_) => report(
                    at(file, value.span(), "`timeout` is zero")
                        .hint("give the step time to finish, e.g. `timeout: 5m`"),
                ),
                Err(_) => report(
                    at(
                        file,
                        value.span(),
                        format!("invalid duration `{}`", scalar_text(value)),
                    )
                    .hint("write it as 30s, 5m, 1h30m or 250ms"),
                ),
            },
            "retries" => match value
                .as_scalar()
                .and_then(|s| s.as_str().parse::<u32>().ok())
            {
                Some(count) => retries = Some(count),
                None => report(
                    at(
                        file,
                        value.span(),
                        format!(
                            "`retries` must be a whole number, found `{}`",
                            scalar_text(value)
                        ),
                    )
                    .hint("write it as `retries: 3`"),
                ),
            },
            _ => {}
        }
    }
    let kind_name = kind?;
    let fields = kind_fields(&kind_name);
    let mut rest = mapping.clone();
    for common in COMMON_STEP_FIELDS {
        rest.remove(*common);
    }
    let unknown: Vec<MarkedScalarNode> = rest
        .keys()
        .filter(|k| !fields.contains(&k.as_str()))
        .cloned()
        .collect();
    for key in &unknown {
        let known = fields.iter().chain(COMMON_STEP_FIELDS).copied();
        report(
            at(
                file,
                key.span(),
                format!("unknown field `{}` for kind `{kind_name}`", key.as_str()),
            )
            .hint(suggest::hint(key.as_str(), known)),
        );
        rest.remove(key.as_str());
    }
    let rest = Node::Mapping(rest);
    let parsed = match kind_name.as_str() {
        "secret" => deserialize::<SecretStep>(&rest).map(StepKind::Secret),
        "apply" => deserialize::<ApplyStep>(&rest).map(|mut apply| {
            if let Some(manifest) = rest.as_mapping().and_then(|m| m.get_node("manifest")) {
                apply.manifest = to_json(manifest);
            }
            StepKind::Apply(apply)
        }),
        "exec" => deserialize::<ExecStep>(&rest).map(|mut exec| {
            fix_skip_if_json(&rest, &mut exec.skip_if);
            StepKind::Exec(exec)
        }),
        "http" => deserialize::<HttpStep>(&rest).map(|mut http| {
            if let Some(json) = node_at(&rest, &["request", "json"]) {
                http.request.json = Some(to_json(json));
            }
            fix_skip_if_json(&rest, &mut http.skip_if);
            StepKind::Http(http)
        }),
        "wait" => deserialize::<WaitStep>(&rest).map(StepKind::Wait),
        "prompt" => deserialize::<PromptStep>(&rest).map(StepKind::Prompt),
        "vault-init" => deserialize::<VaultInitStep>(&rest).map(StepKind::VaultInit),
        "vault-unseal" => deserialize::<VaultUnsealStep>(&rest).map(StepKind::VaultUnseal),
        "vault-config" => deserialize::<VaultConfigStep>(&rest).map(StepKind::VaultConfig),
        "vault-kv" => deserialize::<VaultKvStep>(&rest).map(StepKind::VaultKv),
        "vault-root-token" => {
            deserialize::<VaultRootTokenStep>(&rest).map(StepKind::VaultRootToken)
        }
        _ => unreachable!("kind checked against StepKind::NAMES"),
    };
    let kind = match parsed {
        Ok(kind) => kind,
        Err(error) => {
            // A misspelt field also shows up as the missing one it was meant to be.
            let consequence = !unknown.is_empty()
                && error.path().is_none()
                && error.to_string().starts_with("missing field");
            if !consequence {
                report(serde_diagnostic(file, &rest, error, fields));
            }
            return None;
        }
    };
    // Keep a step whose fields parsed even if a common field was wrong (already reported):
    // validation then still sees it, so one run reports everything.
    let step = Step {
        id: id?,
        description,
        mode,
        timeout,
        retries,
        kind,
    };
    Some((step, mapping.clone()))
}

fn fix_skip_if_json(rest: &Node, skip_if: &mut Option<SkipIf>) {
    if let (Some(SkipIf::Request(request)), Some(json)) = (
        skip_if.as_mut(),
        node_at(rest, &["skip_if", "request", "json"]),
    ) {
        request.json = Some(to_json(json));
    }
}

/// The node at a path of mapping keys.
pub fn node_at<'a>(node: &'a Node, path: &[&str]) -> Option<&'a Node> {
    path.iter()
        .try_fold(node, |node, key| node.as_mapping()?.get_node(key))
}

/// A YAML node as JSON with YAML 1.2 core types: plain `true`/`false`, `null`/`~`/empty,
/// integers and floats are typed; quoted scalars are strings. (The serde bridge would make
/// every scalar a string, and a manifest's `replicas: 3` must stay a number.)
pub fn to_json(node: &Node) -> serde_json::Value {
    match node {
        Node::Scalar(s) => {
            let text = s.as_str();
            if !s.may_coerce() {
                return serde_json::Value::String(text.to_string());
            }
            match text {
                "" | "~" | "null" | "Null" | "NULL" => return serde_json::Value::Null,
                "true" | "True" | "TRUE" => return serde_json::Value::Bool(true),
                "false" | "False" | "FALSE" => return serde_json::Value::Bool(false),
                _ => {}
            }
            if let Ok(integer) = text.parse::<i64>() {
                return serde_json::Value::from(integer);
            }
            let looks_numeric = text
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))
                && text.chars().any(|c| c.is_ascii_digit());
            if looks_numeric
                && let Some(number) = text
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
            {
                return serde_json::Value::Number(number);
            }
            serde_json::Value::String(text.to_string())
        }
        Node::Sequence(items) => serde_json::Value::Array(items.iter().map(to_json).collect()),
        Node::Mapping(map) => serde_json::Value::Object(
            map.iter()
                .map(|(k, v)| (k.as_str().to_string(), to_json(v)))
                .collect(),
        ),
    }
}

fn deserialize<T: DeserializeOwned>(
    node: &Node,
) -> Result<T, marked_yaml::spanned_serde::FromNodeError> {
    marked_yaml::from_node(node)
}

/// The top-level fields of a kind's struct, asked from serde itself.
pub fn kind_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "secret" => fields_of::<SecretStep>(),
        "apply" => fields_of::<ApplyStep>(),
        "exec" => fields_of::<ExecStep>(),
        "http" => fields_of::<HttpStep>(),
        "wait" => fields_of::<WaitStep>(),
        "prompt" => fields_of::<PromptStep>(),
        "vault-init" => fields_of::<VaultInitStep>(),
        "vault-unseal" => fields_of::<VaultUnsealStep>(),
        "vault-config" => fields_of::<VaultConfigStep>(),
        "vault-kv" => fields_of::<VaultKvStep>(),
        "vault-root-token" => fields_of::<VaultRootTokenStep>(),
        _ => &[],
    }
}

fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut fields = None;
    let _ = T::deserialize(FieldProbe(&mut fields));
    fields.unwrap_or(&[])
}

/// A deserializer that only records the field names a struct asks for.
struct FieldProbe<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> serde::Deserializer<'de> for FieldProbe<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("field probe"))
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(serde::de::Error::custom("field probe"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

/// A serde error from a step's fields, as a diagnostic in plain words.
fn serde_diagnostic(
    file: &Path,
    rest: &Node,
    error: marked_yaml::spanned_serde::FromNodeError,
    fields: &[&str],
) -> Diagnostic {
    use marked_yaml::spanned_serde::Error as E;
    let path = error.path().map(str::to_string).unwrap_or_default();
    let node = find(rest, &path);
    // Our own walk follows enum variants, which marked_yaml's stops at; prefer it.
    let (mut line, mut column) = match (node, error.start_mark()) {
        (Some(node), _) if start(node.span()) != (0, 0) => start(node.span()),
        (_, Some(mark)) => (mark.line(), mark.column()),
        _ => start(rest.span()),
    };
    let found = node.map(scalar_text).unwrap_or_default();
    let within = |path: &str| {
        if path.is_empty() {
            String::new()
        } else {
            format!(" in `{path}`")
        }
    };
    let (message, hint) = match error.into_inner() {
        E::UnknownFieldError(field, expected, _) => {
            // The path names the mapping that holds the unknown key, or the key itself.
            let parent = path
                .strip_suffix(&format!(".{field}"))
                .or(if path == field { Some("") } else { None })
                .unwrap_or(&path);
            let candidates: Vec<&str> = if parent.is_empty() {
                fields.iter().chain(COMMON_STEP_FIELDS).copied().collect()
            } else {
                expected.to_vec()
            };
            let key = find(rest, parent)
                .and_then(Node::as_mapping)
                .and_then(|m| m.keys().find(|k| k.as_str() == field));
            if let Some(key) = key {
                (line, column) = start(key.span());
            }
            (
                format!("unknown field `{field}`{}", within(parent)),
                Some(suggest::hint(&field, candidates.iter().copied())),
            )
        }
        E::IntegerParseFailure(..) | E::FloatParseFailure(..) => (
            format!("`{path}` must be a number, found `{found}`"),
            Some(format!("write it as `{}: 32`", last(&path))),
        ),
        E::NotBoolean(_) => (
            format!("`{path}` must be true or false, found `{found}`"),
            None,
        ),
        E::Other(text, _) => plain_words(&text, &path, node),
    };
    Diagnostic::new(file, line, column, message).maybe_hint(hint)
}

fn last(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

/// serde's messages in words a phase-file author uses.
fn plain_words(text: &str, path: &str, node: Option<&Node>) -> (String, Option<String>) {
    let within = if path.is_empty() {
        String::new()
    } else {
        format!(" in `{path}`")
    };
    let quoted = |text: &str| -> Vec<String> {
        text.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    if let Some(rest) = text.strip_prefix("missing field ") {
        let field = rest.trim_matches('`');
        return (
            format!("missing field `{field}`{within}"),
            Some(format!("add `{field}:`")),
        );
    }
    if text.starts_with("unknown variant ") {
        let words = quoted(text);
        let (given, choices) = words
            .split_first()
            .map(|(g, c)| (g.clone(), c.to_vec()))
            .unwrap_or_default();
        let hint = suggest::hint(&given, choices.iter().map(String::as_str));
        let subject = if path.is_empty() {
            "this field".to_string()
        } else {
            format!("`{path}`")
        };
        return (
            format!("unknown option `{given}` for {subject}"),
            Some(hint),
        );
    }
    if text.starts_with("Expected map with one value, got empty map") {
        return (format!("`{path}` is empty: it takes one option"), None);
    }
    if text.starts_with("Expected map with one value") {
        let keys: Vec<String> = node
            .and_then(Node::as_mapping)
            .map(|m| m.keys().map(|k| format!("`{}`", k.as_str())).collect())
            .unwrap_or_default();
        return (
            format!(
                "`{path}` takes exactly one option, found {}",
                keys.join(" and ")
            ),
            Some("keep one of them".into()),
        );
    }
    if let Some(rest) = text.strip_prefix("invalid type: ") {
        let (found, expected) = rest
            .split_once(", expected ")
            .unwrap_or((rest, "another type"));
        let hint = match expected {
            e if e.contains("sequence") => {
                Some(format!("write a list, e.g. `{}: [a, b]`", last(path)))
            }
            e if e.contains("map") || e.starts_with("struct") => {
                Some(format!("`{}` takes a mapping of fields", last(path)))
            }
            _ => None,
        };
        let expected = expected
            .replace("a sequence", "a list")
            .replace("a map", "a mapping");
        let expected = if expected.starts_with("struct ") || expected.starts_with("enum ") {
            "a mapping".to_string()
        } else {
            expected
        };
        let found = found
            .replace("string ", "text ")
            .replace("sequence", "a list")
            .replace("map", "a mapping");
        return (format!("`{path}` must be {expected}, found {found}"), hint);
    }
    if text.ends_with("is not `namespace/name`") {
        return (
            format!("{text}{within}"),
            Some("write it as namespace/name, e.g. `global-secrets/gitea.admin`".into()),
        );
    }
    if text.ends_with("is not `namespace/secret/key`") {
        return (
            format!("{text}{within}"),
            Some(
                "write it as namespace/secret/key, e.g. `global-secrets/gitea.renovate/token`"
                    .into(),
            ),
        );
    }
    // The model's own messages put the way out after the first `: `.
    if let Some((message, fix)) = text.split_once(": ") {
        return (format!("{message}{within}"), Some(fix.to_string()));
    }
    let mut message = text.to_string();
    if let Some(first) = message.get(0..1) {
        message.replace_range(0..1, &first.to_lowercase());
    }
    (format!("{message}{within}"), None)
}

/// The node at a rendered serde path (`keys.password.random`, `command[2]`).
fn find<'a>(root: &'a Node, path: &str) -> Option<&'a Node> {
    if path.is_empty() {
        return Some(root);
    }
    let mut node = root;
    for segment in path.split('.') {
        let (key, indexes) = match segment.find('[') {
            Some(i) => (&segment[..i], &segment[i..]),
            None => (segment, ""),
        };
        if !key.is_empty() {
            node = node.as_mapping()?.get_node(key)?;
        }
        for index in indexes.split(['[', ']']).filter(|s| !s.is_empty()) {
            node = node.as_sequence()?.get_node(index.parse().ok()?)?;
        }
    }
    Some(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(files: &[(&str, &str)]) -> Result<PhaseSet, Diagnostics> {
        let sources = files
            .iter()
            .map(|(name, text)| (PathBuf::from(name), text.to_string()))
            .collect();
        load_sources(sources, &Values::default())
    }

    #[test]
    fn values_files_beside_the_phases_are_not_phases() {
        for name in ["values.yaml", "sandbox-values.yaml", "prod-values.yml"] {
            assert!(is_values_file(Path::new(name)), "{name}");
        }
        for name in ["20-vault.yaml", "values-check.yaml", "novalues.yaml"] {
            assert!(!is_values_file(Path::new(name)), "{name}");
        }
    }

    #[test]
    fn loads_every_kind_with_positions_dropped_and_types_kept() {
        let set = load(&[(
            "a.yaml",
            r#"schema: bringup/v1
phase: demo
description: a demo
steps:
  - id: shared
    kind: secret
    secret: global-secrets/gitea.admin
    keys:
      password: {random: {length: 32, alphabet: alnum-symbols}}
  - id: cm
    kind: apply
    mode: once
    timeout: 1m30s
    retries: 2
    manifest:
      apiVersion: apps/v1
      kind: Deployment
      metadata: {namespace: a, name: b}
      spec: {replicas: 3, paused: false, note: "3", ratio: 0.5, empty: ~}
"#,
        )])
        .unwrap();
        let phase = set.get("demo").unwrap();
        assert_eq!(phase.description.as_deref(), Some("a demo"));
        let StepKind::Secret(secret) = &phase.steps[0].kind else {
            panic!("secret")
        };
        assert_eq!(secret.secret.to_string(), "global-secrets/gitea.admin");
        let apply = &phase.steps[1];
        assert_eq!(apply.mode, Some(Mode::Once));
        assert_eq!(apply.timeout.unwrap().0, std::time::Duration::from_secs(90));
        assert_eq!(apply.retries, Some(2));
        let StepKind::Apply(apply) = &apply.kind else {
            panic!("apply")
        };
        assert_eq!(
            apply.manifest["spec"],
            serde_json::json!({"replicas": 3, "paused": false, "note": "3", "ratio": 0.5, "empty": null})
        );
    }

    #[test]
    fn every_problem_in_every_file_is_reported() {
        let error = load(&[
            ("a.yaml", "schema: bringup/v1\nphase: a\nsteps:\n  - id: x\n    kind: exce\n  - id: y\n    kind: wait\n    fro: {}\n"),
            ("b.yaml", "phase: b\nsteps: []\n"),
        ])
        .unwrap_err();
        let text = error.to_string();
        assert!(text.contains("a.yaml:5:11: error: step `a/x`: unknown step kind `exce`\n  hint: did you mean `exec`?"), "{text}");
        assert!(text.contains("a.yaml:8:5: error: step `a/y`: unknown field `fro` for kind `wait`\n  hint: did you mean `for`?"), "{text}");
        assert!(
            text.contains("b.yaml:1:1: error: missing `schema`"),
            "{text}"
        );
    }

    #[test]
    fn nested_serde_errors_point_at_the_node() {
        let error = load(&[(
            "a.yaml",
            "schema: bringup/v1\nphase: a\nsteps:\n  - id: s\n    kind: secret\n    secret: ns/name\n    keys:\n      password: {random: {lenght: 32}}\n",
        )])
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "a.yaml:8:27: error: step `a/s`: unknown field `lenght` in `keys.password.random`\n  hint: did you mean `length`?"
        );
    }

    #[test]
    fn kind_fields_come_from_serde() {
        assert!(kind_fields("exec").contains(&"command"));
        assert!(kind_fields("wait").contains(&"for"));
    }
}
