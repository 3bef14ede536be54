//! The writer task: coalesces small stanzas into one write and sends large ones (an IBB
//! `<data/>` with its text still in the stanza) with vectored writes.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;

use crate::codec::{Direction, EncodedStanza, XmlLog, redact};

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
    log: Option<Arc<dyn XmlLog>>,
) {
    let mut w = BufWriter::with_capacity(WRITE_BUFFER, w);
    if let Err(e) = write_loop(&mut w, &mut user, &mut own, header, log.as_deref()).await {
        tracing::debug!(error = %e, "xmpp stream writer stopped");
        return;
    }
    // Refuse further sends right away, then say goodbye.
    drop(user);
    if let Some(log) = &log {
        log.record(Direction::Out, "</stream:stream>");
    }
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
    log: Option<&dyn XmlLog>,
) -> io::Result<()> {
    if let Some(h) = header {
        if let Some(log) = log {
            log.record(Direction::Out, &String::from_utf8_lossy(&h));
        }
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
            if let Some(log) = log {
                log_frame(log, &frame);
            }
            write_frame(w, &frame).await?;
            next = own.try_recv().or_else(|_| user.try_recv()).ok();
        }
        w.flush().await?;
    }
}

/// Logs an outbound stanza; a `<data/>` on the fast path is shortened without looking at
/// its text.
fn log_frame(log: &dyn XmlLog, frame: &EncodedStanza) {
    let [head, text, tail] = frame.parts();
    if frame.is_fast() {
        let head = String::from_utf8_lossy(head);
        let tail = String::from_utf8_lossy(tail);
        log.record(
            Direction::Out,
            &format!("{head}[{} base64 chars]{tail}", text.len()),
        );
    } else {
        log.record(Direction::Out, &redact(head));
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
