//! The cluster file: namespaces, emulated Gitea/Kanidm instances, pods (with their exec,
//! port-forward and Dex behaviour), custom resources, preloaded objects and faults the sandbox
//! starts with (tests/sandbox/clusters/*.yaml; clusters/s1.yaml shows the emulated and Dex pods).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use crate::emulators::InstanceConfig;

/// The whole cluster file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// Real OpenBao servers to start; pods refer to them by index.
    #[serde(default)]
    pub openbao: Option<OpenBaoServers>,
    /// Namespaces besides kube-system, kube-public and default, which always exist.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Emulated Gitea/Forgejo and Kanidm instances; pods run their CLIs
    /// (`exec: { emulator_instance: {...} }`) and forward ports to their HTTP APIs.
    #[serde(default)]
    pub emulators: Vec<InstanceConfig>,
    #[serde(default)]
    pub pods: Vec<PodDecl>,
    /// Further custom resource types to serve.
    #[serde(default)]
    pub resources: Vec<CustomResourceDecl>,
    /// Objects created at start, in order.
    #[serde(default)]
    pub objects: Vec<Value>,
    #[serde(default)]
    pub faults: Option<FaultsDecl>,
    /// Serve HTTPS with a CA made at start (see `tls`), and require a bearer token.
    #[serde(default)]
    pub tls: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenBaoServers {
    pub servers: u32,
}

/// A pod: a real Pod object plus what exec and port-forward into it do.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodDecl {
    pub name: String,
    pub namespace: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub containers: Vec<ContainerDecl>,
    #[serde(default)]
    pub phase: PodPhase,
    #[serde(default = "default_true")]
    pub ready: bool,
    #[serde(default)]
    pub exec: Option<ExecDecl>,
    /// The index of the OpenBao server behind this pod.
    #[serde(default)]
    pub openbao: Option<u32>,
    /// Pod port -> what port-forward connects to: `"127.0.0.1:PORT"` or `{ instance: NAME }`
    /// (the emulated instance's HTTP API).
    #[serde(default)]
    pub forward: BTreeMap<String, ForwardTarget>,
    /// The pod is a Dex server: Ready only while every Secret it reads exists, serving its
    /// discovery document on port [`DEX_PORT`].
    #[serde(default)]
    pub dex: Option<DexDecl>,
}

/// The port Dex serves HTTP on in its pod.
pub const DEX_PORT: u16 = 5556;

/// Where a forwarded pod port leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardTarget {
    /// A local `host:port`.
    Address(String),
    /// The HTTP API of the emulated instance of this name.
    Instance(String),
}

/// The map shape of [`ForwardTarget`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ForwardInstanceFields {
    instance: String,
}

impl<'de> Deserialize<'de> for ForwardTarget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ForwardTarget;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"HOST:PORT\" or { instance: NAME }")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ForwardTarget, E> {
                Ok(ForwardTarget::Address(v.to_owned()))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<ForwardTarget, A::Error> {
                let fields = ForwardInstanceFields::deserialize(
                    serde::de::value::MapAccessDeserializer::new(map),
                )?;
                Ok(ForwardTarget::Instance(fields.instance))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A Dex pod: the Secrets (`namespace/name`) its config reads and its issuer URL.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DexDecl {
    pub issuer: String,
    #[serde(default)]
    pub secrets: Vec<String>,
}

impl DexDecl {
    /// The Secrets as (namespace, name); entries without a `/` were refused at load.
    pub fn secret_refs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.secrets.iter().filter_map(|s| s.split_once('/'))
    }
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerDecl {
    pub name: String,
    #[serde(default)]
    pub ports: Vec<ContainerPortDecl>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerPortDecl {
    #[serde(default)]
    pub name: Option<String>,
    pub container_port: u16,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum PodPhase {
    Pending,
    #[default]
    Running,
    Succeeded,
    Failed,
    Unknown,
}

impl PodPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::Unknown => "Unknown",
        }
    }
}

/// What exec into the pod runs: `{ process: {...} }`, `{ emulator: NAME }` or
/// `{ emulator_instance: { instance: NAME, uid: N } }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "ExecDeclFields")]
pub enum ExecDecl {
    /// The command runs as a local process with this environment.
    Process(ProcessExecDecl),
    /// The command goes to the in-process emulator of this name.
    Emulator(String),
    /// The command runs as a local process (a real `sh`) whose PATH starts with the emulated
    /// instance's programs (`gitea`, `forgejo`, `kanidm`, `kanidmd`, `su`).
    EmulatorInstance(EmulatorInstanceExecDecl),
}

/// A container of an emulated instance's image.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmulatorInstanceExecDecl {
    /// The name of an entry of the cluster file's `emulators`.
    pub instance: String,
    /// The uid the container runs as: 0 in Gitea's rootful image (so `gitea admin` needs
    /// `su git -c`), 1000 in the rootless one.
    pub uid: u32,
}

