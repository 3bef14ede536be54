//! The crate's examples, run.

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/s5b_alone.rs"]
mod s5b_alone;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s5b_alone_moves_every_byte_over_a_loopback_socks5_connection() {
    let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 253) as u8).collect();
    let (got, streamhost) = s5b_alone::run(&data).await.unwrap();
    assert!(got == data, "{} bytes differ", got.len());
    assert!(streamhost.contains("127.0.0.1"), "{streamhost}");
}
