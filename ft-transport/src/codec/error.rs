//! What the codec fails with.

use std::io;

use xmpp_parsers::stream_error::DefinedCondition;

/// What decoding or encoding the stream can fail with. Every variant ends the stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The socket failed.
    #[error("xml stream i/o failed")]
    Io(#[from] io::Error),
    /// The stream ended in the middle of an element or before its header.
    #[error("xml stream ended inside an element")]
    UnexpectedEof,
    /// An element grew past the size limit (the `FrameTooLong` of this codec).
    #[error("top-level element larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// An element nests deeper than the limit.
    #[error("element nested deeper than {limit}")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// A comment, processing instruction or DTD, which RFC 6120 §11.1 forbids.
    #[error("restricted xml (comment, processing instruction or dtd) at byte {offset}")]
    Restricted {
        /// Offset in the stream.
        offset: u64,
    },
    /// The bytes are not well-formed XML.
    #[error("malformed xml: {0}")]
    NotWellFormed(String),
    /// The stream did not open with a `<stream:stream>` header in the streams namespace
    /// and the expected default namespace.
    #[error("missing or invalid stream header")]
    BadHeader,
    /// A top-level element is not an iq, message or presence the parsers accept (only
    /// from [`XmlCodec::parse_stanza`](super::XmlCodec::parse_stanza); the decoder hands such elements on as
    /// [`Incoming::Malformed`](super::Incoming::Malformed)).
    #[error("top-level element is not a valid stanza: {0}")]
    NotAStanza(String),
    /// The peer sent a stream error (its condition's element name).
    #[error("peer sent a stream error: {0}")]
    StreamError(String),
}

impl CodecError {
    /// The RFC 6120 stream error condition this failure calls for, where one applies.
    pub fn condition(&self) -> Option<DefinedCondition> {
        Some(match self {
            Self::TooLarge { .. } | Self::TooDeep { .. } => DefinedCondition::PolicyViolation,
            Self::Restricted { .. } => DefinedCondition::RestrictedXml,
            Self::NotWellFormed(_) => DefinedCondition::NotWellFormed,
            Self::BadHeader => DefinedCondition::InvalidNamespace,
            Self::NotAStanza(_) => DefinedCondition::UnsupportedStanzaType,
            Self::Io(_) | Self::UnexpectedEof | Self::StreamError(_) => return None,
        })
    }
}
