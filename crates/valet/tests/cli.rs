//! The `valet` binary, run as a user would, against a temporary data directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

const VALET: &str = env!("CARGO_BIN_EXE_valet");

/// A command with no Valet settings inherited from the environment.
fn valet(dir: &Path) -> Command {
    let mut c = Command::new(VALET);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().to_string();
        if k.starts_with("VALET_") || k == "RUST_LOG" {
            c.env_remove(k);
        }
    }
    c.arg("--data-dir").arg(dir).stdin(Stdio::null());
    c
}

fn run(dir: &Path, args: &[&str]) -> Output {
    valet(dir).args(args).output().unwrap()
}

fn run_with_stdin(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child =
        valet(dir).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn json(out: &Output) -> Value {
    serde_json::from_str(&ok(out)).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn migrated() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    ok(&run(dir.path(), &["migrate"]));
    dir
}

#[test]
fn config_check_names_a_bad_toml_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["config", "check"]);
    let text = ok(&out);
    assert!(text.contains("listen") && text.contains("127.0.0.1:8080"), "{text}");
    assert!(text.contains("public_url") && text.contains("http://127.0.0.1:8080"), "{text}");

    std::fs::write(dir.path().join("valet.toml"), "listen = \"127.0.0.1:9000\"\nlog_levle = \"debug\"\n").unwrap();
    let out = run(dir.path(), &["config", "check"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("log_levle") && err.contains("line 2"), "{err}");

    std::fs::write(dir.path().join("valet.toml"), "listen = \"127.0.0.1:9000\"\n").unwrap();
    let out = valet(dir.path())
        .args(["config", "check", "--json"])
        .env("VALET_ADMIN_PASSWORD", "s3cret-admin")
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(v["listen"]["value"], "127.0.0.1:9000");
    assert!(v["listen"]["source"].as_str().unwrap().contains("valet.toml"));
    assert_eq!(v["admin_password"]["value"], "<redacted>");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("s3cret-admin"));

    let out = valet(dir.path()).args(["config", "check"]).env("VALET_LISTEN", "not-an-address").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("VALET_LISTEN"), "{}", stderr(&out));
}

