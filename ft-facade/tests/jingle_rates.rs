//! Jingle next to SI on the same loopback, same file, same build: the streaming rate of
//! each (an indication, not the benchmark suite). Ignored by default:
//! `cargo test -p ft-facade --test jingle_rates -- --ignored --nocapture`.

mod common;

use std::time::Duration;

use common::*;
use ft_facade::{AcceptOptions, Method, SendOptions, Stack};
use ft_transport::hub::Hub;

async fn rate(stack: Stack, method: Method, data: &[u8]) -> (f64, Duration) {
    let hub = Hub::new();
    let mut a = jconfig(&[method]);
    a.stacks(&[stack]);
    let alice = entity(&hub, "alice@x/a", a);
    let bob = entity(&hub, "bob@x/b", jconfig(&[Method::S5b, Method::Ibb]));
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let path = write_file(src.path(), "r.bin", data);
    let t = std::time::Instant::now();
    let sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let offer = bob.next_offer().await.unwrap();
    assert_eq!(offer.stack(), stack);
    let received = offer
        .accept_into_dir(dst.path(), AcceptOptions::new())
        .outcome()
        .await
        .unwrap();
    let sent = sending.outcome().await.unwrap();
    assert_eq!(sent.stack, stack);
    assert_eq!(received.sha256, sha256_hex(data));
    (received.rate(), t.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn jingle_and_si_rates_side_by_side() {
    let data = content(32 << 20, 21);
    for method in [Method::S5b, Method::Ibb] {
        for stack in [Stack::Si, Stack::Jingle] {
            let (r, total) = rate(stack, method, &data).await;
            println!(
                "{stack:6} {method:3}: {:7.1} MB/s streaming, {:?} from send_file to the receiver's outcome",
                r / 1e6,
                total
            );
        }
    }
}
