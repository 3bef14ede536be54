//! The sockets of an attempt: resolving a streamhost's name, connecting and the SOCKS5
//! client handshake, with the failure typed for the core.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::codec::Socks5Error;
use crate::proto::{Failure, Socks5Fault};
use crate::stream::{S5bStream, client_handshake};

/// Resolves `name:port` (the resolver's error kind on failure).
pub async fn resolve(name: &str, port: u16) -> Result<Vec<SocketAddr>, io::ErrorKind> {
    tokio::net::lookup_host((name, port))
        .await
        .map(Iterator::collect)
        .map_err(|e| e.kind())
}

/// Connects to each address in turn and runs the SOCKS5 client handshake on the first
/// that answers. `timeout` bounds each handshake as a safety net; the core's own
/// deadline for the attempt normally closes it first.
pub async fn dial(
    addrs: &[SocketAddr],
    dst_addr: &str,
    timeout: Duration,
) -> Result<S5bStream, Failure> {
    let mut last = Failure::HandshakeTimeout(timeout);
    for &addr in addrs {
        let tcp = match TcpStream::connect(addr).await {
            Ok(t) => t,
            Err(e) => {
                last = Failure::Connect {
                    addr,
                    kind: e.kind(),
                };
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        match client_handshake(tcp, dst_addr, timeout).await {
            Ok(parts) => return Ok(S5bStream::from_parts(parts)),
            Err(e) => last = socks5_failure(addr, e),
        }
    }
    Err(last)
}

fn socks5_failure(addr: SocketAddr, e: Socks5Error) -> Failure {
    let fault = match e {
        Socks5Error::Failed(code) => return Failure::Socks5Reply { addr, code },
        Socks5Error::Timeout(d) => return Failure::HandshakeTimeout(d),
        Socks5Error::Io(e) => Socks5Fault::Io(e.kind()),
        Socks5Error::Closed => Socks5Fault::Closed,
        Socks5Error::NoAcceptableMethod(_) => Socks5Fault::NoAcceptableMethod,
        _ => Socks5Fault::Malformed,
    };
    Failure::Socks5 { addr, fault }
}
