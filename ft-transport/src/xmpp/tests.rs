//! Unit tests of the adapters' pieces; the sessions themselves are tested against Prosody
//! (`tests/`, `interop/`) and on a loopback stream (`tests/serverless.rs`).

use std::io;

use jid::Jid;
use xmpp_parsers::iq::Iq;

use super::component::{MAX_COMPONENT_HEADER, VersionedHeader};
use super::{ClientOptions, Error, Server, connect_client, inbound};
use crate::codec::{Incoming, XmlCodec};

#[test]
fn plaintext_is_only_for_loopback_servers() {
    assert!(Server::Addr("127.0.0.1:5222".parse().unwrap()).is_loopback());
    assert!(Server::Addr("[::1]:5222".parse().unwrap()).is_loopback());
    assert!(
        Server::HostPort {
            host: "localhost".into(),
            port: 5222
        }
        .is_loopback()
    );
    assert!(!Server::Addr("192.0.2.1:5222".parse().unwrap()).is_loopback());
    assert!(
        !Server::HostPort {
            host: "example.org".into(),
            port: 5222
        }
        .is_loopback()
    );
    assert!(!Server::Srv.is_loopback());
}

#[tokio::test]
async fn plaintext_to_a_remote_server_is_refused_before_connecting() {
    let options = ClientOptions::new(
        "a@example.org".parse().unwrap(),
        "pw",
        Server::Addr("192.0.2.1:5222".parse().unwrap()),
    )
    .with_plaintext(true);
    let err = connect_client(options).await.unwrap_err();
    assert!(matches!(err, Error::PlaintextNotLoopback(ref s) if s == "192.0.2.1:5222"));
}

#[test]
fn options_debug_hides_the_password() {
    let options = ClientOptions::new("a@localhost".parse().unwrap(), "hunter2", Server::Srv);
    assert!(!format!("{options:?}").contains("hunter2"));
}

async fn read_through_versioned_header(input: &[u8], chunk: usize) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut builder = tokio_test::io::Builder::new();
    for part in input.chunks(chunk) {
        builder.read(part);
    }
    let mut reader = VersionedHeader::new(builder.build());
    let mut out = Vec::new();
    reader.read_to_end(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn component_header_without_version_gets_one_at_every_split_point() {
    let input = b"<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' id='abc' from='c.localhost'><handshake/>";
    let expected = b"<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' id='abc' from='c.localhost' version='1.0'><handshake/>";
    for chunk in 1..=input.len() {
        assert_eq!(
            read_through_versioned_header(input, chunk).await,
            expected.to_vec(),
            "chunk size {chunk}"
        );
    }
}

#[tokio::test]
async fn component_header_with_a_version_and_later_bytes_pass_unchanged() {
    let input = b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' version='1.0' id='x'><iq/>stream:stream>";
    assert_eq!(
        read_through_versioned_header(input, 7).await,
        input.to_vec()
    );
}

#[tokio::test]
async fn component_header_that_never_ends_is_invalid_data() {
    use tokio::io::AsyncReadExt;
    // The reader takes 1 KiB at a time; one chunk past the limit is refused.
    let junk = [b'a'; 1024];
    let mut builder = tokio_test::io::Builder::new();
    for _ in 0..=MAX_COMPONENT_HEADER / 1024 {
        builder.read(&junk);
    }
    let mut reader = VersionedHeader::new(builder.build());
    let mut out = Vec::new();
    let err = reader.read_to_end(&mut out).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
}

#[test]
fn only_the_servers_pings_are_answered_by_the_adapter() {
    let own: Jid = "alice@localhost/r".parse().unwrap();
    let ping = |from: &str| {
        let xml = format!(
            "<iq xmlns='jabber:client' type='get' id='p' {from}><ping xmlns='urn:xmpp:ping'/></iq>"
        );
        let mut codec = XmlCodec::client().header_received();
        let Ok(Incoming::Stanza(stanza)) = codec.decode_element(xml.as_bytes()) else {
            panic!()
        };
        inbound::answer_server_ping(&stanza, &own)
    };
    let Some(Iq::Result {
        id, to, payload, ..
    }) = ping("from='localhost'")
    else {
        panic!("server ping not answered")
    };
    assert_eq!(
        (id.as_str(), to.unwrap().to_string(), payload),
        ("p", "localhost".into(), None)
    );
    assert!(ping("").is_some());
    assert!(ping("from='alice@localhost'").is_some());
    assert!(
        ping("from='bob@localhost/x'").is_none(),
        "peers' pings go to the handlers"
    );
    assert!(ping("from='other.example'").is_none());
}
