//! Login settings from the flags, the environment and the config file, in that order.
//!
//! The config file is `--config FILE`, else `$XDG_CONFIG_HOME/xft/config.toml`, else
//! `~/.config/xft/config.toml` (read only when it exists):
//!
//! ```toml
//! server = "xmpp.example.org:5222"
//! jid = "alice@example.org/laptop"
//! password_command = "pass show xmpp/alice"   # or: password_file = "~/.config/xft/password"
//! # plaintext = true                           # loopback servers only
//! dir = "~/Downloads"                          # xft recv's default --dir
//! dial = "lan"                                 # xft recv's default --dial
//! stack = "auto"                               # xft send's default --stack: auto, jingle, si
//! ```
//!
//! The password: `--password-file` (or `--password`, with a warning), then `XFT_PASSWORD`,
//! then the config file's `password_command` (run with `sh -c`, the first line of its
//! output) or `password_file`, then a prompt when stdin is a terminal.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::BoxError;
use crate::args::{Account, Dial, StackChoice};

/// How long a `password_command` may take (it may ask for a passphrase itself).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// The config file's fields; every one is optional, unknown ones are an error (a typo
/// should not silently fall back to a default).
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    /// `HOST:PORT`.
    pub(crate) server: Option<String>,
    /// Our JID.
    pub(crate) jid: Option<String>,
    /// A shell command whose first line of output is the password.
    pub(crate) password_command: Option<String>,
    /// A file whose first line is the password (`~/` and paths relative to the config
    /// file's directory are resolved).
    pub(crate) password_file: Option<PathBuf>,
    /// Log in without TLS (loopback servers only).
    pub(crate) plaintext: Option<bool>,
    /// `xft recv`'s default `--dir`.
    pub(crate) dir: Option<PathBuf>,
    /// `xft recv`'s default `--dial`: `public`, `lan` or `any`.
    pub(crate) dial: Option<String>,
    /// `xft send`'s default `--stack`: `auto`, `jingle` or `si`.
    pub(crate) stack: Option<String>,
}

/// What the process environment contributes (passed in, so tests need not touch it).
#[derive(Debug, Default, Clone)]
pub(crate) struct Env {
    pub(crate) password: Option<String>,
    pub(crate) xdg_config_home: Option<PathBuf>,
    pub(crate) home: Option<PathBuf>,
}

impl Env {
    /// `XFT_PASSWORD`, `XDG_CONFIG_HOME` and `HOME` of this process (empty ones ignored).
    pub(crate) fn from_process() -> Self {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        Self {
            password: var("XFT_PASSWORD").and_then(|v| v.into_string().ok()),
            xdg_config_home: var("XDG_CONFIG_HOME").map(PathBuf::from),
            home: var("HOME").map(PathBuf::from),
        }
    }

    fn expand(&self, p: &Path) -> PathBuf {
        match (p.strip_prefix("~"), &self.home) {
            (Ok(rest), Some(home)) => home.join(rest),
            _ => p.to_owned(),
        }
    }
}

/// The config file in use: its path and contents (default contents when there is none).
#[derive(Debug, Default, Clone)]
pub(crate) struct Loaded {
    pub(crate) path: Option<PathBuf>,
    pub(crate) file: FileConfig,
}

/// Reads `--config FILE` (which must exist), else the default path when it exists.
pub(crate) fn load(explicit: Option<&Path>, env: &Env) -> Result<Loaded, BoxError> {
    let (path, required) = match explicit {
        Some(p) => (env.expand(p), true),
        None => match env
            .xdg_config_home
            .clone()
            .or_else(|| env.home.as_ref().map(|h| h.join(".config")))
        {
            Some(base) => (base.join("xft").join("config.toml"), false),
            None => return Ok(Loaded::default()),
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Loaded::default());
        }
        Err(e) => return Err(format!("config file {}: {e}", path.display()).into()),
    };
    let mut file: FileConfig =
        toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))?;
    if let Some(pf) = file.password_file.take() {
        let pf = env.expand(&pf);
        let base = path.parent().unwrap_or(Path::new("."));
        file.password_file = Some(if pf.is_relative() { base.join(pf) } else { pf });
    }
    file.dir = file.dir.map(|d| env.expand(&d));
    Ok(Loaded {
        path: Some(path),
        file,
    })
}

/// Where the password came from (never the password itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PasswordSource {
    /// `--password`.
    Flag,
    /// `--password-file`.
    FlagFile(PathBuf),
    /// `XFT_PASSWORD`.
    Env,
    /// The config file's `password_command`.
    Command,
    /// The config file's `password_file`.
    ConfigFile(PathBuf),
    /// Typed at the prompt.
    Prompt,
}

/// The login settings, resolved.
#[derive(Clone)]
pub(crate) struct Login {
    pub(crate) server: String,
    pub(crate) jid: String,
    pub(crate) password: String,
    pub(crate) source: PasswordSource,
    pub(crate) plaintext: bool,
    /// What the user should hear about (printed on stderr by the caller).
    pub(crate) warnings: Vec<String>,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("server", &self.server)
            .field("jid", &self.jid)
            .field("password", &"<redacted>")
            .field("source", &self.source)
            .field("plaintext", &self.plaintext)
            .finish()
    }
}

/// The warning `--password` earns.
pub(crate) const PASSWORD_FLAG_WARNING: &str = "--password is visible to every local user \
     (ps, /proc/PID/cmdline); use --password-file, XFT_PASSWORD, password_command in the \
     config file, or the prompt";

