//! SOCKS5 codec (XEP-0065 §5.3, RFC 1928 subset): encoding and decoding the greeting, the
//! CONNECT request with its 40-character DST.ADDR, and the reply, as each side does once
//! per bytestream.

use std::hint::black_box;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio_util::codec::{Decoder, Encoder};
use xep0065_s5b::codec::{Addr, ClientCodec, Greeting, Reply, Request, ServerCodec};
use xep0065_s5b::wire::ReplyCode;

const DST: &str = "98b8d688d0f5d895fd41c5e7309a2e9e33ba32ff";

fn client_bytes(msgs: impl FnOnce(&mut ClientCodec, &mut BytesMut)) -> BytesMut {
    let mut buf = BytesMut::new();
    msgs(&mut ClientCodec::new(), &mut buf);
    buf
}

fn bench(c: &mut Criterion) {
    let greeting = client_bytes(|c, b| c.encode(Greeting::no_auth(), b).unwrap());
    let handshake = client_bytes(|c, b| {
        c.encode(Greeting::no_auth(), b).unwrap();
        c.encode(Request::connect_s5b(DST), b).unwrap();
    });
    let reply = Reply {
        code: ReplyCode::Succeeded,
        addr: Addr::Domain(DST.as_bytes().to_vec()),
        port: 0,
    };
    let mut server_side = BytesMut::new();
    let mut sc = ServerCodec::new();
    sc.encode(xep0065_s5b::codec::MethodSelection(0), &mut server_side)
        .unwrap();
    sc.encode(reply.clone(), &mut server_side).unwrap();

    let mut g = c.benchmark_group("socks5_codec");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));

    g.throughput(Throughput::Bytes(greeting.len() as u64));
    g.bench_function("encode/greeting", |b| {
        let mut buf = BytesMut::with_capacity(64);
        b.iter(|| {
            buf.clear();
            ClientCodec::new()
                .encode(black_box(Greeting::no_auth()), &mut buf)
                .unwrap();
            black_box(&buf);
        })
    });
    g.bench_function("decode/greeting", |b| {
        b.iter(|| {
            let mut src = greeting.clone();
            black_box(ServerCodec::new().decode(black_box(&mut src)).unwrap())
        })
    });

    let connect = Request::connect_s5b(DST);
    g.throughput(Throughput::Bytes((handshake.len() - greeting.len()) as u64));
    g.bench_function("encode/connect", |b| {
        let mut buf = BytesMut::with_capacity(64);
        b.iter(|| {
            buf.clear();
            ClientCodec::new()
                .encode(black_box(connect.clone()), &mut buf)
                .unwrap();
            black_box(&buf);
        })
    });
    g.throughput(Throughput::Bytes(handshake.len() as u64));
    g.bench_function("decode/greeting+connect", |b| {
        b.iter(|| {
            let mut src = handshake.clone();
            let mut codec = ServerCodec::new();
            let first = codec.decode(&mut src).unwrap();
            let second = codec.decode(&mut src).unwrap();
            black_box((first, second))
        })
    });

    g.throughput(Throughput::Bytes(server_side.len() as u64 - 2));
    g.bench_function("encode/reply", |b| {
        let mut buf = BytesMut::with_capacity(64);
        b.iter(|| {
            buf.clear();
            ServerCodec::new()
                .encode(black_box(reply.clone()), &mut buf)
                .unwrap();
            black_box(&buf);
        })
    });
    g.throughput(Throughput::Bytes(server_side.len() as u64));
    g.bench_function("decode/method+reply", |b| {
        b.iter(|| {
            let mut src = server_side.clone();
            let mut codec = ClientCodec::new();
            let first = codec.decode(&mut src).unwrap();
            let second = codec.decode(&mut src).unwrap();
            black_box((first, second))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
