//! The ceilings every figure is compared to, measured in the same run: raw loopback TCP, one
//! plain relay hop, and the CPU cost of IBB's base64 and XML.

use std::time::Instant;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use xep0047_ibb::payload::{Data, Sid};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;

use crate::measure::Run;
use crate::pattern::{self, IO_BUF, ReadOn, Verifier};
use ft_transport::codec::{self, XmlCodec};

/// Where every listener of the suite binds.
pub const LOOPBACK: &str = "127.0.0.1:0";

fn io_err(what: &str) -> impl FnOnce(std::io::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

async fn join_all(set: &mut JoinSet<Result<(), String>>) -> Result<(), String> {
    while let Some(r) = set.join_next().await {
        r.map_err(|e| format!("task failed: {e}"))??;
    }
    Ok(())
}

/// One transfer of `bytes` over a plain loopback TCP connection (tokio, 256 KiB reads and
/// writes), every byte checked; the writer on a runtime task, the reader where `on` says
/// (the rig of the cases it is the ceiling of).
pub async fn raw_tcp(bytes: u64, on: ReadOn) -> Result<Run, String> {
    let listener = TcpListener::bind(LOOPBACK).await.map_err(io_err("bind"))?;
    let addr = listener.local_addr().map_err(io_err("local_addr"))?;
    let mut set = JoinSet::new();
    let t0 = Instant::now();
    set.spawn(async move {
        let mut s = TcpStream::connect(addr).await.map_err(io_err("connect"))?;
        pattern::write_pattern(&mut s, bytes)
            .await
            .map_err(io_err("write"))
    });
    let (s, _) = listener.accept().await.map_err(io_err("accept"))?;
    let got = pattern::read_verify_on(on, s, bytes)
        .await
        .0
        .map_err(|e| e.to_string())?;
    let elapsed = t0.elapsed();
    join_all(&mut set).await?;
    Ok(Run {
        bytes: got,
        elapsed: Some(elapsed),
        latency: None,
    })
}

/// One transfer through a plain copy relay between two loopback sockets (sender → relay →
/// receiver, 256 KiB buffer): what one proxy hop costs at best without zero-copy.
pub async fn relay_hop(bytes: u64) -> Result<Run, String> {
    let sink = TcpListener::bind(LOOPBACK).await.map_err(io_err("bind"))?;
    let sink_addr = sink.local_addr().map_err(io_err("local_addr"))?;
    let relay = TcpListener::bind(LOOPBACK).await.map_err(io_err("bind"))?;
    let relay_addr = relay.local_addr().map_err(io_err("local_addr"))?;
    let mut set = JoinSet::new();
    let t0 = Instant::now();
    set.spawn(async move {
        let (inbound, _) = relay.accept().await.map_err(io_err("relay accept"))?;
        let mut outbound = TcpStream::connect(sink_addr)
            .await
            .map_err(io_err("relay connect"))?;
        let mut inbound = BufReader::with_capacity(IO_BUF, inbound);
        tokio::io::copy_buf(&mut inbound, &mut outbound)
            .await
            .map_err(io_err("relay copy"))?;
        outbound.shutdown().await.map_err(io_err("relay shutdown"))
    });
    set.spawn(async move {
        let mut s = TcpStream::connect(relay_addr)
            .await
            .map_err(io_err("connect"))?;
        pattern::write_pattern(&mut s, bytes)
            .await
            .map_err(io_err("write"))
    });
    let (mut s, _) = sink.accept().await.map_err(io_err("accept"))?;
    let got = pattern::read_verify(&mut s, bytes)
        .await
        .map_err(|e| e.to_string())?;
    let elapsed = t0.elapsed();
    join_all(&mut set).await?;
    Ok(Run {
        bytes: got,
        elapsed: Some(elapsed),
        latency: None,
    })
}

/// How much of the IBB data path a CPU ceiling includes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuPath {
    /// base64-simd encode and strict decode of each chunk.
    Base64,
    /// Build the `<data/>` iq, serialize and parse it through minidom (general path),
    /// decode: the cost a general DOM parser puts on IBB.
    XmlDom,
    /// The same with the shipped codec's `<data/>` fast path for serialize and parse.
    XmlFast,
}

