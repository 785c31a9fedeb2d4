//! In-process L4 echo backends for LoadBalancer Services: a TCP backend answers every line it
//! receives with `<name> <line>`, a UDP backend answers every datagram with `<name> <payload>`,
//! so a test knows which backend (and so which tenant) an (address, port) reached.
//!
//! Also the two clients tests use ([`tcp_ask`], [`udp_ask`]) and [`free_l4_range`], which finds
//! a block of ports free for both TCP and UDP to give the hub as `l4PortRange`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

/// How long a client waits for an answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// A running L4 echo backend; stops when dropped.
#[derive(Debug)]
pub struct L4Echo {
    name: String,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl L4Echo {
    /// A TCP echo on exactly `addr` (e.g. a node's InternalIP and a Service's nodePort).
    pub async fn tcp(name: &str, addr: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("tcp echo {name}: binding {addr}"))?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(serve_tcp(listener, name.to_string()));
        Ok(Self {
            name: name.to_string(),
            addr,
            task,
        })
    }

    /// A UDP echo on exactly `addr`.
    pub async fn udp(name: &str, addr: SocketAddr) -> anyhow::Result<Self> {
        let socket = UdpSocket::bind(addr)
            .await
            .with_context(|| format!("udp echo {name}: binding {addr}"))?;
        let addr = socket.local_addr()?;
        let task = tokio::spawn(serve_udp(socket, name.to_string()));
        Ok(Self {
            name: name.to_string(),
            addr,
            task,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for L4Echo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_tcp(listener: TcpListener, name: String) {
    while let Ok((stream, _)) = listener.accept().await {
        let name = name.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if write
                    .write_all(format!("{name} {line}\n").as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
    }
}

async fn serve_udp(socket: UdpSocket, name: String) {
    let mut buf = vec![0u8; 2048];
    while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
        let mut answer = format!("{name} ").into_bytes();
        answer.extend_from_slice(&buf[..n]);
        let _ = socket.send_to(&answer, peer).await;
    }
}

/// Connects to `addr`, sends `line` and returns the first line of the answer (without `\n`).
pub async fn tcp_ask(addr: SocketAddr, line: &str) -> anyhow::Result<String> {
    let ask = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.write_all(format!("{line}\n").as_bytes()).await?;
        let mut answer = String::new();
        BufReader::new(stream).read_line(&mut answer).await?;
        anyhow::ensure!(
            !answer.is_empty(),
            "{addr} closed the connection without answering"
        );
        Ok(answer.trim_end().to_string())
    };
    tokio::time::timeout(ANSWER_TIMEOUT, ask)
        .await
        .with_context(|| format!("no answer from {addr} over TCP"))?
}

/// Sends `payload` to `addr` from a fresh socket and returns the first datagram answered.
pub async fn udp_ask(addr: SocketAddr, payload: &str) -> anyhow::Result<String> {
    let local: SocketAddr = match addr.ip() {
        IpAddr::V4(_) => "127.0.0.1:0".parse()?,
        IpAddr::V6(_) => "[::1]:0".parse()?,
    };
    let socket = UdpSocket::bind(local).await?;
    socket.send_to(payload.as_bytes(), addr).await?;
    let mut buf = vec![0u8; 2048];
    let (n, _) = tokio::time::timeout(ANSWER_TIMEOUT, socket.recv_from(&mut buf))
        .await
        .with_context(|| format!("no answer from {addr} over UDP"))??;
    Ok(String::from_utf8_lossy(&buf[..n]).to_string())
}

/// Whether `port` on `ip` can be bound for both TCP and UDP right now.
pub fn port_is_free(ip: IpAddr, port: u16) -> bool {
    std::net::TcpListener::bind((ip, port)).is_ok() && std::net::UdpSocket::bind((ip, port)).is_ok()
}

/// A port in `range` free for both TCP and UDP on `ip`.
pub fn free_dual_port_in(ip: IpAddr, range: std::ops::RangeInclusive<u16>) -> anyhow::Result<u16> {
    use rand::Rng;
    let mut rng = rand::rng();
    for _ in 0..500 {
        let port = rng.random_range(range.clone());
        if port_is_free(ip, port) {
            return Ok(port);
        }
    }
    anyhow::bail!("no port in {range:?} free for TCP and UDP on {ip} after 500 tries")
}

/// `len` consecutive ports, free for TCP and UDP on `ip`, between 20000 and 29999: a range to
/// give the hub as `l4PortRange`. Returns the first port.
pub fn free_l4_range(ip: IpAddr, len: u16) -> anyhow::Result<u16> {
    use rand::Rng;
    let mut rng = rand::rng();
    for _ in 0..500 {
        let from: u16 = rng.random_range(20000..=29999 - len);
        if (from..from + len).all(|p| port_is_free(ip, p)) {
            return Ok(from);
        }
    }
    anyhow::bail!("no {len} consecutive ports free for TCP and UDP on {ip} after 500 tries")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn echoes_answer_with_their_name() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let tcp = L4Echo::tcp("t", SocketAddr::new(lo, 0)).await.unwrap();
        assert_eq!(tcp_ask(tcp.addr(), "ping").await.unwrap(), "t ping");
        let udp = L4Echo::udp("u", SocketAddr::new(lo, 0)).await.unwrap();
        assert_eq!(udp_ask(udp.addr(), "ping").await.unwrap(), "u ping");
        let from = free_l4_range(lo, 3).unwrap();
        assert!((20000..30000).contains(&from));
    }
}
