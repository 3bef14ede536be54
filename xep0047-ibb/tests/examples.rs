//! The crate's examples, run.

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/ibb_alone.rs"]
mod ibb_alone;

#[tokio::test]
async fn ibb_alone_moves_every_byte_from_alice_to_bob() {
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    assert_eq!(ibb_alone::run(&data).await.unwrap(), data);
}
