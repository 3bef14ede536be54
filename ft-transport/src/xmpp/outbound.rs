//! The writer task: coalesces small stanzas into one write and sends large ones (an IBB
//! `<data/>` with its text still in the stanza) with vectored writes.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;

use crate::codec::EncodedStanza;

/// Stanzas at least this long skip the writer's buffer.
const DIRECT_WRITE: usize = 16 * 1024;

/// Size of the writer's buffer.
const WRITE_BUFFER: usize = 256 * 1024;

/// How long closing the stream may take once we are done.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Writes what `user` (the transports) and `own` (the reader's answers) queue until the
/// transports are all dropped or the reader ends, then closes the stream with
/// `</stream:stream>`. A write failure ends the task: the queues close, so later sends fail.
pub(super) async fn run<W: AsyncWrite + Unpin>(
    w: W,
    mut user: mpsc::Receiver<EncodedStanza>,
    mut own: mpsc::Receiver<EncodedStanza>,
    header: Option<Vec<u8>>,
) {
    let mut w = BufWriter::with_capacity(WRITE_BUFFER, w);
    if let Err(e) = write_loop(&mut w, &mut user, &mut own, header).await {
        tracing::debug!(error = %e, "xmpp stream writer stopped");
        return;
    }
    // Refuse further sends right away, then say goodbye.
    drop(user);
    let close = async {
        w.write_all(b"</stream:stream>").await?;
        w.flush().await?;
        w.shutdown().await
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, close).await;
}

async fn write_loop<W: AsyncWrite + Unpin>(
    w: &mut BufWriter<W>,
    user: &mut mpsc::Receiver<EncodedStanza>,
    own: &mut mpsc::Receiver<EncodedStanza>,
    header: Option<Vec<u8>>,
) -> io::Result<()> {
    if let Some(h) = header {
        w.write_all(&h).await?;
        w.flush().await?;
    }
    loop {
        let first = tokio::select! {
            biased;
            frame = own.recv() => match frame {
                Some(frame) => frame,
                // The reader ended: the stream is over.
                None => return Ok(()),
            },
            frame = user.recv() => match frame {
                Some(frame) => frame,
                None => return Ok(()),
            },
        };
        let mut next = Some(first);
        while let Some(frame) = next {
            write_frame(w, &frame).await?;
            next = own.try_recv().or_else(|_| user.try_recv()).ok();
        }
        w.flush().await?;
    }
}

async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut BufWriter<W>,
    frame: &EncodedStanza,
) -> io::Result<()> {
    let parts = frame.parts();
    if frame.len() < DIRECT_WRITE {
        for part in parts {
            w.write_all(part).await?;
        }
    } else {
        // Large stanzas go straight to the socket: no copy into the buffer.
        w.flush().await?;
        write_all_vectored(w.get_mut(), parts).await?;
    }
    Ok(())
}

/// Writes all of `parts` with as few vectored writes as the socket allows.
async fn write_all_vectored<W: AsyncWrite + Unpin>(
    w: &mut W,
    mut parts: [&[u8]; 3],
) -> io::Result<()> {
    let mut first = 0;
    while first < parts.len() {
        if parts[first].is_empty() {
            first += 1;
            continue;
        }
        let slices = parts.map(io::IoSlice::new);
        let mut n = w.write_vectored(&slices[first..]).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while n > 0 {
            let take = n.min(parts[first].len());
            parts[first] = &parts[first][take..];
            n -= take;
            if parts[first].is_empty() {
                first += 1;
            }
        }
    }
    Ok(())
}
