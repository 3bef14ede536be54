//! SOCKS5 framing (RFC 1928, the no-authentication CONNECT subset XEP-0065 uses), as
//! tokio-util [`Decoder`]/[`Encoder`] pairs for both ends:
//!
//! * [`ClientCodec`] (the target, or the requester connecting to a proxy): encodes
//!   [`Greeting`] and [`Request`], decodes [`ServerMessage`] (method selection, then reply).
//! * [`ServerCodec`] (our listener and the proxy): decodes [`ClientMessage`] (greeting,
//!   then request), encodes [`MethodSelection`] and [`Reply`].
//!
//! The codecs know nothing of XEP-0065: the DST.ADDR rule lives in
//! [`dst_addr`](crate::dst_addr). Each decoder expects its frames in protocol order and
//! never consumes more than one frame, so after the last one
//! `Framed::into_parts().read_buf` still holds any file bytes that came in the same read.
//!
//! Lengths are bounded: a domain longer than the codec's limit is an error
//! ([`Socks5Error::FrameTooLong`]); the rest of that frame is discarded as it arrives
//! (the `LinesCodec` discard pattern), so a peer cannot make the decoder buffer it.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{Buf, BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::wire::{self, AddressType, Command, ReplyCode, UnknownValue};

/// The longest domain either codec accepts by default: the RFC's own bound (one length byte).
/// XEP-0065 uses exactly 40 characters; [`ServerCodec::with_max_domain_len`] can tighten it.
pub const MAX_DOMAIN_LEN: usize = 255;

/// A SOCKS5 exchange failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Socks5Error {
    /// The socket failed.
    #[error("socket error: {0}")]
    Io(#[from] io::Error),
    /// The version byte is not 5.
    #[error("socks version {0:#04x} is not 5")]
    BadVersion(u8),
    /// The greeting offers no "no authentication" method, or the server chose none
    /// (`0xff`) or one that was not offered.
    #[error("no acceptable authentication method (got {0:#04x})")]
    NoAcceptableMethod(u8),
    /// A command or address type byte is undefined.
    #[error("{0}")]
    Unknown(#[from] UnknownValue),
    /// A defined command this implementation does not support (BIND, UDP ASSOCIATE).
    #[error("command {0:?} not supported")]
    UnsupportedCommand(Command),
    /// The reserved byte is not zero.
    #[error("reserved byte is {0:#04x}, not 0")]
    BadReserved(u8),
    /// A domain is longer than the codec's limit, or empty.
    #[error("domain of {len} bytes exceeds limit {max}")]
    FrameTooLong {
        /// The announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The server answered the CONNECT with a failure.
    #[error("server replied {0:?}")]
    Failed(ReplyCode),
    /// The connection closed in the middle of the handshake.
    #[error("connection closed during the socks5 handshake")]
    Closed,
    /// The handshake did not complete within its time budget.
    #[error("socks5 handshake did not complete within {0:?}")]
    Timeout(std::time::Duration),
    /// A frame arrived after the handshake's last one was decoded.
    #[error("unexpected bytes after the socks5 handshake ended")]
    Done,
}

impl From<&Socks5Error> for ReplyCode {
    /// The reply a server sends for a request it rejects with this error.
    fn from(e: &Socks5Error) -> Self {
        match e {
            Socks5Error::Unknown(UnknownValue {
                kind: "address type",
                ..
            }) => Self::AddressTypeNotSupported,
            Socks5Error::Unknown(UnknownValue {
                kind: "command", ..
            })
            | Socks5Error::UnsupportedCommand(_) => Self::CommandNotSupported,
            Socks5Error::Failed(code) => *code,
            // A DST.ADDR length other than XEP-0065's 40 (BAD-INPUT D7): the same REP 02 as
            // every other DST.ADDR we refuse.
            Socks5Error::FrameTooLong { .. } => Self::NotAllowed,
            _ => Self::GeneralFailure,
        }
    }
}

/// DST.ADDR / BND.ADDR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    /// ATYP 1.
    Ipv4(Ipv4Addr),
    /// ATYP 3: raw bytes (XEP-0065 puts the 40 hex characters of the hash here).
    Domain(Vec<u8>),
    /// ATYP 4.
    Ipv6(Ipv6Addr),
}

impl Addr {
    fn encoded_len(&self) -> usize {
        match self {
            Self::Ipv4(_) => 1 + 4,
            Self::Domain(d) => 1 + 1 + d.len(),
            Self::Ipv6(_) => 1 + 16,
        }
    }

    fn encode(&self, dst: &mut BytesMut) -> Result<(), Socks5Error> {
        match self {
            Self::Ipv4(ip) => {
                dst.put_u8(wire::ATYP_IPV4);
                dst.put_slice(&ip.octets());
            }
            Self::Domain(d) => {
                let len = u8::try_from(d.len()).ok().filter(|&l| l > 0).ok_or(
                    Socks5Error::FrameTooLong {
                        len: d.len(),
                        max: MAX_DOMAIN_LEN,
                    },
                )?;
                dst.put_u8(wire::ATYP_DOMAIN);
                dst.put_u8(len);
                dst.put_slice(d);
            }
            Self::Ipv6(ip) => {
                dst.put_u8(wire::ATYP_IPV6);
                dst.put_slice(&ip.octets());
            }
        }
        Ok(())
    }
}

/// The client's greeting: version 5 and the authentication methods it offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// The methods offered (XEP-0065 uses `[0x00]`, no authentication).
    pub methods: Vec<u8>,
}

