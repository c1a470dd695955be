//! Pod exec over WebSocket, byte for byte as kube-apiserver (v5, its stream translator) and the
//! kubelet (v4) serve it: the channel framing, the end of stdin in both dialects, output before
//! the status frame, and the status objects the real servers write on channel 3.
//!
//! What the command does is the backend's business: a local process (the real OpenBao CLI,
//! say) or an in-process emulator.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::emulator::{Emulator, Invocation};

/// The subprotocol kube-apiserver itself serves (since 1.30); it adds the close channel 255.
pub const V5_CHANNEL: &str = "v5.channel.k8s.io";
/// The subprotocol the kubelet serves; its client ends stdin by closing the WebSocket.
pub const V4_CHANNEL: &str = "v4.channel.k8s.io";
/// Exec subprotocols in the order of preference, for `WebSocketUpgrade::protocols`.
pub const EXEC_PROTOCOLS: [&str; 2] = [V5_CHANNEL, V4_CHANNEL];

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const STATUS: u8 = 3;
const CLOSE: u8 = 255;

/// The size of one output frame: big enough that 1 MiB is a handful of frames, small enough
/// that stdout and stderr interleave as a terminal would show them.
const CHUNK: usize = 32 * 1024;
/// The default PATH of a containerd container, used when the pod declares none.
const CONTAINER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The exec request's query: what to run and which streams the client attaches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOptions {
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
    /// Empty when the request names no container.
    pub container: String,
}

/// An exec request kube-apiserver refuses before upgrading, with its 400 message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecRequestError {
    #[error("you must specify at least 1 command")]
    NoCommand,
    #[error("you must specify at least one of stdin, stdout, stderr")]
    NoStream,
    #[error("{key}: invalid boolean value {value:?}")]
    BadBool { key: String, value: String },
}

impl ExecOptions {
    /// Parses `command=..&command=..&stdin=true&container=c` as kube-rs and kubectl send it,
    /// with the same validation as kube-apiserver.
    pub fn from_query(query: &str) -> Result<Self, ExecRequestError> {
        let mut options = Self::default();
        let url =
            reqwest::Url::parse(&format!("http://x/?{query}")).expect("a query string parses");
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "command" => options.command.push(value.into_owned()),
                "container" => options.container = value.into_owned(),
                "stdin" | "stdout" | "stderr" | "tty" => {
                    let flag = parse_go_bool(&value).ok_or_else(|| ExecRequestError::BadBool {
                        key: key.clone().into_owned(),
                        value: value.clone().into_owned(),
                    })?;
                    match key.as_ref() {
                        "stdin" => options.stdin = flag,
                        "stdout" => options.stdout = flag,
                        "stderr" => options.stderr = flag,
                        _ => options.tty = flag,
                    }
                }
                _ => {}
            }
        }
        if options.command.is_empty() {
            return Err(ExecRequestError::NoCommand);
        }
        if !(options.stdin || options.stdout || options.stderr) {
            return Err(ExecRequestError::NoStream);
        }
        Ok(options)
    }
}

/// Go's `strconv.ParseBool`, which the API server uses for query parameters.
fn parse_go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// How a pod runs the commands exec'd into it.
#[derive(Clone)]
pub enum ExecBackend {
    Process(ProcessBackend),
    Emulator(Arc<dyn Emulator>),
    /// The command cannot run (an injected fault, a container that is not running): the
    /// session ends with an `InternalError` status whose cause is this text.
    Failing(String),
}

impl std::fmt::Debug for ExecBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Process(process) => f.debug_tuple("Process").field(process).finish(),
            Self::Emulator(_) => f.write_str("Emulator"),
            Self::Failing(message) => f.debug_tuple("Failing").field(message).finish(),
        }
    }
}

/// A container as a local process: its environment is only what the pod declares (nothing of
/// the sandbox's own environment leaks in), with `path_prepend` before the container PATH.
#[derive(Debug, Clone, Default)]
pub struct ProcessBackend {
    pub env: BTreeMap<String, String>,
    pub path_prepend: Vec<PathBuf>,
    /// The working directory, also HOME unless the env sets one; a per-pod directory keeps
    /// files such as `~/.vault-token` apart between pods.
    pub cwd: Option<PathBuf>,
}

