//! `kanidmd recover-account` of an emulated server: a new password on every run, tracing-forest
//! log lines on stdout, a JSON line in `-o json` mode, and exit 0 whatever happens.

use super::cli_exchange::{CliOutput, CliRequest};
use super::kanidm::Kanidm;

const OPID: &str = "00000000-0000-0000-0000-000000000000";

/// One tracing-forest event line: `<uuid> <LEVEL:8> <icon> [<level>]: <message>[ | <fields>]`.
fn event(level: &str, message: &str, fields: Option<&str>) -> String {
    let icon = match level {
        "warn" => "🚧",
        "error" => "🚨",
        _ => "ｉ",
    };
    let fields = fields.map(|f| format!(" | {f}")).unwrap_or_default();
    format!(
        "{OPID} {:<8} {icon} [{level}]: {message}{fields}\n",
        level.to_uppercase()
    )
}

/// Runs one `kanidmd` invocation.
pub fn run(kanidm: &Kanidm, request: &CliRequest) -> CliOutput {
    let args = request.argv.get(1..).unwrap_or_default();
    let Some((command, rest)) = args.split_first() else {
        return CliOutput::fail("Usage: kanidmd [OPTIONS] <COMMAND>\n", 2);
    };
    if command == "version" {
        return CliOutput::ok(format!("kanidmd {}\n", kanidm.version().version_string()));
    }
    if command != "recover-account" {
        return CliOutput::fail(
            format!(
                "error: unrecognized subcommand '{command}'\n\nUsage: kanidmd [OPTIONS] <COMMAND>\n\nFor more information, try '--help'.\n"
            ),
            2,
        );
    }
    let mut name = None;
    let mut output = request.env("KANIDM_OUTPUT").map(str::to_string);
    let mut index = 0;
    while index < rest.len() {
        let arg = rest[index].as_str();
        index += 1;
        match arg {
            // The config names the admin socket; the emulator has exactly one server to reach.
            "-c" | "--config" | "-o" | "--output" | "-n" | "--name" => {
                let Some(value) = rest.get(index) else {
                    return CliOutput::fail(
                        format!(
                            "error: a value is required for '{arg}' but none was supplied\n\nFor more information, try '--help'.\n"
                        ),
                        2,
                    );
                };
                index += 1;
                match arg {
                    "-o" | "--output" => output = Some(value.clone()),
                    "-n" | "--name" => name = Some(value.clone()),
                    _ => {}
                }
            }
            "-d" | "--debug" => {}
            flag if flag.starts_with('-') => {
                return CliOutput::fail(
                    format!(
                        "error: unexpected argument '{flag}' found\n\nUsage: kanidmd recover-account [OPTIONS] <NAME>\n\nFor more information, try '--help'.\n"
                    ),
                    2,
                );
            }
            positional => name = Some(positional.to_string()),
        }
    }
    let Some(name) = name else {
        return CliOutput::fail(
            "error: the following required arguments were not provided:\n  <NAME>\n\nUsage: kanidmd recover-account [OPTIONS] <NAME>\n\nFor more information, try '--help'.\n",
            2,
        );
    };
    let json = output.as_deref() == Some("json");
    let mut out = CliOutput::default();
    if request.uid == 0 {
        out.stdout.push_str(&event(
            "warn",
            "This is running as uid == 0 (root) which may be a security risk.",
            None,
        ));
    }
    out.stdout
        .push_str(&event("info", "Running account recovery ...", None));
    match kanidm.lock().recover_account(&name) {
        Some(password) if json => out
            .stdout
            .push_str(&format!("{}\n", serde_json::json!({"password": password}))),
        Some(password) => out.stdout.push_str(&event(
            "info",
            "",
            Some(&format!("new_password: {password:?}")),
        )),
        None if json => out.stderr.push_str("\"error\"\n"),
        None => out.stdout.push_str(&event(
            "error",
            "Error - you should inspect the logs.",
            None,
        )),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::kanidm::KanidmConfig;
    use super::super::kanidm_version::KanidmVersion;
    use super::*;

    #[test]
    fn text_and_json_modes() {
        let k = Kanidm::new(KanidmConfig::new(KanidmVersion::V1_3));
        let out = run(
            &k,
            &CliRequest::new(&[
                "kanidmd",
                "recover-account",
                "idm_admin",
                "-c",
                "/data/server.toml",
            ]),
        );
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(
            lines[0],
            "00000000-0000-0000-0000-000000000000 INFO     ｉ [info]: Running account recovery ..."
        );
        let password = lines[1]
            .strip_prefix(
                "00000000-0000-0000-0000-000000000000 INFO     ｉ [info]:  | new_password: \"",
            )
            .and_then(|rest| rest.strip_suffix('"'))
            .unwrap();
        assert!(k.password_is("idm_admin", password));
        let mut request =
            CliRequest::new(&["kanidmd", "recover-account", "-o", "json", "idm_admin"]);
        request.uid = 0;
        let out = run(&k, &request);
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert!(lines[0].contains(" WARN     🚧 [warn]: This is running as uid == 0 (root)"));
        let json: serde_json::Value = serde_json::from_str(lines[2]).unwrap();
        let second = json["password"].as_str().unwrap();
        assert_ne!(second, password);
        assert!(k.password_is("idm_admin", second));
        assert_eq!(k.snapshot().counters.recover_account["idm_admin"], 2);
    }

    #[test]
    fn errors_still_exit_zero() {
        let k = Kanidm::new(KanidmConfig::new(KanidmVersion::V1_7));
        let out = run(
            &k,
            &CliRequest::new(&["kanidmd", "recover-account", "ghost"]),
        );
        assert_eq!(out.exit_code, 0);
        assert!(
            out.stdout
                .ends_with("ERROR    🚨 [error]: Error - you should inspect the logs.\n")
        );
        let out = run(
            &k,
            &CliRequest::new(&["kanidmd", "recover-account", "ghost", "-o", "json"]),
        );
        assert_eq!((out.exit_code, out.stderr.as_str()), (0, "\"error\"\n"));
    }
}
