//! Parse and serialize of each stanza kind the transfer stack exchanges: the SI file offer
//! (XEP-0095/0096), the S5B streamhost offer (XEP-0065), IBB open/data/close (XEP-0047) and
//! a disco#info result (XEP-0030). Parse is text → minidom element → our payload type;
//! serialize is payload type → element → text.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use minidom::Element;
use xep0047_ibb::payload::{Close, Data, Open, Sid};
use xep0065_s5b::payload::Offer;
use xep0095_si::payload::Si;
use xmpp_parsers::disco::DiscoInfoResult;

const SI_OFFER: &str = "<si xmlns='http://jabber.org/protocol/si' id='a0' mime-type='text/plain' \
    profile='http://jabber.org/protocol/si/profile/file-transfer'><file \
    xmlns='http://jabber.org/protocol/si/profile/file-transfer' name='test.txt' size='1022' \
    hash='552da749930852c69ae5d2141d3766b1' date='1969-07-21T02:56:15Z'><desc>This is a test. \
    If this were a real file...</desc><range/></file><feature xmlns='http://jabber.org/protocol/feature-neg'>\
    <x xmlns='jabber:x:data' type='form'><field var='stream-method' type='list-single'>\
    <option><value>http://jabber.org/protocol/bytestreams</value></option>\
    <option><value>http://jabber.org/protocol/ibb</value></option></field></x></feature></si>";

const S5B_QUERY: &str = "<query xmlns='http://jabber.org/protocol/bytestreams' sid='vxf9n471bn46' \
    mode='tcp'><streamhost jid='requester@example.com/foo' host='192.168.4.1' port='5086'/>\
    <streamhost jid='requester@example.com/foo' host='2001:db8::1' port='5086'/>\
    <streamhost jid='proxy.example.net' host='24.24.24.1' port='7777'/></query>";

const DISCO_INFO: &str = "<query xmlns='http://jabber.org/protocol/disco#info'>\
    <identity category='client' type='pc' name='xft'/>\
    <feature var='http://jabber.org/protocol/disco#info'/>\
    <feature var='http://jabber.org/protocol/si'/>\
    <feature var='http://jabber.org/protocol/si/profile/file-transfer'/>\
    <feature var='http://jabber.org/protocol/bytestreams'/>\
    <feature var='http://jabber.org/protocol/ibb'/></query>";

fn text_of(e: &Element) -> String {
    let mut out = Vec::new();
    e.write_to(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("xml_payloads");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));

    let sid = Sid::new("i781hf64").unwrap();
    let open = Open {
        block_size: 4096,
        sid: sid.clone(),
        stanza: xep0047_ibb::StanzaKind::Iq,
    }
    .to_element();
    let data = Data::encode(7, &sid, benches::pattern::slice_at(0, 4096));
    let close = Close { sid }.to_element();
    let cases: Vec<(&str, String)> = vec![
        ("si-offer", SI_OFFER.to_owned()),
        ("s5b-query", S5B_QUERY.to_owned()),
        ("ibb-open", text_of(&open)),
        ("ibb-data-4096", text_of(&data)),
        ("ibb-close", text_of(&close)),
        ("disco-info", DISCO_INFO.to_owned()),
    ];
    for (name, xml) in &cases {
        g.throughput(Throughput::Bytes(xml.len() as u64));
        g.bench_with_input(BenchmarkId::new("parse", name), xml, |b, xml| {
            b.iter(|| {
                let e: Element = black_box(xml.as_str()).parse().unwrap();
                match *name {
                    "si-offer" => black_box(Si::try_from(&e).unwrap().payloads.len()),
                    "s5b-query" => black_box(Offer::try_from(&e).unwrap().streamhosts.len()),
                    "ibb-open" => black_box(usize::from(Open::parse(&e).unwrap().block_size)),
                    "ibb-data-4096" => black_box(Data::parse(&e).unwrap().data.len()),
                    "ibb-close" => black_box(Close::parse(&e).unwrap().sid.as_str().len()),
                    _ => black_box(DiscoInfoResult::try_from(e).unwrap().features.len()),
                }
            })
        });
        let elem: Element = xml.parse().unwrap();
        g.bench_with_input(BenchmarkId::new("serialize", name), &elem, |b, elem| {
            let mut out = Vec::with_capacity(8192);
            b.iter(|| {
                out.clear();
                black_box(elem).write_to(&mut out).unwrap();
                black_box(&out);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
