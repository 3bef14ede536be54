//! The process's file-descriptor limit: a proxy holds two sockets per relay and two per
//! waiting pair, so the usual soft limit of 1024 caps it at a few hundred relays.

use std::io;

/// Raises the soft limit on open file descriptors (`RLIMIT_NOFILE`) to the hard limit and
/// returns the limit now in force. Call it once at start: [`Proxy`](crate::Proxy) sizes
/// nothing from it, but every relay costs two descriptors (and two pipes while it moves
/// data, on Linux). When the process is out of descriptors anyway the accept loop closes
/// each new connection at once instead of stalling (BAD-INPUT E8).
///
/// On systems without `RLIMIT_NOFILE` it does nothing and returns `Ok(None)`.
///
/// ```
/// let limit = xep0065_proxy::raise_fd_limit().unwrap();
/// if let Some(n) = limit {
///     assert!(n >= 1);
/// }
/// ```
pub fn raise_fd_limit() -> io::Result<Option<u64>> {
    #[cfg(unix)]
    {
        rlimit::increase_nofile_limit(u64::MAX).map(Some)
    }
    #[cfg(not(unix))]
    {
        Ok(None)
    }
}
