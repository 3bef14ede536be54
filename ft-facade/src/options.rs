//! What the application chooses per transfer: [`SendOptions`] and [`AcceptOptions`].

use std::fmt;
use std::path::PathBuf;

use ft_transport::Sid;
use tokio::io::AsyncRead;

use crate::config::{IbbOptions, Method, S5bRoute};
use crate::event::FileInfo;

/// What to send and how, beyond the file itself.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SendOptions {
    /// A description (`<desc/>`).
    pub desc: Option<String>,
    /// Methods for this transfer only, instead of [`Config::methods`](crate::Config::methods).
    pub methods: Option<Vec<Method>>,
    /// The stream id; a random one (16 characters) when `None`.
    pub sid: Option<Sid>,
    /// How IBB opens for this transfer, instead of [`Config::ibb_options`](crate::Config::ibb_options).
    pub ibb: Option<IbbOptions>,
    /// How S5B picks its streamhosts for this transfer, instead of [`Config::s5b_route`](crate::Config::s5b_route).
    pub s5b_route: Option<S5bRoute>,
}

impl SendOptions {
    /// Sets the methods for this transfer.
    #[must_use]
    pub fn with_methods(mut self, methods: &[Method]) -> Self {
        self.methods = Some(methods.to_vec());
        self
    }

    /// Sets the description.
    #[must_use]
    pub fn with_desc(mut self, desc: impl Into<String>) -> Self {
        self.desc = Some(desc.into());
        self
    }

    /// Sets the stream id.
    #[must_use]
    pub fn with_sid(mut self, sid: Sid) -> Self {
        self.sid = Some(sid);
        self
    }

    /// Sets how IBB opens for this transfer.
    #[must_use]
    pub fn with_ibb(mut self, ibb: IbbOptions) -> Self {
        self.ibb = Some(ibb);
        self
    }

    /// Sets how S5B picks its streamhosts for this transfer.
    #[must_use]
    pub fn with_s5b_route(mut self, route: S5bRoute) -> Self {
        self.s5b_route = Some(route);
        self
    }
}

/// What a transfer reads from.
pub(crate) enum Source {
    Path(PathBuf),
    Reader(Box<dyn AsyncRead + Send + Unpin>, FileInfo),
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Path(p) => f.debug_tuple("Path").field(p).finish(),
            Self::Reader(_, i) => f.debug_tuple("Reader").field(i).finish(),
        }
    }
}

/// How to accept an offer.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AcceptOptions {
    /// Resume from an existing `<name>.part` in the directory (asks the sender for a
    /// `<range offset/>`; senders that do not announce ranges send the whole file, and the
    /// part is then started over). Default `true` via [`AcceptOptions::new`].
    pub resume: bool,
    /// Replace an existing file with the final name. Default `false`: a free
    /// `name (1).ext` is picked instead.
    pub overwrite: bool,
    /// Keep the `.part` when the transfer is cut, cancelled or fails in any other way (so a
    /// later accept resumes). Honoured also when the writer hangs and has to be abandoned.
    /// It is always deleted when its content is known to be wrong (too many bytes, hash
    /// mismatch) or when it is empty. Default `true`.
    pub keep_partial: bool,
    /// For [`IncomingOffer::accept_into`](crate::IncomingOffer::accept_into): the offset the writer already holds (the bytes
    /// before it are not sent). Default 0.
    pub offset: u64,
}

impl AcceptOptions {
    /// Resume on, overwrite off, keep partial files.
    pub fn new() -> Self {
        Self {
            resume: true,
            overwrite: false,
            keep_partial: true,
            offset: 0,
        }
    }

    /// Sets overwrite.
    #[must_use]
    pub fn with_overwrite(mut self, overwrite: bool) -> Self {
        self.overwrite = overwrite;
        self
    }

    /// Sets resume.
    #[must_use]
    pub fn with_resume(mut self, resume: bool) -> Self {
        self.resume = resume;
        self
    }

    /// Sets whether a cut or cancelled transfer keeps its `.part`.
    #[must_use]
    pub fn with_keep_partial(mut self, keep_partial: bool) -> Self {
        self.keep_partial = keep_partial;
        self
    }

    /// Sets the writer's offset (resume into a writer).
    #[must_use]
    pub fn with_offset(mut self, offset: u64) -> Self {
        self.offset = offset;
        self
    }
}
