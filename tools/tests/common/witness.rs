//! A tlog-witness written for the tests from c2sp.org/tlog-witness alone (with `note` and
//! `tlog` beside it), not from Jol's code: plain HTTP on a loopback port chosen at run time,
//! its own Ed25519 cosigner key, trusting the logs whose note vkeys it was given. It answers
//! `POST <prefix>/add-checkpoint` with the spec's status codes, co-signs with cosignature/v1,
//! and records every request and its answer so a test can check what a node sent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use super::note::{self, Checkpoint, Note, NoteKey, Vkey, COSIGNATURE};
use super::tlog::{self, Hash};

/// The most a request body may be.
const MAX_BODY: usize = 1 << 20;
/// The most consistency proof lines a client may send.
const MAX_PROOF_LINES: usize = 63;

/// One `add-checkpoint` request as received, and what the witness answered.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub body: String,
    pub status: u16,
    pub answer: String,
}

/// What the witness holds: the latest checkpoint it cosigned per origin, and every request.
#[derive(Default)]
struct State {
    latest: HashMap<String, (u64, Hash)>,
    requests: Vec<Recorded>,
}

/// A running test witness; stopped when dropped.
pub struct Witness {
    pub addr: SocketAddr,
    /// The submission prefix's path, e.g. `/witness`.
    pub prefix: String,
    key: Arc<NoteKey>,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What the witness decides about one request.
struct Answer {
    status: StatusCode,
    content_type: &'static str,
    body: String,
}

impl Answer {
    fn text(status: StatusCode, body: impl Into<String>) -> Answer {
        Answer {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }
}

/// The rules of add-checkpoint, with the key and the logs it trusts.
struct Rules {
    key: Arc<NoteKey>,
    logs: Vec<Vkey>,
    prefix: String,
    state: Arc<Mutex<State>>,
}

impl Witness {
    /// A witness named `name` with a fresh key, trusting the logs of `log_vkeys` (type 0x01
    /// note keys, named by their origin), serving under `prefix` (e.g. `/witness`).
    pub fn start(name: &str, log_vkeys: &[&str], prefix: &str) -> Witness {
        let logs = log_vkeys
            .iter()
            .map(|v| Vkey::parse(v).unwrap_or_else(|e| panic!("log vkey {v}: {e}")))
            .collect();
        let key = Arc::new(NoteKey::generate(name));
        let state = Arc::new(Mutex::new(State::default()));
        let rules = Arc::new(Rules {
            key: key.clone(),
            logs,
            prefix: prefix.to_string(),
            state: state.clone(),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(serve(listener, rules, stopped));
        });
        Witness {
            addr,
            prefix: prefix.to_string(),
            key,
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The submission prefix as a node's config names it: `http://127.0.0.1:PORT/prefix`.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.addr, self.prefix)
    }

    /// The cosigner's vkey: `name+hex(key id)+base64(0x04 || key)`.
    pub fn vkey(&self) -> String {
        self.key.vkey(COSIGNATURE).encode()
    }

    /// Every `add-checkpoint` request so far, in order, with its answer.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Forget what was cosigned for `origin`, as a witness that lost its state would: the log's
    /// next submission from its old size then gets 409 naming size 0.
    pub fn forget(&self, origin: &str) {
        self.state.lock().unwrap().latest.remove(origin);
    }

    /// The size and root of the latest checkpoint cosigned for `origin`.
    pub fn latest(&self, origin: &str) -> Option<(u64, Hash)> {
        self.state.lock().unwrap().latest.get(origin).copied()
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    rules: Arc<Rules>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let rules = rules.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let rules = rules.clone();
                async move { Ok::<_, std::convert::Infallible>(rules.handle(req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

impl Rules {
    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_string();
        let answer = if path != format!("{}/add-checkpoint", self.prefix) {
            Answer::text(StatusCode::NOT_FOUND, "no such resource\n")
        } else if req.method() != Method::POST {
            Answer::text(StatusCode::METHOD_NOT_ALLOWED, "add-checkpoint is a POST\n")
        } else {
            match Limited::new(req.into_body(), MAX_BODY).collect().await {
                Err(_) => Answer::text(StatusCode::BAD_REQUEST, "body unreadable or too large\n"),
                Ok(body) => {
                    let body = String::from_utf8_lossy(&body.to_bytes()).into_owned();
                    let answer = self.add_checkpoint(&body);
                    self.state.lock().unwrap().requests.push(Recorded {
                        path: path.clone(),
                        body,
                        status: answer.status.as_u16(),
                        answer: answer.body.clone(),
                    });
                    answer
                }
            }
        };
        let mut response = Response::new(Full::new(Bytes::from(answer.body)));
        *response.status_mut() = answer.status;
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(answer.content_type),
        );
        response
    }

    /// add-checkpoint's checks, in the spec's order.
    fn add_checkpoint(&self, body: &str) -> Answer {
        let Some(request) = Submission::parse(body) else {
            return Answer::text(StatusCode::BAD_REQUEST, "malformed add-checkpoint body\n");
        };
        let Ok(note) = Note::parse(&request.note) else {
            return Answer::text(
                StatusCode::BAD_REQUEST,
                "the checkpoint is not a signed note\n",
            );
        };
        let Ok(checkpoint) = Checkpoint::parse(&note.text) else {
            return Answer::text(StatusCode::BAD_REQUEST, "the note is not a checkpoint\n");
        };
        let trusted: Vec<&Vkey> = self
            .logs
            .iter()
            .filter(|k| k.name == checkpoint.origin)
            .collect();
        if trusted.is_empty() {
            return Answer::text(StatusCode::NOT_FOUND, "unknown log origin\n");
        }
        let verdicts: Vec<bool> = note
            .signatures
            .iter()
            .flat_map(|sig| trusted.iter().filter_map(|k| k.verifies(&note.text, sig)))
            .collect();
        if verdicts.is_empty() || verdicts.contains(&false) {
            return Answer::text(
                StatusCode::FORBIDDEN,
                "no valid signature by a trusted key\n",
            );
        }
        if request.old > checkpoint.size {
            return Answer::text(
                StatusCode::BAD_REQUEST,
                "old size is above the checkpoint's\n",
            );
        }
        // Checking against the latest cosigned checkpoint and recording the new one happen
        // under one lock: a request cannot roll back another's.
        let mut state = self.state.lock().unwrap();
        let (latest, latest_root) = state
            .latest
            .get(&checkpoint.origin)
            .copied()
            .unwrap_or((0, tlog::empty_root()));
        if request.old != latest {
            return Answer {
                status: StatusCode::CONFLICT,
                content_type: "text/x.tlog.size",
                body: format!("{latest}\n"),
            };
        }
        if checkpoint.size == 0 && checkpoint.root != tlog::empty_root() {
            return Answer::text(
                StatusCode::UNPROCESSABLE_ENTITY,
                "size 0 with a root other than the empty tree's\n",
            );
        }
        // "If the old size matches the checkpoint size, the witness MUST check that the root
        // hashes are also identical. If they don't match, the witness MUST respond with a 409
        // Conflict."
        if request.old == checkpoint.size && checkpoint.root != latest_root {
            return Answer::text(
                StatusCode::CONFLICT,
                "the root differs from the one cosigned for this size\n",
            );
        }
        if !tlog::verify_consistency(
            request.old,
            checkpoint.size,
            &latest_root,
            &checkpoint.root,
            &request.proof,
        ) {
            return Answer::text(
                StatusCode::UNPROCESSABLE_ENTITY,
                "the consistency proof does not verify\n",
            );
        }
        state.latest.insert(
            checkpoint.origin.clone(),
            (checkpoint.size, checkpoint.root),
        );
        drop(state);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        Answer::text(StatusCode::OK, self.key.cosign(&note.text, now))
    }
}

impl Recorded {
    /// The request's body read as an add-checkpoint submission, if it is one.
    pub fn submission(&self) -> Option<Submission> {
        Submission::parse(&self.body)
    }
}

/// An add-checkpoint body: the old size, the proof, and the checkpoint note after a blank line.
#[derive(Debug, Clone)]
pub struct Submission {
    pub old: u64,
    pub proof: Vec<Hash>,
    pub note: String,
}

impl Submission {
    pub fn parse(body: &str) -> Option<Submission> {
        let (head, note) = body.split_once("\n\n")?;
        let mut lines = head.split('\n');
        let old = note::decimal(lines.next()?.strip_prefix("old ")?)?;
        let proof: Vec<Hash> = lines.map(note::hash).collect::<Option<_>>()?;
        (proof.len() <= MAX_PROOF_LINES).then_some(())?;
        Some(Submission {
            old,
            proof,
            note: note.to_string(),
        })
    }
}

/// An add-checkpoint body for `note` (a signed checkpoint) with the old size and its proof.
pub fn submission(old: u64, proof: &[Hash], note: &str) -> String {
    let mut body = format!("old {old}\n");
    for hash in proof {
        body.push_str(&STANDARD.encode(hash));
        body.push('\n');
    }
    body.push('\n');
    body.push_str(note);
    body
}
