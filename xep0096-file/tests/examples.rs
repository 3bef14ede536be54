//! The crate's examples, run.

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/si_file_offer.rs"]
mod si_file_offer;

use xep0096_file::Range;

#[tokio::test]
async fn si_file_offer_is_accepted_over_ibb_with_the_range_bob_asked_for() {
    let seen = si_file_offer::run("../notes.txt", b"hello, bob", 4)
        .await
        .unwrap();
    assert_eq!(seen.safe_name, "notes.txt");
    assert_eq!(seen.size, Some(10));
    assert_eq!(seen.method, xep0095_si::method::IBB);
    assert_eq!(seen.range, Some(Range::from_offset(4)));
}