impl Greeting {
    /// The greeting XEP-0065 peers send: no authentication only.
    pub fn no_auth() -> Self {
        Self {
            methods: vec![wire::METHOD_NO_AUTH],
        }
    }
}

/// The server's method selection (`0x00` no authentication, `0xff` none acceptable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodSelection(pub u8);

/// A request (CMD, DST.ADDR, DST.PORT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The command.
    pub command: Command,
    /// DST.ADDR.
    pub addr: Addr,
    /// DST.PORT (0 in XEP-0065).
    pub port: u16,
}

impl Request {
    /// The XEP-0065 CONNECT: ATYP domain with the DST.ADDR hash, port 0.
    pub fn connect_s5b(dst_addr: &str) -> Self {
        Self {
            command: Command::Connect,
            addr: Addr::Domain(dst_addr.as_bytes().to_vec()),
            port: 0,
        }
    }
}

/// A reply (REP, BND.ADDR, BND.PORT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The reply code.
    pub code: ReplyCode,
    /// BND.ADDR (XEP-0065: the DST.ADDR of the request).
    pub addr: Addr,
    /// BND.PORT (XEP-0065: the DST.PORT of the request).
    pub port: u16,
}

impl Reply {
    /// A failure reply with an all-zero IPv4 BND.ADDR.
    pub fn failure(code: ReplyCode) -> Self {
        Self {
            code,
            addr: Addr::Ipv4(Ipv4Addr::UNSPECIFIED),
            port: 0,
        }
    }

    /// The success reply XEP-0065 asks for: BND.ADDR and BND.PORT echo DST.ADDR and
    /// port 0 ([XEP-0065 §5.3.3](https://xmpp.org/extensions/xep-0065.html#direct-proto-connect)).
    pub fn success_s5b(dst_addr: &str) -> Self {
        Self {
            code: ReplyCode::Succeeded,
            addr: Addr::Domain(dst_addr.as_bytes().to_vec()),
            port: 0,
        }
    }
}

/// What a server receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    /// The greeting.
    Greeting(Greeting),
    /// The request.
    Request(Request),
}

/// What a client receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerMessage {
    /// The method selection.
    Method(MethodSelection),
    /// The reply.
    Reply(Reply),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    First,
    Second,
    Done,
}

/// A decoded address, port and end offset; or the error and the frame's total length.
type AddrResult = Result<Option<(Addr, u16, usize)>, (Socks5Error, usize)>;