/// Resolves the login: flag > environment > config file, then the prompt on a terminal.
pub(crate) async fn login(
    account: &Account,
    loaded: &Loaded,
    env: &Env,
) -> Result<Login, BoxError> {
    let cfg = &loaded.file;
    let named = |what: &str| match &loaded.path {
        Some(p) => format!(
            "no {what}: give --{what} or set `{what}` in {}",
            p.display()
        ),
        None => format!(
            "no {what}: give --{what} or set `{what}` in the config file \
             (~/.config/xft/config.toml)"
        ),
    };
    let server = account
        .server
        .clone()
        .or_else(|| cfg.server.clone())
        .ok_or_else(|| named("server"))?;
    let jid = account
        .jid
        .clone()
        .or_else(|| cfg.jid.clone())
        .ok_or_else(|| named("jid"))?;
    let mut warnings = Vec::new();
    let (password, source) = if let Some(p) = &account.password {
        warnings.push(PASSWORD_FLAG_WARNING.to_owned());
        (p.clone(), PasswordSource::Flag)
    } else if let Some(f) = &account.password_file {
        warnings.extend(readable_by_others(f));
        (read_password_file(f)?, PasswordSource::FlagFile(f.clone()))
    } else if let Some(p) = &env.password {
        (p.clone(), PasswordSource::Env)
    } else {
        match (&cfg.password_command, &cfg.password_file) {
            (Some(_), Some(_)) => {
                return Err(
                    "the config file sets both password_command and password_file: keep one".into(),
                );
            }
            (Some(cmd), None) => (run_password_command(cmd).await?, PasswordSource::Command),
            (None, Some(f)) => {
                warnings.extend(readable_by_others(f));
                (
                    read_password_file(f)?,
                    PasswordSource::ConfigFile(f.clone()),
                )
            }
            (None, None) if std::io::stdin().is_terminal() => {
                let prompt = format!("password for {jid}: ");
                let p = tokio::task::spawn_blocking(move || rpassword::prompt_password(prompt))
                    .await?
                    .map_err(|e| format!("cannot read the password: {e}"))?;
                (p, PasswordSource::Prompt)
            }
            (None, None) => {
                return Err(
                    "no password: give --password-file FILE, set XFT_PASSWORD, or \
                            set password_command or password_file in the config file \
                            (stdin is not a terminal, so there is no prompt)"
                        .into(),
                );
            }
        }
    };
    Ok(Login {
        server,
        jid,
        password,
        source,
        plaintext: account.plaintext || cfg.plaintext.unwrap_or(false),
        warnings,
    })
}

/// `xft recv`'s `--dial`: the flag, else the config file's `dial`, else `public`.
pub(crate) fn dial(flag: Option<Dial>, cfg: &FileConfig) -> Result<Dial, BoxError> {
    use clap::ValueEnum;
    match (flag, &cfg.dial) {
        (Some(d), _) => Ok(d),
        (None, Some(s)) => Dial::from_str(s, true).map_err(|_| {
            format!("config file: dial = {s:?} is not one of public, lan, any").into()
        }),
        (None, None) => Ok(Dial::Public),
    }
}

/// `xft send`'s `--stack`: the flag, else the config file's `stack`, else `auto`.
pub(crate) fn stack(flag: Option<StackChoice>, cfg: &FileConfig) -> Result<StackChoice, BoxError> {
    use clap::ValueEnum;
    match (flag, &cfg.stack) {
        (Some(s), _) => Ok(s),
        (None, Some(s)) => StackChoice::from_str(s, true).map_err(|_| {
            format!("config file: stack = {s:?} is not one of auto, jingle, si").into()
        }),
        (None, None) => Ok(StackChoice::Auto),
    }
}

/// `xft recv`'s `--dir`: the flag, else the config file's `dir`, else `.`.
pub(crate) fn dir(flag: Option<&Path>, cfg: &FileConfig) -> PathBuf {
    flag.map(Path::to_owned)
        .or_else(|| cfg.dir.clone())
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A warning when other local users may read the password file (as ssh warns about keys).
fn readable_by_others(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode();
        (mode & 0o077 != 0).then(|| {
            format!(
                "password file {} is readable by other users (mode {:o}); chmod 600 it",
                path.display(),
                mode & 0o777
            )
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// The first line of `path`, without its line end.
fn read_password_file(path: &Path) -> Result<String, BoxError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("password file {}: {e}", path.display()))?;
    let line = first_line(&text);
    if line.is_empty() {
        return Err(format!("password file {} is empty", path.display()).into());
    }
    Ok(line.to_owned())
}

fn first_line(text: &str) -> &str {
    text.split('\n').next().unwrap_or("").trim_end_matches('\r')
}

/// Runs `cmd` with `sh -c` (stdin and stderr the terminal's, so it may ask for a
/// passphrase), bounded by [`COMMAND_TIMEOUT`]; the first line of its output.
async fn run_password_command(cmd: &str) -> Result<String, BoxError> {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("password_command: cannot run sh: {e}"))?;
    let out = tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| format!("password_command did not finish within {COMMAND_TIMEOUT:?}"))??;
    if !out.status.success() {
        return Err(format!("password_command failed ({})", out.status).into());
    }
    let text = String::from_utf8(out.stdout)
        .map_err(|_| "password_command printed something that is not UTF-8")?;
    let line = first_line(&text);
    if line.is_empty() {
        return Err("password_command printed no password".into());
    }
    Ok(line.to_owned())
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
