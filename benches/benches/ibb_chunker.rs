//! IBB chunk cost (XEP-0047): base64 encode and strict decode of one chunk at 4096 and
//! 65535 bytes with base64-simd (what `xep0047-ibb` uses) against the `base64` crate, and
//! the whole `<data/>` stanza: build and serialize, parse and decode, through the general
//! DOM path and through the suite's raw-stream fast path.

use std::hint::black_box;
use std::time::Duration;

use base64::Engine as _;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ft_transport::codec::{self as xmlstream, XmlCodec};
use xep0047_ibb::payload::{self, Data, Sid};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;

fn data_iq(seq: u16, sid: &Sid, chunk: &[u8]) -> Stanza {
    Stanza::Iq(Iq::Set {
        from: Some("alice@example.org/a".parse().unwrap()),
        to: Some("bob@example.org/b".parse().unwrap()),
        id: format!("ibb-{seq}"),
        payload: Data::encode(seq, sid, chunk),
    })
}

fn bench(c: &mut Criterion) {
    let sid = Sid::new("i781hf64").unwrap();
    let mut g = c.benchmark_group("ibb_chunker");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    for size in [4096usize, 65535] {
        let chunk = benches::pattern::slice_at(0, size).to_vec();
        let text = base64_simd::STANDARD.encode_to_string(&chunk);
        g.throughput(Throughput::Bytes(size as u64));

        g.bench_with_input(
            BenchmarkId::new("encode/base64-simd", size),
            &chunk,
            |b, chunk| {
                b.iter(|| black_box(base64_simd::STANDARD.encode_to_string(black_box(chunk))))
            },
        );
        g.bench_with_input(
            BenchmarkId::new("encode/base64", size),
            &chunk,
            |b, chunk| {
                b.iter(|| {
                    black_box(base64::engine::general_purpose::STANDARD.encode(black_box(chunk)))
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("decode/base64-simd-strict", size),
            &text,
            |b, text| {
                b.iter(|| black_box(payload::decode_strict(black_box(text.as_bytes())).unwrap()))
            },
        );
        g.bench_with_input(BenchmarkId::new("decode/base64", size), &text, |b, text| {
            b.iter(|| {
                black_box(
                    base64::engine::general_purpose::STANDARD
                        .decode(black_box(text.as_bytes()))
                        .unwrap(),
                )
            })
        });

        g.bench_with_input(
            BenchmarkId::new("stanza/build+serialize", size),
            &chunk,
            |b, chunk| {
                let mut out = Vec::with_capacity(size * 2);
                b.iter(|| {
                    out.clear();
                    xmlstream::serialize(&data_iq(7, &sid, black_box(chunk)), &mut out);
                    black_box(&out);
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("stanza/build+serialize-dom", size),
            &chunk,
            |b, chunk| {
                let mut out = Vec::with_capacity(size * 2);
                b.iter(|| {
                    out.clear();
                    xmlstream::serialize_general(&data_iq(7, &sid, black_box(chunk)), &mut out);
                    black_box(&out);
                })
            },
        );
        let mut wire = Vec::new();
        xmlstream::serialize(&data_iq(7, &sid, &chunk), &mut wire);
        for (name, fast) in [
            ("stanza/parse+decode-fast", true),
            ("stanza/parse+decode-dom", false),
        ] {
            let mut parser = XmlCodec::client().header_received().with_fast_path(fast);
            g.bench_with_input(BenchmarkId::new(name, size), &wire, |b, wire| {
                b.iter(|| {
                    let Stanza::Iq(Iq::Set { payload, .. }) =
                        parser.parse_stanza(black_box(wire)).unwrap()
                    else {
                        unreachable!()
                    };
                    black_box(Data::parse(&payload).unwrap())
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
