//! Property tests: whatever methods are offered, the offer and every answer survive the wire.

use minidom::Element;
use proptest::prelude::*;
use xep0095_si::{Answer, Offer, Si, Sid, offer_iq, parse_answer};
use xmpp_parsers::iq::Iq;

fn method() -> impl Strategy<Value = String> {
    "[a-z]{1,8}(:[a-z0-9/#.-]{1,12}){0,3}"
}

proptest! {
    #[test]
    fn offered_methods_and_the_chosen_one_survive_the_wire(
        methods in prop::collection::vec(method(), 1..6),
        sid in "[A-Za-z0-9_-]{1,20}",
        pick in any::<prop::sample::Index>(),
    ) {
        let refs: Vec<&str> = methods.iter().map(String::as_str).collect();
        let file = Element::bare("file", "urn:p");
        let si = Si::offer(&Sid::new(sid.clone()).unwrap(), file, &refs);
        let iq = offer_iq("o", "b@x/1".parse().unwrap(), si).unwrap();
        let iq = Iq::try_from(Element::from(iq)).unwrap();
        let offer = Offer::from_iq(&iq).unwrap();
        let mut dedup: Vec<String> = Vec::new();
        for m in &methods {
            if !dedup.contains(m) {
                dedup.push(m.clone());
            }
        }
        prop_assert_eq!(&offer.methods, &dedup);
        prop_assert_eq!(offer.sid.as_str(), sid.as_str());
        let chosen = pick.get(&dedup).clone();
        let answer = Iq::try_from(Element::from(offer.accept(&chosen).unwrap())).unwrap();
        let Answer::Accepted(a) = parse_answer(&dedup, &answer).unwrap() else {
            return Err(TestCaseError::fail("not accepted"));
        };
        prop_assert_eq!(a.method, chosen);
    }
}
