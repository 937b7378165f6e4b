//! Echo (RFC 862) on TCP and UDP port 7, one listener and one UDP socket
//! per core; each TCP connection is a task pinned on its core.

use core::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use embedded_io_async::Write;

use super::spawn_here;
use crate::arch::CoreId;
use crate::ipc::channel::Sender;
use crate::net::{Error, Result, Shutdown, TcpListener, TcpStream, UdpSocket};

/// The echo port.
pub const PORT: u16 = 7;
/// Bytes read at once.
const CHUNK: usize = 4096;

fn any(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
}

/// Core `core`'s part: binds, reports to `ready`, serves forever.
pub async fn run(core: CoreId, mut ready: Sender<Result<()>>) {
    let bound = TcpListener::bind(any(PORT)).and_then(|l| Ok((l, UdpSocket::bind(any(PORT))?)));
    let (mut listener, udp) = match bound {
        Ok(pair) => {
            ready.send(Ok(())).await;
            pair
        }
        Err(error) => {
            ready.send(Err(error)).await;
            return;
        }
    };
    drop(ready);
    spawn_here(core, datagrams(udp));
    loop {
        match listener.accept_async().await {
            Ok((stream, _)) => spawn_here(core, connection(stream)),
            Err(error) => log::warn!("echo: accept on core {core}: {error}"),
        }
    }
}

async fn datagrams(udp: UdpSocket) {
    let mut buf = alloc::vec![0u8; 2048];
    loop {
        let Ok((n, from)) = udp.recv_from_async(&mut buf).await else {
            continue;
        };
        let _ = udp.send_to_async(&buf[..n], from).await;
    }
}

/// Echoes until the peer closes (or the connection fails), then closes.
/// The read buffer is held only while data flows: an idle connection
/// waits for readability without one.
pub async fn connection(mut stream: TcpStream) {
    'idle: while stream.readable().await.is_ok() {
        let mut buf = alloc::vec![0u8; CHUNK];
        loop {
            match embedded_io::Read::read(&mut stream, &mut buf) {
                Ok(0) => break 'idle,
                Ok(n) => {
                    if stream.write_all(&buf[..n]).await.is_err() {
                        break 'idle;
                    }
                }
                Err(Error::WouldBlock) => continue 'idle,
                Err(_) => break 'idle,
            }
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
}
