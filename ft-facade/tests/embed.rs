//! The embedding examples (`examples/embed_client.rs`, `examples/embed_component.rs`) run
//! against a real Prosody 0.12: an application that owns its connection receives a file and
//! sends one through `FileTransfer` on it, while its own handlers (ping, echo) keep working.
//! The peer is `bob`, logged in with `ft-transport`'s adapter and running `FileTransfer`.

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/embed_client.rs"]
mod embed_client;
#[allow(dead_code, unreachable_pub)]
#[path = "../examples/embed_component.rs"]
mod embed_component;

use std::net::{IpAddr, Ipv4Addr};
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Duration;

use ft_facade::{AcceptOptions, Config, FileTransfer, Method, MethodUsed, S5bRoute, SendOptions};
use ft_testkit::{PASSWORD, Prosody, ProsodyOptions};
use ft_transport::xmpp::XmppTransport;
use ft_transport::{Jid, Stanza, StanzaTransport};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::time::timeout;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::message::{Lang, Message, MessageType};
use xmpp_parsers::ping::Ping;

/// One transfer of a few hundred KiB through Prosody on a shared 2-core machine.
const BUDGET: Duration = Duration::from_secs(60);

use ft_testkit::content;

fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Everyone here dials loopback streamhosts (the default policy refuses them) and offers
/// its own on 127.0.0.1; `methods` is the preference (a receiver's picks the method: SI,
/// where the receiver chooses; under Jingle the sender's offer decides).
fn config(methods: &[Method]) -> Config {
    let mut c = Config::default();
    c.methods(methods)
        .s5b_route(S5bRoute::Direct)
        .stacks(&[ft_facade::Stack::Si]);
    c.s5b
        .listen(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)])
        .dial_policy(ft_facade::s5b::DialPolicy::allow_all());
    c
}

/// The peer: `bob/peer` on our adapter, with `FileTransfer` first and every other stanza
/// sent to the returned channel.
async fn bob(
    prosody: &Prosody,
) -> (
    FileTransfer<XmppTransport>,
    XmppTransport,
    mpsc::UnboundedReceiver<Stanza>,
) {
    let (transport, mut inbound) = prosody.connect("bob", "peer").await.unwrap();
    // The receiver picks the method by its own preference: Bob takes S5B, the application
    // (configured IBB first) IBB, so that both paths run through the application's connection.
    let ft = FileTransfer::new(transport.clone(), config(&[Method::S5b, Method::Ibb]));
    let (tx, rx) = mpsc::unbounded_channel();
    let pumped = ft.clone();
    tokio::spawn(async move {
        while let Some(stanza) = inbound.next().await {
            pumped.ready().await;
            if let ControlFlow::Continue(other) = pumped.handle_stanza(stanza) {
                let _ = tx.send(other);
            }
        }
    });
    (ft, transport, rx)
}

/// Bob pings `app` and sends it a chat message; the application's own handler must answer
/// both (the ping result, then `echo: <body>`).
async fn own_handler_answers(
    bob: &XmppTransport,
    others: &mut mpsc::UnboundedReceiver<Stanza>,
    app: &Jid,
    round: u32,
) {
    let id = format!("ping-{round}");
    bob.send(Iq::from_get(id.clone(), Ping).with_to(app.clone()).into())
        .await
        .unwrap();
    let body = format!("hello {round}");
    let chat = Message::new_with_type(MessageType::Chat, Some(app.clone()))
        .with_body(Lang::default(), body.clone());
    bob.send(chat.into()).await.unwrap();
    let (mut pong, mut echo) = (false, false);
    while !(pong && echo) {
        let stanza = timeout(Duration::from_secs(10), others.recv())
            .await
            .unwrap_or_else(|_| panic!("no answer to the ping/echo round {round} within 10 s"))
            .expect("bob's stream ended");
        match stanza {
            Stanza::Iq(Iq::Result { id: got, from, .. }) if got == id => {
                assert_eq!(from.as_ref(), Some(app));
                pong = true;
            }
            Stanza::Message(m) => {
                let (_, text) = m.get_best_body(vec![]).expect("a body");
                assert_eq!(text, &format!("echo: {body}"));
                assert_eq!(m.from.as_ref(), Some(app));
                echo = true;
            }
            other => panic!("unexpected stanza for bob: {other:?}"),
        }
    }
}

