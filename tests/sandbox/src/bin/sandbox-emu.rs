//! Multi-call binary placed in emulated pods as `gitea`, `forgejo`, `kanidm`, `kanidmd` and `su`:
//! it forwards each run to `$BRINGUP_EMULATOR_URL/cli/$BRINGUP_EMULATOR_INSTANCE` and replays
//! the answer, so shell pipelines, `"$(cat)"` and exit codes behave as in a real pod.

use std::io::{IsTerminal, Read, Write};
use std::net::TcpStream;
use std::process::{Command, ExitCode};

use bringup_sandbox::emulators::{CliRequest, CliResponse};

fn main() -> ExitCode {
    let mut argv: Vec<String> = std::env::args().collect();
    let mut program = basename(argv.first().map(String::as_str).unwrap_or_default()).to_string();
    if program == "sandbox-emu" && argv.len() > 1 {
        argv.remove(0);
        program = basename(&argv[0]).to_string();
    }
    if program == "su" {
        return su(&argv[1..]);
    }
    match forward(argv) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("{program}: emulator unreachable: {message}");
            ExitCode::from(127)
        }
    }
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn uid() -> u32 {
    std::env::var("BRINGUP_EMULATOR_UID")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

fn forward(argv: Vec<String>) -> Result<ExitCode, String> {
    let url = std::env::var("BRINGUP_EMULATOR_URL")
        .map_err(|_| "BRINGUP_EMULATOR_URL is not set".to_string())?;
    let instance = std::env::var("BRINGUP_EMULATOR_INSTANCE")
        .map_err(|_| "BRINGUP_EMULATOR_INSTANCE is not set".to_string())?;
    let mut stdin = Vec::new();
    if !std::io::stdin().is_terminal() {
        std::io::stdin()
            .read_to_end(&mut stdin)
            .map_err(|e| format!("reading stdin: {e}"))?;
    }
    use base64::Engine;
    let request = CliRequest {
        argv,
        env: std::env::vars().collect(),
        stdin: base64::engine::general_purpose::STANDARD.encode(stdin),
        uid: uid(),
    };
    let body = serde_json::to_vec(&request).map_err(|e| e.to_string())?;
    let answer = post(&url, &format!("/cli/{instance}"), &body)?;
    let response: CliResponse =
        serde_json::from_slice(&answer).map_err(|e| format!("bad answer: {e}"))?;
    let (stdout, stderr) = response.decode();
    let _ = std::io::stdout().write_all(&stdout);
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().write_all(&stderr);
    Ok(ExitCode::from(
        u8::try_from(response.exit_code).unwrap_or(1),
    ))
}

/// A minimal HTTP/1.1 POST; the service is on loopback and answers with a Content-Length.
fn post(url: &str, path: &str, body: &[u8]) -> Result<Vec<u8>, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("only http:// URLs are supported: {url}"))?;
    let (authority, base) = match rest.find('/') {
        Some(at) => (&rest[..at], rest[at..].trim_end_matches('/')),
        None => (rest, ""),
    };
    let mut stream = TcpStream::connect(authority).map_err(|e| format!("{authority}: {e}"))?;
    let head = format!(
        "POST {base}{path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body))
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("truncated answer")?;
    let headers = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let body = raw[split + 4..].to_vec();
    let status = headers
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    if status != "200" {
        return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)));
    }
    if headers.contains("transfer-encoding: chunked") {
        return Ok(dechunk(&body));
    }
    Ok(body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..line_end]).trim(), 16)
            .unwrap_or(0);
        if size == 0 || data.len() < line_end + 2 + size {
            break;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[(line_end + 4 + size).min(data.len())..];
    }
    out
}

/// Busybox `su [-] [-s SHELL] [-c CMD] [USER]` of the Gitea image: root may become `git`
/// (uid 1000, home /data/git); anyone else is refused because the binary is not setuid.
fn su(args: &[String]) -> ExitCode {
    let mut command = None;
    let mut user = None;
    let mut index = 0;
    while index < args.len() {
        let arg = args[index].as_str();
        index += 1;
        match arg {
            "-" | "-l" | "--login" | "-m" | "-p" => {}
            "-c" | "--command" | "-s" | "--shell" => {
                let value = args.get(index).cloned();
                index += 1;
                if arg.starts_with("-c") || arg == "--command" {
                    command = value;
                }
            }
            other if other.starts_with("--command=") => {
                command = Some(other["--command=".len()..].to_string())
            }
            other if user.is_none() && !other.starts_with('-') => user = Some(other.to_string()),
            _ => {}
        }
    }
    let user = user.unwrap_or_else(|| "root".into());
    let (target_uid, home) = match user.as_str() {
        "root" => (0, "/root"),
        "git" => (1000, "/data/git"),
        other => {
            eprintln!("su: unknown user {other}");
            return ExitCode::from(1);
        }
    };
    if uid() != 0 {
        eprintln!("su: must be suid to work properly");
        return ExitCode::from(1);
    }
    let mut shell = Command::new("/bin/sh");
    if let Some(command) = command {
        shell.arg("-c").arg(command);
    }
    let status = shell
        .env("BRINGUP_EMULATOR_UID", target_uid.to_string())
        .env("HOME", home)
        .env("USER", &user)
        .env("LOGNAME", &user)
        .status();
    match status {
        Ok(status) => ExitCode::from(
            status
                .code()
                .and_then(|c| u8::try_from(c).ok())
                .unwrap_or(1),
        ),
        Err(e) => {
            eprintln!("su: can't execute '/bin/sh': {e}");
            ExitCode::from(127)
        }
    }
}
