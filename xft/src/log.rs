//! Diagnostics: `-v` / `-vv` / `-q` and `RUST_LOG` for the `tracing` events of every crate
//! (on stderr, never on stdout, where `--json` rows go), and `--xml-log FILE` (or `-`), the
//! stanza console: every element in and out, the login included, one per line with a
//! timestamp and its direction, SASL payloads and passwords redacted, IBB payloads
//! shortened to their length (see `ft_transport::codec::redact`).

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use clap::Args;
use ft_transport::codec::{Direction, XmlLog};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};

use crate::BoxError;

/// Our crates: `-v` sets them to `debug`, `-vv` to `trace`; every other crate stays at
/// `warn`.
const OUR_CRATES: &[&str] = &[
    "xft",
    "ft_facade",
    "ft_transport",
    "xep0030_disco",
    "xep0047_ibb",
    "xep0065_s5b",
    "xep0065_proxy",
    "xep0095_si",
    "xep0096_file",
];

/// Logging flags, global (before or after the subcommand).
#[derive(Debug, Args)]
pub(crate) struct LogArgs {
    /// More diagnostics on stderr: `-v` login stages, transfer stages, S5B candidates,
    /// fallbacks, errors with reasons; `-vv` everything. `RUST_LOG` (tracing's
    /// env-filter syntax, such as `xep0065_s5b=trace`) replaces both.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Errors only on stderr (no warnings).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Write every XML element in and out, the login included, to FILE (`-`: stderr): a
    /// timestamp, `<<` (in) or `>>` (out), the element on one line; SASL payloads,
    /// passwords and the component handshake redacted, IBB payloads shortened to their
    /// length.
    #[arg(long, value_name = "FILE", global = true)]
    xml_log: Option<PathBuf>,
}

static XML_LOG: OnceLock<Arc<dyn XmlLog>> = OnceLock::new();

/// The stanza console `--xml-log` asked for, for the connections to log to.
pub(crate) fn xml_log() -> Option<Arc<dyn XmlLog>> {
    XML_LOG.get().cloned()
}

impl LogArgs {
    /// Installs the stderr subscriber and opens the XML log. Call once, first thing.
    pub(crate) fn init(&self) -> Result<(), BoxError> {
        let filter = match std::env::var("RUST_LOG") {
            Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(&directives)
                .map_err(|e| format!("RUST_LOG={directives:?}: {e}"))?,
            _ => EnvFilter::try_new(self.directives())?,
        };
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(io::stderr)
            .with_ansi(io::stderr().is_terminal())
            .try_init()?;
        if let Some(path) = &self.xml_log {
            let _ = XML_LOG.set(Arc::new(XmlLogWriter::open(path)?));
        }
        Ok(())
    }

    /// The filter when `RUST_LOG` is not set.
    fn directives(&self) -> String {
        let level = match (self.quiet, self.verbose) {
            (true, _) => return "error".to_owned(),
            (false, 0) => return "warn".to_owned(),
            (false, 1) => "debug",
            (false, _) => "trace",
        };
        let mut d = String::from("warn");
        for krate in OUR_CRATES {
            d.push_str(&format!(",{krate}={level}"));
        }
        d
    }
}

/// `--xml-log`'s sink: one line per element, flushed at once (the log is complete however
/// the process ends).
struct XmlLogWriter {
    out: Mutex<Box<dyn Write + Send>>,
    target: String,
}

impl std::fmt::Debug for XmlLogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XmlLogWriter")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl XmlLogWriter {
    fn open(path: &Path) -> Result<Self, BoxError> {
        let (out, target): (Box<dyn Write + Send>, String) = if path == Path::new("-") {
            (Box::new(io::stderr()), "stderr".to_owned())
        } else {
            let file =
                File::create(path).map_err(|e| format!("--xml-log {}: {e}", path.display()))?;
            (
                Box::new(io::BufWriter::new(file)),
                path.display().to_string(),
            )
        };
        Ok(Self {
            out: Mutex::new(out),
            target,
        })
    }

    fn line(&self, mark: &str, text: &str) {
        let mut stamp = String::new();
        let _ = SystemTime.format_time(&mut Writer::new(&mut stamp));
        // A poisoned lock only means another thread panicked mid-line: keep logging.
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(out, "{stamp} {mark} {text}");
        let _ = out.flush();
    }
}

impl XmlLog for XmlLogWriter {
    fn record(&self, direction: Direction, xml: &str) {
        self.line(direction.arrow(), xml);
    }

    fn note(&self, text: &str) {
        self.line("--", text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        log: LogArgs,
    }

    fn directives(args: &[&str]) -> String {
        let mut argv = vec!["xft"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).unwrap().log.directives()
    }

    #[test]
    fn verbosity_flags_set_our_crates_and_leave_the_rest_at_warn() {
        assert_eq!(directives(&[]), "warn");
        assert_eq!(directives(&["-q"]), "error");
        let v = directives(&["-v"]);
        assert!(v.starts_with("warn,xft=debug,ft_facade=debug"), "{v}");
        assert!(
            v.contains("xep0065_s5b=debug") && !v.contains("trace"),
            "{v}"
        );
        let vv = directives(&["-vv"]);
        assert!(
            vv.contains("ft_transport=trace") && vv.starts_with("warn,"),
            "{vv}"
        );
        assert!(Cli::try_parse_from(["xft", "-v", "-q"]).is_err());
    }
}
