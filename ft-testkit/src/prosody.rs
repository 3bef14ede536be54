//! A real Prosody server in a temporary directory, on free loopback ports.

use std::fmt;
use std::fs;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ft_transport::xmpp::{
    ClientInbound, ClientOptions, ClientTransport, ComponentInbound, ComponentTransport, Server,
    connect_client, connect_component,
};
use jid::{BareJid, Jid};
use tempfile::TempDir;

use crate::error::{Error, io};
use crate::tls::TestCa;

/// The password every account gets unless [`ProsodyOptions::with_account`] says otherwise.
pub const PASSWORD: &str = "xft-password";

/// What [`Prosody::start`] sets up.
#[derive(Debug, Clone)]
pub struct ProsodyOptions {
    /// The virtual host. Default `localhost`: resolves nowhere else, and every JID in the
    /// rig (`alice@localhost`, `proxy.localhost`) is then obviously local.
    pub domain: String,
    /// Accounts to register before start, as (user, password). Default: `alice`, `bob` and
    /// `carol` with [`PASSWORD`], enough for a sender, a receiver and a third party.
    pub accounts: Vec<(String, String)>,
    /// Load `mod_proxy65` as `proxy.<domain>` on 127.0.0.1. Default `true`.
    pub proxy65: bool,
    /// The XEP-0114 component `<name>.<domain>` our own proxy attaches as, and its secret.
    /// Default `xftproxy` / `xft-component-secret`.
    pub component: (String, String),
    /// Lua appended to the global section (after our settings, so it can override them).
    /// Default empty.
    pub extra_global_config: String,
    /// Log at `debug` level (every stanza; slow under IBB load). Default `false` (`info`).
    pub debug_log: bool,
    /// How long Prosody may take to open its ports. Default 20 s: it takes about half a
    /// second here, but the machine is shared with parallel builds.
    pub startup_timeout: Duration,
    /// Serve STARTTLS with a certificate for the domain issued by a fresh [`TestCa`]
    /// ([`Prosody::ca`]), and require it (`c2s_require_encryption`, no plain auth without
    /// TLS). Default `false`: plaintext only, no STARTTLS offered.
    pub tls: bool,
}

impl Default for ProsodyOptions {
    fn default() -> Self {
        Self {
            domain: "localhost".into(),
            accounts: ["alice", "bob", "carol"]
                .iter()
                .map(|u| ((*u).to_owned(), PASSWORD.to_owned()))
                .collect(),
            proxy65: true,
            component: ("xftproxy".into(), "xft-component-secret".into()),
            extra_global_config: String::new(),
            debug_log: false,
            startup_timeout: Duration::from_secs(20),
            tls: false,
        }
    }
}

impl ProsodyOptions {
    /// Adds an account.
    #[must_use]
    pub fn with_account(mut self, user: &str, password: &str) -> Self {
        self.accounts.push((user.into(), password.into()));
        self
    }

    /// Appends Lua to the global section.
    #[must_use]
    pub fn with_extra_global_config(mut self, lua: &str) -> Self {
        self.extra_global_config.push_str(lua);
        self.extra_global_config.push('\n');
        self
    }

    /// Logs every stanza.
    #[must_use]
    pub fn with_debug_log(mut self, debug: bool) -> Self {
        self.debug_log = debug;
        self
    }

    /// Serves and requires STARTTLS with a certificate from a test CA (see [`Self::tls`]).
    #[must_use]
    pub fn with_tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }
}

/// A running Prosody, stopped (by its pid) and removed when dropped.
///
/// Its config lifts what would get in the way of file transfer tests: plaintext c2s on
/// loopback, no `mod_limits` (Debian's default throttles c2s to 10 kB/s), Nagle off,
/// 64 KiB network reads. Every port is a free loopback port picked at start, so tests run
/// in parallel and never meet a system Prosody on 5222.
pub struct Prosody {
    options: ProsodyOptions,
    child: Option<Child>,
    ca: Option<TestCa>,
    c2s_port: u16,
    component_port: u16,
    proxy65_port: u16,
    // Last: removed after the process is gone.
    dir: TempDir,
}

