//! Two tokio drivers over real loopback TCP: a file's bytes directly and through our own
//! proxy (`xep0065-proxy`, in process on 127.0.0.1), SHA-256 equal on disk.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ft_transport::StanzaTransport;
use ft_transport::hub::{Hub, HubReceiver, HubTransport};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use xep0065_proxy::{Proxy, ProxyConfig};
use xep0065_s5b::codec::Socks5Error;
use xep0065_s5b::stream::client_handshake;
use xep0065_s5b::wire::ReplyCode;
use xep0065_s5b::{Config, DialPolicy, Sid};
use xep0260_jingle_s5b::proto::{Negotiation, Role};
use xep0260_jingle_s5b::{
    Driver, DriverError, Error, Established, InputError, Kind, Listener, LocalCandidates,
    Signalling, negotiate,
};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jingle_s5b::Transport;
use xmpp_parsers::stanza::Stanza;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const SIZE: usize = 8 << 20;

fn jid(s: &str) -> jid::Jid {
    s.parse().unwrap()
}

fn config() -> Config {
    let mut c = Config::default();
    // Both ends on this host: loopback allowed on purpose (the default refuses it).
    c.dial_policy(DialPolicy::new(|_, _, a| a.ip().is_loopback()));
    c.connect_budget(Duration::from_secs(5));
    c
}

/// transport-info over channels; the activation iq over the hub (where the proxy is).
struct Sig {
    to_peer: mpsc::UnboundedSender<Transport>,
    from_peer: mpsc::UnboundedReceiver<Transport>,
    verdicts: Vec<Result<(), InputError>>,
    hub: Option<(HubTransport, HubReceiver)>,
}

impl Signalling for Sig {
    async fn send(&mut self, t: Transport) -> Result<(), BoxError> {
        self.to_peer.send(t).map_err(|e| e.to_string().into())
    }
    async fn recv(&mut self) -> Option<Transport> {
        self.from_peer.recv().await
    }
    fn verdict(&mut self, v: Result<(), InputError>) {
        self.verdicts.push(v);
    }
    async fn activate(&mut self, iq: Iq) -> Result<Iq, BoxError> {
        let (t, rx) = self.hub.as_mut().ok_or("no hub")?;
        let id = iq.id().to_owned();
        t.send(Stanza::Iq(iq)).await?;
        while let Some(s) = rx.recv().await {
            if let Stanza::Iq(answer) = s
                && answer.id() == id
            {
                return Ok(answer);
            }
        }
        Err("hub closed".into())
    }
}

fn pair() -> (Sig, Sig) {
    let (a_tx, a_rx) = mpsc::unbounded_channel();
    let (b_tx, b_rx) = mpsc::unbounded_channel();
    let sig = |to_peer, from_peer| Sig {
        to_peer,
        from_peer,
        verdicts: vec![],
        hub: None,
    };
    (sig(b_tx, a_rx), sig(a_tx, b_rx))
}

/// A file of `SIZE` deterministic bytes on disk.
fn source_file(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let data: Vec<u8> = (0..SIZE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let p = dir.path().join("source.bin");
    std::fs::write(&p, data).unwrap();
    p
}

fn sha256_file(p: &std::path::Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(p).unwrap()).to_vec()
}

