//! Every check on loaded phase files that needs no cluster: names, the dependency graph,
//! each kind's rules, and every template (syntax, functions, values, where secrets may go).
//! All problems are reported at once, each at the YAML node (or template character) at fault.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use marked_yaml::Node;
use marked_yaml::types::MarkedScalarNode;

use super::dag::find_cycle;
use super::diagnostic::{Diagnostic, Diagnostics};
use super::load::{LoadedPhase, node_at, start};
use super::model::{
    Capture, Generator, HttpTarget, Phase, SkipIf, Step, StepKind, VaultTarget, WaitFor,
};
use super::producers::{ObjectKind, Producers};
use super::suggest;
use super::template::{self, FUNCTIONS, TemplatePosition, TemplateRefs};
use super::values::{Values, parse_key};

/// The longest random value a `secret` step makes.
pub const MAX_RANDOM_LENGTH: usize = 4096;

/// Checks every loaded phase against the others and against the merged values.
pub fn validate(loaded: &[LoadedPhase], values: &Values) -> Diagnostics {
    let mut checker = Checker {
        diagnostics: Diagnostics::new(),
        values,
    };
    checker.phases(loaded);
    let producers = Producers::of_phases(loaded.iter().map(|l| &l.phase));
    let needs = transitive_dependencies(loaded);
    for phase in loaded {
        checker.steps(phase, &producers, &needs);
    }
    checker.diagnostics
}

/// `[a-z0-9]([a-z0-9-]*[a-z0-9])?`
pub fn is_valid_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// A Kubernetes DNS label (namespaces): lowercase alphanumerics and `-`, at most 63.
fn is_dns_label(name: &str) -> bool {
    name.len() <= 63 && is_valid_id(name)
}

/// A Kubernetes DNS subdomain (most object names): labels joined by `.`, at most 253.
fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_dns_label)
}

/// A Secret or ConfigMap data key: `[-._a-zA-Z0-9]+`.
fn is_data_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Phase name → every phase it needs, directly or not (missing names ignored).
fn transitive_dependencies(loaded: &[LoadedPhase]) -> HashMap<&str, HashSet<&str>> {
    let direct: HashMap<&str, Vec<&str>> = loaded
        .iter()
        .filter(|l| l.named)
        .map(|l| {
            (
                l.phase.name.as_str(),
                l.phase.depends_on.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    direct
        .keys()
        .map(|&name| {
            let mut seen = HashSet::new();
            let mut stack = vec![name];
            while let Some(current) = stack.pop() {
                for &dependency in direct.get(current).map(Vec::as_slice).unwrap_or_default() {
                    if seen.insert(dependency) {
                        stack.push(dependency);
                    }
                }
            }
            (name, seen)
        })
        .collect()
}

struct Checker<'v> {
    diagnostics: Diagnostics,
    values: &'v Values,
}

/// Where a problem is: the file, and the step when there is one.
struct Place<'a> {
    file: &'a Path,
    text: &'a str,
    step: Option<String>,
}

impl Place<'_> {
    fn at(&self, node: &Node, message: impl Into<String>) -> Diagnostic {
        self.at_span(node.span(), message)
    }

    fn at_span(&self, span: &marked_yaml::Span, message: impl Into<String>) -> Diagnostic {
        let (line, column) = start(span);
        Diagnostic::new(self.file, line, column, message).maybe_step(self.step.clone())
    }

    /// The YAML position of a character inside a template held by a scalar.
    fn in_template(
        &self,
        scalar: &MarkedScalarNode,
        position: TemplatePosition,
        message: impl Into<String>,
    ) -> Diagnostic {
        let (line, column) = locate(self.text, scalar, position);
        Diagnostic::new(self.file, line, column, message).maybe_step(self.step.clone())
    }
}

/// Maps a position inside a scalar's text to the file: exact for one-line plain and quoted
/// scalars and for block scalars (`|`, whose marker is the first content line); for later
/// lines of folded or escaped text, the nearest line.
fn locate(text: &str, scalar: &MarkedScalarNode, position: TemplatePosition) -> (usize, usize) {
    let (line, column) = start(scalar.span());
    if line == 0 {
        return (0, 0);
    }
    if position.line == 1 {
        let source_line = text.lines().nth(line - 1).unwrap_or_default();
        let quoted = matches!(source_line.chars().nth(column - 1), Some('"' | '\''));
        return (line, column + position.column - usize::from(!quoted));
    }
    let target = (line + position.line - 1).min(text.lines().count().max(1));
    let indent = text
        .lines()
        .nth(target - 1)
        .map(|l| l.len() - l.trim_start().len())
        .unwrap_or(0);
    (target, indent + position.column)
}

