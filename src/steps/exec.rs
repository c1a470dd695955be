//! The `exec` kind: run a command in a pod (secrets only on stdin), judge it by its exit code,
//! capture its stdout and store what it produced in a Secret.

use serde_json::Value;

use crate::cluster::{ExecOutput, ExecRequest};
use crate::phase::model::{ExecStep, SkipIf};
use crate::phase::template::Locals;

use super::pod_target::PodTarget;
use super::secret_data::SecretData;
use super::{Applied, Probe, StepContext, StepError, capture, store, timeouts};

/// How many trailing lines of a failed command's stderr an error shows.
const STDERR_LINES: usize = 5;

/// Read-only: what `skip_if` says, when it can be asked without running anything that
/// writes (a dry run never execs: an exec is a write to the API server).
pub async fn probe(ctx: &StepContext<'_>, spec: &ExecStep) -> Result<Probe, StepError> {
    match &spec.skip_if {
        None => Ok(Probe::Unknown(
            "no skip_if: only the checkpoint knows whether it ran".into(),
        )),
        Some(SkipIf::SecretKey(key)) => Ok(
            if SecretData::has_key(ctx.cluster.as_ref(), ctx.redactor, key).await? {
                Probe::Done(format!("Secret key {key} present"))
            } else {
                Probe::NeedsWork(format!("Secret key {key} missing"))
            },
        ),
        Some(SkipIf::Command { .. }) if ctx.cluster.read_only() => Ok(Probe::Unknown(
            "skip_if runs a command in a pod, which a read-only command does not".into(),
        )),
        Some(SkipIf::Command { command, stdin }) => {
            let pod = PodTarget::resolve(ctx.cluster.as_ref(), &spec.pod).await?;
            Ok(
                if skip_command_holds(ctx, spec, &pod, command, stdin.as_deref()).await? {
                    Probe::Done(format!(
                        "skip_if command `{}` succeeded in pod {pod}",
                        shown(command)
                    ))
                } else {
                    Probe::NeedsWork(format!(
                        "skip_if command `{}` answered not done in pod {pod}",
                        shown(command)
                    ))
                },
            )
        }
        Some(SkipIf::Request(_)) => Err(request_not_for_exec()),
    }
}

