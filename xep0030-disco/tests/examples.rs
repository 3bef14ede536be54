//! The crate's examples, run.

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/disco_alone.rs"]
mod disco_alone;

#[tokio::test]
async fn disco_alone_finds_the_proxy_and_the_peers_file_transfer_feature() {
    let (proxies, si) = disco_alone::run().await.unwrap();
    assert_eq!(
        proxies,
        ["proxy.example.org".parse::<ft_transport::Jid>().unwrap()]
    );
    assert!(si);
}