/// A sends the file over its stream, B writes what it reads to disk; the digests match.
async fn move_file(a: Established, b: Established) {
    let dir = tempfile::tempdir().unwrap();
    let src = source_file(&dir);
    let dst = dir.path().join("received.bin");
    let send = async move {
        let mut s = a.stream;
        let mut f = tokio::fs::File::open(&src).await.unwrap();
        tokio::io::copy(&mut f, &mut s).await.unwrap();
        s.shutdown().await.unwrap();
        src
    };
    let dst2 = dst.clone();
    let recv = async move {
        let mut s = b.stream;
        let mut f = tokio::fs::File::create(&dst2).await.unwrap();
        let n = tokio::io::copy(&mut s, &mut f).await.unwrap();
        f.flush().await.unwrap();
        n
    };
    let (src, n) =
        tokio::time::timeout(Duration::from_secs(60), async { tokio::join!(send, recv) })
            .await
            .unwrap();
    assert_eq!(n as usize, SIZE);
    assert_eq!(sha256_file(&src), sha256_file(&dst));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_drivers_move_a_file_directly_over_loopback() {
    let c = config();
    let sid = Sid::new("direct-1").unwrap();
    let (la, lb) = (
        Listener::bind(&[LOOPBACK], 0, Duration::from_secs(5))
            .await
            .unwrap(),
        Listener::bind(&[LOOPBACK], 0, Duration::from_secs(5))
            .await
            .unwrap(),
    );
    let cand = |l: &Listener| LocalCandidates {
        direct: l.local_addrs().to_vec(),
        proxies: vec![],
    };
    let (alice, bob) = (jid("alice@example.org/a"), jid("bob@example.org/b"));
    let na = Negotiation::new(
        &c,
        Role::Initiator,
        alice.clone(),
        bob.clone(),
        sid.clone(),
        &cand(&la),
    );
    let nb = Negotiation::new(&c, Role::Responder, bob, alice, sid, &cand(&lb));
    // Bound to their listeners before their transports go out.
    let (mut da, mut db) = (Driver::new(na, Some(&la)), Driver::new(nb, Some(&lb)));
    assert_eq!(la.routes() + lb.routes(), 2);
    // session-initiate: B gets A's candidates; session-accept: A gets B's (through recv).
    let now = tokio::time::Instant::now().into_std();
    let offer = da.negotiation().local_transport();
    db.negotiation().handle_transport(now, offer).unwrap();
    let (mut sa, mut sb) = pair();
    sb.to_peer.send(db.negotiation().local_transport()).unwrap();
    let (ra, rb) = tokio::join!(da.run(&mut sa, &c), db.run(&mut sb, &c));
    let (a, b) = (ra.unwrap(), rb.unwrap());
    // Equal priorities: the initiator's choice (B's candidate) is the bytestream.
    assert!(!a.ours && b.ours && a.candidate.kind == Kind::Direct);
    assert!(sa.verdicts.iter().chain(&sb.verdicts).all(Result::is_ok));
    assert_eq!(la.routes() + lb.routes(), 0, "routes released");
    move_file(a, b).await;
}

async fn in_process_proxy(hub: &Hub) -> Proxy {
    let mut pc = ProxyConfig::new(jid("proxy.example.org"));
    pc.listen = vec![SocketAddr::new(LOOPBACK, 0)];
    pc.allowed_domains = vec!["example.org".into()];
    let proxy = Proxy::bind(pc).await.unwrap();
    let (pt, mut prx) = hub.connect(jid("proxy.example.org"));
    proxy.serve(pt);
    let p2 = proxy.clone();
    tokio::spawn(async move {
        while let Some(st) = prx.recv().await {
            let _ = p2.handle_stanza(st);
        }
    });
    proxy
}

/// A loopback port nothing listens on.
fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind((LOOPBACK, 0)).unwrap();
    l.local_addr().unwrap()
}

/// The side that offers the proxy (`initiator_offers`) has no other candidate; the other
/// offers only a closed port: the proxy is the one candidate that works. The offerer
/// activates it (from its own JID, over the hub) and announces `<activated/>`.
async fn through_our_proxy(initiator_offers: bool) {
    let c = config();
    let hub = Hub::new();
    let proxy = in_process_proxy(&hub).await;
    let with_proxy = LocalCandidates {
        direct: vec![],
        proxies: proxy.streamhosts().to_vec(),
    };
    let closed = LocalCandidates {
        direct: vec![closed_port()],
        proxies: vec![],
    };
    let (ca, cb) = if initiator_offers {
        (with_proxy, closed)
    } else {
        (closed, with_proxy)
    };
    let sid = Sid::new("proxied-1").unwrap();
    let (alice, bob) = (jid("alice@example.org/a"), jid("bob@example.org/b"));
    let na = Negotiation::new(
        &c,
        Role::Initiator,
        alice.clone(),
        bob.clone(),
        sid.clone(),
        &ca,
    );
    let mut nb = Negotiation::new(&c, Role::Responder, bob.clone(), alice.clone(), sid, &cb);
    nb.handle_transport(tokio::time::Instant::now().into_std(), na.local_transport())
        .unwrap();
    let (mut sa, mut sb) = pair();
    sa.hub = Some(hub.connect(alice));
    sb.hub = Some(hub.connect(bob));
    sb.to_peer.send(nb.local_transport()).unwrap();
    let (ra, rb) = tokio::join!(
        negotiate(na, None, &mut sa, &c),
        negotiate(nb, None, &mut sb, &c)
    );
    let (a, b) = (ra.unwrap(), rb.unwrap());
    assert_eq!((a.ours, b.ours), (initiator_offers, !initiator_offers));
    assert!(a.candidate.kind == Kind::Proxy && b.candidate.kind == Kind::Proxy);
    move_file(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_drivers_move_a_file_through_the_initiators_proxy() {
    through_our_proxy(true).await;
}

/// The responder's proxy: DST.ADDR is SHA1(sid + responder + initiator) on both sides,
/// which is also what the proxy computes from the responder's activation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_drivers_move_a_file_through_the_responders_proxy() {
    through_our_proxy(false).await;
}

/// Nothing connects on either side: both drivers end with `Failed(NoCandidate)` (the
/// facade's cue for transport-replace to IBB) well within the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sides_unreachable_fail_both_drivers_with_no_candidate() {
    let c = config();
    let sid = Sid::new("dead-1").unwrap();
    let (alice, bob) = (jid("alice@example.org/a"), jid("bob@example.org/b"));
    let closed = |p| LocalCandidates {
        direct: vec![p],
        proxies: vec![],
    };
    let na = Negotiation::new(
        &c,
        Role::Initiator,
        alice.clone(),
        bob.clone(),
        sid.clone(),
        &closed(closed_port()),
    );
    let mut nb = Negotiation::new(&c, Role::Responder, bob, alice, sid, &closed(closed_port()));
    nb.handle_transport(tokio::time::Instant::now().into_std(), na.local_transport())
        .unwrap();
    let (mut sa, mut sb) = pair();
    sb.to_peer.send(nb.local_transport()).unwrap();
    let t0 = std::time::Instant::now();
    let (ra, rb) = tokio::join!(
        negotiate(na, None, &mut sa, &c),
        negotiate(nb, None, &mut sb, &c)
    );
    for r in [ra, rb] {
        assert!(
            matches!(r, Err(DriverError::Failed(Error::NoCandidate { .. }))),
            "{r:?}"
        );
    }
    assert!(t0.elapsed() < c.connect_budget, "{:?}", t0.elapsed());
}