/// Runs the command unless `skip_if` holds; captures and stores its output.
pub async fn apply(ctx: &StepContext<'_>, spec: &ExecStep) -> Result<Applied, StepError> {
    if let Some(SkipIf::SecretKey(key)) = &spec.skip_if
        && SecretData::has_key(ctx.cluster.as_ref(), ctx.redactor, key).await?
    {
        return Ok(Applied::Unchanged(format!(
            "skipped: Secret key {key} present"
        )));
    }
    if let Some(SkipIf::Request(_)) = &spec.skip_if {
        return Err(request_not_for_exec());
    }
    let pod = PodTarget::resolve(ctx.cluster.as_ref(), &spec.pod).await?;
    if let Some(SkipIf::Command { command, stdin }) = &spec.skip_if
        && skip_command_holds(ctx, spec, &pod, command, stdin.as_deref()).await?
    {
        return Ok(Applied::Unchanged(format!(
            "skipped: `{}` succeeded in pod {pod}",
            shown(command)
        )));
    }
    let locals = Locals::default();
    let argv = spec
        .command
        .iter()
        .map(|arg| ctx.templates.render(arg, &locals))
        .collect::<Result<Vec<_>, _>>()?;
    let stdin = spec
        .stdin
        .as_ref()
        .map(|t| ctx.templates.render(t, &locals))
        .transpose()?;
    (ctx.progress)(format!("running `{}` in pod {pod}", shown(&argv)));
    let output = run(ctx, spec, &pod, &argv, stdin.as_deref().map(str::as_bytes)).await?;
    if !spec.accept_exit_codes.contains(&output.exit_code) {
        return Err(StepError::Failed(format!(
            "command `{}` in pod {pod} exited {}{}",
            shown(&argv),
            output.exit_code,
            failure_detail(ctx, spec, &output)
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    // Without a capture, `output` is stdout as text, so a store can still use it.
    let captured = match &spec.capture {
        Some(how) => capture::parse(how, &stdout).map_err(|message| {
            StepError::Failed(format!(
                "command `{}` in pod {pod}: {message}",
                shown(&argv)
            ))
        })?,
        None => Value::String(stdout.trim_end_matches(['\n', '\r']).to_string()),
    };
    if spec.sensitive && (spec.capture.is_some() || spec.store.is_some()) {
        capture::register_leaves(ctx.redactor, &captured);
    }
    let mut did = format!("ran `{}` in pod {pod}", shown(&argv));
    if let Some(target) = &spec.store {
        let locals = Locals {
            output: Some(captured),
            ..Locals::default()
        };
        did.push_str(&store::store_and_describe(ctx, target, &locals).await?);
    }
    Ok(Applied::Changed(did))
}

async fn run(
    ctx: &StepContext<'_>,
    spec: &ExecStep,
    pod: &PodTarget,
    argv: &[String],
    stdin: Option<&[u8]>,
) -> Result<ExecOutput, StepError> {
    let request = ExecRequest {
        namespace: &pod.namespace,
        pod: &pod.name,
        container: spec.container.as_deref(),
        command: argv,
        stdin,
        timeout: timeouts::for_step(ctx.step),
    };
    Ok(ctx.cluster.exec(request).await?)
}

/// Exit 0: done. Exit 1: not done. Anything else: the check itself broke. A check that
/// needs a secret (a stored password to try) gets it on stdin, like the command.
async fn skip_command_holds(
    ctx: &StepContext<'_>,
    spec: &ExecStep,
    pod: &PodTarget,
    command: &[String],
    stdin: Option<&str>,
) -> Result<bool, StepError> {
    let argv = command
        .iter()
        .map(|arg| ctx.templates.render(arg, &Locals::default()))
        .collect::<Result<Vec<_>, _>>()?;
    let stdin = stdin
        .map(|t| ctx.templates.render(t, &Locals::default()))
        .transpose()?;
    let output = run(ctx, spec, pod, &argv, stdin.as_deref().map(str::as_bytes)).await?;
    match output.exit_code {
        0 => Ok(true),
        1 => Ok(false),
        code => Err(StepError::Failed(format!(
            "skip_if command `{}` in pod {pod} exited {code} (0 means done, 1 not done){}",
            shown(&argv),
            failure_detail(ctx, spec, &output)
        ))),
    }
}

/// The last lines of stderr, redacted; stdout only when the step is not sensitive.
fn failure_detail(ctx: &StepContext<'_>, spec: &ExecStep, output: &ExecOutput) -> String {
    let tail = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let start = lines.len().saturating_sub(STDERR_LINES);
        ctx.redactor.redact(&lines[start..].join("\n"))
    };
    let stderr = tail(&output.stderr);
    if !stderr.is_empty() {
        return format!("; stderr ends with:\n{stderr}");
    }
    if output.stdout.is_empty() {
        return "; no output".into();
    }
    if spec.sensitive {
        return "; stderr is empty and stdout is not shown (the step is sensitive)".into();
    }
    format!("; stdout ends with:\n{}", tail(&output.stdout))
}

/// The command as an error may show it: its first two words. Arguments may hold anything.
/// For `sh -c SCRIPT NAME ...`, the script's `$0` name too: it says which script it was,
/// where `sh -c …` alone would name every scripted step the same.
fn shown(argv: &[String]) -> String {
    let mut words: Vec<&str> = argv.iter().take(2).map(String::as_str).collect();
    if argv.len() > 2 {
        words.push("…");
    }
    let script_name = argv.get(3).filter(|name| {
        name.len() <= 40
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    });
    if let (Some("-c"), Some(name)) = (argv.get(1).map(String::as_str), script_name) {
        words.push(name);
    }
    words.join(" ")
}

fn request_not_for_exec() -> StepError {
    StepError::Failed(
        "skip_if `request` is for http steps; an exec step takes `command` or `secret_key`".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::fake::FakeCluster;
    use crate::phase::model::{Capture, PodSelector, StepKind, Store};
    use crate::steps::pod_target::tests::pod;
    use crate::steps::testing::{Bed, fake_with_namespaces, secret_key};
    use serde_json::json;
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    fn spec(command: &[&str]) -> ExecStep {
        ExecStep {
            pod: PodSelector {
                namespace: "kanidm".into(),
                name: None,
                selector: Some("app=kanidm".into()),
            },
            container: None,
            command: command.iter().map(|s| s.to_string()).collect(),
            stdin: None,
            accept_exit_codes: vec![0],
            skip_if: None,
            capture: None,
            sensitive: true,
            store: None,
        }
    }

    fn out(code: i32, stdout: &str, stderr: &str) -> ExecOutput {
        ExecOutput {
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
            exit_code: code,
        }
    }

    /// A fake with a Ready kanidm pod whose exec answers by the command's first word.
    fn fake(
        answer: impl Fn(&[String], Option<&[u8]>) -> ExecOutput + Send + Sync + 'static,
    ) -> (FakeCluster, Arc<Mutex<Vec<Vec<String>>>>) {
        let seen: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
        let record = seen.clone();
        let fake = fake_with_namespaces(&["kanidm", "global-secrets"]).with_exec(move |request| {
            record.lock().unwrap().push(request.command.to_vec());
            answer(request.command, request.stdin)
        });
        fake.insert(pod("kanidm", "kanidm-0", json!({"app": "kanidm"}), true));
        (fake, seen)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn skip_if_command_exit_codes_decide() {
        let (fake, seen) = fake(|argv, _| match argv[0].as_str() {
            "done" => out(0, "", ""),
            "not-done" => out(1, "", ""),
            "broken" => out(2, "", "grep: bad regex\n"),
            _ => out(0, "ran", ""),
        });
        let mut step = spec(&["work"]);
        step.skip_if = Some(SkipIf::Command {
            command: vec!["done".into()],
            stdin: None,
        });
        let bed = Bed::new(fake.clone(), StepKind::Exec(step.clone()));
        assert!(matches!(
            apply(&bed.ctx(), &step).await.unwrap(),
            Applied::Unchanged(_)
        ));
        assert!(matches!(
            probe(&bed.ctx(), &step).await.unwrap(),
            Probe::Done(_)
        ));
        assert_eq!(seen.lock().unwrap().len(), 2, "only the skip command ran");

        step.skip_if = Some(SkipIf::Command {
            command: vec!["not-done".into()],
            stdin: None,
        });
        assert!(matches!(
            apply(&bed.ctx(), &step).await.unwrap(),
            Applied::Changed(_)
        ));
        assert_eq!(
            seen.lock().unwrap().last().unwrap(),
            &vec!["work".to_string()]
        );

        step.skip_if = Some(SkipIf::Command {
            command: vec!["broken".into(), "-q".into()],
            stdin: None,
        });
        let error = apply(&bed.ctx(), &step).await.unwrap_err().to_string();
        assert!(
            error.contains("skip_if command `broken -q` in pod kanidm/kanidm-0 exited 2"),
            "{error}"
        );
        assert!(error.contains("grep: bad regex"), "{error}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn skip_if_secret_key_needs_a_non_empty_key() {
        let (fake, seen) = fake(|_, _| out(0, "", ""));
        fake.insert(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "kanidm.dex", "namespace": "global-secrets"}, "data": {"client_secret": ""}}));
        let mut step = spec(&["work"]);
        step.skip_if = Some(SkipIf::SecretKey(
            serde_json::from_value(json!("global-secrets/kanidm.dex/client_secret")).unwrap(),
        ));
        let bed = Bed::new(fake.clone(), StepKind::Exec(step.clone()));
        assert!(matches!(
            probe(&bed.ctx(), &step).await.unwrap(),
            Probe::NeedsWork(_)
        ));
        assert!(matches!(
            apply(&bed.ctx(), &step).await.unwrap(),
            Applied::Changed(_)
        ));
        fake.insert(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "kanidm.dex", "namespace": "global-secrets"}, "data": {"client_secret": "c2VjcmV0"}}));
        assert!(matches!(
            apply(&bed.ctx(), &step).await.unwrap(),
            Applied::Unchanged(_)
        ));
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_failed_command_names_its_exit_code_and_redacted_stderr_but_not_its_arguments() {
        let (fake, _) = fake(|_, _| {
            out(
                3,
                "",
                "line1\nline2\nline3\nline4\nline5\nline6 leaked-canary-value\n",
            )
        });
        let mut step = spec(&["kanidm", "login", "--password-from", "secret-arg"]);
        step.stdin = Some("stdin-secret-value".into());
        let bed = Bed::new(fake, StepKind::Exec(step.clone()));
        bed.redactor.register("leaked-canary-value");
        let error = apply(&bed.ctx(), &step).await.unwrap_err().to_string();
        assert!(
            error.starts_with("command `kanidm login …` in pod kanidm/kanidm-0 exited 3"),
            "{error}"
        );
        assert!(
            error.contains("line6 [redacted]") && !error.contains("line1"),
            "{error}"
        );
        assert!(
            !error.contains("secret-arg") && !error.contains("stdin-secret-value"),
            "{error}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn accepted_exit_codes_and_stdin_reach_the_command() {
        let (fake, _) = fake(|_, stdin| {
            if stdin == Some(b"piped".as_slice()) {
                out(2, "", "")
            } else {
                out(0, "", "")
            }
        });
        let mut step = spec(&["sh", "-c", "cat"]);
        step.stdin = Some("piped".into());
        step.accept_exit_codes = vec![0, 2];
        let bed = Bed::new(fake, StepKind::Exec(step.clone()));
        assert!(matches!(
            apply(&bed.ctx(), &step).await.unwrap(),
            Applied::Changed(_)
        ));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn captured_json_line_is_stored_and_registered() {
        let (fake, _) = fake(|_, _| {
            out(
                0,
                "Logging in\n{\"password\":\"recovered-password-1\"}\n",
                "",
            )
        });
        let mut step = spec(&[
            "kanidmd",
            "recover-account",
            "--output",
            "json",
            "idm_admin",
        ]);
        step.capture = Some(Capture::JsonLine);
        step.store = Some(Store {
            secret: "global-secrets/kanidm.admin".parse().unwrap(),
            data: BTreeMap::from([("password".to_string(), "{{ output.password }}".to_string())]),
            labels: BTreeMap::new(),
        });
        let bed = Bed::new(fake.clone(), StepKind::Exec(step.clone()));
        let applied = apply(&bed.ctx(), &step).await.unwrap();
        assert_eq!(
            applied,
            Applied::Changed(
                "ran `kanidmd recover-account …` in pod kanidm/kanidm-0; stored password in Secret global-secrets/kanidm.admin".into()
            )
        );
        assert_eq!(
            secret_key(&fake, "global-secrets", "kanidm.admin", "password").unwrap(),
            "recovered-password-1"
        );
        assert_eq!(
            bed.redactor.redact("pw recovered-password-1"),
            "pw [redacted]"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn store_merges_into_an_existing_secret() {
        let (fake, _) = fake(|_, _| out(0, "token: abcdef0123456789\n", ""));
        fake.insert(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "gitea.renovate", "namespace": "global-secrets"}, "data": {"other": "b3RoZXI="}}));
        let mut step = spec(&["gitea", "admin", "user", "generate-access-token"]);
        step.capture = Some(Capture::Regex("token: (\\w+)".into()));
        step.store = Some(Store {
            secret: "global-secrets/gitea.renovate".parse().unwrap(),
            data: BTreeMap::from([("token".to_string(), "{{ output.value }}".to_string())]),
            labels: BTreeMap::new(),
        });
        let bed = Bed::new(fake.clone(), StepKind::Exec(step.clone()));
        apply(&bed.ctx(), &step).await.unwrap();
        assert_eq!(
            secret_key(&fake, "global-secrets", "gitea.renovate", "token").unwrap(),
            "abcdef0123456789"
        );
        assert_eq!(
            secret_key(&fake, "global-secrets", "gitea.renovate", "other").unwrap(),
            "other"
        );
        assert!(bed.redactor.leaks("abcdef0123456789"));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn capture_failures_do_not_quote_stdout() {
        let (fake, _) = fake(|_, _| out(0, "not json: hunter2-secret\n", ""));
        let mut step = spec(&["kanidm", "show"]);
        step.capture = Some(Capture::Json);
        let bed = Bed::new(fake, StepKind::Exec(step.clone()));
        let error = apply(&bed.ctx(), &step).await.unwrap_err().to_string();
        assert!(
            error.contains("stdout is not JSON") && !error.contains("hunter2"),
            "{error}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_read_only_probe_does_not_exec() {
        let (fake, seen) = fake(|_, _| out(0, "", ""));
        let mut step = spec(&["work"]);
        step.skip_if = Some(SkipIf::Command {
            command: vec!["check".into()],
            stdin: None,
        });
        let bed = Bed::new(fake.read_only_view(), StepKind::Exec(step.clone()));
        assert!(matches!(
            probe(&bed.ctx(), &step).await.unwrap(),
            Probe::Unknown(_)
        ));
        assert!(seen.lock().unwrap().is_empty());
        assert!(bed.fake.mutating_calls().is_empty());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn skip_if_command_gets_its_own_stdin_with_a_secret() {
        // The check answers done only when the stored password reaches it on stdin.
        let (fake, seen) = fake(|argv, stdin| match argv[0].as_str() {
            "check" if stdin == Some(b"stored-canary-pw".as_slice()) => out(0, "", ""),
            "check" => out(1, "", ""),
            _ => out(0, "", ""),
        });
        fake.insert(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "kanidm-idm-admin", "namespace": "kanidm"}, "data": {"password": "c3RvcmVkLWNhbmFyeS1wdw=="}}));
        let mut step = spec(&["recover"]);
        step.skip_if = Some(SkipIf::Command {
            command: vec!["check".into()],
            stdin: Some(
                "{{ secret('kanidm', 'kanidm-idm-admin', 'password', default='') }}".into(),
            ),
        });
        let bed = Bed::new(fake.clone(), StepKind::Exec(step.clone()));
        assert!(matches!(
            apply(&bed.ctx(), &step).await.unwrap(),
            Applied::Unchanged(_)
        ));
        assert!(matches!(
            probe(&bed.ctx(), &step).await.unwrap(),
            Probe::Done(_)
        ));
        assert_eq!(seen.lock().unwrap().len(), 2, "only the check ran");
        assert!(
            bed.redactor.leaks("stored-canary-pw"),
            "the stdin secret is registered"
        );

        // Without the key the default is fed, the check says not done, the command runs.
        fake.insert(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "kanidm-idm-admin", "namespace": "kanidm"}, "data": {}}));
        assert!(matches!(
            apply(&bed.ctx(), &step).await.unwrap(),
            Applied::Changed(_)
        ));
        assert_eq!(
            seen.lock().unwrap().last().unwrap(),
            &vec!["recover".to_string()]
        );
    }

    #[test]
    fn a_script_is_shown_by_its_name_and_nothing_else() {
        let argv = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        assert_eq!(
            shown(&argv(&["sh", "-c", "echo $1", "check-group", "x"])),
            "sh -c … check-group"
        );
        assert_eq!(shown(&argv(&["sh", "-c", "echo", "has space"])), "sh -c …");
        assert_eq!(
            shown(&argv(&["kanidm", "login", "-D", "idm_admin"])),
            "kanidm login …"
        );
        assert_eq!(shown(&argv(&["sh", "-c", "true"])), "sh -c …");
    }
}