/// Decodes ATYP + address + port at `buf[at..]`. `Ok(None)`: need more bytes. On a too
/// long domain, returns the error and the number of bytes the whole frame occupies.
fn decode_addr(buf: &[u8], at: usize, max: usize) -> AddrResult {
    let Some(&atyp) = buf.get(at) else {
        return Ok(None);
    };
    let atyp = AddressType::try_from(atyp).map_err(|e| (e.into(), 0))?;
    let (addr, end) = match atyp {
        AddressType::Ipv4 => {
            let Some(b) = buf.get(at + 1..at + 5) else {
                return Ok(None);
            };
            let o: [u8; 4] = [b[0], b[1], b[2], b[3]];
            (Addr::Ipv4(o.into()), at + 5)
        }
        AddressType::Ipv6 => {
            let Some(b) = buf.get(at + 1..at + 17) else {
                return Ok(None);
            };
            let mut o = [0u8; 16];
            o.copy_from_slice(b);
            (Addr::Ipv6(o.into()), at + 17)
        }
        AddressType::Domain => {
            let Some(&len) = buf.get(at + 1) else {
                return Ok(None);
            };
            let len = usize::from(len);
            let end = at + 2 + len;
            if len == 0 || len > max {
                return Err((Socks5Error::FrameTooLong { len, max }, end + 2));
            }
            let Some(d) = buf.get(at + 2..end) else {
                return Ok(None);
            };
            (Addr::Domain(d.to_vec()), end)
        }
    };
    let Some(p) = buf.get(end..end + 2) else {
        return Ok(None);
    };
    Ok(Some((addr, u16::from_be_bytes([p[0], p[1]]), end + 2)))
}

fn check_version(b: u8) -> Result<(), Socks5Error> {
    if b == wire::VERSION {
        Ok(())
    } else {
        Err(Socks5Error::BadVersion(b))
    }
}

/// Shared decode of the fourth-byte-onwards frames (request or reply), with discard.
fn decode_cmd_frame(
    src: &mut BytesMut,
    max: usize,
    discard: &mut usize,
) -> Result<Option<(u8, Addr, u16)>, Socks5Error> {
    if src.len() < 3 {
        return Ok(None);
    }
    check_version(src[0])?;
    if src[2] != wire::RESERVED {
        return Err(Socks5Error::BadReserved(src[2]));
    }
    match decode_addr(src, 3, max) {
        Ok(None) => Ok(None),
        Ok(Some((addr, port, n))) => {
            let code = src[1];
            src.advance(n);
            Ok(Some((code, addr, port)))
        }
        Err((e, frame_len)) => {
            let now = frame_len.min(src.len());
            src.advance(now);
            *discard = frame_len - now;
            Err(e)
        }
    }
}

fn skip_discard(src: &mut BytesMut, discard: &mut usize) -> bool {
    if *discard > 0 {
        let n = (*discard).min(src.len());
        src.advance(n);
        *discard -= n;
    }
    *discard == 0
}

/// The client side: encodes [`Greeting`] then [`Request`]; decodes the method selection,
/// then the reply, then nothing (the stream is data from then on).
#[derive(Debug, Clone)]
pub struct ClientCodec {
    stage: Stage,
    max: usize,
    discard: usize,
}

impl Default for ClientCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientCodec {
    /// A codec at the start of the handshake.
    pub fn new() -> Self {
        Self {
            stage: Stage::First,
            max: MAX_DOMAIN_LEN,
            discard: 0,
        }
    }
}

impl Decoder for ClientCodec {
    type Item = ServerMessage;
    type Error = Socks5Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<ServerMessage>, Socks5Error> {
        if !skip_discard(src, &mut self.discard) {
            return Ok(None);
        }
        match self.stage {
            Stage::First => {
                if src.len() < 2 {
                    return Ok(None);
                }
                check_version(src[0])?;
                let m = src[1];
                src.advance(2);
                if m != wire::METHOD_NO_AUTH {
                    return Err(Socks5Error::NoAcceptableMethod(m));
                }
                self.stage = Stage::Second;
                Ok(Some(ServerMessage::Method(MethodSelection(m))))
            }
            Stage::Second => {
                let frame = decode_cmd_frame(src, self.max, &mut self.discard);
                if frame.is_err() {
                    // The handshake is over; what follows is not SOCKS5.
                    self.stage = Stage::Done;
                }
                let Some((code, addr, port)) = frame? else {
                    return Ok(None);
                };
                let code = ReplyCode::try_from(code)?;
                self.stage = Stage::Done;
                if code != ReplyCode::Succeeded {
                    return Err(Socks5Error::Failed(code));
                }
                Ok(Some(ServerMessage::Reply(Reply { code, addr, port })))
            }
            // After the reply, bytes are file data: leave them for `into_parts`.
            Stage::Done => Ok(None),
        }
    }
}