#[test]
fn users() {
    let dir = migrated();
    let out = run_with_stdin(
        dir.path(),
        &[
            "user",
            "create",
            "--username",
            "jane@example.com",
            "--password-stdin",
            "--first-name",
            "Jane",
            "--last-name",
            "Doe",
            "--json",
        ],
        "correct horse battery\n",
    );
    let created = json(&out);
    assert_eq!(created["username"], "jane@example.com");
    assert_eq!(created["email"], "jane@example.com");
    assert!(created["id"].as_str().unwrap().starts_with("005"));
    assert!(created.get("password").is_none());

    let out = run(dir.path(), &["user", "create", "--username", "gen@example.com", "--json"]);
    let generated = json(&out);
    assert_eq!(generated["password"].as_str().unwrap().len(), 20);

    let list = json(&run(dir.path(), &["user", "list", "--json"]));
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert!(names.contains(&"jane@example.com") && names.contains(&"admin@valet.local"), "{names:?}");
    let jane = list.as_array().unwrap().iter().find(|u| u["username"] == "jane@example.com").unwrap();
    for key in ["id", "org_id", "username", "email", "first_name", "last_name", "active", "is_admin", "created_at"] {
        assert!(jane.get(key).is_some(), "missing {key}");
    }
    assert!(jane["created_at"].as_str().unwrap().ends_with('Z'));

    let text = ok(&run(dir.path(), &["user", "list"]));
    assert!(text.starts_with("USERNAME"), "{text}");

    let disabled = json(&run(dir.path(), &["user", "disable", "jane@example.com", "--json"]));
    assert_eq!(disabled["active"], false);
    let enabled = json(&run(dir.path(), &["user", "enable", "jane@example.com", "--json"]));
    assert_eq!(enabled["active"], true);
    ok(&run_with_stdin(
        dir.path(),
        &["user", "set-password", "jane@example.com", "--password-stdin"],
        "another long one\n",
    ));

    let out = run(dir.path(), &["user", "create", "--username", "jane@example.com"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    let out = run(dir.path(), &["user", "show", "nobody@example.com"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
}

#[test]
fn apps() {
    let dir = migrated();
    let out = run(
        dir.path(),
        &[
            "app",
            "create",
            "--name",
            "My App",
            "--callback-url",
            "https://app.example.com/cb",
            "--callback-url",
            "http://localhost:1717/cb",
            "--scopes",
            "api refresh_token openid",
            "--json",
        ],
    );
    let app = json(&out);
    let key = app["consumer_key"].as_str().unwrap().to_string();
    assert!(key.starts_with("3MVG9") && key.len() == 85, "{key}");
    let secret = app["consumer_secret"].as_str().unwrap();
    assert!(secret.len() == 64 && secret.chars().all(|c| c.is_ascii_hexdigit()), "{secret}");
    assert_eq!(app["scopes"], "api openid refresh_token");
    assert_eq!(app["callback_urls"].as_array().unwrap().len(), 2);
    assert_eq!(app["policy"]["require_secret_for_web_server_flow"], true);

    let shown = json(&run(dir.path(), &["app", "show", &key, "--json"]));
    assert!(shown.get("consumer_secret").is_none());
    assert_eq!(shown["name"], "My App");

    let rotated = json(&run(dir.path(), &["app", "rotate-secret", &key, "--json"]));
    let new_secret = rotated["consumer_secret"].as_str().unwrap();
    assert_eq!(new_secret.len(), 64);
    assert_ne!(new_secret, secret);
    let retired = json(&run(dir.path(), &["app", "retire-old-secrets", &key, "--json"]));
    assert_eq!(retired["retired"], 1);

    let updated = json(&run(
        dir.path(),
        &[
            "app",
            "update",
            &key,
            "--set-policy",
            "require_pkce=true",
            "--set-policy",
            "id_token.valid_minutes=5",
            "--json",
        ],
    ));
    assert_eq!(updated["policy"]["require_pkce"], true);
    assert_eq!(updated["policy"]["id_token"]["valid_minutes"], 5);
    let out = run(dir.path(), &["app", "update", &key, "--set-policy", "requre_pkce=true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("requre_pkce"), "{}", stderr(&out));

    let public = json(&run(
        dir.path(),
        &["app", "create", "--name", "Public", "--callback-url", "com.example.app:/cb", "--public", "--json"],
    ));
    assert!(public.get("consumer_secret").is_none());
    assert_eq!(public["is_public"], true);

    let list = json(&run(dir.path(), &["app", "list", "--json"]));
    assert_eq!(list.as_array().unwrap().len(), 3, "{list}"); // with the built-in PlatformCLI

    let deleted = json(&run(dir.path(), &["app", "delete", "Public", "--json"]));
    assert_eq!(deleted["name"], "Public");
}

#[test]
fn custom_permissions() {
    let dir = migrated();
    let d = dir.path();
    let cp = json(&run(d, &["custom-permission", "create", "Can_Approve", "--label", "Approve invoices", "--json"]));
    assert_eq!((cp["name"].as_str(), cp["label"].as_str()), (Some("Can_Approve"), Some("Approve invoices")));
    assert!(cp["id"].as_str().unwrap().starts_with("0CP"), "{cp}");
    ok(&run(d, &["custom-permission", "create", "Can_Export", "--description", "Reports"]));
    let out = run(d, &["custom-permission", "create", "can_approve"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    let out = run(d, &["custom-permission", "create", "Can Approve"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not a custom permission name"), "{}", stderr(&out));
    let list = json(&run(d, &["custom-permission", "list", "--json"]));
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Can_Approve", "Can_Export"]);
    let updated = json(&run(d, &["custom-permission", "update", "Can_Export", "--description", "", "--json"]));
    assert_eq!(updated["description"], Value::Null);

    ok(&run(d, &["permset", "create", "--name", "Approvers"]));
    let granted = json(&run(d, &["permset", "grant-permission", "Approvers", "can_approve", "--json"]));
    assert_eq!(granted["custom_permissions"], serde_json::json!(["Can_Approve"]));
    let shown = json(&run(d, &["permset", "permissions", "Approvers", "--json"]));
    assert_eq!(shown["custom_permissions"], serde_json::json!(["Can_Approve"]));
    let revoked = json(&run(d, &["permset", "revoke-permission", "Approvers", "Can_Approve", "--json"]));
    assert_eq!(revoked["custom_permissions"], serde_json::json!([]));

    // An app lists the ones it uses through its policy: defined names only, spelled as defined.
    let app = json(&run(d, &["app", "create", "--name", "Perms", "--callback-url", "https://p.example/cb", "--json"]));
    let key = app["consumer_key"].as_str().unwrap().to_string();
    let set = ["app", "update", &key, "--set-policy", r#"custom_permissions=["can_approve"]"#];
    let updated =
        json(&run(d, &[&set[..], &["--set-policy", "id_token.include_custom_permissions=true", "--json"]].concat()));
    assert_eq!(updated["policy"]["custom_permissions"], serde_json::json!(["Can_Approve"]));
    assert_eq!(updated["policy"]["id_token"]["include_custom_permissions"], true);
    let out = run(d, &["app", "update", &key, "--policy-json", r#"{"custom_permissions": ["Can_Fly"]}"#]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("Can_Fly"), "{}", stderr(&out));

    // Deleting a permission takes it out of the app's list.
    ok(&run(d, &["custom-permission", "delete", "Can_Approve"]));
    let shown = json(&run(d, &["app", "show", &key, "--json"]));
    assert_eq!(shown["policy"]["custom_permissions"], serde_json::json!([]));
    let out = run(d, &["custom-permission", "show", "Can_Approve"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn bad_callback_url_is_a_clear_error() {
    let dir = migrated();
    let out = run(dir.path(), &["app", "create", "--name", "Bad", "--callback-url", "http://app.example.com/cb"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("callback URL") && err.contains("http://app.example.com/cb") && err.contains("https"),
        "{err}"
    );
}

#[test]
fn admin_commands_need_an_initialised_database() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["user", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("valet migrate"), "{}", stderr(&out));
    let out = run(dir.path(), &["user", "frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

/// A running `valet serve` whose stdout is read line by line.
struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    /// Everything written to stderr (the log), read to the end by a thread.
    log: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    log_reader: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(dir: &Path, port: u16) -> Server {
        let mut child = valet(dir)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Drain stderr so the server never blocks on a full pipe.
        let mut err = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = log.clone();
        let log_reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Server { child, lines, seen: Vec::new(), log, log_reader: Some(log_reader) }
    }

    fn wait_ready(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("valet serve exited early: {status}");
            }
            if let Some((200, _)) = http_get(port, "/readyz") {
                break;
            }
            assert!(Instant::now() < deadline, "server not ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(300)) {
            self.seen.push(line);
        }
    }

    fn stop(&mut self) -> Vec<String> {
        #[cfg(unix)]
        {
            let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(status)) = self.child.try_wait() {
                    assert!(status.success(), "valet serve exited with {status} after SIGTERM");
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let rest: Vec<String> = self.lines.try_iter().collect();
        self.seen.extend(rest);
        std::mem::take(&mut self.seen)
    }

    /// The log (stderr) up to the process's end: call after [`Server::stop`].
    fn log(&mut self) -> String {
        if let Some(reader) = self.log_reader.take() {
            let _ = reader.join();
        }
        String::from_utf8_lossy(&self.log.lock().unwrap()).to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A bare HTTP/1.1 GET: (status, body).
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let status = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}

#[test]
fn serve_prints_the_admin_password_once_and_answers_readyz() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = Server::start(dir.path(), port);
    server.wait_ready(port);
    let (status, body) = http_get(port, "/.well-known/openid-configuration").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains(&format!("http://127.0.0.1:{port}")), "{body}");
    // The admin commands work beside the running server.
    let users = json(&run(dir.path(), &["user", "list", "--json"]));
    assert_eq!(users.as_array().unwrap().len(), 1);
    let first = server.stop().join("\n");
    assert!(first.contains("Admin password"), "{first}");
    // The log: one access line per request (batched, and all written by the time the
    // process ends: the last line is the one logged after the listener closed).
    let log = server.log();
    let access: Vec<&str> = log.lines().filter(|l| l.contains(" valet::access: request ")).collect();
    assert!(
        access
            .iter()
            .any(|l| l.contains(" method=GET path=/.well-known/openid-configuration status=200 ms=")
                && l.contains(" id=")),
        "{log}"
    );
    assert!(access.iter().any(|l| l.contains(" path=/readyz status=200 ")), "{log}");
    assert!(log.trim_end().ends_with("stopped"), "{log}");
    assert!(first.contains("won't be shown again"), "{first}");
    assert!(first.contains(&format!("http://127.0.0.1:{port}/login")), "{first}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = std::fs::read_to_string(dir.path().join("master.key")).unwrap();
        assert_eq!(key.trim().len(), 64);
        let mode = std::fs::metadata(dir.path().join("master.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let port = free_port();
    let mut server = Server::start(dir.path(), port);
    server.wait_ready(port);
    let second = server.stop().join("\n");
    assert!(!second.contains("Admin password"), "{second}");
}

#[test]
fn serve_demo_prints_the_walkthrough() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = valet(dir.path())
        .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .env("VALET_ADMIN_PASSWORD", "admin-password-1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !text.contains("services/oauth2/revoke") && Instant::now() < deadline {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        text.push_str(&line);
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(!text.contains("admin-password-1"), "{text}");
    assert!(text.contains("/services/oauth2/authorize?response_type=code&client_id=3MVG9"), "{text}");
    assert!(text.contains("grant_type=authorization_code") && text.contains("client_secret="), "{text}");
    assert!(text.contains("demo@valet.local"), "{text}");
    assert!(text.contains("/services/oauth2/userinfo"), "{text}");
}

#[test]
fn serve_tls_self_signed_prints_how_to_trust_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = valet(dir.path())
        .args(["serve", "--tls-self-signed", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !text.contains("NODE_EXTRA_CA_CERTS") && Instant::now() < deadline {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        text.push_str(&line);
    }
    let _ = child.kill();
    let _ = child.wait();
    let ca = dir.path().join("tls").join("ca.pem");
    assert!(ca.is_file());
    assert!(text.contains(&format!("https://127.0.0.1:{port}/login")), "{text}");
    assert!(text.contains(&format!("--cacert {}", ca.display())), "{text}");
    assert!(text.contains("REQUESTS_CA_BUNDLE"), "{text}");
}
