//! Pod port-forward over WebSocket as the kubelet serves it (`v4.channel.k8s.io`, the protocol
//! kube-rs speaks): for the i-th requested port, data on channel 2i and errors on channel 2i+1,
//! each channel's first frame carrying the port as two little-endian bytes. Each port maps to
//! one TCP connection to a local address.

use std::net::SocketAddr;

use axum::extract::ws::{Message, WebSocket};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// The subprotocol the kubelet's WebSocket port-forward serves.
pub const PORTFORWARD_PROTOCOLS: [&str; 1] = ["v4.channel.k8s.io"];

/// Where one requested pod port goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortTarget {
    Address(SocketAddr),
    /// Nothing listens on this port in the pod: the error channel says why.
    Unreachable(String),
}

/// An invalid `ports` query, with kube-apiserver's 400 message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortsQueryError {
    #[error("at least one port must be specified")]
    NoPorts,
    #[error("unable to parse {0:?} as a port: {1}")]
    BadPort(String, String),
}

/// Parses `ports=8200&ports=3000` or `ports=8200,3000` into the requested ports, in order.
pub fn ports_from_query(query: &str) -> Result<Vec<u16>, PortsQueryError> {
    let url = reqwest::Url::parse(&format!("http://x/?{query}")).expect("a query string parses");
    let mut ports = Vec::new();
    for (key, value) in url.query_pairs() {
        if key != "ports" {
            continue;
        }
        for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let port = part
                .parse::<u16>()
                .map_err(|e| PortsQueryError::BadPort(part.to_owned(), e.to_string()))?;
            if port == 0 {
                return Err(PortsQueryError::BadPort(
                    part.to_owned(),
                    "port 0 is not valid".into(),
                ));
            }
            ports.push(port);
        }
    }
    if ports.is_empty() {
        return Err(PortsQueryError::NoPorts);
    }
    Ok(ports)
}

