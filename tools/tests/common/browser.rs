//! Headless Chromium, driven over the Chrome DevTools Protocol: navigate, run script in the page,
//! wait for a condition. Needs Debian's `chromium` (found by `tools::chromium`).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

/// A headless Chromium with one page.
pub struct Browser {
    child: Child,
    page: WebSocket<TcpStream>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub fn launch() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(super::tools::chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let endpoint = loop {
            let line = lines
                .next()
                .expect("Chromium exited before opening its DevTools port")
                .unwrap();
            if let Some(url) = line.split("DevTools listening on ").nth(1) {
                break url.trim().to_string();
            }
        };
        // Keep draining Chromium's stderr so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let port: u16 = endpoint
            .trim_start_matches("ws://")
            .split(['/', ':'])
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        let targets = devtools_list(addr);
        let page_url = targets
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "page")
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("Chromium lists no page")
            .to_string();
        let stream = TcpStream::connect(addr).unwrap();
        let (page, _) = tungstenite::client(page_url.as_str(), stream).unwrap();
        Browser {
            child,
            page,
            next_id: 0,
            _profile: profile,
        }
    }

    /// Call a DevTools method and return its result (events in between are skipped).
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.try_call(method, params)
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    /// Call a DevTools method; `Err` carries the protocol's error.
    fn try_call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({"id": id, "method": method, "params": params}).to_string();
        self.page.send(Message::text(message)).unwrap();
        loop {
            let Message::Text(text) = self.page.read().unwrap() else {
                continue;
            };
            let v: Value = serde_json::from_str(text.as_str()).unwrap();
            if v["id"] == id {
                return match v.get("error") {
                    Some(e) => Err(e.clone()),
                    None => Ok(v["result"].clone()),
                };
            }
        }
    }

    /// Run `expression` in the page (awaiting a promise) and return its value. A page that
    /// navigates away while the expression runs (a click that submits a form) gives `Null`.
    pub fn eval(&mut self, expression: &str) -> Value {
        match self.try_eval(expression) {
            Ok(v) => v,
            Err(e) if navigated(&e) => Value::Null,
            Err(e) => panic!("{expression}: {e}"),
        }
    }

    fn try_eval(&mut self, expression: &str) -> Result<Value, Value> {
        let r = self.try_call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        )?;
        match r.get("exceptionDetails") {
            Some(e) => Err(e.clone()),
            None => Ok(r["result"]["value"].clone()),
        }
    }

    pub fn navigate(&mut self, url: &str) {
        self.leaving(|b| {
            b.call("Page.navigate", json!({ "url": url }));
        });
    }

    /// Do `action`, which leaves the current page (a link, a form), and wait for the next page
    /// to load.
    pub fn leaving(&mut self, action: impl FnOnce(&mut Browser)) {
        self.eval("window.__leaving = true");
        action(self);
        self.wait_for(
            "!window.__leaving && document.readyState === 'complete'",
            Duration::from_secs(20),
        );
    }

    /// Wait until `condition` (a script expression) is true; panics after `limit`.
    pub fn wait_for(&mut self, condition: &str, limit: Duration) {
        let start = Instant::now();
        while start.elapsed() < limit {
            // Between two pages there is no context to evaluate in: not yet.
            if self.try_eval(&format!("!!({condition})")) == Ok(Value::Bool(true)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "waited {limit:?} for {condition}; the page is at {}",
            self.eval("location.href")
        );
    }
}

/// Whether a DevTools error says the page navigated away (or its context went) meanwhile.
fn navigated(error: &Value) -> bool {
    let text = error.to_string();
    [
        "navigated or closed",
        "context was destroyed",
        "Cannot find context",
    ]
    .iter()
    .any(|m| text.contains(m))
}

/// `GET /json/list` from the DevTools HTTP endpoint (which keeps the connection open, so the
/// answer is read by its Content-Length).
fn devtools_list(addr: std::net::SocketAddr) -> Value {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /json/list HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut reader = BufReader::new(s);
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    serde_json::from_slice(&body).unwrap()
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