impl Encoder<Greeting> for ClientCodec {
    type Error = Socks5Error;
    fn encode(&mut self, g: Greeting, dst: &mut BytesMut) -> Result<(), Socks5Error> {
        let n = u8::try_from(g.methods.len())
            .ok()
            .filter(|&n| n > 0)
            .ok_or(Socks5Error::NoAcceptableMethod(wire::METHOD_NONE))?;
        dst.reserve(2 + g.methods.len());
        dst.put_u8(wire::VERSION);
        dst.put_u8(n);
        dst.put_slice(&g.methods);
        Ok(())
    }
}

impl Encoder<Request> for ClientCodec {
    type Error = Socks5Error;
    fn encode(&mut self, r: Request, dst: &mut BytesMut) -> Result<(), Socks5Error> {
        dst.reserve(3 + r.addr.encoded_len() + 2);
        dst.put_u8(wire::VERSION);
        dst.put_u8(r.command.into());
        dst.put_u8(wire::RESERVED);
        r.addr.encode(dst)?;
        dst.put_u16(r.port);
        Ok(())
    }
}

/// The server side: decodes the greeting, then the request, then nothing; encodes
/// [`MethodSelection`] and [`Reply`].
#[derive(Debug, Clone)]
pub struct ServerCodec {
    stage: Stage,
    max: usize,
    discard: usize,
}

impl Default for ServerCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerCodec {
    /// A codec at the start of the handshake, accepting domains up to [`MAX_DOMAIN_LEN`].
    pub fn new() -> Self {
        Self {
            stage: Stage::First,
            max: MAX_DOMAIN_LEN,
            discard: 0,
        }
    }

    /// Rejects DST.ADDR domains longer than `max` bytes.
    #[must_use]
    pub fn with_max_domain_len(mut self, max: usize) -> Self {
        self.max = max.min(MAX_DOMAIN_LEN);
        self
    }
}

impl Decoder for ServerCodec {
    type Item = ClientMessage;
    type Error = Socks5Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<ClientMessage>, Socks5Error> {
        if !skip_discard(src, &mut self.discard) {
            return Ok(None);
        }
        match self.stage {
            Stage::First => {
                if src.len() < 2 {
                    return Ok(None);
                }
                check_version(src[0])?;
                let n = usize::from(src[1]);
                if src.len() < 2 + n {
                    return Ok(None);
                }
                let methods = src[2..2 + n].to_vec();
                src.advance(2 + n);
                self.stage = Stage::Second;
                Ok(Some(ClientMessage::Greeting(Greeting { methods })))
            }
            Stage::Second => {
                let frame = decode_cmd_frame(src, self.max, &mut self.discard);
                if frame.is_err() {
                    self.stage = Stage::Done;
                }
                let Some((cmd, addr, port)) = frame? else {
                    return Ok(None);
                };
                self.stage = Stage::Done;
                let command = Command::try_from(cmd)?;
                Ok(Some(ClientMessage::Request(Request {
                    command,
                    addr,
                    port,
                })))
            }
            Stage::Done => Ok(None),
        }
    }
}

impl Encoder<MethodSelection> for ServerCodec {
    type Error = Socks5Error;
    fn encode(&mut self, m: MethodSelection, dst: &mut BytesMut) -> Result<(), Socks5Error> {
        dst.put_slice(&[wire::VERSION, m.0]);
        Ok(())
    }
}

impl Encoder<Reply> for ServerCodec {
    type Error = Socks5Error;
    fn encode(&mut self, r: Reply, dst: &mut BytesMut) -> Result<(), Socks5Error> {
        dst.reserve(3 + r.addr.encoded_len() + 2);
        dst.put_u8(wire::VERSION);
        dst.put_u8(r.code.into());
        dst.put_u8(wire::RESERVED);
        r.addr.encode(dst)?;
        dst.put_u16(r.port);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