impl Checker<'_> {
    fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    fn phases(&mut self, loaded: &[LoadedPhase]) {
        let mut first_file: HashMap<&str, &Path> = HashMap::new();
        let names: Vec<&str> = loaded
            .iter()
            .filter(|l| l.named)
            .map(|l| l.phase.name.as_str())
            .collect();
        for phase in loaded.iter().filter(|l| l.named) {
            let place = Place {
                file: phase.file(),
                text: &phase.text,
                step: None,
            };
            let name = phase.phase.name.as_str();
            let name_node = phase
                .root
                .get_node("phase")
                .expect("named phases have `phase`");
            if !is_valid_id(name) {
                self.push(
                    place
                        .at(name_node, format!("invalid phase name `{name}`"))
                        .hint("use lowercase letters, digits and `-`, starting and ending with a letter or digit"),
                );
            }
            match first_file.get(name) {
                Some(first) => self.push(
                    place
                        .at(
                            name_node,
                            format!("phase `{name}` is already defined in {}", first.display()),
                        )
                        .hint("phase names are unique across the phases directory: rename one"),
                ),
                None => {
                    first_file.insert(name, phase.file());
                }
            }
            let entries = phase
                .root
                .get_sequence("depends_on")
                .map(|s| s.iter().collect::<Vec<_>>())
                .unwrap_or_default();
            let mut seen = HashSet::new();
            for entry in entries {
                let Some(dependency) = entry.as_scalar().map(MarkedScalarNode::as_str) else {
                    continue;
                };
                if !seen.insert(dependency) {
                    self.push(
                        place
                            .at(
                                entry,
                                format!("`{dependency}` is listed twice in depends_on"),
                            )
                            .hint("remove one"),
                    );
                } else if dependency == name {
                    self.push(
                        place
                            .at(entry, format!("phase `{name}` depends on itself"))
                            .hint("remove it from depends_on"),
                    );
                } else if !names.contains(&dependency) {
                    let others = names.iter().copied().filter(|n| *n != name);
                    let hint = match suggest::closest(dependency, others.clone()) {
                        Some(best) => format!("did you mean `{best}`?"),
                        None if others.clone().next().is_none() => {
                            format!(
                                "add a phase file with `phase: {dependency}`, or remove it from depends_on"
                            )
                        }
                        None => format!("the other phases are {}", suggest::list(others)),
                    };
                    self.push(place.at(entry, format!("phase `{name}` depends on `{dependency}`, which no phase file defines")).hint(hint));
                }
            }
        }
        self.cycles(loaded);
    }

    /// Every cycle, each reported once at the `depends_on` entry that closes it.
    fn cycles(&mut self, loaded: &[LoadedPhase]) {
        let mut graph: Vec<Phase> = loaded
            .iter()
            .filter(|l| l.named)
            .map(|l| {
                let mut phase = l.phase.clone();
                phase.steps.clear();
                phase.depends_on.retain(|d| d != &phase.name);
                phase
            })
            .collect();
        for _ in 0..graph.len() {
            let Some(cycle) = find_cycle(&graph) else {
                break;
            };
            let (from, to) = (&cycle[cycle.len() - 2], &cycle[cycle.len() - 1]);
            if let Some(phase) = loaded.iter().find(|l| l.named && &l.phase.name == from) {
                let entry = phase.root.get_sequence("depends_on").and_then(|s| {
                    s.iter()
                        .find(|e| e.as_scalar().map(|s| s.as_str()) == Some(to.as_str()))
                });
                let place = Place {
                    file: phase.file(),
                    text: &phase.text,
                    step: None,
                };
                let message = format!(
                    "phases depend on each other in a cycle: {}",
                    cycle.join(" -> ")
                );
                let diagnostic = match entry {
                    Some(entry) => place.at(entry, message),
                    None => place.at_span(phase.root.span(), message),
                };
                self.push(diagnostic.hint(format!(
                    "remove `{to}` from depends_on of phase `{from}`, or another link of the cycle"
                )));
            }
            if let Some(phase) = graph.iter_mut().find(|p| &p.name == from) {
                phase.depends_on.retain(|d| d != to);
            }
        }
    }

    fn steps(
        &mut self,
        phase: &LoadedPhase,
        producers: &Producers,
        needs: &HashMap<&str, HashSet<&str>>,
    ) {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (index, (step, node)) in phase.phase.steps.iter().zip(&phase.steps).enumerate() {
            let place = Place {
                file: phase.file(),
                text: &phase.text,
                step: Some(format!("{}/{}", phase.phase.name, step.id)),
            };
            let id_node = node.get_node("id").expect("parsed steps have an id");
            if !is_valid_id(&step.id) {
                self.push(
                    place
                        .at(id_node, format!("invalid step id `{}`", step.id))
                        .hint("use lowercase letters, digits and `-`, starting and ending with a letter or digit"),
                );
            }
            match seen.get(step.id.as_str()) {
                Some(first) => self.push(
                    place
                        .at(
                            id_node,
                            format!(
                                "duplicate step id `{}` (also step {} of this phase)",
                                step.id,
                                first + 1
                            ),
                        )
                        .hint("step ids are unique within a phase: rename one"),
                ),
                None => {
                    seen.insert(&step.id, index);
                }
            }
            let mapping = Node::Mapping(node.clone());
            self.kind_rules(&place, step, &mapping);
            let context = StepContext {
                phase,
                index,
                producers,
                needs,
            };
            self.templates(&place, step, &mapping, &context);
        }
    }

    fn kind_rules(&mut self, place: &Place<'_>, step: &Step, node: &Node) {
        let at = |path: &[&str]| node_at(node, path).unwrap_or(node);
        match &step.kind {
            StepKind::Secret(secret) => {
                self.object_name(
                    place,
                    at(&["secret"]),
                    &secret.secret.namespace,
                    &secret.secret.name,
                );
                if secret.keys.is_empty() {
                    self.push(
                        place
                            .at(at(&["keys"]), "`keys` is empty")
                            .hint("name at least one key, e.g. `password: {random: {length: 32}}`"),
                    );
                }
                let keys: Vec<&str> = secret.keys.keys().map(String::as_str).collect();
                for (key, generator) in &secret.keys {
                    let key_node = at(&["keys"])
                        .as_mapping()
                        .and_then(|m| m.keys().find(|k| k.as_str() == key))
                        .cloned();
                    let key_at = |place: &Place<'_>, message: String| match &key_node {
                        Some(k) => place.at_span(k.span(), message),
                        None => place.at(node, message),
                    };
                    if !is_data_key(key) {
                        self.push(
                            key_at(place, format!("invalid Secret key `{key}`"))
                                .hint("use letters, digits, `-`, `_` and `.`"),
                        );
                    }
                    let generator_node = at(&["keys", key.as_str()]);
                    match generator {
                        Generator::Random(random) => {
                            let length_node = node_at(generator_node, &["random", "length"])
                                .unwrap_or(generator_node);
                            if random.length == 0 || random.length > MAX_RANDOM_LENGTH {
                                self.push(
                                    place
                                        .at(
                                            length_node,
                                            format!(
                                                "random length {} is out of range",
                                                random.length
                                            ),
                                        )
                                        .hint(format!(
                                            "use 1 to {MAX_RANDOM_LENGTH}; 32 is a good default"
                                        )),
                                );
                            }
                            if random.alphabet.is_some() && random.encoding.is_some() {
                                self.push(
                                    place
                                        .at(node_at(generator_node, &["random"]).unwrap_or(generator_node), "`alphabet` and `encoding` exclude each other")
                                        .hint("`alphabet` makes characters, `encoding` encodes random bytes: keep one"),
                                );
                            }
                            if let Some(super::model::Alphabet::Chars(chars)) = &random.alphabet {
                                let distinct: HashSet<char> = chars.chars().collect();
                                if distinct.len() < 2 {
                                    self.push(
                                        place
                                            .at(node_at(generator_node, &["random", "alphabet"]).unwrap_or(generator_node), "`chars` needs at least two different characters")
                                            .hint("list the characters to draw from, e.g. `chars: abcdef0123456789`"),
                                    );
                                }
                            }
                        }
                        Generator::Htpasswd(htpasswd) => {
                            let password_node =
                                node_at(generator_node, &["htpasswd", "password_key"])
                                    .unwrap_or(generator_node);
                            let target = secret.keys.get(&htpasswd.password_key);
                            if target.is_none() {
                                let others = keys.iter().copied().filter(|k| k != key);
                                let hint = match suggest::closest(
                                    &htpasswd.password_key,
                                    others.clone(),
                                ) {
                                    Some(best) => format!("did you mean `{best}`?"),
                                    None => format!(
                                        "add `{}` to `keys`, or name one of {}",
                                        htpasswd.password_key,
                                        suggest::list(others)
                                    ),
                                };
                                self.push(
                                    place
                                        .at(password_node, format!("`password_key` names `{}`, which is not a key of this Secret", htpasswd.password_key))
                                        .hint(hint),
                                );
                            } else if matches!(target, Some(Generator::Htpasswd(_))) {
                                self.push(
                                    place
                                        .at(password_node, format!("`password_key` names `{}`, which is itself an htpasswd line", htpasswd.password_key))
                                        .hint("point it at the key that holds the plain password"),
                                );
                            }
                        }
                        Generator::Template(_) | Generator::File(_) => {}
                    }
                }
                for (position, key) in secret.rotate.iter().enumerate() {
                    if !secret.keys.contains_key(key) {
                        let entry = at(&["rotate"])
                            .as_sequence()
                            .and_then(|s| s.get(position))
                            .unwrap_or(node);
                        self.push(
                            place
                                .at(
                                    entry,
                                    format!("`rotate` names `{key}`, which is not in `keys`"),
                                )
                                .hint(suggest::hint(key, keys.iter().copied())),
                        );
                    }
                }
            }
            StepKind::Apply(apply) => {
                let manifest = at(&["manifest"]);
                for field in ["apiVersion", "kind"] {
                    if !apply.manifest[field].is_string() {
                        self.push(
                            place
                                .at(manifest, format!("the manifest has no `{field}`"))
                                .hint(format!("add `{field}:` to the manifest")),
                        );
                    }
                }
                if !apply.manifest["metadata"]["name"].is_string() {
                    self.push(
                        place
                            .at(manifest, "the manifest has no `metadata.name`")
                            .hint("add `metadata: {name: ...}`"),
                    );
                }
                if let Some(wait) = &apply.wait
                    && wait.condition.is_empty()
                {
                    self.push(
                        place
                            .at(at(&["wait"]), "`wait.condition` is empty")
                            .hint("name a condition type, e.g. `condition: Ready`"),
                    );
                }
            }
            StepKind::Exec(exec) => {
                self.pod(
                    place,
                    at(&["pod"]),
                    exec.pod.name.is_some(),
                    exec.pod.selector.is_some(),
                );
                if exec.command.is_empty() {
                    self.push(
                        place
                            .at(at(&["command"]), "`command` is empty")
                            .hint("write the argv as a list, e.g. `command: [sh, -c, \"...\"]`"),
                    );
                }
                if let Some(SkipIf::Command { command, .. }) = &exec.skip_if
                    && command.is_empty()
                {
                    self.push(
                        place
                            .at(at(&["skip_if"]), "`skip_if.command` is empty")
                            .hint("write the argv as a list"),
                    );
                }
                if let Some(SkipIf::Request(_)) = &exec.skip_if {
                    self.push(
                        place
                            .at(at(&["skip_if"]), "`skip_if.request` needs an http step: an exec step has no HTTP target")
                            .hint("use `skip_if: {command: [...]}` or `skip_if: {secret_key: ns/secret/key}`"),
                    );
                }
                if let Some(store) = &exec.store {
                    self.object_name(
                        place,
                        node_at(node, &["store", "secret"]).unwrap_or(node),
                        &store.secret.namespace,
                        &store.secret.name,
                    );
                    self.data_keys(place, node_at(node, &["store", "data"]).unwrap_or(node));
                    if exec.capture.is_none() {
                        self.push(
                            place
                                .at(
                                    at(&["store"]),
                                    "`store` without `capture`: there is no `output` to store",
                                )
                                .hint("add `capture: text` (or json, json-line, {regex: ...})"),
                        );
                    }
                }
                if let Some(Capture::Regex(pattern)) = &exec.capture
                    && pattern.is_empty()
                {
                    self.push(
                        place
                            .at(at(&["capture"]), "`capture.regex` is empty")
                            .hint("write a pattern with a group, e.g. `token: (\\S+)`"),
                    );
                }
                if let Some(SkipIf::SecretKey(key)) = &exec.skip_if {
                    self.object_name(
                        place,
                        node_at(node, &["skip_if", "secret_key"]).unwrap_or(node),
                        &key.secret.namespace,
                        &key.secret.name,
                    );
                }
            }
            StepKind::Http(http) => {
                self.target(place, &http.target, at(&["target"]));
                self.request(
                    place,
                    &http.request.method,
                    &http.request.expect,
                    at(&["request"]),
                );
                if let Some(SkipIf::Request(request)) = &http.skip_if {
                    self.request(
                        place,
                        &request.method,
                        &request.expect,
                        node_at(node, &["skip_if", "request"]).unwrap_or(node),
                    );
                }
                if let Some(lookup) = &http.lookup {
                    let inner = node_at(node, &["lookup"]).unwrap_or(node);
                    self.request(
                        place,
                        &lookup.request.method,
                        &lookup.request.expect,
                        node_at(inner, &["request"]).unwrap_or(inner),
                    );
                    if let Some(delete) = &lookup.delete {
                        self.request(
                            place,
                            &delete.method,
                            &delete.expect,
                            node_at(inner, &["delete"]).unwrap_or(inner),
                        );
                    }
                    if lookup.matches.is_empty() {
                        self.push(
                            place
                                .at(inner, "`lookup.match` is empty: every listed item would count as ours")
                                .hint("name what makes an item ours, e.g. `match: { name: renovate }`"),
                        );
                    }
                }
                if let Some(SkipIf::Command { .. }) = &http.skip_if
                    && !matches!(http.target, HttpTarget::Pod { .. })
                {
                    self.push(
                        place
                            .at(at(&["skip_if"]), "`skip_if.command` runs in the step's pod, and this step's target is not a pod")
                            .hint("use `skip_if: {request: ...}` or `skip_if: {secret_key: ns/secret/key}`"),
                    );
                }
                if let Some(SkipIf::SecretKey(key)) = &http.skip_if {
                    self.object_name(
                        place,
                        node_at(node, &["skip_if", "secret_key"]).unwrap_or(node),
                        &key.secret.namespace,
                        &key.secret.name,
                    );
                }
                if let Some(store) = &http.store {
                    self.object_name(
                        place,
                        node_at(node, &["store", "secret"]).unwrap_or(node),
                        &store.secret.namespace,
                        &store.secret.name,
                    );
                    self.data_keys(place, node_at(node, &["store", "data"]).unwrap_or(node));
                }
            }
            StepKind::Wait(wait) => {
                let inner = |kind: &str| node_at(node, &["for", kind]).unwrap_or(node);
                match &wait.until {
                    WaitFor::Pods { count: Some(0), .. } => self.push(
                        place
                            .at(
                                node_at(inner("pods"), &["count"]).unwrap_or(node),
                                "`count: 0` is always satisfied",
                            )
                            .hint("wait for at least 1 pod, or remove the step"),
                    ),
                    WaitFor::Http { target, expect, .. } => {
                        self.target(
                            place,
                            target,
                            node_at(inner("http"), &["target"]).unwrap_or(node),
                        );
                        self.request(place, "GET", expect, inner("http"));
                    }
                    _ => {}
                }
            }
            StepKind::Prompt(prompt) => {
                self.object_name(
                    place,
                    at(&["secret"]),
                    &prompt.secret.secret.namespace,
                    &prompt.secret.secret.name,
                );
                if let Err(problem) = parse_key(&prompt.value) {
                    // parse_key says "key `k` <what is wrong>: <the fix>".
                    let problem = problem
                        .trim_start_matches(&format!("key `{}` ", prompt.value))
                        .to_string();
                    let (what, fix) = problem
                        .split_once(": ")
                        .unwrap_or((problem.as_str(), "name a values key as a dotted path"));
                    self.push(
                        place
                            .at(
                                at(&["value"]),
                                format!(
                                    "`value` is not a valid values key: `{}` {what}",
                                    prompt.value
                                ),
                            )
                            .hint(format!(
                                "{fix}; the answer comes from --set KEY=... or from the prompt"
                            )),
                    );
                }
                if prompt.prompt.trim().is_empty() {
                    self.push(
                        place
                            .at(at(&["prompt"]), "`prompt` is empty")
                            .hint("write the question the operator sees"),
                    );
                }
            }
            StepKind::VaultInit(init) => {
                self.vault_target(place, &init.vault, at(&["vault"]));
                if init.secret_threshold == 0 || init.secret_threshold > init.secret_shares {
                    self.push(
                        place
                            .at(at(&["secret_threshold"]), format!(
                                "`secret_threshold` {} must be between 1 and `secret_shares` ({})",
                                init.secret_threshold, init.secret_shares
                            ))
                            .hint("e.g. secret_shares: 5 with secret_threshold: 3"),
                    );
                }
                if !init.pgp_keys.is_empty()
                    && init.pgp_keys.len() != usize::from(init.secret_shares)
                {
                    self.push(
                        place
                            .at(
                                at(&["pgp_keys"]),
                                format!(
                                    "{} `pgp_keys` for {} shares",
                                    init.pgp_keys.len(),
                                    init.secret_shares
                                ),
                            )
                            .hint("give one PGP key per share, or none"),
                    );
                }
            }
            StepKind::VaultUnseal(step) => self.vault_target(place, &step.vault, at(&["vault"])),
            StepKind::VaultConfig(step) => self.vault_target(place, &step.vault, at(&["vault"])),
            StepKind::VaultKv(step) => self.vault_target(place, &step.vault, at(&["vault"])),
            StepKind::VaultRootToken(step) => self.vault_target(place, &step.vault, at(&["vault"])),
        }
    }

    fn vault_target(&mut self, place: &Place<'_>, vault: &VaultTarget, node: &Node) {
        match (&vault.url, &vault.pod) {
            (Some(_), Some(_)) => self.push(
                place.at(node, "`vault` has both `url` and `pod`").hint("keep one: `url` for a reachable address, `pod` to go through a port-forward"),
            ),
            (None, None) => self.push(
                place.at(node, "`vault` has neither `url` nor `pod`").hint("add `pod: {namespace: vault, selector: app.kubernetes.io/name=openbao}` or `url: https://...`"),
            ),
            (None, Some(pod)) => self.pod(
                place,
                node_at(node, &["pod"]).unwrap_or(node),
                pod.name.is_some(),
                pod.selector.is_some(),
            ),
            (Some(_), None) => {}
        }
    }

    fn pod(&mut self, place: &Place<'_>, node: &Node, by_name: bool, by_selector: bool) {
        match (by_name, by_selector) {
            (true, true) => self.push(place.at(node, "the pod has both `name` and `selector`").hint("keep one: `name` for one pod, `selector` for the first Ready pod that matches")),
            (false, false) => self.push(place.at(node, "the pod has neither `name` nor `selector`").hint("add `name: <pod>` or `selector: app=<label>`")),
            _ => {}
        }
    }

    fn target(&mut self, place: &Place<'_>, target: &HttpTarget, node: &Node) {
        match target {
            HttpTarget::Pod { pod, .. } => self.pod(
                place,
                node_at(node, &["pod"]).unwrap_or(node),
                pod.name.is_some(),
                pod.selector.is_some(),
            ),
            HttpTarget::Service { service, .. } => self.object_name(
                place,
                node_at(node, &["service"]).unwrap_or(node),
                &service.namespace,
                &service.name,
            ),
            HttpTarget::Url(url) => {
                if !(template::is_template(url)
                    || url.starts_with("http://")
                    || url.starts_with("https://"))
                {
                    self.push(
                        place
                            .at(
                                node_at(node, &["url"]).unwrap_or(node),
                                format!("`{url}` is not an http(s) URL"),
                            )
                            .hint("write it as https://host/path"),
                    );
                }
            }
        }
    }

    fn request(&mut self, place: &Place<'_>, method: &str, expect: &[u16], node: &Node) {
        const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
        if !METHODS.contains(&method) {
            self.push(
                place
                    .at(
                        node_at(node, &["method"]).unwrap_or(node),
                        format!("unknown HTTP method `{method}`"),
                    )
                    .hint(suggest::hint(
                        &method.to_uppercase(),
                        METHODS.iter().copied(),
                    )),
            );
        }
        for (position, code) in expect.iter().enumerate() {
            if !(100..=599).contains(code) {
                let entry = node_at(node, &["expect"])
                    .and_then(|e| e.as_sequence())
                    .and_then(|s| s.get(position))
                    .unwrap_or(node);
                self.push(
                    place
                        .at(entry, format!("HTTP status {code} is out of range"))
                        .hint("expect statuses from 100 to 599, e.g. `expect: [200, 201]`"),
                );
            }
        }
    }

    fn object_name(&mut self, place: &Place<'_>, node: &Node, namespace: &str, name: &str) {
        if template::is_template(namespace) || template::is_template(name) {
            return; // reported as a template in a literal field
        }
        if !is_dns_label(namespace) {
            self.push(
                place
                    .at(node, format!("invalid namespace `{namespace}`"))
                    .hint("namespaces are lowercase letters, digits and `-`"),
            );
        }
        if !is_dns_subdomain(name) {
            self.push(
                place
                    .at(node, format!("invalid object name `{name}`"))
                    .hint("names are lowercase letters, digits, `-` and `.`"),
            );
        }
    }

    fn data_keys(&mut self, place: &Place<'_>, data: &Node) {
        for key in data
            .as_mapping()
            .map(|m| m.keys().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            if !is_data_key(key.as_str()) && !template::is_template(key.as_str()) {
                self.push(
                    place
                        .at_span(key.span(), format!("invalid Secret key `{}`", key.as_str()))
                        .hint("use letters, digits, `-`, `_` and `.`"),
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// templates

/// What a template field may do.
#[derive(Clone, Copy)]
struct Rule {
    pattern: &'static [&'static str],
    /// Why `secret()` may not be used here, and the way out.
    no_secret: Option<(&'static str, &'static str)>,
    /// `output` or `response`, readable here.
    local: Option<&'static str>,
}

const COMMAND_LINE: (&str, &str) = (
    "a command line ends up in the API server's URL and audit log",
    "pass it on stdin: `stdin: \"{{ secret(...) }}\"` and read it with \"$(cat)\"",
);
const SKIP_COMMAND_LINE: (&str, &str) = (
    "a command line ends up in the API server's URL and audit log",
    "pass it on the check's stdin: `skip_if: {command: [...], stdin: \"{{ secret(...) }}\"}`, or check the Secret with `skip_if: {secret_key: ns/secret/key}`",
);
const URL: (&str, &str) = (
    "a URL ends up in logs and the audit log",
    "send it in `auth`, a header or the JSON body",
);

const fn rule(pattern: &'static [&'static str]) -> Rule {
    Rule {
        pattern,
        no_secret: None,
        local: None,
    }
}
const fn no_secret(pattern: &'static [&'static str], why: (&'static str, &'static str)) -> Rule {
    Rule {
        pattern,
        no_secret: Some(why),
        local: None,
    }
}
const fn local(pattern: &'static [&'static str], name: &'static str) -> Rule {
    Rule {
        pattern,
        no_secret: None,
        local: Some(name),
    }
}

