//! The driver's locking: a woken reader or writer never finds the session locked by
//! whoever woke it.

use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, Wake};

use ft_transport::hub::Hub;
use tokio::io::{AsyncWriteExt, ReadBuf};

use super::*;

/// A waker that, when woken, notes whether the session's lock was free.
struct Probe {
    shared: Arc<Shared>,
    /// 0: not woken yet, 1: woken with the lock free, 2: woken under the lock.
    seen: AtomicU8,
}

impl Wake for Probe {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let free = self.shared.cell.try_lock().is_ok();
        let _ = self.seen.compare_exchange(
            0,
            if free { 1 } else { 2 },
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_reader_is_woken_after_the_chunk_is_stored_and_the_lock_released() {
    let hub = Hub::new();
    let a_jid: Jid = "alice@example.org/a".parse().unwrap();
    let b_jid: Jid = "bob@example.org/b".parse().unwrap();
    let (at, arx) = hub.connect(a_jid.clone());
    let (bt, brx) = hub.connect(b_jid.clone());
    let (a, b) = (
        Ibb::new(at, Config::default()),
        Ibb::new(bt, Config::default()),
    );
    for (ibb, rx) in [(a.clone(), arx), (b.clone(), brx)] {
        tokio::spawn(ft_transport::pump(rx, move |st| ibb.handle_stanza(st)));
    }
    let sid = Sid::new("wake-probe").unwrap();
    let accept = b.expect(a_jid, sid.clone(), Duration::from_secs(5));
    let (sa, sb) = tokio::join!(a.open(b_jid, sid, OpenOptions::default()), accept);
    let (mut sa, mut sb) = (sa.unwrap(), sb.unwrap());

    // The reader waits with the probe as its waker.
    let probe = Arc::new(Probe {
        shared: sb.shared.clone(),
        seen: AtomicU8::new(0),
    });
    let waker = Waker::from(probe.clone());
    let mut cx = Context::from_waker(&waker);
    let mut buf = [0u8; 64];
    let mut rb = ReadBuf::new(&mut buf);
    assert!(Pin::new(&mut sb).poll_read(&mut cx, &mut rb).is_pending());

    // A chunk arrives through b's pump, which stores it and wakes the reader.
    sa.write_all(b"one chunk").await.unwrap();
    sa.flush().await.unwrap();
    assert_eq!(
        probe.seen.load(Ordering::SeqCst),
        1,
        "woken under the session's lock"
    );
    let mut rb = ReadBuf::new(&mut buf);
    assert!(matches!(
        Pin::new(&mut sb).poll_read(&mut cx, &mut rb),
        Poll::Ready(Ok(()))
    ));
    assert_eq!(rb.filled(), b"one chunk");
}