impl fmt::Debug for Prosody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prosody")
            .field("domain", &self.options.domain)
            .field("pid", &self.pid())
            .field("c2s_port", &self.c2s_port)
            .field("component_port", &self.component_port)
            .field("proxy65_port", &self.proxy65_port)
            .field("dir", &self.dir.path())
            .finish()
    }
}

impl Prosody {
    /// Writes a config into a new temporary directory, registers the accounts, starts
    /// `prosody -F` (as the `prosody` user when we are root; Prosody refuses to run as root)
    /// and waits until every port it serves is open.
    ///
    /// Retries with new ports when another process took one in between (the ports are
    /// picked free, then handed to Prosody).
    pub fn start(options: ProsodyOptions) -> Result<Self, Error> {
        let prosody = which("prosody")?;
        let prosodyctl = which("prosodyctl")?;
        let setpriv = if is_root() {
            which("setpriv")?
        } else {
            PathBuf::new()
        };
        let mut last = None;
        for _ in 0..5 {
            match Self::try_start(&options, &prosody, &prosodyctl, &setpriv) {
                Ok(p) => return Ok(p),
                Err(StartAttempt::PortTaken(e)) => last = Some(e),
                Err(StartAttempt::Fatal(e)) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Startup {
            reason: "no attempt made".into(),
            log: String::new(),
        }))
    }

    fn try_start(
        options: &ProsodyOptions,
        prosody: &Path,
        prosodyctl: &Path,
        setpriv: &Path,
    ) -> Result<Self, StartAttempt> {
        let dir = tempfile::Builder::new()
            .prefix("xft-prosody-")
            .tempdir()
            .map_err(io("creating prosody's temporary directory"))
            .map_err(StartAttempt::Fatal)?;
        let [c2s_port, component_port, proxy65_port] = free_ports().map_err(StartAttempt::Fatal)?;
        let ca = if options.tls {
            Some(TestCa::new("xft test ca").map_err(StartAttempt::Fatal)?)
        } else {
            None
        };
        let mut me = Self {
            options: options.clone(),
            child: None,
            ca,
            c2s_port,
            component_port,
            proxy65_port,
            dir,
        };
        me.prepare_dir().map_err(StartAttempt::Fatal)?;
        for (user, password) in &options.accounts {
            me.register_with(prosodyctl, user, password)
                .map_err(StartAttempt::Fatal)?;
        }
        let console = fs::File::create(me.dir.path().join("console.log"))
            .map_err(io("creating console.log"))
            .map_err(StartAttempt::Fatal)?;
        let console2 = console
            .try_clone()
            .map_err(io("cloning console.log"))
            .map_err(StartAttempt::Fatal)?;
        // Prosody refuses to run as root: drop to the prosody user when we are root, run as
        // ourselves otherwise.
        let mut command = if is_root() {
            let mut c = Command::new(setpriv);
            c.args(["--reuid=prosody", "--regid=prosody", "--init-groups"])
                .arg(prosody);
            c
        } else {
            Command::new(prosody)
        };
        let child = command
            .arg("--config")
            .arg(me.config_path())
            .arg("-F")
            .stdin(Stdio::null())
            .stdout(console)
            .stderr(console2)
            .spawn()
            .map_err(io("spawning prosody"))
            .map_err(StartAttempt::Fatal)?;
        me.child = Some(child);
        me.wait_started()?;
        Ok(me)
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("prosody.cfg.lua")
    }