/// Serves one port-forward session: `targets[i]` is the pod port requested i-th and where it
/// goes. Returns when every port's connection has ended or the client has closed the socket.
pub async fn serve_portforward(socket: WebSocket, pod_uid: &str, targets: Vec<(u16, PortTarget)>) {
    let (mut sink, mut stream) = socket.split();
    let (frames_tx, mut frames_rx) = mpsc::channel::<Message>(16);
    let writer = tokio::spawn(async move {
        while let Some(frame) = frames_rx.recv().await {
            if sink.send(frame).await.is_err() {
                break;
            }
        }
        let _ = sink.send(crate::exec::normal_close()).await;
        let _ = sink.close().await;
    });

    let mut to_target = Vec::with_capacity(targets.len());
    let mut connections = Vec::with_capacity(targets.len());
    for (index, (port, target)) in targets.into_iter().enumerate() {
        let data_channel = (2 * index) as u8;
        let error_channel = data_channel + 1;
        for channel in [data_channel, error_channel] {
            let [low, high] = port.to_le_bytes();
            let _ = frames_tx
                .send(Message::Binary(Bytes::from(vec![channel, low, high])))
                .await;
        }
        let (tx, rx) = mpsc::channel::<Bytes>(16);
        to_target.push(tx);
        connections.push(tokio::spawn(forward_port(
            port,
            target,
            pod_uid.to_owned(),
            data_channel,
            rx,
            frames_tx.clone(),
        )));
    }
    drop(frames_tx);

    let reader = async {
        while let Some(Ok(message)) = stream.next().await {
            match message {
                Message::Binary(data) if data.len() > 1 => {
                    let channel = usize::from(data[0]);
                    // Clients send data only on even channels; odd ones are the server's.
                    if channel % 2 == 0
                        && let Some(tx) = to_target.get(channel / 2)
                    {
                        let _ = tx.send(data.slice(1..)).await;
                    }
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
    };
    let aborts: Vec<_> = connections.iter().map(|c| c.abort_handle()).collect();
    let all_done = futures::future::join_all(connections);
    tokio::select! {
        () = reader => {}
        _ = all_done => {}
    }
    // The client closed: its connections end with it, which also lets the writer finish.
    for abort in aborts {
        abort.abort();
    }
    let _ = writer.await;
}

async fn forward_port(
    port: u16,
    target: PortTarget,
    pod_uid: String,
    data_channel: u8,
    mut from_client: mpsc::Receiver<Bytes>,
    frames: mpsc::Sender<Message>,
) {
    let error_channel = data_channel + 1;
    let send_error = |message: String| {
        let frames = frames.clone();
        async move {
            let mut frame = vec![error_channel];
            frame.extend_from_slice(message.as_bytes());
            let _ = frames.send(Message::Binary(frame.into())).await;
        }
    };
    let address = match target {
        PortTarget::Address(address) => address,
        PortTarget::Unreachable(why) => {
            send_error(format!(
                "error forwarding port {port} to pod {pod_uid}, uid : {why}"
            ))
            .await;
            return;
        }
    };
    let connection = match TcpStream::connect(address).await {
        Ok(connection) => connection,
        Err(error) => {
            send_error(format!(
                "error forwarding port {port} to pod {pod_uid}, uid : failed to connect to localhost:{port} inside namespace: dial tcp4 {address}: connect: {}",
                go_errno_text(&error)
            ))
            .await;
            return;
        }
    };
    let (mut read_half, mut write_half) = connection.into_split();
    let upstream = async {
        while let Some(data) = from_client.recv().await {
            if write_half.write_all(&data).await.is_err() {
                return;
            }
        }
        let _ = write_half.shutdown().await;
    };
    let downstream = async {
        let mut buffer = vec![0u8; 32 * 1024 + 1];
        loop {
            buffer[0] = data_channel;
            match read_half.read(&mut buffer[1..]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if frames
                        .send(Message::Binary(Bytes::copy_from_slice(&buffer[..=n])))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    };
    // Like containerd's port-forward, the connection ends as soon as either direction does.
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}

/// An OS error as Go's `syscall.Errno` prints it ("connection refused"), for the real text.
fn go_errno_text(error: &std::io::Error) -> String {
    let text = error.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    text.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::ExecBackend;
    use crate::testing::pod_server;
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::Api;

    /// A TCP server that answers each connection's bytes upper-cased, until the peer closes.
    async fn upper_server() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut connection, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 64 * 1024];
                    while let Ok(n) = connection.read(&mut buffer).await {
                        if n == 0 {
                            break;
                        }
                        buffer[..n].make_ascii_uppercase();
                        if connection.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        address
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn kube_rs_port_forward_reaches_the_mapped_address_and_back() {
        let target = upper_server().await;
        let client = pod_server(ExecBackend::Failing(String::new()), vec![(8200, target)]).await;
        let pods: Api<Pod> = Api::namespaced(client, "vault");
        let mut forwarder = pods
            .portforward("vault-0", &[8200])
            .await
            .expect("port-forward upgrades");
        let mut stream = forwarder.take_stream(8200).unwrap();
        let payload = vec![b'q'; 200_000];
        let (mut read, mut write) = tokio::io::split(&mut stream);
        let (written, received) = tokio::join!(
            async {
                write.write_all(&payload).await.unwrap();
            },
            async {
                let mut received = vec![0u8; payload.len()];
                read.read_exact(&mut received).await.unwrap();
                received
            }
        );
        let () = written;
        assert!(received.iter().all(|b| *b == b'Q'));
        drop(stream);
        forwarder.join().await.expect("the session ends cleanly");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_unreachable_port_reports_on_its_error_channel() {
        // Bind and drop to get a port that nothing listens on.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let client = pod_server(ExecBackend::Failing(String::new()), vec![(8200, closed)]).await;
        let pods: Api<Pod> = Api::namespaced(client, "vault");
        let mut forwarder = pods.portforward("vault-0", &[8200]).await.unwrap();
        let error = forwarder
            .take_error(8200)
            .unwrap()
            .await
            .expect("an error message");
        assert!(
            error.starts_with("error forwarding port 8200 to pod uid-1, uid : failed to connect"),
            "{error}"
        );
        assert!(error.contains("connection refused"), "{error}");
    }

    #[test]
    fn ports_query_takes_repeats_and_commas_in_order() {
        assert_eq!(
            ports_from_query("ports=8200&ports=3000,22").unwrap(),
            vec![8200, 3000, 22]
        );
        assert_eq!(ports_from_query("?&foo=1"), Err(PortsQueryError::NoPorts));
        assert!(matches!(
            ports_from_query("ports=http"),
            Err(PortsQueryError::BadPort(..))
        ));
        assert!(matches!(
            ports_from_query("ports=0"),
            Err(PortsQueryError::BadPort(..))
        ));
    }
}