/// How an exec ended, for the audit log and for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecOutcome {
    Exited(i32),
    /// The command never ran (not found, injected fault); the message is the status message.
    Failed(String),
}

/// `metav1.Status` with the fields in Go's order, so the frame is the real server's bytes.
#[derive(Debug, Serialize)]
struct StatusFrame {
    metadata: serde_json::Map<String, serde_json::Value>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<StatusDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<u16>,
}

#[derive(Debug, Serialize)]
struct StatusDetails {
    causes: Vec<StatusCause>,
}

#[derive(Debug, Serialize)]
struct StatusCause {
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    message: String,
}

/// The status the server writes on channel 3 for an exit code: `Success`, or the
/// `NonZeroExitCode` failure whose text comes from containerd's `CodeExitError`.
pub fn exit_status_json(command: &[String], exit_code: i32) -> String {
    let frame = if exit_code == 0 {
        StatusFrame {
            metadata: serde_json::Map::new(),
            status: "Success",
            message: None,
            reason: None,
            details: None,
            code: None,
        }
    } else {
        StatusFrame {
            metadata: serde_json::Map::new(),
            status: "Failure",
            message: Some(format!(
                "command terminated with non-zero exit code: error executing command [{}], exit code {exit_code}",
                command.join(" ")
            )),
            reason: Some("NonZeroExitCode"),
            details: Some(StatusDetails {
                causes: vec![StatusCause {
                    reason: Some("ExitCode"),
                    message: exit_code.to_string(),
                }],
            }),
            code: None,
        }
    };
    serde_json::to_string(&frame).expect("a status serializes")
}

/// The `InternalError` status written when the command could not run at all.
pub fn internal_error_json(cause: &str) -> String {
    let cause = cause.to_owned();
    let frame = StatusFrame {
        metadata: serde_json::Map::new(),
        status: "Failure",
        message: Some(format!("Internal error occurred: {cause}")),
        reason: Some("InternalError"),
        details: Some(StatusDetails {
            causes: vec![StatusCause {
                reason: None,
                message: cause,
            }],
        }),
        code: Some(500),
    };
    serde_json::to_string(&frame).expect("a status serializes")
}

/// containerd's and runc's words for a command that could not start.
fn start_failure(program: &str, error: &std::io::Error) -> String {
    let exec_id = hex::encode(rand::random::<[u8; 32]>());
    let why = match error.kind() {
        std::io::ErrorKind::NotFound if program.contains('/') => {
            format!("exec: {program:?}: stat {program}: no such file or directory")
        }
        std::io::ErrorKind::NotFound => {
            format!("exec: {program:?}: executable file not found in $PATH")
        }
        std::io::ErrorKind::PermissionDenied => format!("exec: {program:?}: permission denied"),
        _ => format!("exec: {program:?}: {error}"),
    };
    format!(
        "error executing command in container: failed to exec in container: failed to start exec {exec_id:?}: OCI runtime exec failed: exec failed: unable to start container process: {why}: unknown"
    )
}

/// What the client sent, as the command side needs it.
enum FromClient {
    Stdin(Bytes),
    StdinEnd,
}

