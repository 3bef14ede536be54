//! The login settings' sources and their order, on real files and a real `sh`.

use std::path::Path;

use clap::Parser;

use super::*;

fn send_account(extra: &[&str]) -> Account {
    let mut argv = vec!["xft", "send", "--to", "bob@example.org/pc"];
    argv.extend_from_slice(extra);
    argv.push("FILE");
    match crate::Cli::try_parse_from(argv).unwrap().command {
        crate::Command::Send(s) => s.account,
        other => panic!("{other:?}"),
    }
}

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let d = dir.join("xft");
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join("config.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Mode 600, as a password file should be (no warning).
fn private(p: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

fn env_in(xdg: &Path) -> Env {
    Env {
        password: None,
        xdg_config_home: Some(xdg.to_owned()),
        home: None,
    }
}

async fn resolve(account: &Account, env: &Env) -> Result<Login, BoxError> {
    let loaded = load(account.config.as_deref(), env)?;
    login(account, &loaded, env).await
}

#[tokio::test]
async fn the_config_file_in_xdg_config_home_is_enough_for_send_to_a_jid_and_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    write_config(
        tmp.path(),
        "server = \"127.0.0.1:5222\"\njid = \"alice@localhost/cli\"\n\
         password_file = \"secret\"\nplaintext = true\n",
    );
    // Relative to the config file's directory; the trailing newline is not the password's.
    std::fs::write(tmp.path().join("xft/secret"), "hunter2\n").unwrap();
    private(&tmp.path().join("xft/secret"));
    let l = resolve(&send_account(&[]), &env_in(tmp.path()))
        .await
        .unwrap();
    assert_eq!(l.server, "127.0.0.1:5222");
    assert_eq!(l.jid, "alice@localhost/cli");
    assert_eq!(l.password, "hunter2");
    assert_eq!(
        l.source,
        PasswordSource::ConfigFile(tmp.path().join("xft/secret"))
    );
    assert!(l.plaintext);
    assert!(l.warnings.is_empty());
}

#[tokio::test]
async fn without_xdg_config_home_the_file_under_home_dot_config_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    write_config(
        &tmp.path().join(".config"),
        "server = \"h:1\"\njid = \"a@h\"\n",
    );
    let env = Env {
        password: Some("from-env".into()),
        xdg_config_home: None,
        home: Some(tmp.path().to_owned()),
    };
    let l = resolve(&send_account(&[]), &env).await.unwrap();
    assert_eq!((l.server.as_str(), l.jid.as_str()), ("h:1", "a@h"));
    assert_eq!(l.source, PasswordSource::Env);
}

#[tokio::test]
async fn flags_beat_the_environment_which_beats_the_config_file() {
    let tmp = tempfile::tempdir().unwrap();
    write_config(
        tmp.path(),
        "server = \"cfg:1\"\njid = \"cfg@h\"\npassword_command = \"echo from-command\"\n",
    );
    let pwfile = tmp.path().join("pw");
    std::fs::write(&pwfile, "from-file\r\n").unwrap();
    private(&pwfile);
    let mut env = env_in(tmp.path());

    // The config file alone.
    let l = resolve(&send_account(&[]), &env).await.unwrap();
    assert_eq!(l.password, "from-command");
    assert_eq!(l.source, PasswordSource::Command);

    // XFT_PASSWORD beats the config file.
    env.password = Some("from-env".into());
    let l = resolve(&send_account(&[]), &env).await.unwrap();
    assert_eq!(
        (l.password.as_str(), l.source),
        ("from-env", PasswordSource::Env)
    );

    // --password-file beats XFT_PASSWORD (CRLF trimmed); --server/--jid beat the file.
    let f = pwfile.to_str().unwrap();
    let l = resolve(
        &send_account(&[
            "--password-file",
            f,
            "--server",
            "flag:2",
            "--jid",
            "flag@h",
        ]),
        &env,
    )
    .await
    .unwrap();
    assert_eq!(l.password, "from-file");
    assert_eq!(l.source, PasswordSource::FlagFile(pwfile.clone()));
    assert_eq!((l.server.as_str(), l.jid.as_str()), ("flag:2", "flag@h"));
    assert!(l.warnings.is_empty());

    // --password beats everything, and earns the warning.
    let l = resolve(&send_account(&["--password", "from-flag"]), &env)
        .await
        .unwrap();
    assert_eq!(
        (l.password.as_str(), l.source),
        ("from-flag", PasswordSource::Flag)
    );
    assert_eq!(l.warnings, [PASSWORD_FLAG_WARNING]);

    // Both password flags at once: refused by the parser.
    let argv = [
        "xft",
        "send",
        "--to",
        "b@h/x",
        "--password",
        "a",
        "--password-file",
        f,
        "FILE",
    ];
    assert!(crate::Cli::try_parse_from(argv).is_err());
}

