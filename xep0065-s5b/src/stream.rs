//! The async SOCKS5 handshakes over the codec, and [`S5bStream`], the bytestream they hand
//! over.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, FramedParts};

use crate::codec::{
    Addr, ClientCodec, ClientMessage, Greeting, MethodSelection, Reply, Request, ServerCodec,
    ServerMessage, Socks5Error,
};
use crate::wire::{self, Command, ReplyCode};

/// An established SOCKS5 bytestream: the `TcpStream` itself plus any bytes that arrived in
/// the same read as the end of the SOCKS5 handshake (read first).
///
/// There is no copy layer: once the prefix is drained, reads and writes go straight to the
/// socket. `shutdown()` half-closes (the peer reads end-of-stream, and a proxy such as
/// Prosody's releases the tail it holds); reading still works afterwards.
#[derive(Debug)]
pub struct S5bStream {
    prefix: BytesMut,
    stream: TcpStream,
}

impl S5bStream {
    /// The stream of a completed handshake (client or server side): the socket and the
    /// bytes read past the handshake.
    pub fn from_parts<C>(parts: FramedParts<TcpStream, C>) -> Self {
        Self {
            prefix: parts.read_buf,
            stream: parts.io,
        }
    }

    /// The socket and the bytes already read from it that the application has not seen.
    pub fn into_parts(self) -> (TcpStream, BytesMut) {
        (self.stream, self.prefix)
    }

    /// The socket.
    pub fn get_ref(&self) -> &TcpStream {
        &self.stream
    }
}

impl AsyncRead for S5bStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for S5bStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The SOCKS5 client handshake (XEP-0065 CONNECT to `dst_addr`, port 0), the strict way (ejabberd): greeting, wait for the method
/// selection, then the whole CONNECT in one write; then wait for the reply.
pub async fn client_handshake<T>(
    io: T,
    dst_addr: &str,
    timeout: Duration,
) -> Result<FramedParts<T, ClientCodec>, Socks5Error>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let run = async {
        let mut framed = Framed::new(io, ClientCodec::new());
        framed.send(Greeting::no_auth()).await?;
        match framed.next().await {
            Some(Ok(ServerMessage::Method(_))) => {}
            Some(Ok(ServerMessage::Reply(_))) => return Err(Socks5Error::Done),
            Some(Err(e)) => return Err(e),
            None => return Err(Socks5Error::Closed),
        }
        framed.send(Request::connect_s5b(dst_addr)).await?;
        match framed.next().await {
            Some(Ok(ServerMessage::Reply(_))) => {}
            Some(Ok(ServerMessage::Method(_))) => return Err(Socks5Error::Done),
            Some(Err(e)) => return Err(e),
            None => return Err(Socks5Error::Closed),
        }
        Ok(framed.into_parts())
    };
    tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| Socks5Error::Timeout(timeout))?
}

/// The server side up to the request: answers the greeting, reads the CONNECT and returns
/// its DST.ADDR. Every defect gets the reply RFC 1928 names before the error is returned.
pub async fn server_handshake<T>(
    io: T,
    max_domain_len: usize,
    timeout: Duration,
) -> Result<(Framed<T, ServerCodec>, String), Socks5Error>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let run = async {
        let mut framed = Framed::new(io, ServerCodec::new().with_max_domain_len(max_domain_len));
        match framed.next().await {
            Some(Ok(ClientMessage::Greeting(g))) => {
                if !g.methods.contains(&wire::METHOD_NO_AUTH) {
                    framed.send(MethodSelection(wire::METHOD_NONE)).await?;
                    return Err(Socks5Error::NoAcceptableMethod(wire::METHOD_NONE));
                }
                framed.send(MethodSelection(wire::METHOD_NO_AUTH)).await?;
            }
            Some(Ok(ClientMessage::Request(_))) => return Err(Socks5Error::Done),
            Some(Err(e)) => {
                if matches!(e, Socks5Error::BadVersion(_)) {
                    // BAD-INPUT D1: `05 FF`, then close.
                    let _ = framed.send(MethodSelection(wire::METHOD_NONE)).await;
                }
                return Err(e);
            }
            None => return Err(Socks5Error::Closed),
        }
        let req = match framed.next().await {
            Some(Ok(ClientMessage::Request(r))) => r,
            Some(Ok(ClientMessage::Greeting(_))) => return Err(Socks5Error::Done),
            Some(Err(e)) => {
                let _ = framed.send(Reply::failure(ReplyCode::from(&e))).await;
                return Err(e);
            }
            None => return Err(Socks5Error::Closed),
        };
        if req.command != Command::Connect {
            let e = Socks5Error::UnsupportedCommand(req.command);
            let _ = framed.send(Reply::failure(ReplyCode::from(&e))).await;
            return Err(e);
        }
        let Addr::Domain(d) = req.addr else {
            let code = ReplyCode::AddressTypeNotSupported;
            let _ = framed.send(Reply::failure(code)).await;
            return Err(Socks5Error::Failed(code));
        };
        // XEP-0065's DST.ADDR is 40 hex digits (uppercase read as lowercase) and DST.PORT 0;
        // anything else is refused with REP 02 before any lookup (BAD-INPUT D7-D9).
        let dst = String::from_utf8(d)
            .ok()
            .map(|d| d.to_ascii_lowercase())
            .filter(|d| d.len() == 40 && d.bytes().all(|b| b.is_ascii_hexdigit()));
        let (Some(dst), 0) = (dst, req.port) else {
            let code = ReplyCode::NotAllowed;
            let _ = framed.send(Reply::failure(code)).await;
            return Err(Socks5Error::Failed(code));
        };
        Ok((framed, dst))
    };
    tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| Socks5Error::Timeout(timeout))?
}