/// The YAML shape of [`ExecDecl`]: serde_yaml 0.9 reads externally tagged enums only from
/// YAML tags, so the one-key map is read as a struct and checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecDeclFields {
    #[serde(default)]
    process: Option<ProcessExecDecl>,
    #[serde(default)]
    emulator: Option<String>,
    #[serde(default)]
    emulator_instance: Option<EmulatorInstanceExecDecl>,
}

impl TryFrom<ExecDeclFields> for ExecDecl {
    type Error = String;

    fn try_from(f: ExecDeclFields) -> Result<Self, String> {
        match (f.process, f.emulator, f.emulator_instance) {
            (Some(p), None, None) => Ok(Self::Process(p)),
            (None, Some(e), None) => Ok(Self::Emulator(e)),
            (None, None, Some(i)) => Ok(Self::EmulatorInstance(i)),
            _ => Err("exec needs exactly one of `process: {env, path}`, `emulator: NAME` or `emulator_instance: {instance, uid}`".into()),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessExecDecl {
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Directories that make up PATH, in order.
    #[serde(default)]
    pub path: Vec<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomResourceDecl {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsDecl {
    pub seed: u64,
    #[serde(default)]
    pub rules: Vec<FaultRuleDecl>,
}

/// One fault rule; a request matches when every given selector matches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRuleDecl {
    /// Kube verbs (get, list, watch, create, update, patch, delete, deletecollection); empty
    /// means all.
    #[serde(default)]
    pub verbs: Vec<String>,
    /// Plural resource name, with `/subresource` to select a subresource (`pods/exec`).
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub error: Option<FaultError>,
    /// The chance per matching request, 0..=1.
    #[serde(default = "default_rate")]
    pub rate: f64,
    #[serde(default, deserialize_with = "de_latency")]
    pub latency: Option<Duration>,
    /// The rule makes exec commands fail (handled by the exec implementation).
    #[serde(default)]
    pub exec: bool,
}

fn default_rate() -> f64 {
    1.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum FaultError {
    #[serde(rename = "500")]
    InternalError,
    #[serde(rename = "429")]
    TooManyRequests,
    #[serde(rename = "409")]
    Conflict,
    #[serde(rename = "403")]
    Forbidden,
    #[serde(rename = "drop")]
    Drop,
}

/// Parses `250ms`, `2s`, `1m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| s.split_at(i))
        .ok_or_else(|| format!("duration {s:?} needs a unit (ms, s, m)"))?;
    let n: f64 = num
        .parse()
        .map_err(|_| format!("duration {s:?} is not a number"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => {
            return Err(format!(
                "duration {s:?} has unknown unit {unit:?}; use ms, s or m"
            ));
        }
    };
    Ok(Duration::from_secs_f64(secs))
}

fn de_latency<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    s.map(|s| parse_duration(&s).map_err(serde::de::Error::custom))
        .transpose()
}

/// A cluster file that cannot be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterFileError {
    #[error("cannot read cluster file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cluster file {path} is invalid")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("cluster file {path}: {problem}")]
    Invalid { path: PathBuf, problem: String },
}

impl ClusterFile {
    pub fn load(path: &Path) -> Result<Self, ClusterFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ClusterFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file: Self = serde_yaml::from_str(&text).map_err(|source| ClusterFileError::Parse {
            path: path.to_owned(),
            source,
        })?;
        file.check().map_err(|problem| ClusterFileError::Invalid {
            path: path.to_owned(),
            problem,
        })?;
        Ok(file)
    }

    /// Cross-field checks serde cannot express.
    fn check(&self) -> Result<(), String> {
        let servers = self.openbao.as_ref().map_or(0, |o| o.servers);
        let mut instances = Vec::new();
        for e in &self.emulators {
            if instances.contains(&e.name.as_str()) {
                return Err(format!("emulator instance {} is declared twice", e.name));
            }
            instances.push(e.name.as_str());
        }
        let known = |name: &str, pod: &PodDecl| {
            if instances.contains(&name) {
                Ok(())
            } else {
                Err(format!(
                    "pod {}/{} uses emulator instance {name:?} but `emulators` declares only [{}]",
                    pod.namespace,
                    pod.name,
                    instances.join(", ")
                ))
            }
        };
        for p in &self.pods {
            if let Some(ExecDecl::EmulatorInstance(e)) = &p.exec {
                known(&e.instance, p)?;
            }
            for target in p.forward.values() {
                if let ForwardTarget::Instance(name) = target {
                    known(name, p)?;
                }
            }
            if let Some(dex) = &p.dex
                && let Some(bad) = dex.secrets.iter().find(|s| s.split_once('/').is_none())
            {
                return Err(format!(
                    "pod {}/{}: dex secret {bad:?} must be NAMESPACE/NAME",
                    p.namespace, p.name
                ));
            }
            if let Some(i) = p.openbao
                && i >= servers
            {
                return Err(format!(
                    "pod {}/{} uses openbao server {i} but only {servers} are declared (openbao: {{ servers: N }})",
                    p.namespace, p.name
                ));
            }
            if p.containers.is_empty() {
                return Err(format!(
                    "pod {}/{} needs at least one container",
                    p.namespace, p.name
                ));
            }
        }
        if let Some(f) = &self.faults {
            for r in &f.rules {
                if !(0.0..=1.0).contains(&r.rate) {
                    return Err(format!("fault rate {} is outside 0..=1", r.rate));
                }
            }
        }
        Ok(())
    }

    /// The pod declared under this namespace and name.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<&PodDecl> {
        self.pods
            .iter()
            .find(|p| p.namespace == namespace && p.name == name)
    }
}

impl PodDecl {
    /// The Pod object as a kubelet-run pod would look: spec, phase, Ready condition, podIP.
    pub fn to_object(&self, index: usize) -> Value {
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        // A Dex pod starts unready: the Dex controller decides once it has seen its Secrets.
        let ready = if self.ready && self.dex.is_none() && self.phase == PodPhase::Running {
            "True"
        } else {
            "False"
        };
        let containers: Vec<Value> = self
            .containers
            .iter()
            .map(|c| {
                let ports: Vec<Value> = c
                    .ports
                    .iter()
                    .map(|p| {
                        let mut port =
                            json!({ "containerPort": p.container_port, "protocol": "TCP" });
                        if let Some(n) = &p.name {
                            port["name"] = json!(n);
                        }
                        port
                    })
                    .collect();
                json!({
                    "name": c.name,
                    "image": format!("sandbox.local/{}:latest", c.name),
                    "imagePullPolicy": "IfNotPresent",
                    "ports": ports,
                    "resources": {},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                })
            })
            .collect();
        let statuses: Vec<Value> = self
            .containers
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "image": format!("sandbox.local/{}:latest", c.name),
                    "imageID": "",
                    "ready": ready == "True",
                    "started": self.phase == PodPhase::Running,
                    "restartCount": 0,
                    "state": { "running": { "startedAt": now } },
                })
            })
            .collect();
        let ip = format!("10.244.0.{}", index + 10);
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": { "name": self.name, "namespace": self.namespace, "labels": self.labels },
            "spec": {
                "containers": containers,
                "nodeName": "sandbox",
                "restartPolicy": "Always",
                "dnsPolicy": "ClusterFirst",
                "schedulerName": "default-scheduler",
                "serviceAccountName": "default",
                "terminationGracePeriodSeconds": 30,
            },
            "status": {
                "phase": self.phase.as_str(),
                "conditions": [
                    { "type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": now },
                    { "type": "Initialized", "status": "True", "lastTransitionTime": now },
                    { "type": "Ready", "status": ready, "lastTransitionTime": now },
                    { "type": "ContainersReady", "status": ready, "lastTransitionTime": now },
                    { "type": "PodScheduled", "status": "True", "lastTransitionTime": now },
                ],
                "hostIP": "127.0.0.1",
                "hostIPs": [{ "ip": "127.0.0.1" }],
                "podIP": ip,
                "podIPs": [{ "ip": ip }],
                "startTime": now,
                "qosClass": "BestEffort",
                "containerStatuses": statuses,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_shape() {
        let text = r#"
openbao: { servers: 1 }
namespaces: [vault, gitea]
pods:
  - name: vault-0
    namespace: vault
    labels: { app.kubernetes.io/name: openbao }
    containers: [{ name: openbao, ports: [{ name: http, containerPort: 8200 }] }]
    exec: { process: { env: {K: V}, path: [/some/dir] } }
    openbao: 0
    forward: { "3000": "127.0.0.1:4567" }
  - name: echo
    namespace: gitea
    containers: [{ name: c }]
    phase: Pending
    ready: false
    exec: { emulator: echo }
resources:
  - { group: example.io, version: v1, kind: Widget, plural: widgets, namespaced: true }
objects:
  - { apiVersion: v1, kind: Secret, metadata: { name: a, namespace: b }, stringData: { k: v } }
faults:
  seed: 7
  rules:
    - { verbs: [update, patch], resource: configmaps, namespace: bringup, error: "500", rate: 0.3 }
    - { error: drop, latency: 100ms, name: x }
"#;
        let f: ClusterFile = serde_yaml::from_str(text).expect("parse");
        f.check().expect("valid");
        assert_eq!(f.pods[0].phase, PodPhase::Running);
        assert!(f.pods[0].ready);
        assert!(matches!(&f.pods[0].exec, Some(ExecDecl::Process(p)) if p.env["K"] == "V"));
        assert!(matches!(&f.pods[1].exec, Some(ExecDecl::Emulator(e)) if e == "echo"));
        let faults = f.faults.expect("faults");
        assert_eq!(faults.rules[0].error, Some(FaultError::InternalError));
        assert_eq!(faults.rules[1].latency, Some(Duration::from_millis(100)));
        let pod = f.pods[0].to_object(0);
        assert_eq!(pod["status"]["phase"], "Running");
        assert_eq!(pod["status"]["conditions"][2]["status"], "True");
    }

    #[test]
    fn rejects_unknown_fields_and_bad_references() {
        assert!(serde_yaml::from_str::<ClusterFile>("namespace: [x]").is_err());
        let f: ClusterFile = serde_yaml::from_str(
            "pods: [{ name: p, namespace: n, containers: [{name: c}], openbao: 1 }]",
        )
        .expect("parse");
        assert!(
            f.check()
                .expect_err("no servers")
                .contains("openbao server 1")
        );
    }

    #[test]
    fn emulated_pods_forwards_and_dex_parse_and_are_checked() {
        let text = r#"
namespaces: [gitea, dex]
emulators:
  - { name: gitea, product: { product: gitea, version: { flavor: gitea, minor: 24 }, admin: null, app_url: "http://g/", run_user: git, run_uid: 1000, config_path: /app.ini } }
pods:
  - name: gitea-0
    namespace: gitea
    containers: [{ name: gitea }]
    exec: { emulator_instance: { instance: gitea, uid: 0 } }
    forward: { "3000": { instance: gitea }, "22": "127.0.0.1:2222" }
  - name: dex-0
    namespace: dex
    containers: [{ name: dex }]
    dex: { issuer: "https://dex.example.com", secrets: [global-secrets/kanidm.dex] }
"#;
        let f: ClusterFile = serde_yaml::from_str(text).expect("parse");
        f.check().expect("valid");
        assert!(
            matches!(&f.pods[0].exec, Some(ExecDecl::EmulatorInstance(e)) if e.instance == "gitea" && e.uid == 0)
        );
        assert_eq!(
            f.pods[0].forward["3000"],
            ForwardTarget::Instance("gitea".into())
        );
        assert_eq!(
            f.pods[0].forward["22"],
            ForwardTarget::Address("127.0.0.1:2222".into())
        );
        let dex = f.pods[1].dex.as_ref().expect("dex");
        assert_eq!(
            dex.secret_refs().collect::<Vec<_>>(),
            [("global-secrets", "kanidm.dex")]
        );
        // A Dex pod is not Ready before the controller has seen its Secrets.
        assert_eq!(
            f.pods[1].to_object(1)["status"]["conditions"][2]["status"],
            "False"
        );

        let unknown = text.replace("instance: gitea, uid: 0", "instance: gitee, uid: 0");
        let f: ClusterFile = serde_yaml::from_str(&unknown).expect("parse");
        assert!(f.check().expect_err("unknown").contains("\"gitee\""));
        let typo = text.replace("{ instance: gitea }", "{ instanse: gitea }");
        assert!(serde_yaml::from_str::<ClusterFile>(&typo).is_err());
        let bad_ref = text.replace("global-secrets/kanidm.dex", "kanidm.dex");
        let f: ClusterFile = serde_yaml::from_str(&bad_ref).expect("parse");
        assert!(f.check().expect_err("bad ref").contains("NAMESPACE/NAME"));
    }

    #[test]
    fn the_s1_variants_differ_only_in_the_kanidm_version() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("clusters");
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("read");
        let (v17, v13) = (read("s1.yaml"), read("s1-kanidm13.yaml"));
        let differing: Vec<(&str, &str)> = v17
            .lines()
            .zip(v13.lines())
            .filter(|(a, b)| a != b)
            .filter(|(a, _)| !a.starts_with('#'))
            .collect();
        assert_eq!(
            differing,
            [(r#"      version: "1.7""#, r#"      version: "1.3""#)]
        );
        assert_eq!(v17.lines().count(), v13.lines().count());
    }

    #[test]
    fn the_shipped_cluster_files_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("clusters");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("clusters dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "yaml") {
                ClusterFile::load(&path).expect("loads");
                n += 1;
            }
        }
        assert!(n >= 1);
    }
}