/// The fields each kind renders as templates. `*` is any key, `#` any list index, `**` the
/// whole subtree (keys included). Anything else is taken literally.
fn template_rules(kind: &str) -> &'static [Rule] {
    const SECRET: &[Rule] = &[rule(&["keys", "*", "template"])];
    const APPLY: &[Rule] = &[rule(&["manifest", "**"])];
    const EXEC: &[Rule] = &[
        no_secret(&["command", "#"], COMMAND_LINE),
        rule(&["stdin"]),
        no_secret(&["skip_if", "command", "#"], SKIP_COMMAND_LINE),
        rule(&["skip_if", "stdin"]),
        local(&["store", "data", "*"], "output"),
    ];
    const HTTP: &[Rule] = &[
        no_secret(&["target", "url"], URL),
        rule(&["auth", "basic", "username"]),
        rule(&["auth", "basic", "password"]),
        rule(&["auth", "bearer"]),
        no_secret(&["request", "path"], URL),
        rule(&["request", "headers", "*"]),
        rule(&["request", "json", "**"]),
        no_secret(&["skip_if", "command", "#"], SKIP_COMMAND_LINE),
        no_secret(&["skip_if", "request", "path"], URL),
        rule(&["skip_if", "request", "headers", "*"]),
        rule(&["skip_if", "request", "json", "**"]),
        no_secret(&["lookup", "request", "path"], URL),
        rule(&["lookup", "request", "headers", "*"]),
        rule(&["lookup", "request", "json", "**"]),
        rule(&["lookup", "match", "*"]),
        rule(&["lookup", "keep", "*"]),
        Rule {
            pattern: &["lookup", "delete", "path"],
            no_secret: Some(URL),
            local: Some("item"),
        },
        local(&["lookup", "delete", "headers", "*"], "item"),
        local(&["lookup", "delete", "json", "**"], "item"),
        local(&["store", "data", "*"], "response"),
    ];
    const WAIT: &[Rule] = &[
        no_secret(&["for", "http", "target", "url"], URL),
        no_secret(&["for", "http", "path"], URL),
    ];
    // Every vault kind reaches its server the same way; `vault.tls.ca` is a reference, not a
    // template. The kinds render exactly these fields (src/steps/vault/).
    const VAULT_INIT: &[Rule] = &[
        no_secret(&["vault", "url"], URL),
        rule(&["vault", "tls", "server_name"]),
    ];
    const VAULT_UNSEAL: &[Rule] = &[
        no_secret(&["vault", "url"], URL),
        rule(&["vault", "tls", "server_name"]),
        rule(&["raft_join", "leader_api_addr"]),
        rule(&["raft_join", "leader_ca_cert"]),
    ];
    const VAULT_CONFIG: &[Rule] = &[
        no_secret(&["vault", "url"], URL),
        rule(&["vault", "tls", "server_name"]),
        rule(&["mounts", "*", "type"]),
        rule(&["mounts", "*", "description"]),
        rule(&["mounts", "*", "options", "*"]),
        rule(&["auth", "*", "description"]),
        rule(&["auth", "*", "config", "*", "**"]),
        rule(&["auth", "*", "roles", "*", "*", "**"]),
        rule(&["policies", "*"]),
    ];
    const VAULT_KV: &[Rule] = &[
        no_secret(&["vault", "url"], URL),
        rule(&["vault", "tls", "server_name"]),
        rule(&["paths", "*", "*", "template"]),
    ];
    match kind {
        "secret" => SECRET,
        "vault-init" | "vault-root-token" => VAULT_INIT,
        "vault-unseal" => VAULT_UNSEAL,
        "vault-config" => VAULT_CONFIG,
        "vault-kv" => VAULT_KV,
        "apply" => APPLY,
        "exec" => EXEC,
        "http" => HTTP,
        "wait" => WAIT,
        _ => &[],
    }
}