/// Runs the IBB data path's CPU work for `bytes` in `block`-byte chunks on one core, every
/// chunk checked; no I/O.
pub fn cpu_path(path: CpuPath, bytes: u64, block: usize) -> Result<Run, String> {
    let sid = Sid::new("bench").unwrap();
    let from: jid::Jid = "a@bench.invalid/a".parse().map_err(|e| format!("{e}"))?;
    let to: jid::Jid = "b@bench.invalid/b".parse().map_err(|e| format!("{e}"))?;
    let mut verifier = Verifier::default();
    let mut wire = Vec::with_capacity(block * 2 + 512);
    let mut reader = XmlCodec::client()
        .header_received()
        .with_fast_path(path == CpuPath::XmlFast);
    let t0 = Instant::now();
    let mut off = 0u64;
    let mut seq = 0u16;
    while off < bytes {
        let n = (bytes - off).min(block as u64) as usize;
        let chunk = pattern::slice_at(off, n);
        let decoded = match path {
            CpuPath::Base64 => {
                let text = base64_simd::STANDARD.encode_to_string(chunk);
                xep0047_ibb::payload::decode_strict(text.as_bytes()).map_err(|e| e.to_string())?
            }
            CpuPath::XmlDom | CpuPath::XmlFast => {
                let stanza = Stanza::Iq(Iq::Set {
                    from: Some(from.clone()),
                    to: Some(to.clone()),
                    id: seq.to_string(),
                    payload: Data::encode(seq, &sid, chunk),
                });
                wire.clear();
                if path == CpuPath::XmlFast {
                    codec::serialize(&stanza, &mut wire);
                } else {
                    codec::serialize_general(&stanza, &mut wire);
                }
                let Stanza::Iq(Iq::Set { payload, .. }) =
                    reader.parse_stanza(&wire).map_err(|e| e.to_string())?
                else {
                    return Err("parsed stanza is not an iq set".to_owned());
                };
                Data::parse(&payload).map_err(|e| e.to_string())?.data
            }
        };
        verifier.check(&decoded).map_err(|e| e.to_string())?;
        off += chunk.len() as u64;
        seq = seq.wrapping_add(1);
    }
    let elapsed = t0.elapsed();
    Ok(Run {
        bytes: verifier.finish(bytes).map_err(|e| e.to_string())?,
        elapsed: Some(elapsed),
        latency: None,
    })
}

/// One transfer of IBB `<data/>` iq stanzas over a raw XML stream on loopback, sent as fast
/// as the stream takes them and never acknowledged: the stanza transport's own ceiling (real
/// serialization, TCP and parsing, no IBB window). The receiver runs on a runtime task, as
/// in the IBB cases.
pub async fn raw_xml_pump(bytes: u64, block: usize) -> Result<Run, String> {
    use ft_transport::StanzaTransport;
    let a: jid::Jid = "a@bench.invalid/a".parse().map_err(|e| format!("{e}"))?;
    let b: jid::Jid = "b@bench.invalid/b".parse().map_err(|e| format!("{e}"))?;
    let ((transport, _a_in), (_b, mut b_in)) = crate::transfer::serverless_pair(a, b.clone())
        .await
        .map_err(|e| e.to_string())?;
    let mut set = JoinSet::new();
    let t0 = Instant::now();
    set.spawn(async move {
        let sid = Sid::new("pump").unwrap();
        let mut off = 0u64;
        let mut seq = 0u16;
        while off < bytes {
            let n = (bytes - off).min(block as u64) as usize;
            // A chunk ends early where the pattern wraps; the next one starts there.
            let chunk = pattern::slice_at(off, n);
            let payload = Data::encode(seq, &sid, chunk);
            let iq = Iq::Set {
                from: None,
                to: Some(b.clone()),
                id: seq.to_string(),
                payload,
            };
            transport
                .send(Stanza::Iq(iq))
                .await
                .map_err(|e| e.to_string())?;
            off += chunk.len() as u64;
            seq = seq.wrapping_add(1);
        }
        drop(transport);
        Ok(())
    });
    let reader = tokio::spawn(async move {
        let mut verifier = Verifier::default();
        while verifier.received() < bytes {
            match b_in.next().await {
                Some(Stanza::Iq(Iq::Set { payload, .. })) => {
                    let data = Data::parse(&payload).map_err(|e| e.to_string())?;
                    verifier.check(&data.data).map_err(|e| e.to_string())?;
                }
                Some(other) => return Err(format!("unexpected stanza {other:?}")),
                None => break,
            }
        }
        verifier.finish(bytes).map_err(|e| e.to_string())
    });
    let got = reader.await.map_err(|e| format!("reader task: {e}"))?;
    let elapsed = t0.elapsed();
    join_all(&mut set).await?;
    Ok(Run {
        bytes: got?,
        elapsed: Some(elapsed),
        latency: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn socket_ceilings_move_every_byte() {
        for on in [ReadOn::Caller, ReadOn::Task] {
            assert_eq!(raw_tcp(3 << 20, on).await.unwrap().bytes, 3 << 20);
        }
        assert_eq!(relay_hop(3 << 20).await.unwrap().bytes, 3 << 20);
        // Crosses the pattern's 1 MiB wrap in the middle of a chunk.
        assert_eq!(raw_xml_pump(3 << 20, 65535).await.unwrap().bytes, 3 << 20);
    }

    #[test]
    fn cpu_ceilings_round_trip_every_chunk() {
        for path in [CpuPath::Base64, CpuPath::XmlDom, CpuPath::XmlFast] {
            assert_eq!(
                cpu_path(path, (1 << 20) + 70_000, 65535).unwrap().bytes,
                (1 << 20) + 70_000,
                "{path:?}"
            );
        }
    }
}