    fn prepare_dir(&self) -> Result<(), Error> {
        let root = self.dir.path();
        for sub in ["data", "certs"] {
            fs::create_dir_all(root.join(sub)).map_err(io(format!("creating {sub}")))?;
        }
        fs::write(self.config_path(), self.config()).map_err(io("writing prosody.cfg.lua"))?;
        if let Some(ca) = &self.ca {
            let issued = ca.issue(&self.options.domain)?;
            let (cert, key) = self.cert_paths();
            fs::write(&cert, issued.cert_pem).map_err(io("writing the server certificate"))?;
            fs::write(&key, issued.key_pem).map_err(io("writing the server key"))?;
            fs::set_permissions(&key, fs::Permissions::from_mode(0o600))
                .map_err(io("chmod the server key"))?;
            ca.write_pem(&self.ca_file())?;
        }
        if !is_root() {
            return Ok(());
        }
        // Prosody runs as its own user: the directory (the key included) must be its own.
        fs::set_permissions(root, fs::Permissions::from_mode(0o755))
            .map_err(io("chmod prosody dir"))?;
        let status = Command::new("chown")
            .args(["-R", "prosody:prosody"])
            .arg(root)
            .status()
            .map_err(io("running chown"))?;
        if !status.success() {
            return Err(Error::Startup {
                reason: format!(
                    "chown -R prosody:prosody {} failed: {status}",
                    root.display()
                ),
                log: String::new(),
            });
        }
        Ok(())
    }

    /// The generated config (also on disk, in [`Prosody::dir`]).
    pub fn config(&self) -> String {
        let root = self.dir.path().display();
        let o = &self.options;
        let level = if o.debug_log { "debug" } else { "info" };
        let mut c = format!(
            r#"-- generated by ft-testkit
pidfile = "{root}/prosody.pid"
data_path = "{root}/data"
certificates = "{root}/certs"
log = {{ {level} = "{root}/prosody.log" }}
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {c2s} }}
c2s_interfaces = {{ "127.0.0.1" }}
c2s_direct_tls_ports = {{ }}
legacy_ssl_ports = {{ }}
s2s_ports = {{ }}
http_ports = {{ }}
https_ports = {{ }}
component_ports = {{ {component} }}
component_interfaces = {{ "127.0.0.1" }}
proxy65_ports = {{ {proxy65} }}
proxy65_interfaces = {{ "127.0.0.1" }}
-- no "limits": mod_limits would throttle c2s (Debian's config says 10 kB/s)
modules_enabled = {{ "roster"; "saslauth"; "disco"; "ping"; "posix"; "iq"; "presence"; "message"{tls_module} }}
modules_disabled = {{ "s2s" }}
authentication = "internal_hashed"
storage = "internal"
{tls}allow_registration = false
network_settings = {{ nagle = false }}
network_default_read_size = 65536
"#,
            c2s = self.c2s_port,
            component = self.component_port,
            proxy65 = self.proxy65_port,
            tls = self.tls_config(),
            tls_module = if self.ca.is_some() { r#"; "tls""# } else { "" },
        );
        c.push_str(&o.extra_global_config);
        c.push_str(&format!("\nVirtualHost \"{}\"\n", o.domain));
        if o.proxy65 {
            c.push_str(&format!(
                "\nComponent \"{}\" \"proxy65\"\n    proxy65_address = \"127.0.0.1\"\n",
                self.proxy_jid()
            ));
        }
        c.push_str(&format!(
            "\nComponent \"{}\"\n    component_secret = \"{}\"\n",
            self.component_jid(),
            o.component.1
        ));
        c
    }

    fn cert_paths(&self) -> (PathBuf, PathBuf) {
        let certs = self.dir.path().join("certs");
        (
            certs.join(format!("{}.crt", self.options.domain)),
            certs.join(format!("{}.key", self.options.domain)),
        )
    }

    fn tls_config(&self) -> String {
        if self.ca.is_none() {
            return "c2s_require_encryption = false\nallow_unencrypted_plain_auth = true\n"
                .to_owned();
        }
        let (cert, key) = self.cert_paths();
        format!(
            "c2s_require_encryption = true\nallow_unencrypted_plain_auth = false\n\
             ssl = {{ certificate = \"{}\"; key = \"{}\"; }}\n",
            cert.display(),
            key.display()
        )
    }