/// A path segment inside a step.
#[derive(Debug, Clone)]
enum Segment {
    Key(String),
    Index(usize),
}

fn matches(pattern: &[&str], path: &[Segment]) -> bool {
    match (pattern.first(), path.first()) {
        (Some(&"**"), _) => true,
        (None, None) => true,
        (Some(&"#"), Some(Segment::Index(_))) => matches(&pattern[1..], &path[1..]),
        (Some(&"*"), Some(Segment::Key(_))) => matches(&pattern[1..], &path[1..]),
        (Some(p), Some(Segment::Key(k))) if p == k => matches(&pattern[1..], &path[1..]),
        _ => false,
    }
}

fn render_path(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

/// Every scalar of a step with template syntax (values, and mapping keys), with its path.
fn template_scalars<'a>(
    node: &'a Node,
    path: &mut Vec<Segment>,
    out: &mut Vec<(Vec<Segment>, &'a MarkedScalarNode, bool)>,
) {
    match node {
        Node::Scalar(s) => {
            if template::is_template(s.as_str()) {
                out.push((path.clone(), s, false));
            }
        }
        Node::Sequence(items) => {
            for (index, item) in items.iter().enumerate() {
                path.push(Segment::Index(index));
                template_scalars(item, path, out);
                path.pop();
            }
        }
        Node::Mapping(map) => {
            for (key, value) in map.iter() {
                path.push(Segment::Key(key.as_str().to_string()));
                if template::is_template(key.as_str()) {
                    out.push((path.clone(), key, true));
                }
                template_scalars(value, path, out);
                path.pop();
            }
        }
    }
}

struct StepContext<'a> {
    phase: &'a LoadedPhase,
    index: usize,
    producers: &'a Producers,
    needs: &'a HashMap<&'a str, HashSet<&'a str>>,
}

