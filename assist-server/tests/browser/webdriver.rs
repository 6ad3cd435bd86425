//! A minimal W3C WebDriver client over reqwest (already a dev-dependency): Debian's
//! `chromedriver` started on a free loopback port, driving a real headless Chromium.
//!
//! Only what the console tests need: navigate, find by CSS selector (with waiting), click,
//! type, read text and attributes, run a script, take a screenshot. Every wait has a timeout
//! and a failure names the selector and what the page showed.

use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// How long the helpers wait for the page before failing.
pub const PAGE_WAIT: Duration = Duration::from_secs(15);

/// The W3C key of an element reference in WebDriver JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Why the browser tests cannot run here, or `None` when they can.
pub fn unavailable() -> Option<String> {
    for path in [CHROMEDRIVER, CHROMIUM] {
        if !Path::new(path).exists() {
            return Some(format!(
                "{path} is missing (apt-get install chromium chromium-driver; scripts/setup.sh does)"
            ));
        }
    }
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// chromedriver plus one Chromium session; both stopped (by pid / session) when dropped.
pub struct Browser {
    driver: Child,
    port: u16,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
    /// Where failure screenshots go.
    pub artifacts: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Element {
    id: String,
    /// The selector that found it, for messages.
    pub selector: String,
}

impl Element {
    /// The element as an argument of [`Browser::script`].
    pub fn as_arg(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium window of the given
    /// language (`zh-CN`, `en-US`).
    pub async fn start(lang: &str) -> Browser {
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        let profile = tempfile::tempdir().expect("profile dir");
        let mut browser = Browser {
            driver,
            port,
            base,
            session: String::new(),
            http,
            _profile: profile,
            artifacts: std::env::temp_dir(),
        };
        // Wait for chromedriver to answer.
        let start = Instant::now();
        loop {
            let ready = browser
                .http
                .get(format!("{}/status", browser.base))
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success());
            if ready.is_some() {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "chromedriver did not start on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile_arg = format!("--user-data-dir={}", browser._profile.path().display());
        let lang_arg = format!("--lang={lang}");
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": CHROMIUM,
                        "args": [
                            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                            "--disable-background-networking", "--disable-component-update",
                            "--disable-sync", "--disable-dev-shm-usage", "--window-size=1400,1000",
                            profile_arg, lang_arg,
                        ],
                        "prefs": {"intl.accept_languages": lang},
                    },
                    "unhandledPromptBehavior": "accept",
                }
            }
        });
        let reply = browser.raw("POST", "/session", Some(caps)).await;
        browser.session = reply["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {reply}"))
            .to_string();
        browser
    }

    /// One WebDriver command; panics with the driver's message on an error.
    async fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        match self.try_raw(method, path, body).await {
            Ok(v) => v,
            Err(e) => panic!("WebDriver {method} {path}: {e}"),
        }
    }

    async fn try_raw(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("{}{}", self.base, path);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or_else(|| json!({}))),
        };
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let ok = resp.status().is_success();
        let value: Value = resp.json().await.map_err(|e| e.to_string())?;
        let value = value.get("value").cloned().unwrap_or(Value::Null);
        if ok {
            Ok(value)
        } else {
            Err(format!("{} {}", value["error"], value["message"]))
        }
    }

    fn path(&self, rest: &str) -> String {
        format!("/session/{}{}", self.session, rest)
    }

    pub async fn goto(&self, url: &str) {
        self.raw("POST", &self.path("/url"), Some(json!({ "url": url })))
            .await;
    }

    pub async fn current_url(&self) -> String {
        self.raw("GET", &self.path("/url"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Runs a script in the page (`arguments[0]`... are `args`) and returns its value.
    pub async fn script(&self, script: &str, args: Vec<Value>) -> Value {
        self.raw(
            "POST",
            &self.path("/execute/sync"),
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// Elements matching a CSS selector now (maybe none).
    pub async fn find_all(&self, selector: &str) -> Vec<Element> {
        let found = self
            .try_raw(
                "POST",
                &self.path("/elements"),
                Some(json!({"using": "css selector", "value": selector})),
            )
            .await
            .unwrap_or(Value::Array(Vec::new()));
        found
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT_KEY].as_str())
                    .map(|id| Element {
                        id: id.to_string(),
                        selector: selector.to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first element matching `selector` that is displayed, waiting for it.
    pub async fn wait_for(&self, selector: &str) -> Element {
        let start = Instant::now();
        loop {
            for el in self.find_all(selector).await {
                if self.displayed(&el).await {
                    return el;
                }
            }
            if start.elapsed() > PAGE_WAIT {
                self.fail(&format!("nothing visible matches `{selector}`"))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the text of the first visible `selector` contains `needle`.
    pub async fn wait_for_text(&self, selector: &str, needle: &str) -> Element {
        let start = Instant::now();
        loop {
            for el in self.find_all(selector).await {
                if self.displayed(&el).await && self.text(&el).await.contains(needle) {
                    return el;
                }
            }
            if start.elapsed() > PAGE_WAIT {
                self.fail(&format!("no visible `{selector}` contains {needle:?}"))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn displayed(&self, el: &Element) -> bool {
        self.try_raw(
            "GET",
            &self.path(&format!("/element/{}/displayed", el.id)),
            None,
        )
        .await
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
    }

    pub async fn click(&self, el: &Element) {
        // The element may be under the sticky header: bring it to the middle first.
        self.raw(
            "POST",
            &self.path("/execute/sync"),
            Some(json!({
                "script": "arguments[0].scrollIntoView({block: 'center'});",
                "args": [{ ELEMENT_KEY: el.id }],
            })),
        )
        .await;
        if let Err(e) = self
            .try_raw(
                "POST",
                &self.path(&format!("/element/{}/click", el.id)),
                None,
            )
            .await
        {
            self.fail(&format!("cannot click `{}`: {e}", el.selector))
                .await;
        }
    }

    /// Waits for `selector` and clicks it.
    pub async fn click_on(&self, selector: &str) {
        let el = self.wait_for(selector).await;
        self.click(&el).await;
    }

    /// Types into a field (after clearing it).
    pub async fn type_into(&self, el: &Element, text: &str) {
        let _ = self
            .try_raw(
                "POST",
                &self.path(&format!("/element/{}/clear", el.id)),
                None,
            )
            .await;
        self.raw(
            "POST",
            &self.path(&format!("/element/{}/value", el.id)),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Waits for `selector` and types into it.
    pub async fn fill(&self, selector: &str, text: &str) {
        let el = self.wait_for(selector).await;
        self.type_into(&el, text).await;
    }

    pub async fn text(&self, el: &Element) -> String {
        self.try_raw("GET", &self.path(&format!("/element/{}/text", el.id)), None)
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    pub async fn attr(&self, el: &Element, name: &str) -> Option<String> {
        self.try_raw(
            "GET",
            &self.path(&format!("/element/{}/attribute/{name}", el.id)),
            None,
        )
        .await
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
    }

    /// Elements matching `selector` inside `el`.
    pub async fn find_in(&self, el: &Element, selector: &str) -> Vec<Element> {
        let found = self
            .try_raw(
                "POST",
                &self.path(&format!("/element/{}/elements", el.id)),
                Some(json!({"using": "css selector", "value": selector})),
            )
            .await
            .unwrap_or(Value::Array(Vec::new()));
        found
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT_KEY].as_str())
                    .map(|id| Element {
                        id: id.to_string(),
                        selector: format!("{} {selector}", el.selector),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The whole page's visible text.
    pub async fn page_text(&self) -> String {
        self.script("return document.body.innerText;", Vec::new())
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Saves a PNG of the window to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let data = self.raw("GET", &self.path("/screenshot"), None).await;
        if let Some(png) = data.as_str().and_then(base64_decode) {
            let _ = std::fs::write(path, png);
        }
    }

    /// Fails the test with the page's URL and text, and a screenshot in the temp dir.
    pub async fn fail(&self, what: &str) -> ! {
        let url = self.current_url().await;
        let text = self.page_text().await;
        let shot = self
            .artifacts
            .join(format!("console-failure-{}.png", std::process::id()));
        self.screenshot(&shot).await;
        panic!(
            "{what}\n  url: {url}\n  screenshot: {}\n  page text:\n{text}",
            shot.display()
        );
    }

    /// Ends the session (the browser exits) and stops chromedriver.
    pub async fn quit(mut self) {
        let _ = self.try_raw("DELETE", &self.path(""), None).await;
        self.session.clear();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A test that panicked did not quit: end the session with a plain blocking request
        // (no runtime here) so chromedriver closes Chromium, then stop chromedriver by pid.
        if !self.session.is_empty() {
            end_session_blocking(self.port, &self.session);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn end_session_blocking(port: u16, session: &str) {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply);
    }
}

/// Standard base64 (what WebDriver screenshots are); `None` on a bad character.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\n' | b'\r' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}