    /// The CA that issued the server's certificate (with [`ProsodyOptions::tls`]).
    pub fn ca(&self) -> Option<&TestCa> {
        self.ca.as_ref()
    }

    /// Where the CA certificate is, PEM (for `SSL_CERT_FILE`; with [`ProsodyOptions::tls`]).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("certs").join("test-ca.pem")
    }

    fn wait_started(&mut self) -> Result<(), StartAttempt> {
        let deadline = Instant::now() + self.options.startup_timeout;
        let mut wanted = vec![
            format!("'c2s' on [127.0.0.1]:{}", self.c2s_port),
            format!("'component' on [127.0.0.1]:{}", self.component_port),
        ];
        if self.options.proxy65 {
            wanted.push(format!("'proxy65' on [127.0.0.1]:{}", self.proxy65_port));
        }
        loop {
            let log = self.log();
            if log.contains("Failed to open server port") {
                return Err(StartAttempt::PortTaken(
                    self.startup_error("a port was taken"),
                ));
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(StartAttempt::Fatal(
                    self.startup_error(&format!("prosody exited: {status}")),
                ));
            }
            if wanted.iter().all(|w| log.contains(w.as_str()))
                && TcpStream::connect((Ipv4Addr::LOCALHOST, self.c2s_port)).is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(StartAttempt::Fatal(self.startup_error(&format!(
                    "ports not open within {:?}",
                    self.options.startup_timeout
                ))));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn startup_error(&self, reason: &str) -> Error {
        Error::Startup {
            reason: reason.into(),
            log: self.log(),
        }
    }

    /// Registers another account (works while Prosody runs).
    pub fn register(&self, user: &str, password: &str) -> Result<(), Error> {
        self.register_with(&which("prosodyctl")?, user, password)
    }

    fn register_with(&self, prosodyctl: &Path, user: &str, password: &str) -> Result<(), Error> {
        // prosodyctl switches to the prosody user by itself.
        let out = Command::new(prosodyctl)
            .arg("--config")
            .arg(self.config_path())
            .args(["register", user, &self.options.domain, password])
            .stdin(Stdio::null())
            .output()
            .map_err(io("running prosodyctl register"))?;
        if !out.status.success() {
            return Err(Error::Register {
                user: user.into(),
                host: self.options.domain.clone(),
                output: format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            });
        }
        Ok(())
    }

    /// Prosody's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The virtual host (default `localhost`).
    pub fn domain(&self) -> &str {
        &self.options.domain
    }

    /// `user@domain`.
    ///
    /// # Panics
    ///
    /// When `user` is not a valid JID local part (a bug in the test).
    pub fn jid(&self, user: &str) -> BareJid {
        format!("{user}@{}", self.options.domain)
            .parse()
            .expect("test account names are valid local parts")
    }

    /// The password of an account registered at start.
    pub fn password(&self, user: &str) -> Option<&str> {
        self.options
            .accounts
            .iter()
            .find(|(u, _)| u == user)
            .map(|(_, p)| p.as_str())
    }

    /// The c2s port (plaintext allowed) on 127.0.0.1.
    pub fn c2s_port(&self) -> u16 {
        self.c2s_port
    }

    /// `127.0.0.1:<c2s port>`.
    pub fn c2s_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.c2s_port))
    }

    /// The XEP-0114 component port on 127.0.0.1.
    pub fn component_port(&self) -> u16 {
        self.component_port
    }

    /// `127.0.0.1:<component port>`.
    pub fn component_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.component_port))
    }

    /// The port of `mod_proxy65`'s SOCKS5 listener on 127.0.0.1.
    pub fn proxy65_port(&self) -> u16 {
        self.proxy65_port
    }

    /// `proxy.<domain>`, the mod_proxy65 component.
    pub fn proxy_jid(&self) -> BareJid {
        format!("proxy.{}", self.options.domain)
            .parse()
            .expect("proxy.<domain> is a valid jid")
    }

    /// `<component name>.<domain>` (default `xftproxy.localhost`).
    pub fn component_jid(&self) -> BareJid {
        format!("{}.{}", self.options.component.0, self.options.domain)
            .parse()
            .expect("<component>.<domain> is a valid jid")
    }

    /// The component's shared secret.
    pub fn component_secret(&self) -> &str {
        &self.options.component.1
    }

    /// The temporary directory holding the config, data, pid file and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Prosody's log and console output so far (for failing tests).
    pub fn log(&self) -> String {
        let mut out = String::new();
        for name in ["prosody.log", "console.log"] {
            if let Ok(mut f) = fs::File::open(self.dir.path().join(name)) {
                let _ = f.read_to_string(&mut out);
            }
        }
        out
    }

    /// Options for our tokio-xmpp adapter to log in as `user` (plaintext, loopback), with
    /// the resource `resource`.
    ///
    /// # Panics
    ///
    /// When `user` was not registered at start or the resource is not valid.
    pub fn client_options(&self, user: &str, resource: &str) -> ClientOptions {
        let password = self
            .password(user)
            .unwrap_or_else(|| panic!("{user} is not an account of this prosody"));
        let jid: Jid = format!("{}/{resource}", self.jid(user))
            .parse()
            .expect("valid full jid");
        ClientOptions::new(jid, password, Server::Addr(self.c2s_addr())).with_plaintext(true)
    }

    /// Options to log in as `user/resource` over STARTTLS, trusting [`Prosody::ca`].
    ///
    /// # Panics
    ///
    /// When the server was started without [`ProsodyOptions::tls`], or as
    /// [`Prosody::client_options`].
    pub fn tls_client_options(&self, user: &str, resource: &str) -> ClientOptions {
        let ca = self
            .ca
            .as_ref()
            .expect("tls_client_options needs a prosody started with tls");
        self.client_options(user, resource)
            .with_plaintext(false)
            .with_root_certificate_der(ca.cert_der())
    }

    /// Logs `user/resource` in through our tokio-xmpp adapter.
    pub async fn connect(
        &self,
        user: &str,
        resource: &str,
    ) -> Result<(ClientTransport, ClientInbound), Error> {
        Ok(connect_client(self.client_options(user, resource)).await?)
    }

    /// Connects our XEP-0114 component adapter as [`Prosody::component_jid`].
    pub async fn connect_component(&self) -> Result<(ComponentTransport, ComponentInbound), Error> {
        Ok(connect_component(
            &self.component_jid(),
            self.component_secret(),
            self.component_addr(),
        )
        .await?)
    }

    /// Stops Prosody (by its pid) and waits for it. Also done on drop.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- prosody log (last {} lines) ---", tail.len());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

enum StartAttempt {
    PortTaken(Error),
    Fatal(Error),
}

fn free_ports() -> Result<[u16; 3], Error> {
    // Held together so the three differ; released just before Prosody binds them.
    let listeners = [(); 3].map(|()| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)));
    let mut ports = [0u16; 3];
    for (port, listener) in ports.iter_mut().zip(listeners) {
        *port = listener
            .and_then(|l| l.local_addr())
            .map_err(io("picking a free loopback port"))?
            .port();
    }
    Ok(ports)
}

/// Whether this process runs as root (then Prosody is started as the `prosody` user).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

pub(crate) fn which(program: &str) -> Result<PathBuf, Error> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/sbin"), "/sbin".into()]) {
        let candidate = dir.join(program);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(Error::NotInstalled {
        what: program.into(),
        hint: "run scripts/test, which installs prosody (Debian package) and .venv",
    })
}