/// Serves one exec session on an upgraded WebSocket whose negotiated subprotocol is
/// `protocol` (one of [`EXEC_PROTOCOLS`]) and returns how the command ended.
pub async fn serve_exec(
    socket: WebSocket,
    protocol: &str,
    options: ExecOptions,
    backend: ExecBackend,
) -> ExecOutcome {
    let v5 = protocol == V5_CHANNEL;
    let (mut sink, mut stream) = socket.split();

    // Frames go out through one writer so that the status frame, queued last, leaves last.
    let (frames_tx, mut frames_rx) = mpsc::channel::<Message>(16);
    let writer = tokio::spawn(async move {
        while let Some(frame) = frames_rx.recv().await {
            if sink.send(frame).await.is_err() {
                return None;
            }
        }
        Some(sink)
    });

    // The real server announces the session with an empty frame on the lowest writable channel.
    let first = if options.stdout {
        STDOUT
    } else if options.stderr {
        STDERR
    } else {
        STATUS
    };
    let _ = frames_tx
        .send(Message::Binary(Bytes::from(vec![first])))
        .await;

    let (client_tx, client_rx) = mpsc::channel::<FromClient>(16);
    let (gone_tx, gone_rx) = tokio::sync::watch::channel(false);
    let reader = tokio::spawn(async move {
        let mut stdin_open = true;
        while let Some(Ok(message)) = stream.next().await {
            match message {
                Message::Binary(data) if !data.is_empty() => match data[0] {
                    STDIN if stdin_open && data.len() > 1 => {
                        let _ = client_tx.send(FromClient::Stdin(data.slice(1..))).await;
                    }
                    CLOSE if v5 && data.get(1) == Some(&STDIN) && stdin_open => {
                        stdin_open = false;
                        let _ = client_tx.send(FromClient::StdinEnd).await;
                    }
                    // Resizes (channel 4) only matter to a terminal, and the backends have none.
                    _ => {}
                },
                Message::Close(_) => break,
                _ => {}
            }
        }
        if stdin_open {
            let _ = client_tx.send(FromClient::StdinEnd).await;
        }
        // A v4 client closes the socket to end stdin, so only v5 treats it as the client leaving.
        if v5 {
            let _ = gone_tx.send(true);
        }
    });

    let outcome = match backend {
        ExecBackend::Process(process) => {
            run_process(&options, process, client_rx, frames_tx.clone(), gone_rx).await
        }
        ExecBackend::Emulator(emulator) => {
            run_emulator(&options, emulator, client_rx, frames_tx.clone()).await
        }
        ExecBackend::Failing(message) => ExecOutcome::Failed(message),
    };

    let status = match &outcome {
        ExecOutcome::Exited(code) => exit_status_json(&options.command, *code),
        ExecOutcome::Failed(cause) => internal_error_json(cause),
    };
    let mut frame = Vec::with_capacity(status.len() + 1);
    frame.push(STATUS);
    frame.extend_from_slice(status.as_bytes());
    let _ = frames_tx.send(Message::Binary(frame.into())).await;
    // A close frame without a code reads as an error (1005) to client-go: say 1000, normal.
    let _ = frames_tx.send(normal_close()).await;
    drop(frames_tx);
    let _ = writer.await;
    // The server waits for the client to close after the status (see apiserver's `finish`),
    // so that output still in flight is not cut off by a reset.
    let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
    outcome
}

/// A close frame with code 1000 (normal closure), which client-go reads as a clean end.
pub(crate) fn normal_close() -> Message {
    Message::Close(Some(axum::extract::ws::CloseFrame {
        code: 1000,
        reason: "".into(),
    }))
}

async fn run_emulator(
    options: &ExecOptions,
    emulator: Arc<dyn Emulator>,
    mut from_client: mpsc::Receiver<FromClient>,
    frames: mpsc::Sender<Message>,
) -> ExecOutcome {
    let mut stdin = Vec::new();
    if options.stdin {
        while let Some(message) = from_client.recv().await {
            match message {
                FromClient::Stdin(data) => stdin.extend_from_slice(&data),
                FromClient::StdinEnd => break,
            }
        }
    }
    let done = emulator
        .run(Invocation {
            argv: options.command.clone(),
            env: BTreeMap::new(),
            stdin,
        })
        .await;
    if options.stdout {
        send_chunks(&frames, STDOUT, &done.stdout).await;
    }
    if options.stderr {
        send_chunks(&frames, STDERR, &done.stderr).await;
    }
    ExecOutcome::Exited(done.exit_code)
}

async fn send_chunks(frames: &mpsc::Sender<Message>, channel: u8, data: &[u8]) {
    for chunk in data.chunks(CHUNK) {
        let mut frame = Vec::with_capacity(chunk.len() + 1);
        frame.push(channel);
        frame.extend_from_slice(chunk);
        if frames.send(Message::Binary(frame.into())).await.is_err() {
            return;
        }
    }
}

