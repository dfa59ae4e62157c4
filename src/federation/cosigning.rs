//! Getting this node's checkpoints co-signed: after each new signed checkpoint, submit it with
//! `add-checkpoint` (c2sp.org/tlog-witness) to every other member of the federation (over the
//! peer listener's mutual TLS) and to every `[[witnesses]]` entry of the node config (plain
//! HTTP), with the consistency proof from the size that witness last acknowledged
//! (`Meta::WitnessAcked`; `old 0` at first, and on 409 once more from the size it answers).
//! Each returned co-signature line is checked against that witness's key (a member's: its event
//! keys under `<member>/jol-witness`; an outside one's: the config's vkey) and kept beside the
//! checkpoint, which the checkpoint routes then serve with it. A witness that is down is retried
//! with backoff; publishing never waits for any of this.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::sync::{Backoff, SyncSettings, Syncer};
use crate::event::identifiers::MemberId;
use crate::log::checkpoint::{self, SignedCheckpoint};
use crate::log::note::{KeyType, NoteSignature, VerifierKey};
use crate::merkle;
use crate::net::client::HttpClient;
use crate::store::{Meta, Store};

/// An outside witness as the node config names it (`[[witnesses]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// Its submission prefix, `http://host:port[/path]`: the node POSTs `<url>/add-checkpoint`.
    pub url: String,
    /// Its cosigner key, `<name>+<hex id>+<base64(0x04 || Ed25519 key)>`.
    pub vkey: String,
}

/// Why a `[[witnesses]]` entry cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessConfigError {
    #[error("witnesses: url {0:?} is not http://host:port[/path] (https is not supported: put a TLS-terminating proxy on the witness's side, or reach it over a trusted network)")]
    Url(String),
    #[error("witnesses: vkey {vkey:?}: {why}")]
    Vkey { vkey: String, why: String },
    #[error("witnesses: vkey {0:?} is not a cosignature/v1 key (type 0x04)")]
    NotCosignature(String),
}

/// A witness this node submits its checkpoints to.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The cosigner name (the key name of its signature lines).
    name: String,
    kind: TargetKind,
}

#[derive(Debug, Clone)]
enum TargetKind {
    /// A federation member, over its peer listener; its keys come from the manifest.
    Member(MemberId),
    /// An outside witness: `host:port`, the path prefix, and its key.
    Outside {
        host_port: String,
        prefix: String,
        key: Box<VerifierKey>,
    },
}