/// Bob sends `data` to `app`, which accepts it into `dir` (over IBB, in stanzas through the
/// application's connection); then `app_ft` sends `back` to Bob (over S5B, negotiated on
/// it). Both arrive whole (SHA-256).
async fn both_ways<T: StanzaTransport + Clone>(
    prosody: &Prosody,
    app_ft: &FileTransfer<T>,
    app: Jid,
    dir: &Path,
) {
    let (bob_ft, bob_tx, mut others) = bob(prosody).await;
    own_handler_answers(&bob_tx, &mut others, &app, 1).await;

    // Receive.
    let src = tempfile::tempdir().unwrap();
    let data = content(300 * 1024, 7);
    let path = src.path().join("to-app.bin");
    std::fs::write(&path, &data).unwrap();
    let sending = bob_ft.send_file(app.clone(), &path, SendOptions::default());
    let offer = timeout(BUDGET, app_ft.next_offer())
        .await
        .expect("the offer reaches the application")
        .unwrap();
    assert_eq!(offer.file().name, "to-app.bin");
    let received = timeout(
        BUDGET,
        offer.accept_into_dir(dir, AcceptOptions::new()).outcome(),
    )
    .await
    .expect("received within budget")
    .unwrap();
    timeout(BUDGET, sending.outcome()).await.unwrap().unwrap();
    assert_eq!(received.method, MethodUsed::IbbIq, "{received:?}");
    let on_disk = std::fs::read(received.path.as_ref().unwrap()).unwrap();
    assert_eq!(sha256(&on_disk), sha256(&data));
    assert_eq!(received.sha256, sha256(&data));

    // Its own handler still works after a transfer.
    own_handler_answers(&bob_tx, &mut others, &app, 2).await;

    // Send.
    let back = content(200 * 1024 + 17, 8);
    let back_path = src.path().join("from-app.bin");
    std::fs::write(&back_path, &back).unwrap();
    let bob_jid: Jid = bob_tx.jid().clone();
    let sending = app_ft.send_file(bob_jid, &back_path, SendOptions::default());
    let offer = timeout(BUDGET, bob_ft.next_offer())
        .await
        .expect("the application's offer reaches bob")
        .unwrap();
    assert_eq!(offer.from(), &app);
    let bob_dir = tempfile::tempdir().unwrap();
    let got = timeout(
        BUDGET,
        offer
            .accept_into_dir(bob_dir.path(), AcceptOptions::new())
            .outcome(),
    )
    .await
    .expect("bob receives within budget")
    .unwrap();
    let sent = timeout(BUDGET, sending.outcome()).await.unwrap().unwrap();
    assert!(
        matches!(&sent.method, MethodUsed::S5bDirect { streamhost } if streamhost.starts_with("127.0.0.1:")),
        "{sent:?}"
    );
    let on_disk = std::fs::read(got.path.as_ref().unwrap()).unwrap();
    assert_eq!(sha256(&on_disk), sha256(&back));
    assert_eq!(sent.sha256, sha256(&back));

    own_handler_answers(&bob_tx, &mut others, &app, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_with_its_own_tokio_xmpp_stream_receives_and_sends_files() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let jid: Jid = format!("{}/app", prosody.jid("alice")).parse().unwrap();
    let app = embed_client::start(
        jid,
        PASSWORD,
        prosody.c2s_addr(),
        config(&[Method::Ibb, Method::S5b]),
    )
    .await
    .unwrap();
    assert_eq!(app.jid.to_string(), "alice@localhost/app");
    let dir = tempfile::tempdir().unwrap();
    both_ways(&prosody, &app.ft, app.jid.clone(), dir.path()).await;
    assert!(
        !app.driver.is_finished(),
        "the stream's task is still running"
    );
    app.driver.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_receives_and_sends_files_beside_its_own_handler() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let app = embed_component::start(
        &prosody.component_jid(),
        prosody.component_secret(),
        prosody.component_addr(),
        config(&[Method::Ibb, Method::S5b]),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let jid: Jid = prosody.component_jid().into();
    both_ways(&prosody, &app.ft, jid, dir.path()).await;
    assert!(
        !app.driver.is_finished(),
        "the component's task is still running"
    );
    app.driver.abort();
}
