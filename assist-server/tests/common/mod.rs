//! Shared helpers: a real `assist-server` process on a free loopback port, a real WebSocket
//! client, the repository's knowledge pack and sample calls.

#![allow(dead_code)]

use assist_protocol::{ClientMessage, Event, ServerMessage, Speaker, TranscriptLine, Utterance};
use futures_util::{SinkExt, StreamExt};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const BIN: &str = env!("CARGO_BIN_EXE_assist-server");

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

pub fn default_pack() -> PathBuf {
    repo_root().join("knowledge")
}

pub fn calls_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/calls")
}

/// Every sample call: (name, transcript path).
pub fn sample_calls() -> Vec<(String, PathBuf)> {
    let mut calls: Vec<(String, PathBuf)> = std::fs::read_dir(calls_dir())
        .expect("tests/calls exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .map(|p| {
            let name = p
                .file_stem()
                .expect("file name")
                .to_string_lossy()
                .to_string();
            (name, p)
        })
        .collect();
    calls.sort();
    assert!(!calls.is_empty(), "no sample calls in tests/calls");
    calls
}

/// The bootstrap admin's password in every test server.
pub const ADMIN_PASSWORD: &str = "admin-test-password";

/// A running server process on its own data dir, stopped (by pid) when dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    /// The temporary data dir, when the server made its own.
    _data: Option<tempfile::TempDir>,
}

impl Server {
    pub fn start(extra: &[&str]) -> Server {
        Server::start_with_pack(&default_pack(), extra)
    }

    pub fn start_with_pack(pack: &Path, extra: &[&str]) -> Server {
        let data = tempfile::tempdir().expect("temp data dir");
        let mut server = Server::start_on(data.path(), pack, extra);
        server._data = Some(data);
        server
    }

    /// A server on `data_dir` (kept by the caller, e.g. to restart on it).
    pub fn start_on(data_dir: &Path, pack: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--pack"])
            .arg(pack)
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env("ASSIST_LOG", "warn")
            .env("ASSIST_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env_remove("ASSIST_AGENT_TOKENS")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("assist-server starts");
        let stdout = child.stdout.take().expect("stdout piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("server prints its address");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from server: {line:?}"))
            .parse()
            .expect("a socket address");
        Server {
            child,
            addr,
            data_dir: data_dir.to_path_buf(),
            _data: None,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub fn http(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill_9(mut self) -> Option<tempfile::TempDir> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self._data.take()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A test-side agent connection.
pub struct Agent {
    pub ws: Ws,
}

pub const WAIT: Duration = Duration::from_secs(10);

impl Agent {
    pub async fn connect(url: &str) -> Agent {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket connects");
        Agent { ws }
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.to_string().into()))
            .await
            .expect("send");
    }

    pub async fn send(&mut self, message: &ClientMessage) {
        let text = serde_json::to_string(message).expect("encodes");
        self.send_raw(&text).await;
    }

    /// The next protocol message, or None when the server closed the connection.
    pub async fn recv(&mut self) -> Option<ServerMessage> {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("server answers within the timeout");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return Some(serde_json::from_str(&text).expect("server sends protocol JSON"))
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => continue,
            }
        }
    }

    pub async fn hello(
        &mut self,
        agent: &str,
        token: &str,
        call: &str,
        language: &str,
    ) -> ServerMessage {
        self.send(&hello(agent, token, call, language)).await;
        self.recv().await.expect("a reply to hello")
    }

    /// Sends a final utterance and collects everything up to (not including) the next
    /// utterance's replies: the ack or error, then the events.
    pub async fn say(&mut self, utt: Utterance) -> Vec<ServerMessage> {
        self.send(&ClientMessage::Utterance(utt)).await;
        self.drain().await
    }

    /// Messages that arrive until the server is quiet for a moment.
    pub async fn drain(&mut self) -> Vec<ServerMessage> {
        let mut out = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_millis(300), self.ws.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    out.push(serde_json::from_str(&text).expect("protocol JSON"))
                }
                Ok(Some(Ok(_))) => continue,
                _ => return out,
            }
        }
    }

    /// Ends the call and returns the events up to and including the summary.
    pub async fn end(&mut self, t: f64) -> Vec<ServerMessage> {
        self.send(&ClientMessage::CallEnd { t }).await;
        let mut out = Vec::new();
        while let Some(m) = self.recv().await {
            let done = matches!(m, ServerMessage::Summary(_));
            out.push(m);
            if done {
                break;
            }
        }
        out
    }
}

pub fn hello(agent: &str, token: &str, call: &str, language: &str) -> ClientMessage {
    ClientMessage::Hello {
        version: assist_protocol::PROTOCOL_VERSION,
        agent_id: agent.into(),
        token: token.into(),
        call_id: call.into(),
        language: language.into(),
        channel: Default::default(),
    }
}

pub fn utterance(seq: u64, speaker: Speaker, start: f64, text: &str) -> Utterance {
    Utterance {
        seq,
        speaker,
        partial: false,
        text: text.into(),
        start,
        end: Some(start + 2.0),
        prosody: None,
    }
}

pub fn read_transcript(path: &Path) -> Vec<TranscriptLine> {
    std::fs::read_to_string(path)
        .expect("transcript readable")
        .lines()
        .enumerate()
        .filter_map(|(i, l)| {
            assist_protocol::parse_transcript_line(i + 1, l).expect("valid sample line")
        })
        .collect()
}

/// Runs `assist-server replay` (the real CLI) and returns its events.
pub fn replay_cli(path: &Path, language: &str) -> Vec<Event> {
    let out = Command::new(BIN)
        .args(["replay", "--language", language, "--pack"])
        .arg(default_pack())
        .arg(path)
        .output()
        .expect("replay runs");
    assert!(
        out.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8 output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is an event"))
        .collect()
}

/// The events among server messages (acks, welcomes and errors dropped).
pub fn events(messages: Vec<ServerMessage>) -> Vec<Event> {
    messages
        .into_iter()
        .filter_map(ServerMessage::into_event)
        .collect()
}

pub fn alert_categories(events: &[Event]) -> Vec<String> {
    let mut cats: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Alert(a) => Some(a.category.clone()),
            _ => None,
        })
        .collect();
    cats.sort();
    cats.dedup();
    cats
}

/// The `.expect.toml` of a sample call.
#[derive(Debug, serde::Deserialize)]
pub struct Expectation {
    pub language: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub must_fire: Vec<String>,
    #[serde(default)]
    pub must_not_fire: Vec<String>,
}

pub fn expectation(transcript: &Path) -> Expectation {
    let path = transcript.with_extension("expect.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fresh copy of the default pack to break or edit.
pub fn pack_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(&default_pack(), dir.path());
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read pack") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

pub mod api;
