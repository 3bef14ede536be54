//! Codec tests: every message at every split point with `Pending` in between, every
//! malformed case with the reply code it gets, leftover bytes kept after the handshake.

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::StreamExt;
use hex_literal::hex;
use tokio_util::codec::{Decoder, Encoder, FramedRead};

use super::*;

const HASH: &str = "98b8d688d0f5d895fd41c5e7309a2e9e33ba32ff";

fn greeting_bytes() -> Vec<u8> {
    hex!(
        "05"    // VER
        "01"    // NMETHODS
        "00"    // METHODS: no authentication
    )
    .to_vec()
}

fn connect_bytes() -> Vec<u8> {
    let mut v = hex!(
        "05"    // VER
        "01"    // CMD connect
        "00"    // RSV
        "03"    // ATYP domain
        "28"    // length 40
    )
    .to_vec();
    v.extend_from_slice(HASH.as_bytes()); // DST.ADDR
    v.extend_from_slice(&hex!("00 00")); // DST.PORT 0
    v
}

fn method_bytes() -> Vec<u8> {
    hex!(
        "05"    // VER
        "00"    // METHOD no authentication
    )
    .to_vec()
}

fn reply_bytes() -> Vec<u8> {
    let mut v = hex!(
        "05"    // VER
        "00"    // REP succeeded
        "00"    // RSV
        "03"    // ATYP domain
        "28"    // length 40
    )
    .to_vec();
    v.extend_from_slice(HASH.as_bytes()); // BND.ADDR = DST.ADDR
    v.extend_from_slice(&hex!("00 00")); // BND.PORT 0
    v
}

fn expected_request() -> Request {
    Request::connect_s5b(HASH)
}

fn expected_reply() -> Reply {
    Reply {
        code: ReplyCode::Succeeded,
        addr: Addr::Domain(HASH.as_bytes().to_vec()),
        port: 0,
    }
}

#[test]
fn client_encodes_greeting_and_connect_byte_for_byte() {
    let mut c = ClientCodec::new();
    let mut out = BytesMut::new();
    c.encode(Greeting::no_auth(), &mut out).unwrap();
    assert_eq!(&out[..], &greeting_bytes()[..]);
    out.clear();
    c.encode(expected_request(), &mut out).unwrap();
    assert_eq!(&out[..], &connect_bytes()[..]);
}

#[test]
fn server_encodes_method_and_reply_byte_for_byte() {
    let mut s = ServerCodec::new();
    let mut out = BytesMut::new();
    s.encode(MethodSelection(0), &mut out).unwrap();
    assert_eq!(&out[..], &method_bytes()[..]);
    out.clear();
    s.encode(expected_reply(), &mut out).unwrap();
    assert_eq!(&out[..], &reply_bytes()[..]);
}

#[test]
fn ipv4_and_ipv6_addresses_round_trip() {
    for addr in [
        Addr::Ipv4("127.0.0.1".parse().unwrap()),
        Addr::Ipv6("2001:db8::1".parse().unwrap()),
    ] {
        let req = Request {
            command: Command::Connect,
            addr: addr.clone(),
            port: 7777,
        };
        let mut out = BytesMut::new();
        ClientCodec::new().encode(req.clone(), &mut out).unwrap();
        let mut s = ServerCodec::new();
        let mut inp = BytesMut::from(&greeting_bytes()[..]);
        inp.extend_from_slice(&out);
        assert!(matches!(
            s.decode(&mut inp),
            Ok(Some(ClientMessage::Greeting(_)))
        ));
        assert_eq!(
            s.decode(&mut inp).unwrap(),
            Some(ClientMessage::Request(req))
        );
        assert!(inp.is_empty());
    }
}

/// Feeds `bytes` split at `at`, with a pending read between the two pieces.
fn split_mock(bytes: &[u8], at: usize) -> tokio_test::io::Mock {
    let mut b = tokio_test::io::Builder::new();
    if at > 0 {
        b.read(&bytes[..at]);
    }
    b.wait(Duration::from_millis(1));
    if at < bytes.len() {
        b.read(&bytes[at..]);
    }
    b.build()
}