impl WitnessConfig {
    /// Check the entry, and make it a target.
    pub(crate) fn target(&self) -> Result<Target, WitnessConfigError> {
        let key: VerifierKey = self
            .vkey
            .parse()
            .map_err(|e: crate::log::note::NoteError| WitnessConfigError::Vkey {
                vkey: self.vkey.clone(),
                why: e.to_string(),
            })?;
        if key.key_type() != KeyType::Cosignature {
            return Err(WitnessConfigError::NotCosignature(self.vkey.clone()));
        }
        let bad = || WitnessConfigError::Url(self.url.clone());
        let rest = self.url.strip_prefix("http://").ok_or_else(bad)?;
        let (host_port, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let port_ok = host_port
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !port_ok || path.contains(['?', '#', ' ']) {
            return Err(bad());
        }
        Ok(Target {
            name: key.name().to_string(),
            kind: TargetKind::Outside {
                host_port: host_port.to_string(),
                prefix: path.trim_end_matches('/').to_string(),
                key: Box::new(key),
            },
        })
    }
}

/// What went wrong with one submission (retried with backoff).
#[derive(Debug, thiserror::Error)]
enum SubmitError {
    #[error("cannot reach the witness: {0}")]
    Connect(String),
    #[error("the witness answered {0}: {1}")]
    Refused(StatusCode, String),
    #[error("the witness's answer holds no valid co-signature by its key: {0}")]
    BadCosignature(String),
    #[error("the witness's co-signature is dated {0} s ahead of this node's clock, past the {skew} s two clocks may differ: not kept", skew = crate::event::CLOCK_SKEW.whole_seconds())]
    FromTheFuture(u64),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// The submitting task's state of one witness.
struct Progress {
    /// The text digest of the checkpoint it co-signed last.
    cosigned: Option<[u8; 32]>,
    retry_at: Option<Instant>,
    backoff: Backoff,
}

/// Submit each new checkpoint to every witness until `stop`; checks for a new one every `every`.
pub(crate) async fn run(
    store: Store,
    syncer: Option<Arc<Syncer>>,
    outside: Vec<Target>,
    every: Duration,
    settings: SyncSettings,
    mut stop: watch::Receiver<bool>,
) {
    let mut progress: HashMap<String, Progress> = HashMap::new();
    loop {
        if let Err(e) = round(
            &store,
            syncer.as_deref(),
            &outside,
            &settings,
            &mut progress,
        )
        .await
        {
            tracing::warn!(error = %e, "cannot read the latest checkpoint to submit it");
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// A checkpoint as stored, as read, and the digest of its text.
type Latest = (Vec<u8>, SignedCheckpoint, [u8; 32]);

/// The latest checkpoint.
fn latest(store: &Store) -> Result<Option<Latest>, crate::store::StoreError> {
    let Some((_, bytes)) = store.latest_checkpoint()? else {
        return Ok(None);
    };
    let Ok(signed) = checkpoint::read(&bytes) else {
        return Err(crate::store::StoreError::Corrupt("checkpoint"));
    };
    let digest = checkpoint::text_digest(signed.note.text());
    Ok(Some((bytes, signed, digest)))
}

/// One pass: every witness that has not co-signed the latest checkpoint and is not backing off
/// gets it. The latest is read again for each witness: a submission can take seconds, and a
/// witness whose split-view check took up a newer checkpoint meanwhile refuses an older one.
async fn round(
    store: &Store,
    syncer: Option<&Syncer>,
    outside: &[Target],
    settings: &SyncSettings,
    progress: &mut HashMap<String, Progress>,
) -> Result<(), crate::store::StoreError> {
    let mut targets = outside.to_vec();
    if let Some(s) = syncer {
        if let Ok(manifest) = s.trust.usable() {
            targets.extend(
                manifest
                    .members
                    .iter()
                    .filter(|m| m.id != s.me)
                    .map(|m| Target {
                        name: checkpoint::witness_name(&m.id),
                        kind: TargetKind::Member(m.id.clone()),
                    }),
            );
        }
    }
    for target in targets {
        let Some((bytes, signed, digest)) = latest(store)? else {
            return Ok(());
        };
        let p = progress
            .entry(target.name.clone())
            .or_insert_with(|| Progress {
                cosigned: None,
                retry_at: None,
                backoff: Backoff::new(settings),
            });
        if p.cosigned == Some(digest) || p.retry_at.is_some_and(|t| Instant::now() < t) {
            continue;
        }
        match submit(store, syncer, &target, &signed, &bytes).await {
            Ok(()) => {
                p.cosigned = Some(digest);
                p.retry_at = None;
                p.backoff.after_failure(true);
            }
            Err(e) => {
                let delay = p.backoff.after_failure(false);
                p.retry_at = Some(Instant::now() + delay);
                tracing::warn!(witness = %target.name, error = %e, retry_ms = delay.as_millis() as u64, "a witness did not co-sign this node's checkpoint");
            }
        }
    }
    Ok(())
}

/// The body of an `add-checkpoint` from `old`.
fn request_body(store: &Store, old: u64, size: u64, note: &[u8]) -> Result<Bytes, SubmitError> {
    let proof = if old > 0 && old < size {
        merkle::consistency_proof(store, old, size)?
    } else {
        Vec::new()
    };
    Ok(super::witness_server::request_body(old, &proof, note).into())
}

/// Submit the checkpoint to one witness; keep the co-signature it answers.
async fn submit(
    store: &Store,
    syncer: Option<&Syncer>,
    target: &Target,
    signed: &SignedCheckpoint,
    note: &[u8],
) -> Result<(), SubmitError> {
    let acked = Meta::WitnessAcked(target.name.clone());
    let mut old = store
        .meta(&acked)?
        .and_then(|v| v.try_into().ok())
        .map_or(0, u64::from_be_bytes);
    let size = signed.checkpoint.size;
    if old > size {
        old = 0; // it saw a larger tree of ours than the latest checkpoint: it says which
    }
    let mut client = connect(syncer, target).await?;
    for attempt in 0..2 {
        let mut headers = hyper::HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        let body = request_body(store, old, size, note)?;
        let answer = client
            .request(Method::POST, "/add-checkpoint", headers, Some(body))
            .await
            .map_err(|e| SubmitError::Connect(e.to_string()))?;
        let text = String::from_utf8_lossy(&answer.body).into_owned();
        if answer.status == StatusCode::CONFLICT && attempt == 0 {
            let is_size = answer
                .headers
                .get(CONTENT_TYPE)
                .is_some_and(|t| t.as_bytes().starts_with(b"text/x.tlog.size"));
            match text.strip_suffix('\n').and_then(checkpoint::parse_size) {
                Some(theirs) if is_size && theirs <= size => {
                    old = theirs;
                    continue;
                }
                _ => return Err(SubmitError::Refused(answer.status, excerpt(&text))),
            }
        }
        if answer.status != StatusCode::OK {
            return Err(SubmitError::Refused(answer.status, excerpt(&text)));
        }
        let kept = keep_valid(store, syncer, target, signed, &text)?;
        if kept == 0 {
            return Err(SubmitError::BadCosignature("none verified".into()));
        }
        store.set_meta(&acked, &size.to_be_bytes())?;
        return Ok(());
    }
    Err(SubmitError::Refused(StatusCode::CONFLICT, "twice".into()))
}

/// What of a witness's refusal goes into this node's log: its first 200 characters, each
/// control character (a newline, an escape sequence) shown as a space, so a hostile witness
/// cannot forge log lines or drive the operator's terminal.
fn excerpt(answer: &str) -> String {
    answer
        .chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Keep each line of the answer that is a valid co-signature by the target's key; how many.
fn keep_valid(
    store: &Store,
    syncer: Option<&Syncer>,
    target: &Target,
    signed: &SignedCheckpoint,
    answer: &str,
) -> Result<usize, SubmitError> {
    let keys = match &target.kind {
        TargetKind::Outside { key, .. } => vec![(**key).clone()],
        TargetKind::Member(m) => syncer
            .and_then(|s| s.trust.usable().ok())
            .map(|manifest| checkpoint::witness_keys(&manifest, m, checkpoint::KeysAt::now()))
            .unwrap_or_default(),
    };
    let lines = NoteSignature::parse_lines(answer)
        .map_err(|e| SubmitError::BadCosignature(e.to_string()))?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut kept = 0;
    let mut ahead = None;
    for line in lines {
        let mut one = crate::log::note::Note::new(signed.note.text().to_string())
            .map_err(|e| SubmitError::BadCosignature(e.to_string()))?;
        one.add(line.clone())
            .map_err(|e| SubmitError::BadCosignature(e.to_string()))?;
        let Ok(verified) = one.verify(&keys) else {
            continue;
        };
        let Some(times) = verified
            .iter()
            .map(|v| v.time)
            .collect::<Option<Vec<u64>>>()
        else {
            continue;
        };
        if let Some(seconds) = times
            .into_iter()
            .find_map(|t| checkpoint::seconds_ahead(t, now))
        {
            ahead = Some(seconds);
            continue;
        }
        checkpoint::keep_cosignature(store, signed.checkpoint.size, signed.note.text(), &line)?;
        kept += 1;
    }
    match (kept, ahead) {
        (0, Some(seconds)) => Err(SubmitError::FromTheFuture(seconds)),
        _ => Ok(kept),
    }
}

/// The largest answer read from a witness: co-signature lines are ~150 bytes each, a 409's body
/// is a size, so 64 KiB leaves room for many witnesses' lines and no more.
const WITNESS_ANSWER_BYTES: usize = 64 * 1024;

/// How long an outside witness gets to accept the connection (as a member's feed does): one
/// that does not answer at all must not hold up the submissions to the others for the
/// kernel's connect timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to the target whose paths are relative to its submission prefix.
async fn connect(syncer: Option<&Syncer>, target: &Target) -> Result<HttpClient, SubmitError> {
    let deadline = Duration::from_secs(10);
    match &target.kind {
        TargetKind::Outside {
            host_port, prefix, ..
        } => Ok(
            tokio::time::timeout(CONNECT_TIMEOUT, HttpClient::connect_to(host_port))
                .await
                .map_err(|_| {
                    SubmitError::Connect(format!("no connection within {CONNECT_TIMEOUT:?}"))
                })?
                .map_err(|e| SubmitError::Connect(e.to_string()))?
                .with_prefix(prefix.clone())
                .with_deadline(deadline)
                .with_answer_limit(WITNESS_ANSWER_BYTES),
        ),
        TargetKind::Member(m) => {
            let syncer = syncer.ok_or_else(|| SubmitError::Connect("no federation".into()))?;
            Ok(syncer
                .connect_direct(m)
                .await
                .map_err(|e| SubmitError::Connect(e.to_string()))?
                .with_prefix(format!("{}/witness", super::feed::PEER_PREFIX))
                .with_deadline(deadline)
                .with_answer_limit(WITNESS_ANSWER_BYTES))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::checkpoint::encode_std;

    fn entry(url: &str, vkey: &str) -> WitnessConfig {
        WitnessConfig {
            url: url.into(),
            vkey: vkey.into(),
        }
    }

    #[test]
    fn a_witness_refusal_reaches_the_log_without_control_characters_and_bounded() {
        let hostile = format!(
            "no\n2026-12-04 INFO forged line\u{1b}[2J{}",
            "x".repeat(500)
        );
        let shown = excerpt(&hostile);
        assert_eq!(shown.chars().count(), 200);
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert!(shown.starts_with("no 2026-12-04 INFO forged line [2J"));
    }

    fn cosigner_vkey() -> String {
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        VerifierKey::new(
            "witness.example/w1",
            KeyType::Cosignature,
            key.verifying_key(),
        )
        .unwrap()
        .to_string()
    }

    #[test]
    fn witness_entries_are_checked_with_clear_errors() {
        let vkey = cosigner_vkey();
        let t = entry("http://127.0.0.1:8080/w/", &vkey).target().unwrap();
        assert_eq!(t.name, "witness.example/w1");
        let TargetKind::Outside {
            host_port, prefix, ..
        } = t.kind
        else {
            panic!()
        };
        assert_eq!(
            (host_port.as_str(), prefix.as_str()),
            ("127.0.0.1:8080", "/w")
        );
        for url in [
            "https://w.example:443",
            "http://w.example",
            "w.example:80",
            "http://:80",
            "http://h:0",
        ] {
            assert_eq!(
                entry(url, &vkey).target().unwrap_err(),
                WitnessConfigError::Url(url.into())
            );
        }
        assert!(matches!(
            entry("http://h:1", "nope").target(),
            Err(WitnessConfigError::Vkey { .. })
        ));
        let plain = VerifierKey::new(
            "w",
            KeyType::Ed25519,
            ed25519_dalek::SigningKey::from_bytes(&[5; 32]).verifying_key(),
        )
        .unwrap();
        assert!(matches!(
            entry("http://h:1", &plain.to_string()).target(),
            Err(WitnessConfigError::NotCosignature(_))
        ));
    }

    /// An outside witness on loopback that answers the first submission 409 (it co-signed size
    /// 2 already) and co-signs the retry, checking it starts from that size.
    async fn fake_witness(
        key: ed25519_dalek::SigningKey,
    ) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
        fake_witness_padded(key, None, WITNESS_TIME).await
    }

    /// When the fake witness's clock says it co-signs, unless a test sets it.
    const WITNESS_TIME: u64 = 1_700_000_000;

    /// The same witness; with `padding`, it co-signs every submission (dated `time`) and pads
    /// its answer with that many bytes of junk lines.
    async fn fake_witness_padded(
        key: ed25519_dalek::SigningKey,
        padding: Option<usize>,
        time: u64,
    ) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
        use http_body_util::{BodyExt, Full};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = bodies.clone();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let (seen, key) = (seen.clone(), key.clone());
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let (seen, key) = (seen.clone(), key.clone());
                        async move {
                            assert_eq!(req.uri().path(), "/w/add-checkpoint");
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let body = String::from_utf8(body.to_vec()).unwrap();
                            seen.lock().unwrap().push(body.clone());
                            let mut answer = hyper::Response::new(Full::new(Bytes::new()));
                            if !body.starts_with("old 2\n") && padding.is_none() {
                                *answer.body_mut() = Full::new(Bytes::from("2\n"));
                                *answer.status_mut() = StatusCode::CONFLICT;
                                answer.headers_mut().insert(
                                    CONTENT_TYPE,
                                    HeaderValue::from_static("text/x.tlog.size"),
                                );
                            } else {
                                let note = body.split_once("\n\n").unwrap().1;
                                let note = crate::log::note::Note::parse(note.as_bytes()).unwrap();
                                let line = note
                                    .cosign("witness.example/w1", &key, time)
                                    .unwrap()
                                    .line();
                                let junk = "x\n".repeat(padding.unwrap_or(0) / 2);
                                *answer.body_mut() = Full::new(Bytes::from(line + &junk));
                            }
                            Ok::<_, std::convert::Infallible>(answer)
                        }
                    },
                );
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), service),
                );
            }
        });
        (format!("http://{addr}/w"), bodies)
    }

    #[tokio::test]
    async fn a_checkpoint_goes_to_an_outside_witness_from_the_size_it_names_and_its_cosignature_is_served(
    ) {
        use crate::event::schema::EventType;
        use crate::federation::fixture::{returnee, Federation};
        let fed = Federation::new();
        let node = fed.node(&fed.migration);
        for i in 0..5 {
            let data = returnee(&format!("215031990123{i:02}"), &[&fed.employment]);
            node.publish(EventType::ReturneeRecord, data).await;
        }
        checkpoint::sign_if_grown(&node.store, &node.member, &node.key, 5).unwrap();
        let witness_key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let (url, sent) = fake_witness(witness_key.clone()).await;
        let vkey = VerifierKey::new(
            "witness.example/w1",
            KeyType::Cosignature,
            witness_key.verifying_key(),
        )
        .unwrap();
        let target = entry(&url, &vkey.to_string()).target().unwrap();
        let mut progress = HashMap::new();
        round(
            &node.store,
            None,
            std::slice::from_ref(&target),
            &SyncSettings::default(),
            &mut progress,
        )
        .await
        .unwrap();
        let bodies = sent.lock().unwrap().clone();
        assert_eq!(bodies.len(), 2, "one 409, one retry");
        assert!(bodies[0].starts_with("old 0\n\n"), "{}", bodies[0]);
        let proof = merkle::consistency_proof(&node.store, 2, 5).unwrap();
        let lines: Vec<String> = proof
            .iter()
            .map(|h| format!("{}\n", encode_std(h)))
            .collect();
        assert!(
            bodies[1].starts_with(&format!("old 2\n{}\n", lines.concat())),
            "{}",
            bodies[1]
        );
        let served = served(&node.store);
        assert_eq!(served.verify(&[vkey]).unwrap()[0].time, Some(1_700_000_000));
        let acked = node
            .store
            .meta(&Meta::WitnessAcked("witness.example/w1".into()))
            .unwrap();
        assert_eq!(acked, Some(5u64.to_be_bytes().to_vec()));
        // Co-signed: not sent again until a new checkpoint.
        round(
            &node.store,
            None,
            &[target],
            &SyncSettings::default(),
            &mut progress,
        )
        .await
        .unwrap();
        assert_eq!(sent.lock().unwrap().len(), 2);
    }

    /// A node with one event and its checkpoint signed, and an outside witness's key.
    struct Checkpointed {
        node: crate::federation::fixture::Node,
        bytes: Vec<u8>,
        signed: SignedCheckpoint,
        witness_key: ed25519_dalek::SigningKey,
        vkey: VerifierKey,
    }

    async fn checkpointed() -> Checkpointed {
        use crate::event::schema::EventType;
        use crate::federation::fixture::{returnee, Federation};
        let fed = Federation::new();
        let node = fed.node(&fed.migration);
        let data = returnee("21503199012300", &[&fed.employment]);
        node.publish(EventType::ReturneeRecord, data).await;
        checkpoint::sign_if_grown(&node.store, &node.member, &node.key, 1).unwrap();
        let (_, bytes) = node.store.latest_checkpoint().unwrap().unwrap();
        let signed = checkpoint::read(&bytes).unwrap();
        let witness_key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let vkey = VerifierKey::new(
            "witness.example/w1",
            KeyType::Cosignature,
            witness_key.verifying_key(),
        )
        .unwrap();
        Checkpointed {
            node,
            bytes,
            signed,
            witness_key,
            vkey,
        }
    }

    impl Checkpointed {
        /// Submit the checkpoint to a fake witness co-signing with `key`, dated `time`, its
        /// answer padded by `padding` bytes.
        async fn submit_to(
            &self,
            key: ed25519_dalek::SigningKey,
            padding: usize,
            time: u64,
        ) -> Result<(), SubmitError> {
            let (url, _) = fake_witness_padded(key, Some(padding), time).await;
            let target = entry(&url, &self.vkey.to_string()).target().unwrap();
            submit(&self.node.store, None, &target, &self.signed, &self.bytes).await
        }
    }

    /// The checkpoint note `store` serves now, with its co-signatures.
    fn served(store: &Store) -> crate::log::note::Note {
        let bytes = checkpoint::latest_cosigned(store).unwrap().unwrap();
        crate::log::note::Note::parse(&bytes).unwrap()
    }

    /// A witness answering past 64 KiB is cut off at that limit (not at the 64 MiB the node
    /// reads from a feed) and nothing of its answer is kept.
    #[tokio::test]
    async fn a_witness_answer_past_its_limit_is_refused_and_nothing_is_kept() {
        let at = checkpointed().await;
        let padding = WITNESS_ANSWER_BYTES + 1024;
        let refused = at
            .submit_to(at.witness_key.clone(), padding, WITNESS_TIME)
            .await;
        let said = refused.unwrap_err().to_string();
        let cut = format!("the answer is larger than {WITNESS_ANSWER_BYTES} bytes");
        assert!(
            said.contains(&cut),
            "cut off while read, not parsed after: {said}"
        );
        let served = served(&at.node.store);
        assert!(served.verify(&[at.vkey]).is_err(), "nothing of it was kept");
    }

    /// A co-signature dated past the clock skew ahead of this node's clock is not kept nor
    /// served, and the refusal says why; one within the skew is kept.
    #[tokio::test]
    async fn a_cosignature_dated_in_the_future_is_not_kept() {
        let at = checkpointed().await;
        let key = at.witness_key.clone();
        let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
        let refused = at.submit_to(key.clone(), 0, now + 86_400).await;
        let said = refused.unwrap_err().to_string();
        assert!(
            said.contains("ahead of this node's clock") && said.contains("not kept"),
            "{said}"
        );
        let vkeys = std::slice::from_ref(&at.vkey);
        assert!(served(&at.node.store).verify(vkeys).is_err());
        // A minute ahead is within what two clocks may differ.
        at.submit_to(key, 0, now + 60).await.unwrap();
        let served = served(&at.node.store);
        assert_eq!(served.verify(vkeys).unwrap()[0].time, Some(now + 60));
    }

    /// A loopback port whose queue of connections not yet accepted is full: a further
    /// connection to it gets no answer at all, as from a witness behind a black hole. The
    /// listener (with a backlog of 0, never accepting) and the connections filling its queue
    /// are returned to be kept for the test's life.
    async fn black_hole() -> (
        std::net::SocketAddr,
        tokio::net::TcpListener,
        Vec<tokio::net::TcpStream>,
    ) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
        let listener = socket.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut filling = Vec::new();
        for _ in 0..2 {
            let connect = tokio::net::TcpStream::connect(addr);
            if let Ok(Ok(c)) = tokio::time::timeout(Duration::from_millis(200), connect).await {
                filling.push(c);
            }
        }
        (addr, listener, filling)
    }

    /// An outside witness that never answers the connection is given up after
    /// `CONNECT_TIMEOUT`, not the kernel's two minutes, so the other witnesses wait no longer.
    #[tokio::test]
    async fn a_witness_that_never_accepts_is_given_up_after_the_connect_timeout() {
        let at = checkpointed().await;
        let (addr, _listener, _filling) = black_hole().await;
        let url = format!("http://{addr}/");
        let target = entry(&url, &at.vkey.to_string()).target().unwrap();
        let failed = submit(&at.node.store, None, &target, &at.signed, &at.bytes)
            .await
            .unwrap_err();
        let said = failed.to_string();
        assert!(
            said.contains(&format!("no connection within {CONNECT_TIMEOUT:?}")),
            "{said}"
        );
    }

    /// A co-signature dated far ahead that a store kept before such were refused is not
    /// served; one dated now, kept beside it, is.
    #[tokio::test]
    async fn a_future_cosignature_kept_before_is_not_served() {
        let Checkpointed {
            node,
            signed,
            witness_key,
            vkey,
            ..
        } = checkpointed().await;
        let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
        let other_key = ed25519_dalek::SigningKey::from_bytes(&[10; 32]);
        let other = VerifierKey::new(
            "witness.example/w2",
            KeyType::Cosignature,
            other_key.verifying_key(),
        )
        .unwrap();
        let text = signed.note.text();
        let tomorrow = signed
            .note
            .cosign(vkey.name(), &witness_key, now + 86_400)
            .unwrap();
        let today = signed.note.cosign(other.name(), &other_key, now).unwrap();
        for line in [&tomorrow, &today] {
            checkpoint::keep_cosignature(&node.store, signed.checkpoint.size, text, line).unwrap();
        }
        let served = served(&node.store);
        assert!(served.verify(std::slice::from_ref(&vkey)).is_err());
        assert_eq!(served.verify(&[other]).unwrap()[0].time, Some(now));
    }

    /// A member's witness key rotated out (past its `not_after`, not revoked) no longer checks
    /// a live co-signature but still checks stored evidence (`jol verify --bundle`); a revoked
    /// one checks neither.
    #[test]
    fn a_rotated_out_witness_key_checks_evidence_and_a_revoked_one_nothing() {
        use crate::federation::fixture::Federation;
        use checkpoint::KeysAt;
        let fed = Federation::new();
        let now = time::OffsetDateTime::now_utc();
        let mut manifest = fed.manifest.clone();
        let member = manifest
            .members
            .iter_mut()
            .find(|m| m.id == fed.migration)
            .unwrap();
        member.signing_keys[0].not_after = now - time::Duration::days(1);
        let live = checkpoint::witness_keys(&manifest, &fed.migration, KeysAt::Time(now));
        let stored = checkpoint::witness_keys(&manifest, &fed.migration, KeysAt::NotRevoked);
        assert!(live.is_empty());
        assert_eq!(stored.len(), 1);
        let member = manifest
            .members
            .iter_mut()
            .find(|m| m.id == fed.migration)
            .unwrap();
        member.signing_keys[0].revoked = Some(now - time::Duration::days(2));
        assert!(checkpoint::witness_keys(&manifest, &fed.migration, KeysAt::NotRevoked).is_empty());
    }
}