impl Checker<'_> {
    fn templates(
        &mut self,
        place: &Place<'_>,
        step: &Step,
        node: &Node,
        context: &StepContext<'_>,
    ) {
        let mut found = Vec::new();
        let Some(mapping) = node.as_mapping() else {
            return;
        };
        for (key, value) in mapping.iter() {
            if matches!(key.as_str(), "id" | "kind") {
                continue;
            }
            let mut path = vec![Segment::Key(key.as_str().to_string())];
            template_scalars(value, &mut path, &mut found);
        }
        let rules = template_rules(step.kind.name());
        for (path, scalar, is_key) in found {
            let field = render_path(&path);
            // A key is rendered only inside a `**` subtree, not as the subtree's own name.
            let rule = rules.iter().find(|r| {
                matches(r.pattern, &path)
                    && (!is_key || (r.pattern.ends_with(&["**"]) && path.len() >= r.pattern.len()))
            });
            let Some(rule) = rule else {
                self.push(
                    place
                        .at_span(scalar.span(), format!("`{field}` is not a template: `{{{{ ... }}}}` would be taken literally"))
                        .hint("use a literal value here; templates are rendered in the fields listed in docs/phases.md"),
                );
                continue;
            };
            self.template(place, step, scalar, &field, rule, context);
        }
    }

    fn template(
        &mut self,
        place: &Place<'_>,
        step: &Step,
        scalar: &MarkedScalarNode,
        field: &str,
        rule: &Rule,
        context: &StepContext<'_>,
    ) {
        let text = scalar.as_str();
        let refs = match template::analyze(text) {
            Ok(refs) => refs,
            Err(syntax) => {
                self.push(
                    place
                        .in_template(scalar, syntax.position, format!("template in `{field}`: {}", syntax.message))
                        .hint("check the `{{ }}` and `{% %}` pairs; a literal `{{` is written `{{ '{{' }}`"),
                );
                return;
            }
        };
        self.calls(place, scalar, field, rule, &refs, context);
        self.variables(place, step, scalar, field, rule, &refs);
        for filter in &refs.filters {
            if !template::is_known_filter(&filter.name) {
                self.push(
                    place
                        .in_template(scalar, filter.position, format!("unknown template filter `{}` in `{field}`", filter.name))
                        .hint("see the filters minijinja provides: https://docs.rs/minijinja/latest/minijinja/filters/"),
                );
            }
        }
        for test in &refs.tests {
            if !template::is_known_test(&test.name) {
                self.push(
                    place
                        .in_template(scalar, test.position, format!("unknown template test `{}` in `{field}`", test.name))
                        .hint("see the tests minijinja provides: https://docs.rs/minijinja/latest/minijinja/tests/"),
                );
            }
        }
    }

    fn calls(
        &mut self,
        place: &Place<'_>,
        scalar: &MarkedScalarNode,
        field: &str,
        rule: &Rule,
        refs: &TemplateRefs,
        context: &StepContext<'_>,
    ) {
        let known = template::known_functions();
        for call in &refs.calls {
            if !template::is_known_function(&call.name) {
                let hint = match suggest::closest(&call.name, known.iter().map(String::as_str)) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => format!(
                        "the lookup functions are {}",
                        suggest::list(FUNCTIONS.iter().map(|(f, _)| *f))
                    ),
                };
                self.push(
                    place
                        .in_template(
                            scalar,
                            call.position,
                            format!("unknown template function `{}` in `{field}`", call.name),
                        )
                        .hint(hint),
                );
                continue;
            }
            let Some((_, params)) = FUNCTIONS.iter().find(|(f, _)| *f == call.name) else {
                continue;
            };
            if !call.dynamic_args && call.args.len() != params.len() {
                self.push(
                    place
                        .in_template(
                            scalar,
                            call.position,
                            format!(
                                "`{}()` takes {} arguments, found {}",
                                call.name,
                                params.len(),
                                call.args.len()
                            ),
                        )
                        .hint(format!(
                            "write it as `{}({})`",
                            call.name,
                            params
                                .iter()
                                .map(|p| format!("'{p}'"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                );
                continue;
            }
            if call.name == "secret"
                && let Some((why, fix)) = rule.no_secret
            {
                self.push(
                    place
                        .in_template(
                            scalar,
                            call.position,
                            format!("`secret()` in `{field}`: {why}"),
                        )
                        .hint(fix),
                );
            }
            self.producer_order(place, scalar, call, context);
        }
    }

    /// A lookup of a key that a step of this run creates must come after that step.
    fn producer_order(
        &mut self,
        place: &Place<'_>,
        scalar: &MarkedScalarNode,
        call: &template::FunctionCall,
        context: &StepContext<'_>,
    ) {
        let kind = match call.name.as_str() {
            "secret" => ObjectKind::Secret,
            "configmap" => ObjectKind::ConfigMap,
            _ => return,
        };
        let [Some(ns), Some(name), Some(key)] = call.args.as_slice() else {
            return;
        };
        let writers = context.producers.writers(kind, ns, name, key);
        if writers.is_empty() {
            return;
        }
        let this_phase = context.phase.phase.name.as_str();
        let needs = context.needs.get(this_phase);
        let earlier = |full_id: &String| {
            let (phase, step) = full_id.split_once('/').unwrap_or_default();
            if phase == this_phase {
                context
                    .phase
                    .phase
                    .steps
                    .iter()
                    .position(|s| s.id == step)
                    .is_some_and(|i| i < context.index)
            } else {
                needs.is_some_and(|n| n.contains(phase))
            }
        };
        if writers.iter().any(earlier) {
            return;
        }
        let writer = &writers[0];
        let (phase, step) = writer.split_once('/').unwrap_or_default();
        let object = format!("{} {ns}/{name} key `{key}`", kind.type_ref().kind);
        let diagnostic = if phase == this_phase {
            place
                .in_template(
                    scalar,
                    call.position,
                    format!("reads {object}, which step `{writer}` creates later in this phase"),
                )
                .hint(format!("move this step after `{step}`"))
        } else {
            place
                .in_template(scalar, call.position, format!("reads {object}, which step `{writer}` creates, but phase `{this_phase}` does not depend on `{phase}`"))
                .hint(format!("add `{phase}` to depends_on of phase `{this_phase}`"))
        };
        self.push(diagnostic);
    }

    fn variables(
        &mut self,
        place: &Place<'_>,
        step: &Step,
        scalar: &MarkedScalarNode,
        field: &str,
        rule: &Rule,
        refs: &TemplateRefs,
    ) {
        let mut reported = HashSet::new();
        for variable in &refs.variables {
            let root = variable.path[0].as_str();
            match root {
                "values" => {
                    let rest = &variable.path[1..];
                    let Some(missing) = template::missing_at(self.values.as_json(), rest) else {
                        continue;
                    };
                    let branch_not_taken = variable.guarded_by.iter().any(|g| {
                        g.len() <= variable.path.len()
                            && template::missing_at(self.values.as_json(), &g[1..]).is_some()
                    });
                    if branch_not_taken || (variable.guarded && missing + 1 == rest.len()) {
                        continue;
                    }
                    let key = rest[..=missing].join(".");
                    if !reported.insert(key.clone()) {
                        continue;
                    }
                    let top: Vec<&str> = self
                        .values
                        .as_json()
                        .as_object()
                        .map(|m| m.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    let mut hint = format!("set it with --set {key}=VALUE or in --values FILE");
                    if missing == 0
                        && let Some(best) = suggest::closest(&rest[0], top.iter().copied())
                    {
                        hint = format!("did you mean `values.{best}`? otherwise {hint}");
                    }
                    hint.push_str(&format!(
                        ", or give a fallback: `{{{{ values.{key} | default('...') }}}}`"
                    ));
                    self.push(
                        place
                            .in_template(
                                scalar,
                                variable.position,
                                format!("unknown value `values.{key}` in `{field}`"),
                            )
                            .hint(hint),
                    );
                }
                "output" | "response" | "item" => {
                    if !reported.insert(root.to_string()) {
                        continue;
                    }
                    let owner = if root == "output" { "exec" } else { "http" };
                    if rule.local != Some(root) {
                        let hint = if root == "item" {
                            "`item` is the listed object being deleted: only `lookup.delete` reads it".to_string()
                        } else if step.kind.name() == owner {
                            format!("`{root}` is only readable in `store.data`, after the step ran")
                        } else {
                            format!(
                                "`{root}` belongs to {owner} steps; read what an earlier step stored with `secret(ns, name, key)`"
                            )
                        };
                        self.push(
                            place
                                .in_template(
                                    scalar,
                                    variable.position,
                                    format!("`{root}` is not available in `{field}`"),
                                )
                                .hint(hint),
                        );
                    }
                    // An exec `store` without `capture` is reported once, by the kind rules.
                }
                other => {
                    if !reported.insert(other.to_string()) {
                        continue;
                    }
                    let in_values = self.values.as_json().get(other).is_some();
                    let hint = if in_values {
                        format!("values are read as `values.{other}`")
                    } else {
                        match suggest::closest(
                            other,
                            ["values", "output", "response"]
                                .into_iter()
                                .chain(FUNCTIONS.iter().map(|(f, _)| *f)),
                        ) {
                            Some(best) => format!("did you mean `{best}`?"),
                            None => format!(
                                "templates read `values.*`, lookup functions {}, and `output`/`response` in `store`",
                                suggest::list(FUNCTIONS.iter().map(|(f, _)| *f))
                            ),
                        }
                    };
                    self.push(
                        place
                            .in_template(
                                scalar,
                                variable.position,
                                format!("unknown variable `{other}` in `{field}`"),
                            )
                            .hint(hint),
                    );
                }
            }
        }
    }
}

/// Rules by kind, exposed for documentation and the steps that render fields.
pub fn template_fields(kind: &str) -> Vec<String> {
    template_rules(kind)
        .iter()
        .map(|r| r.pattern.join("."))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use serde_json::json;

    use super::*;
    use crate::phase::load::load_sources;

    fn problems(step: &str, values: serde_json::Value) -> String {
        let text = format!("schema: bringup/v1\nphase: p\nsteps:\n{step}");
        match load_sources(
            vec![(PathBuf::from("p.yaml"), text)],
            &Values::from_json(values),
        ) {
            Ok(_) => String::new(),
            Err(diagnostics) => diagnostics.to_string(),
        }
    }

    const EXEC: &str =
        "  - id: s\n    kind: exec\n    pod: {namespace: ns, name: pod-0}\n    command: [sh]\n";

    #[test]
    fn guarded_values_pass_and_unguarded_ones_fail() {
        let ok = |stdin: &str| {
            problems(
                &format!("{EXEC}    stdin: \"{stdin}\"\n"),
                json!({"a": {"b": 1}}),
            )
        };
        assert_eq!(
            ok("{{ values.a.b }} {{ values.a.c | default('x') }} {{ values.z is defined }}"),
            ""
        );
        assert_eq!(
            ok("{% if values.opt is defined %}{{ values.opt.deep }}{% endif %}"),
            ""
        );
        assert_eq!(
            ok("{% if values.a is undefined %}x{% else %}{{ values.a.b }}{% endif %}"),
            ""
        );
        let deep = ok("{{ values.missing.b | default('x') }}");
        assert!(
            deep.contains("unknown value `values.missing` in `stdin`"),
            "{deep}"
        );
    }

    #[test]
    fn vault_kinds_render_their_fields_and_only_values_and_nested_keys() {
        let config = |auth: &str| {
            problems(
                &format!(
                    "  - id: s\n    kind: vault-config\n    vault: {{pod: {{namespace: vault, name: vault-0}}}}\n    auth:\n      k8s:\n        type: kubernetes\n{auth}"
                ),
                json!({"host": "h"}),
            )
        };
        assert_eq!(
            config(
                "        config: {kubernetes_host: \"{{ values.host }}\", list: [\"{{ values.host }}\"], map: {\"{{ values.host }}\": x}}\n        roles: {r: {ttl: \"{{ values.host }}\"}}\n"
            ),
            ""
        );
        let key = config("        config: {\"{{ values.host }}\": x}\n");
        assert!(key.contains("is not a template"), "{key}");
        let role = config("        roles: {\"{{ values.host }}\": {ttl: 1h}}\n");
        assert!(role.contains("is not a template"), "{role}");
        let unknown = config("        config: {kubernetes_host: \"{{ values.hots }}\"}\n");
        assert!(unknown.contains("unknown value `values.hots`"), "{unknown}");
        let join = problems(
            "  - id: s\n    kind: vault-unseal\n    vault: {pod: {namespace: vault, selector: a=b}}\n    raft_join: {leader_api_addr: \"{{ values.host }}\"}\n",
            json!({"host": "h"}),
        );
        assert_eq!(join, "");
    }

    #[test]
    fn lookup_templates_item_and_skip_if_stdin_are_checked() {
        let http = "  - id: s\n    kind: http\n    target: {url: \"https://git.example\"}\n";
        let lookup = |extra: &str| {
            problems(
                &format!(
                    "{http}    request: {{method: POST, path: /tokens}}\n    lookup:\n      request: {{path: /tokens}}\n{extra}"
                ),
                json!({}),
            )
        };
        let fine = lookup(
            "      match: {name: renovate}\n      keep: {token_last_eight: \"{{ secret('ns', 'sec', 'token', default='')[-8:] }}\"}\n      delete: {method: DELETE, path: \"/tokens/{{ item.id }}\", expect: [204, 404]}\n",
        );
        assert_eq!(fine, "");
        let empty = lookup("      match: {}\n");
        assert!(empty.contains("`lookup.match` is empty"), "{empty}");
        let secret_path = lookup(
            "      match: {name: r}\n      delete: {method: DELETE, path: \"/t/{{ secret('ns', 's', 'k') }}\"}\n",
        );
        assert!(
            secret_path.contains("`secret()` in `lookup.delete.path`"),
            "{secret_path}"
        );
        let stray_item = problems(
            &format!("{http}    request: {{method: POST, path: \"/t/{{{{ item.id }}}}\"}}\n"),
            json!({}),
        );
        assert!(
            stray_item.contains("`item` is not available in `request.path`")
                && stray_item.contains("only `lookup.delete` reads it"),
            "{stray_item}"
        );
        let stdin = problems(
            &format!(
                "{EXEC}    skip_if:\n      command: [check]\n      stdin: \"{{{{ secret('ns', 's', 'k', default='') }}}}\"\n"
            ),
            json!({}),
        );
        assert_eq!(stdin, "", "a secret may go on the check's stdin");
    }

    #[test]
    fn template_positions_in_block_scalars_point_at_the_line() {
        let step = format!("{EXEC}    stdin: |\n      first line\n      {{{{ values.nope }}}}\n");
        let text = problems(&step, json!({}));
        assert!(
            text.starts_with(
                "p.yaml:10:10: error: step `p/s`: unknown value `values.nope` in `stdin`"
            ),
            "{text}"
        );
    }

    #[test]
    fn lookups_are_fine_after_the_step_that_creates_them() {
        let make =
            "  - id: make\n    kind: secret\n    secret: ns/sec\n    keys: {k: {random: {}}}\n";
        let use_it = format!(
            "{}    stdin: \"{{{{ secret('ns', 'sec', 'k') }}}}\"\n",
            EXEC.replace("id: s", "id: use")
        );
        assert_eq!(problems(&format!("{make}{use_it}"), json!({})), "");
        let text = problems(&format!("{use_it}{make}"), json!({}));
        assert!(
            text.contains(
                "reads Secret ns/sec key `k`, which step `p/make` creates later in this phase"
            ),
            "{text}"
        );
        assert!(text.contains("hint: move this step after `make`"), "{text}");
    }

    #[test]
    fn ids_and_names() {
        assert!(is_valid_id("dex-source") && is_valid_id("a1"));
        assert!(!is_valid_id("-a") && !is_valid_id("a-") && !is_valid_id("A") && !is_valid_id(""));
        assert!(is_dns_subdomain("dex.gitea") && !is_dns_subdomain("Dex"));
        assert!(is_data_key("client_secret") && !is_data_key("a/b"));
    }
}