#[tokio::test]
async fn password_command_takes_the_first_line_and_a_failing_one_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(
        tmp.path(),
        "server = \"h:1\"\njid = \"a@h\"\npassword_command = \"printf 'first\\\\nsecond\\\\n'\"\n",
    );
    let env = env_in(tmp.path());
    let l = resolve(&send_account(&[]), &env).await.unwrap();
    assert_eq!(
        l.password,
        "first",
        "{}",
        std::fs::read_to_string(&cfg).unwrap()
    );

    write_config(
        tmp.path(),
        "password_command = \"exit 3\"\nserver = \"h:1\"\njid = \"a@h\"\n",
    );
    let e = resolve(&send_account(&[]), &env).await.unwrap_err();
    assert!(e.to_string().contains("password_command failed"), "{e}");

    write_config(
        tmp.path(),
        "password_command = \"true\"\nserver = \"h:1\"\njid = \"a@h\"\n",
    );
    let e = resolve(&send_account(&[]), &env).await.unwrap_err();
    assert!(e.to_string().contains("no password"), "{e}");

    write_config(
        tmp.path(),
        "password_command = \"true\"\npassword_file = \"x\"\nserver = \"h:1\"\njid = \"a@h\"\n",
    );
    let e = resolve(&send_account(&[]), &env).await.unwrap_err();
    assert!(e.to_string().contains("keep one"), "{e}");
}

#[tokio::test]
async fn a_named_config_must_exist_a_default_one_need_not_and_typos_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let env = env_in(tmp.path());
    // No file at the default path: no settings, and the error names what is missing.
    let e = resolve(&send_account(&[]), &env).await.unwrap_err();
    assert!(e.to_string().contains("no server"), "{e}");
    let missing = tmp.path().join("nope.toml");
    let e = resolve(
        &send_account(&["--config", missing.to_str().unwrap()]),
        &env,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("nope.toml"), "{e}");
    let p = write_config(tmp.path(), "sever = \"typo:1\"\n");
    let e = load(Some(&p), &env).unwrap_err();
    assert!(e.to_string().contains("sever"), "{e}");
}

#[test]
fn recv_defaults_for_dir_and_dial_come_from_the_config_file_under_the_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let env = Env {
        home: Some(tmp.path().to_owned()),
        ..env_in(tmp.path())
    };
    let p = write_config(tmp.path(), "dir = \"~/inbox\"\ndial = \"lan\"\n");
    let cfg = load(Some(&p), &env).unwrap().file;
    assert_eq!(dir(None, &cfg), tmp.path().join("inbox"));
    assert_eq!(dir(Some(Path::new("x")), &cfg), Path::new("x"));
    assert_eq!(dial(None, &cfg).unwrap(), Dial::Lan);
    assert_eq!(dial(Some(Dial::Any), &cfg).unwrap(), Dial::Any);
    assert_eq!(dial(None, &FileConfig::default()).unwrap(), Dial::Public);
    let bad = FileConfig {
        dial: Some("everywhere".into()),
        ..FileConfig::default()
    };
    assert!(dial(None, &bad).is_err());
    assert_eq!(dir(None, &FileConfig::default()), Path::new("."));
}

#[test]
fn the_login_debug_output_never_shows_the_password() {
    let l = Login {
        server: "h:1".into(),
        jid: "a@h".into(),
        password: "hunter2".into(),
        source: PasswordSource::Flag,
        plaintext: false,
        warnings: Vec::new(),
    };
    assert!(!format!("{l:?}").contains("hunter2"));
}

#[cfg(unix)]
#[tokio::test]
async fn a_password_file_other_users_may_read_earns_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("pw");
    std::fs::write(&f, "pw\n").unwrap();
    let flag = [
        "--password-file",
        f.to_str().unwrap(),
        "--server",
        "h:1",
        "--jid",
        "a@h",
    ];
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    let l = resolve(&send_account(&flag), &env_in(tmp.path()))
        .await
        .unwrap();
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    assert!(l.warnings[0].contains("mode 644"), "{:?}", l.warnings);
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    let l = resolve(&send_account(&flag), &env_in(tmp.path()))
        .await
        .unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn the_config_files_stack_key_is_read_and_a_misspelt_key_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    write_config(tmp.path(), "stack = \"si\"\n");
    let loaded = load(None, &env_in(tmp.path())).unwrap();
    assert_eq!(loaded.file.stack.as_deref(), Some("si"));
    assert_eq!(stack(None, &loaded.file).unwrap(), StackChoice::Si);
    write_config(tmp.path(), "stacks = \"si\"\n");
    let e = load(None, &env_in(tmp.path())).unwrap_err().to_string();
    assert!(e.contains("stacks"), "{e}");
}