/// BAD-INPUT J30: on the wire, our listener answers a SOCKS5 CONNECT whose DST.ADDR is not
/// a negotiation's with reply 04 (host unreachable) and hands nothing to anyone.
#[tokio::test]
async fn j30_our_listener_refuses_an_unknown_dst_addr_with_host_unreachable() {
    let l = Listener::bind(&[LOOPBACK], 0, Duration::from_secs(5))
        .await
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(l.local_addrs()[0])
        .await
        .unwrap();
    let r = client_handshake(tcp, &"ab".repeat(20), Duration::from_secs(5)).await;
    assert!(
        matches!(r, Err(Socks5Error::Failed(ReplyCode::HostUnreachable))),
        "{r:?}"
    );
    // Not even a 40-hex-digit name: refused before any lookup (not allowed).
    let tcp = tokio::net::TcpStream::connect(l.local_addrs()[0])
        .await
        .unwrap();
    let r = client_handshake(tcp, "not-a-hash", Duration::from_secs(5)).await;
    assert!(
        matches!(r, Err(Socks5Error::Failed(ReplyCode::NotAllowed))),
        "{r:?}"
    );
}

/// Cancel from the application: dropping a running negotiation (here: the peer never
/// answers, and the caller's own timeout drops it) releases the listener's route and the
/// sockets; a later connection with its DST.ADDR is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_running_negotiation_releases_its_route() {
    let c = config();
    let l = Listener::bind(&[LOOPBACK], 0, Duration::from_secs(5))
        .await
        .unwrap();
    let local = LocalCandidates {
        direct: l.local_addrs().to_vec(),
        proxies: vec![],
    };
    let (alice, bob) = (jid("alice@example.org/a"), jid("bob@example.org/b"));
    let n = Negotiation::new(
        &c,
        Role::Initiator,
        alice,
        bob,
        Sid::new("drop-1").unwrap(),
        &local,
    );
    let hash = n.local_dst_addr();
    let d = Driver::new(n, Some(&l));
    assert_eq!(l.routes(), 1);
    let (mut sa, _sb) = pair();
    let r = tokio::time::timeout(Duration::from_millis(200), d.run(&mut sa, &c)).await;
    assert!(r.is_err(), "still waiting for session-accept");
    assert_eq!(l.routes(), 0);
    let tcp = tokio::net::TcpStream::connect(l.local_addrs()[0])
        .await
        .unwrap();
    let r = client_handshake(tcp, &hash, Duration::from_secs(5)).await;
    assert!(
        matches!(r, Err(Socks5Error::Failed(ReplyCode::HostUnreachable))),
        "{r:?}"
    );
}

/// A's candidate is on the wire before its listener is up (what Gajim 1.7.3 does under
/// load): B's first dial is refused; with `redial_refused` B dials again and the file
/// moves once A listens, 250 ms later, on the port it offered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_whose_listener_comes_up_late_is_dialled_again_and_connects() {
    let c = config();
    let sid = Sid::new("late-1").unwrap();
    let addr = {
        let l = Listener::bind(&[LOOPBACK], 0, Duration::from_secs(5))
            .await
            .unwrap();
        l.local_addrs()[0]
    };
    let (alice, bob) = (jid("alice@example.org/a"), jid("bob@example.org/b"));
    let ours = LocalCandidates {
        direct: vec![addr],
        proxies: vec![],
    };
    let na = Negotiation::new(
        &c,
        Role::Initiator,
        alice.clone(),
        bob.clone(),
        sid.clone(),
        &ours,
    );
    let mut nb = Negotiation::new(
        &c,
        Role::Responder,
        bob,
        alice,
        sid,
        &LocalCandidates::default(),
    );
    nb.redial_refused(3, Duration::from_millis(100));
    let now = tokio::time::Instant::now().into_std();
    nb.handle_transport(now, na.local_transport()).unwrap();
    let (mut sa, mut sb) = pair();
    sb.to_peer.send(nb.local_transport()).unwrap();
    let db = Driver::new(nb, None);
    let b = db.run(&mut sb, &c);
    let a = async {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let la = Listener::bind(&[LOOPBACK], addr.port(), Duration::from_secs(5))
            .await
            .unwrap();
        let da = Driver::new(na, Some(&la));
        da.run(&mut sa, &c).await
    };
    let (rb, ra) = tokio::join!(b, a);
    let (a, b) = (ra.unwrap(), rb.unwrap());
    assert!(a.ours && !b.ours && a.candidate.kind == Kind::Direct);
    move_file(a, b).await;
}