async fn run_process(
    options: &ExecOptions,
    process: ProcessBackend,
    mut from_client: mpsc::Receiver<FromClient>,
    frames: mpsc::Sender<Message>,
    mut client_gone: tokio::sync::watch::Receiver<bool>,
) -> ExecOutcome {
    let program = &options.command[0];
    let mut command = tokio::process::Command::new(program);
    command.args(&options.command[1..]).env_clear();
    let mut path: Vec<String> = process
        .path_prepend
        .iter()
        .map(|dir| dir.display().to_string())
        .collect();
    path.push(
        process
            .env
            .get("PATH")
            .cloned()
            .unwrap_or_else(|| CONTAINER_PATH.to_owned()),
    );
    if let Some(cwd) = &process.cwd {
        command.current_dir(cwd).env("HOME", cwd);
    }
    command.envs(&process.env).env("PATH", path.join(":"));
    command
        .stdin(if options.stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(if options.stdout {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(if options.stderr {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => return ExecOutcome::Failed(start_failure(program, &error)),
    };

    let stdin_pump = child.stdin.take().map(|mut stdin| {
        tokio::spawn(async move {
            while let Some(message) = from_client.recv().await {
                match message {
                    FromClient::Stdin(data) => {
                        if stdin.write_all(&data).await.is_err() {
                            break;
                        }
                    }
                    FromClient::StdinEnd => break,
                }
            }
            // Dropping the pipe is the child's end of file.
            let _ = stdin.shutdown().await;
        })
    });
    let stdout_pump = child
        .stdout
        .take()
        .map(|out| tokio::spawn(pump(out, STDOUT, frames.clone())));
    let stderr_pump = child
        .stderr
        .take()
        .map(|err| tokio::spawn(pump(err, STDERR, frames.clone())));

    let gone = async move {
        let _ = client_gone.wait_for(|gone| *gone).await;
    };
    let status = tokio::select! {
        status = child.wait() => status,
        () = gone => {
            let _ = child.start_kill();
            child.wait().await
        }
    };
    // All output is on its way before the status: the pumps end at end of file.
    for pump in [stdout_pump, stderr_pump].into_iter().flatten() {
        let _ = pump.await;
    }
    if let Some(pump) = stdin_pump {
        pump.abort();
    }
    match status {
        Ok(status) => ExecOutcome::Exited(exit_code(status)),
        Err(error) => ExecOutcome::Failed(format!("failed to wait for the command: {error}")),
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

async fn pump(mut output: impl AsyncRead + Unpin, channel: u8, frames: mpsc::Sender<Message>) {
    let mut buffer = vec![0u8; CHUNK + 1];
    loop {
        buffer[0] = channel;
        match output.read(&mut buffer[1..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let frame = Bytes::copy_from_slice(&buffer[..=n]);
                if frames.send(Message::Binary(frame)).await.is_err() {
                    // The client is gone; keep draining so the child never blocks on a full pipe.
                    while matches!(output.read(&mut buffer).await, Ok(n) if n > 0) {}
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::echo_emulator::EchoEmulator;
    use crate::testing::{pod_server, pod_server_speaking};
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, AttachParams};

    struct Ran {
        stdout: Vec<u8>,
        stderr: Vec<u8>,
        status: k8s_openapi::apimachinery::pkg::apis::meta::v1::Status,
    }

    /// Execs `command` with kube-rs the way bringup does: stdin written then shut down,
    /// stdout and stderr read concurrently, then the status.
    async fn kube_exec(client: kube::Client, command: &[&str], stdin: Option<&[u8]>) -> Ran {
        let pods: Api<Pod> = Api::namespaced(client, "vault");
        let params = AttachParams::default()
            .stdin(stdin.is_some())
            .stdout(true)
            .stderr(true);
        let mut attached = pods
            .exec("vault-0", command.to_vec(), &params)
            .await
            .expect("exec upgrades");
        let writer = attached.stdin();
        let feed = async move {
            if let (Some(mut writer), Some(input)) = (writer, stdin) {
                writer.write_all(input).await.unwrap();
                writer.shutdown().await.unwrap();
            }
        };
        let mut out = attached.stdout().unwrap();
        let mut err = attached.stderr().unwrap();
        let status = attached.take_status().unwrap();
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        // All three at once, or a command that answers while it reads fills the client's buffers.
        let ((), a, b) = tokio::join!(
            feed,
            out.read_to_end(&mut stdout),
            err.read_to_end(&mut stderr)
        );
        a.unwrap();
        b.unwrap();
        let status = status.await.expect("a status frame");
        attached.join().await.unwrap();
        Ran {
            stdout,
            stderr,
            status,
        }
    }

    fn process() -> ExecBackend {
        ExecBackend::Process(ProcessBackend::default())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn process_exec_feeds_stdin_and_reports_success() {
        let client = pod_server(process(), vec![]).await;
        let ran = kube_exec(
            client,
            &["sh", "-c", "tr a-z A-Z; echo warn >&2"],
            Some(b"hello\n"),
        )
        .await;
        assert_eq!(ran.stdout, b"HELLO\n");
        assert_eq!(ran.stderr, b"warn\n");
        assert_eq!(ran.status.status.as_deref(), Some("Success"));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn process_exec_passes_the_exit_code_through_the_status() {
        let client = pod_server(process(), vec![]).await;
        let ran = kube_exec(client, &["sh", "-c", "echo out; exit 3"], None).await;
        assert_eq!(ran.stdout, b"out\n");
        assert_eq!(ran.status.reason.as_deref(), Some("NonZeroExitCode"));
        let causes = ran.status.details.unwrap().causes.unwrap();
        assert_eq!(causes[0].reason.as_deref(), Some("ExitCode"));
        assert_eq!(causes[0].message.as_deref(), Some("3"));
        assert_eq!(
            ran.status.message.as_deref(),
            Some(
                "command terminated with non-zero exit code: error executing command [sh -c echo out; exit 3], exit code 3"
            )
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn large_output_on_both_streams_arrives_whole_before_the_status() {
        let client = pod_server(process(), vec![]).await;
        let script =
            "head -c 1048576 /dev/zero | tr '\\0' a; head -c 300000 /dev/zero | tr '\\0' b >&2";
        let ran = kube_exec(client, &["sh", "-c", script], None).await;
        assert_eq!(ran.stdout.len(), 1_048_576);
        assert!(ran.stdout.iter().all(|b| *b == b'a'));
        assert_eq!(ran.stderr.len(), 300_000);
        assert_eq!(ran.status.status.as_deref(), Some("Success"));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn large_stdin_round_trips_without_deadlock() {
        let client = pod_server(process(), vec![]).await;
        let input = vec![b'x'; 2 * 1024 * 1024];
        let ran = kube_exec(client, &["cat"], Some(&input)).await;
        assert_eq!(ran.stdout.len(), input.len());
        assert_eq!(ran.status.status.as_deref(), Some("Success"));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn missing_command_fails_as_the_runtime_does() {
        let client = pod_server(process(), vec![]).await;
        let ran = kube_exec(client, &["no-such-command-xyz"], None).await;
        assert_eq!(ran.status.reason.as_deref(), Some("InternalError"));
        assert_eq!(ran.status.code, Some(500));
        let message = ran.status.message.unwrap();
        assert!(
            message.contains("exec: \"no-such-command-xyz\": executable file not found in $PATH"),
            "{message}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn process_env_is_only_what_the_pod_declares_plus_prepended_path() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/bin/echo", dir.path().join("say")).unwrap();
        let backend = ExecBackend::Process(ProcessBackend {
            env: BTreeMap::from([("VAULT_ADDR".to_owned(), "http://127.0.0.1:1".to_owned())]),
            path_prepend: vec![dir.path().to_owned()],
            cwd: Some(dir.path().to_owned()),
        });
        // SAFETY-free check of leakage: the test process has CARGO set, the pod must not.
        let client = pod_server(backend, vec![]).await;
        let ran = kube_exec(
            client,
            &["sh", "-c", "say $VAULT_ADDR ${CARGO:-unset} $HOME; pwd"],
            None,
        )
        .await;
        let text = String::from_utf8(ran.stdout).unwrap();
        let home = dir.path().display().to_string();
        assert_eq!(text, format!("http://127.0.0.1:1 unset {home}\n{home}\n"));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn emulator_exec_gets_all_stdin_and_its_exit_code_is_the_status() {
        let client = pod_server(ExecBackend::Emulator(Arc::new(EchoEmulator)), vec![]).await;
        let ran = kube_exec(client.clone(), &["echo", "hi"], Some(b"body")).await;
        assert_eq!(ran.stdout, b"hi\nbody");
        assert_eq!(ran.status.status.as_deref(), Some("Success"));
        let ran = kube_exec(client, &["echo", "exit", "4", "nope"], None).await;
        assert_eq!(ran.stderr, b"nope\n");
        assert_eq!(
            ran.status.details.unwrap().causes.unwrap()[0]
                .message
                .as_deref(),
            Some("4")
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn failing_backend_reports_an_internal_error() {
        let client = pod_server(ExecBackend::Failing("injected fault".into()), vec![]).await;
        let ran = kube_exec(client, &["true"], None).await;
        assert_eq!(
            ran.status.message.as_deref(),
            Some("Internal error occurred: injected fault")
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn v4_sessions_report_exit_codes_too() {
        let client = pod_server_speaking(&[V4_CHANNEL], process(), vec![]).await;
        let ran = kube_exec(client, &["sh", "-c", "echo four; exit 2"], None).await;
        assert_eq!(ran.stdout, b"four\n");
        assert_eq!(
            ran.status.details.unwrap().causes.unwrap()[0]
                .message
                .as_deref(),
            Some("2")
        );
    }

    #[test]
    fn exit_status_frames_are_the_real_servers_bytes() {
        let command: Vec<String> = ["sh", "-c", "exit 3"].map(String::from).to_vec();
        assert_eq!(
            exit_status_json(&command, 0),
            r#"{"metadata":{},"status":"Success"}"#
        );
        assert_eq!(
            exit_status_json(&command, 3),
            r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#
        );
    }

    #[test]
    fn internal_error_frame_carries_code_500_and_the_cause() {
        let json: serde_json::Value = serde_json::from_str(&internal_error_json("boom")).unwrap();
        assert_eq!(json["reason"], "InternalError");
        assert_eq!(json["code"], 500);
        assert_eq!(json["message"], "Internal error occurred: boom");
        assert_eq!(json["details"]["causes"][0]["message"], "boom");
    }

    #[test]
    fn query_parses_repeated_commands_and_go_booleans() {
        let options = ExecOptions::from_query(
            "&command=sh&command=-c&command=echo%20a%26b&stdin=1&stdout=true&stderr=True&container=vault",
        )
        .unwrap();
        assert_eq!(options.command, vec!["sh", "-c", "echo a&b"]);
        assert!(options.stdin && options.stdout && options.stderr && !options.tty);
        assert_eq!(options.container, "vault");
    }

    #[test]
    fn query_without_command_or_stream_is_refused_as_the_api_server_does() {
        assert_eq!(
            ExecOptions::from_query("stdout=true"),
            Err(ExecRequestError::NoCommand)
        );
        assert_eq!(
            ExecOptions::from_query("command=ls"),
            Err(ExecRequestError::NoStream)
        );
        assert!(matches!(
            ExecOptions::from_query("command=ls&stdout=yes"),
            Err(ExecRequestError::BadBool { .. })
        ));
    }

    #[test]
    fn start_failure_names_the_missing_program_like_runc() {
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        let text = start_failure("nope", &missing);
        assert!(
            text.starts_with("error executing command in container: failed to exec in container: failed to start exec \""),
            "{text}"
        );
        assert!(text.ends_with(
            "OCI runtime exec failed: exec failed: unable to start container process: exec: \"nope\": executable file not found in $PATH: unknown"
        ));
    }
}