#[tokio::test(start_paused = true)]
async fn server_decodes_greeting_and_connect_split_at_every_byte() {
    let mut all = greeting_bytes();
    all.extend(connect_bytes());
    for at in 0..=all.len() {
        let mut r = FramedRead::new(split_mock(&all, at), ServerCodec::new());
        assert_eq!(
            r.next().await.unwrap().unwrap(),
            ClientMessage::Greeting(Greeting::no_auth()),
            "split at {at}"
        );
        assert_eq!(
            r.next().await.unwrap().unwrap(),
            ClientMessage::Request(expected_request()),
            "split at {at}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn client_decodes_method_and_reply_split_at_every_byte_and_keeps_file_bytes() {
    let mut all = method_bytes();
    all.extend(reply_bytes());
    all.extend_from_slice(b"FILE");
    for at in 0..=all.len() {
        let mut r = FramedRead::new(split_mock(&all, at), ClientCodec::new());
        assert_eq!(
            r.next().await.unwrap().unwrap(),
            ServerMessage::Method(MethodSelection(0)),
            "split at {at}"
        );
        assert_eq!(
            r.next().await.unwrap().unwrap(),
            ServerMessage::Reply(expected_reply()),
            "split at {at}"
        );
        // The file bytes that already arrived are in the buffer; the rest follow on the io.
        let parts = r.into_parts();
        let mut got = parts.read_buf.to_vec();
        let mut io = parts.io;
        tokio::io::AsyncReadExt::read_to_end(&mut io, &mut got)
            .await
            .unwrap();
        assert_eq!(got, b"FILE", "split at {at}");
    }
}

#[tokio::test]
async fn into_parts_keeps_file_bytes_that_came_with_the_reply() {
    let mut all = method_bytes();
    all.extend(reply_bytes());
    all.extend_from_slice(b"first file bytes");
    let mock = tokio_test::io::Builder::new()
        .write(&greeting_bytes())
        .read(&method_bytes())
        .write(&connect_bytes())
        .read(&all[2..])
        .build();
    let parts = crate::stream::client_handshake(mock, HASH, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(&parts.read_buf[..], b"first file bytes");
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_stalls_mid_handshake_hits_the_handshake_timeout() {
    let (client, mut server) = tokio::io::duplex(1024);
    let t = tokio::spawn(async move {
        // Reads the greeting, then says nothing.
        let mut b = [0u8; 3];
        tokio::io::AsyncReadExt::read_exact(&mut server, &mut b)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(3600)).await;
        drop(server);
    });
    let err = crate::stream::client_handshake(client, HASH, Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(matches!(err, Socks5Error::Timeout(d) if d == Duration::from_secs(10)));
    t.abort();
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stalls_after_the_greeting_hits_the_server_timeout() {
    let (mut client, server) = tokio::io::duplex(1024);
    tokio::io::AsyncWriteExt::write_all(&mut client, &greeting_bytes())
        .await
        .unwrap();
    let err = crate::stream::server_handshake(server, 40, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(err, Socks5Error::Timeout(_)));
}

fn server_after_greeting() -> (ServerCodec, BytesMut) {
    let mut s = ServerCodec::new().with_max_domain_len(40);
    let mut b = BytesMut::from(&greeting_bytes()[..]);
    s.decode(&mut b).unwrap().unwrap();
    (s, b)
}

#[test]
fn bad_version_is_bad_version_and_general_failure() {
    let mut s = ServerCodec::new();
    let mut b = BytesMut::from(&hex!("04 01 00")[..]);
    let e = s.decode(&mut b).unwrap_err();
    assert!(matches!(e, Socks5Error::BadVersion(4)));
    assert_eq!(ReplyCode::from(&e), ReplyCode::GeneralFailure);
}

#[test]
fn unknown_command_is_command_not_supported() {
    let (mut s, mut b) = server_after_greeting();
    b.extend_from_slice(&hex!("05 09 00 01 7f000001 0000"));
    let e = s.decode(&mut b).unwrap_err();
    assert!(matches!(
        e,
        Socks5Error::Unknown(UnknownValue {
            kind: "command",
            value: 9
        })
    ));
    assert_eq!(ReplyCode::from(&e), ReplyCode::CommandNotSupported);
}

#[test]
fn bind_is_command_not_supported() {
    let e = Socks5Error::UnsupportedCommand(Command::Bind);
    assert_eq!(ReplyCode::from(&e), ReplyCode::CommandNotSupported);
}

#[test]
fn unknown_address_type_is_address_type_not_supported() {
    let (mut s, mut b) = server_after_greeting();
    b.extend_from_slice(&hex!("05 01 00 02 00 00"));
    let e = s.decode(&mut b).unwrap_err();
    assert_eq!(ReplyCode::from(&e), ReplyCode::AddressTypeNotSupported);
}

#[test]
fn nonzero_reserved_byte_is_bad_reserved() {
    let (mut s, mut b) = server_after_greeting();
    b.extend_from_slice(&hex!("05 01 01 01 7f000001 0000"));
    assert!(matches!(
        s.decode(&mut b).unwrap_err(),
        Socks5Error::BadReserved(1)
    ));
}

#[test]
fn overlong_domain_is_frame_too_long_and_the_frame_is_discarded() {
    let (mut s, mut b) = server_after_greeting();
    // 200-byte domain against a 40-byte limit, arriving in two pieces.
    b.extend_from_slice(&hex!("05 01 00 03 c8"));
    b.extend_from_slice(&[b'a'; 100]);
    let e = s.decode(&mut b).unwrap_err();
    assert!(matches!(e, Socks5Error::FrameTooLong { len: 200, max: 40 }));
    assert_eq!(ReplyCode::from(&e), ReplyCode::NotAllowed);
    assert!(
        b.is_empty(),
        "the part that arrived is dropped, not buffered"
    );
    b.extend_from_slice(&[b'a'; 100]);
    b.extend_from_slice(&hex!("00 00"));
    b.extend_from_slice(b"next");
    assert_eq!(s.decode(&mut b).unwrap(), None);
    assert_eq!(
        &b[..],
        b"next",
        "exactly the rest of the frame is discarded"
    );
}

#[test]
fn empty_domain_is_frame_too_long() {
    let (mut s, mut b) = server_after_greeting();
    b.extend_from_slice(&hex!("05 01 00 03 00 0000"));
    assert!(matches!(
        s.decode(&mut b).unwrap_err(),
        Socks5Error::FrameTooLong { len: 0, .. }
    ));
}

#[test]
fn server_choosing_no_acceptable_method_is_an_error() {
    let mut c = ClientCodec::new();
    let mut b = BytesMut::from(&hex!("05 ff")[..]);
    assert!(matches!(
        c.decode(&mut b).unwrap_err(),
        Socks5Error::NoAcceptableMethod(0xff)
    ));
}

#[test]
fn failure_reply_is_failed_with_its_code() {
    let mut c = ClientCodec::new();
    let mut b = BytesMut::from(&method_bytes()[..]);
    b.extend_from_slice(&hex!("05 05 00 01 00000000 0000"));
    c.decode(&mut b).unwrap().unwrap();
    let e = c.decode(&mut b).unwrap_err();
    assert!(matches!(
        e,
        Socks5Error::Failed(ReplyCode::ConnectionRefused)
    ));
}

#[test]
fn decoder_never_consumes_past_one_frame() {
    let mut s = ServerCodec::new();
    let mut b = BytesMut::from(&greeting_bytes()[..]);
    b.extend(connect_bytes());
    b.extend_from_slice(b"data");
    s.decode(&mut b).unwrap().unwrap();
    assert_eq!(b.len(), connect_bytes().len() + 4);
    s.decode(&mut b).unwrap().unwrap();
    assert_eq!(&b[..], b"data");
    assert_eq!(s.decode(&mut b).unwrap(), None);
    assert_eq!(&b[..], b"data");
}

#[test]
fn arbitrary_bytes_never_panic() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(65);
    for _ in 0..20_000 {
        let n = rng.gen_range(0..300);
        let v: Vec<u8> = (0..n).map(|_| rng.r#gen()).collect();
        let mut s = ServerCodec::new();
        let mut b = BytesMut::from(&v[..]);
        while let Ok(Some(_)) = s.decode(&mut b) {}
        let mut c = ClientCodec::new();
        let mut b = BytesMut::from(&v[..]);
        while let Ok(Some(_)) = c.decode(&mut b) {}
    }
}

/// An io that records each write call and releases scripted reads only once enough writes
/// have happened, like a strict server (ejabberd) that answers only complete messages.
struct Strict {
    writes: Vec<Vec<u8>>,
    /// (writes needed before this read is released, bytes)
    reads: std::collections::VecDeque<(usize, Vec<u8>)>,
    waker: Option<std::task::Waker>,
}

impl tokio::io::AsyncRead for Strict {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let ready = matches!(self.reads.front(), Some((need, _)) if self.writes.len() >= *need);
        if ready {
            let (_, b) = self.reads.pop_front().unwrap();
            buf.put_slice(&b);
            return std::task::Poll::Ready(Ok(()));
        }
        if self.reads.is_empty() {
            return std::task::Poll::Ready(Ok(()));
        }
        self.waker = Some(cx.waker().clone());
        std::task::Poll::Pending
    }
}

impl tokio::io::AsyncWrite for Strict {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        self.writes.push(buf.to_vec());
        if let Some(w) = self.waker.take() {
            w.wake();
        }
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn the_client_sends_the_greeting_waits_then_the_whole_connect_in_one_write() {
    let mut io = Strict {
        writes: Vec::new(),
        reads: [(1, method_bytes()), (2, reply_bytes())]
            .into_iter()
            .collect(),
        waker: None,
    };
    let parts = crate::stream::client_handshake(&mut io, HASH, Duration::from_secs(5))
        .await
        .unwrap();
    drop(parts);
    assert_eq!(io.writes, vec![greeting_bytes(), connect_bytes()]);
}
