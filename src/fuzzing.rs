//! The parsers that read input from outside, as the fuzz targets (`fuzz/`, cargo-fuzz) call
//! them: one function per target, each running on the bytes what the node runs on bytes it got
//! and asserting what must hold beyond "no panic, no hang" (a panic is the finding). Compiled
//! only for fuzzing (cargo-fuzz sets `--cfg fuzzing`) and for its own tests, which replay every
//! seed in `fuzz/seeds/<target>/` and every reproducer in `fuzz/regressions/<target>/`, so
//! nothing here makes a parser public to the node's users.
//!
//! The receipt checks and the manifest need a federation: [`World`] is one made from fixed
//! keys, so a seed signed once stays signed. A feed item whose `jws` is `{"unsigned": EVENT}`
//! (with `"disclosures"` for an SD-JWT) is signed here with the publisher's key before the
//! checks, and a manifest target input is read both as the signed file and as the payload the
//! authority signed, so the fuzzer reaches what comes after a good signature.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use ed25519_dalek::SigningKey;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::StatusCode;
use serde_json::Value;
use time::macros::datetime;

use crate::api::erasure::ErasureRequest;
use crate::api::publish::{batch_items, draft};
use crate::api::registry::{date_param, valid_pin};
use crate::credentials::status::StatusList;
use crate::event::disclosure::{self, Pointer};
use crate::event::identifiers::{KeyName, MemberId};
use crate::event::jws::{self, Typ};
use crate::event::schema::{EventType, Schemas};
use crate::event::{Event, SignedEvent};
use crate::federation::feed::{FeedQuery, ReceivedItem, MAX_FEED_PAGE};
use crate::federation::receipt::{self, Checker, Reason};
use crate::federation::sync::decode_page;
use crate::federation::witness_server::{request_body, Request as WitnessRequest};
use crate::log::bundle::TlogProof;
use crate::log::checkpoint::Checkpoint;
use crate::log::note::Note;
use crate::net::xroad::header;
use crate::node::config::NodeConfig;
use crate::store::Store;
use crate::trust::manifest::{
    EventFormat, Manifest, Member, Names, ReaderGrant, SigningKeyEntry, TypePolicy,
};
use crate::write::Draft;
use crate::xroad::provider::{client_of, official_of, resource_of};

/// The federation the targets check against: a publisher and this node (the reader of every
/// type), under a manifest signed by a fixed authority key.
pub struct World {
    /// The member whose feed the pages come from.
    pub publisher: MemberId,
    /// The publisher's signing key (fixed bytes).
    pub key: SigningKey,
    /// Its name, `publisher#sign-1`.
    pub kid: KeyName,
    /// The authority's key (fixed bytes).
    pub authority: SigningKey,
    /// The manifest: the publisher may publish every type, in both formats; this node reads all.
    pub manifest: Manifest,
    me: MemberId,
    schemas: Arc<Schemas>,
    store: Store,
}

fn member(id: &str) -> MemberId {
    id.parse().expect("a member id")
}

/// The world, made once per process (its store in a temporary folder left to the OS).
pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let publisher = member("central-server/GOV/70000002/employment");
        let me = member("central-server/GOV/70000001/migration");
        let authority_id = member("central-server/GOV/70000000/authority");
        let key = SigningKey::from_bytes(&[7; 32]);
        let entry = |id: &MemberId, key: &SigningKey, formats: Vec<EventFormat>| Member {
            id: id.clone(),
            names: Names::default(),
            peer_endpoint: "127.0.0.1:1".into(),
            tls_key_sha256: String::new(),
            signing_keys: vec![SigningKeyEntry {
                name: "sign-1".into(),
                public_key: crate::event::keys::RawPublicKey::of(&key.verifying_key()),
                not_before: datetime!(2000-01-01 0:00 UTC),
                not_after: datetime!(2100-01-01 0:00 UTC),
                revoked: None,
                revoked_after_sequence: None,
            }],
            legacy_eddsa: false,
            event_formats: formats,
        };
        let manifest = Manifest {
            instance: "central-server".into(),
            serial: 1,
            issued: datetime!(2026-01-01 0:00 UTC),
            expires: datetime!(2100-01-01 0:00 UTC),
            authority: authority_id,
            ca_certificate: String::new(),
            members: vec![
                entry(&publisher, &key, vec![EventFormat::Jws, EventFormat::SdJwt]),
                entry(&me, &SigningKey::from_bytes(&[8; 32]), vec![]),
            ],
            event_types: EventType::ALL
                .into_iter()
                .map(|t| {
                    let reader = ReaderGrant {
                        member: me.clone(),
                        purposes: vec!["EMPLOYMENT_SERVICES".into()],
                        fields: None,
                    };
                    TypePolicy::new(t, vec![publisher.clone()], vec![reader])
                })
                .collect(),
        };
        let dir = tempfile::tempdir().expect("a temporary folder").keep();
        World {
            kid: KeyName::new(publisher.clone(), "sign-1").expect("a key name"),
            publisher,
            key,
            authority: SigningKey::from_bytes(&[9; 32]),
            manifest,
            me,
            schemas: Schemas::load().expect("the shipped schemas compile"),
            store: Store::open(&dir).expect("a store in a temporary folder"),
        }
    })
}

impl World {
    fn checker(&self) -> Checker<'_> {
        Checker {
            manifest: &self.manifest,
            me: &self.me,
            schemas: &self.schemas,
            store: &self.store,
            max_event_bytes: crate::budget::DEFAULT_MAX_EVENT_BYTES,
        }
    }

    /// `event` (its JSON text, as given) signed by the publisher: whole, or as an SD-JWT with
    /// `disclosures` beside it.
    pub fn sign(&self, event: &[u8], disclosures: Option<&[String]>) -> Vec<u8> {
        match disclosures {
            None => jws::sign(&self.key, &self.kid, Typ::Event, event),
            Some(list) => {
                let signed = jws::sign(&self.key, &self.kid, Typ::SdEvent, event);
                jws::with_disclosures(&signed, list.iter().map(String::as_str)).unwrap_or(signed)
            }
        }
    }
}

/// A feed item's `jws` in the harness's unsigned form.
#[derive(serde::Deserialize)]
struct Unsigned<'a> {
    #[serde(borrow)]
    unsigned: &'a serde_json::value::RawValue,
    #[serde(default)]
    disclosures: Option<Vec<String>>,
}

/// The bytes a feed item carries, signed here when it is in the unsigned form.
fn item_bytes(w: &World, item: &ReceivedItem) -> Option<Vec<u8>> {
    let raw = item.jws.as_ref()?.get();
    Some(match serde_json::from_str::<Unsigned<'_>>(raw) {
        Ok(u) => w.sign(u.unsigned.get().as_bytes(), u.disclosures.as_deref()),
        Err(_) => raw.as_bytes().to_vec(),
    })
}

/// A feed answer as a subscriber receives it (`federation::sync`): decoded as a page (and as
/// an error answer), then each run of items (events, releases) through the receipt checks as
/// one batch. Asserts: the batch gives each item the verdict it gets alone, one verdict per
/// item with an event and none for an item without; an accepted event is the publisher's, at
/// the sequence the feed gave; the check of corrections within the page answers.
pub fn feed_page(data: &[u8]) {
    let _ = decode_page(StatusCode::BAD_GATEWAY, data);
    let Ok(page) = decode_page(StatusCode::OK, data) else {
        return;
    };
    let w = world();
    let checker = w.checker();
    for items in [&page.events, &page.released] {
        let bytes: Vec<Option<Vec<u8>>> = items.iter().map(|i| item_bytes(w, i)).collect();
        let batch: Vec<Option<(&[u8], u64)>> = bytes
            .iter()
            .zip(items.iter())
            .map(|(b, i)| Some((b.as_deref()?, i.sequence)))
            .collect();
        let verdicts = checker.check_batch(&batch, &w.publisher);
        assert_eq!(verdicts.len(), batch.len(), "one verdict per item");
        let mut accepted: Vec<SignedEvent> = Vec::new();
        for (item, verdict) in batch.iter().zip(verdicts) {
            let (Some((bytes, sequence)), Some(verdict)) = (item, verdict) else {
                assert!(item.is_none(), "an item with an event got no verdict");
                continue;
            };
            let alone = checker.check(bytes, &w.publisher, *sequence);
            let reason = |v: &Result<SignedEvent, receipt::Rejection>| -> Result<u64, Reason> {
                v.as_ref().map(SignedEvent::sequence).map_err(|r| r.reason)
            };
            assert_eq!(reason(&verdict), reason(&alone), "batch and alone differ");
            if let Ok(signed) = verdict {
                assert_eq!(signed.sequence(), *sequence);
                assert_eq!(signed.event().source, w.publisher);
                let _ = receipt::check_supersedes_within(signed.event(), &accepted);
                accepted.push(signed);
            }
        }
    }
}

/// A manifest (`trust::manifest`): the bytes as the signed file, and as the payload the
/// authority signed. Asserts: a manifest read re-signs to one that reads back equal.
pub fn manifest(data: &[u8]) {
    let w = world();
    let authority = w.authority.verifying_key();
    let kid = KeyName::new(w.manifest.authority.clone(), "manifest").expect("a key name");
    let as_payload = jws::sign(&w.authority, &kid, Typ::Manifest, data);
    for bytes in [data, &as_payload] {
        let Ok(m) = Manifest::verify(bytes, &authority) else {
            continue;
        };
        for member in &m.members {
            let _ = m.readable_types(&member.id);
            let _ = m.signing_format(&member.id);
            for t in EventType::ALL {
                let _ = m.reader_fields(&member.id, t);
                let _ = m.may_publish(&member.id, t);
            }
        }
        let again = m.sign(&w.authority).expect("a manifest read signs again");
        let back = Manifest::verify(&again, &authority).expect("a re-signed manifest reads");
        assert_eq!(back, m, "a manifest changed in a sign and read");
    }
}

/// A node config (`NodeConfig::parse`). Asserts: a config read is written (as `jol init-node`
/// writes one) to text that reads back and writes the same.
pub fn node_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let base = Path::new("/etc/jol");
    let Ok(config) = NodeConfig::parse(text, base) else {
        return;
    };
    let written = toml::to_string(&config).expect("a config read can be written");
    let again = NodeConfig::parse(&written, base).expect("a written config reads");
    let rewritten = toml::to_string(&again).expect("and is written again");
    assert_eq!(rewritten, written, "a config changed in a write and read");
}

/// The local API's publish and batch bodies (`api::publish`): the strict JSON parse, then the
/// body as one event and as a batch. Asserts: a draft the schema accepts, signed as the writer
/// signs it (whole and as an SD-JWT), reads back with the same data, valid.
pub fn publish_body(data: &[u8]) {
    let Ok(value) = crate::net::http::parse_json(data) else {
        return;
    };
    if let Ok(d) = draft(value.clone(), "") {
        publishes(d);
    }
    if let Ok(items) = batch_items(&value) {
        for (i, item) in items.iter().enumerate() {
            if let Ok(d) = draft(item.clone(), &format!("/events/{i}")) {
                publishes(d);
            }
        }
    }
}

fn publishes(d: Draft) {
    let w = world();
    if w.schemas.validate(d.event_type, &d.data).is_err() {
        return;
    }
    let event = Event::new(w.publisher.clone(), d.event_type, 1, d.data.clone());
    let whole = event.sign(&w.key, &w.kid);
    let fields = w.schemas.disclosable(d.event_type);
    let selective = event.sign_selective(&w.key, &w.kid, fields);
    for signed in [whole, selective] {
        let (back, _) = SignedEvent::parse(signed.bytes()).expect("a published event reads");
        assert_eq!(
            back.event().data,
            d.data,
            "the data changed in a sign and read"
        );
        w.schemas
            .validate(d.event_type, &back.event().data)
            .expect("a published event read back is valid");
    }
}

/// What the X-Road provider face reads of a call (`xroad::provider`), from lines: the path,
/// then `X-Road-Client`, `X-Road-UserId`, `X-Road-Issue`, `X-Road-Id`, then the query.
/// Asserts: a path is routed to a service whose code it starts with and a resource under
/// `/v1`; an accepted client id prints as given; an official as logged is at most 256
/// characters and never blank; a PIN accepted from the path prints as given; a date accepted
/// from the query is `YYYY-MM-DD`.
pub fn xroad_face(data: &[u8]) {
    let mut lines = data.split(|b| *b == b'\n');
    let path = std::str::from_utf8(lines.next().unwrap_or_default()).unwrap_or_default();
    let mut headers = HeaderMap::new();
    for name in [header::CLIENT, header::USER_ID, header::ISSUE, header::ID] {
        if let Some(value) = lines.next().and_then(|v| HeaderValue::from_bytes(v).ok()) {
            headers.insert(name, value);
        }
    }
    let query = lines.next().and_then(|q| std::str::from_utf8(q).ok());
    if let Some((service, resource)) = resource_of(path) {
        assert!(path.trim_start_matches('/').starts_with(service.code()));
        assert!(resource.is_empty() || resource.starts_with('/'));
        if let Some(Ok(pin)) = resource.strip_prefix("/persons/").map(valid_pin) {
            assert_eq!(Some(pin.expose()), resource.strip_prefix("/persons/"));
        }
    }
    if let Ok(client) = client_of(&headers) {
        let given = headers.get(header::CLIENT).and_then(|v| v.to_str().ok());
        assert_eq!(Some(client.as_str()), given);
    }
    let official = official_of(&headers);
    for logged in [official.user, official.issue, official.message_id]
        .into_iter()
        .flatten()
    {
        assert!(
            logged.chars().count() <= 256,
            "an official's header kept whole"
        );
        assert!(!logged.trim().is_empty(), "a blank official logged");
    }
    for name in ["asOf", "from", "to", "structureAt"] {
        if let Ok(Some(date)) = date_param(query, name) {
            let given = crate::net::http::query_param(query, name);
            assert_eq!(
                Some(date.to_string().as_str()),
                given,
                "a date not YYYY-MM-DD"
            );
        }
    }
}

/// SD-JWT disclosures (`event::disclosure`) and the SD-JWT VC a verifier reads
/// (`credentials::verify`, the status list's payload): the input is a signed part (JSON), a
/// newline, and `~`-separated disclosures. Asserts: disclosures revealed sit where their
/// pointers say and leave no `_sd`; data concealed field by field reveals back to itself.
pub fn sd_jwt(data: &[u8]) {
    let (head, tail) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let tail = std::str::from_utf8(tail).unwrap_or_default();
    let disclosures: Vec<&str> = tail.split('~').filter(|d| !d.is_empty()).collect();
    let Ok(signed) = crate::event::json::parse(head) else {
        if let Ok(text) = std::str::from_utf8(data) {
            let _ = crate::credentials::verify::verify(text, &issuer().1, None);
        }
        return;
    };
    let mut revealed = signed.clone();
    if let Ok(fields) = disclosure::reveal(&mut revealed, &disclosures) {
        assert_eq!(fields.len(), disclosures.len());
        for d in &fields {
            assert!(
                revealed.pointer(d.pointer.as_str()).is_some(),
                "{}",
                d.pointer
            );
        }
        assert!(!holds_reserved(&revealed), "an _sd left after reveal");
    }
    if !holds_reserved(&signed) {
        let mut concealed = signed.clone();
        let mut fields = Vec::new();
        pointers(&signed, String::new(), &mut fields);
        let made = disclosure::conceal(&mut concealed, &fields);
        let encoded: Vec<&str> = made.iter().map(|d| d.encoded.as_str()).collect();
        let mut back = concealed;
        let result = disclosure::reveal(&mut back, &encoded);
        assert!(result.is_ok(), "own disclosures refused: {result:?}");
        assert_eq!(back, signed, "conceal then reveal changed the data");
    }
    let _ = StatusList::of_payload(&signed).map(|l| l.is_revoked(l.len().saturating_sub(1)));
    let (key, metadata) = issuer();
    let credential = format!(
        "{}~{tail}",
        key.sign(crate::credentials::credential::TYP, &signed)
    );
    let _ = crate::credentials::verify::verify(&credential, metadata, None);
}

/// An issuer's key and its metadata, made once per process.
fn issuer() -> &'static (crate::credentials::key::IssuerKey, Value) {
    static ISSUER: OnceLock<(crate::credentials::key::IssuerKey, Value)> = OnceLock::new();
    ISSUER.get_or_init(|| {
        let key = crate::credentials::key::IssuerKey::generate("fuzz-1");
        let metadata = serde_json::json!({
            "issuer": "https://issuer.example",
            "jwks": {"keys": [key.jwk()]},
        });
        (key, metadata)
    })
}

/// Whether `v` holds a member SD-JWT reserves (`_sd`, `...`) anywhere.
fn holds_reserved(v: &Value) -> bool {
    match v {
        Value::Object(map) => {
            map.contains_key("_sd") || map.contains_key("...") || map.values().any(holds_reserved)
        }
        Value::Array(items) => items.iter().any(holds_reserved),
        _ => false,
    }
}

/// The pointer of every object member in `v`, parents first (those a pointer cannot name, as
/// an empty name, are left out).
fn pointers(v: &Value, at: String, out: &mut Vec<Pointer>) {
    match v {
        Value::Object(map) => {
            for (name, child) in map {
                let here = format!("{at}/{}", crate::event::json::pointer_token(name));
                if let Ok(p) = here.parse() {
                    out.push(p);
                }
                pointers(child, here, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// The erasure order's body (`api::erasure`) and a received erasure event's data
/// (`write::erasure`). Asserts: an order accepted has a legal basis of 3 to 300 characters and
/// a reason of 1 to 500; erasure data the schema accepts is data the holder can read.
pub fn erasure_order(data: &[u8]) {
    if let Ok(order) = ErasureRequest::parse(data) {
        assert!((3..=300).contains(&order.legal_basis.chars().count()));
        assert!((1..=500).contains(&order.reason.chars().count()));
    }
    let Ok(value) = crate::event::json::parse(data) else {
        return;
    };
    if world().schemas.validate(EventType::Erasure, &value).is_ok() {
        assert!(
            crate::write::erasure::says(&value).is_some(),
            "erasure data the schema accepts that a holder cannot read"
        );
    }
}

/// The peer feed's query string (`federation::feed`). Asserts: a query accepted asks for 1 to
/// [`MAX_FEED_PAGE`] events, waits at most the face's longest wait, and names a type at least
/// when it names any.
pub fn feed_query(data: &[u8]) {
    const MAX_WAIT: u64 = 30;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(q) = FeedQuery::parse(Some(text), MAX_WAIT) {
        assert!((1..=MAX_FEED_PAGE).contains(&q.limit));
        assert!(q.wait <= MAX_WAIT);
        assert!(q.types.is_none_or(|t| !t.is_empty()));
    }
}

/// A signed note as a witness or a verifier reads it (`log::note`), the checkpoint body in it
/// (`log::checkpoint`) and an evidence bundle's tlog-proof (`log::bundle`). Asserts: a note
/// parsed writes back to the very bytes it was read from (one note, one form), and so does a
/// checkpoint body.
pub fn signed_note(data: &[u8]) {
    if let Ok(note) = Note::parse(data) {
        assert_eq!(
            note.to_bytes(),
            data,
            "a note parsed writes back to other bytes"
        );
        if let Ok(c) = Checkpoint::parse_body(note.text()) {
            assert_eq!(
                c.body(),
                note.text(),
                "a checkpoint body reads back to other text"
            );
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(proof) = TlogProof::parse(text) {
            assert!(proof.index < u64::MAX);
        }
    }
}

/// A tlog-witness `add-checkpoint` body (`federation::witness_server`). Asserts: a body
/// accepted carries at most 63 proof lines, and writing it back gives the bytes it came from.
pub fn witness_request(data: &[u8]) {
    if let Ok(r) = WitnessRequest::parse(data) {
        assert!(r.proof.len() <= 63, "more than 63 proof lines accepted");
        assert_eq!(
            request_body(r.old, &r.proof, &r.note),
            data,
            "an add-checkpoint body reads back to other bytes"
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test
    use super::*;
    use serde_json::json;
    use std::path::PathBuf;

    /// A target's entry.
    type Target = fn(&[u8]);

    /// Each target's name (its folder under `fuzz/seeds`, `fuzz/corpus`, `fuzz/regressions`)
    /// and its function.
    const TARGETS: [(&str, Target); 10] = [
        ("feed_page", feed_page),
        ("manifest", manifest),
        ("node_config", node_config),
        ("publish_body", publish_body),
        ("xroad_face", xroad_face),
        ("sd_jwt", sd_jwt),
        ("erasure_order", erasure_order),
        ("feed_query", feed_query),
        ("signed_note", signed_note),
        ("witness_request", witness_request),
    ];

    fn fuzz_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz")
    }

    #[test]
    fn every_seed_and_every_reproducer_passes_its_target() {
        let mut ran = 0;
        for (target, run) in TARGETS {
            for kind in ["seeds", "regressions"] {
                let Ok(dir) = std::fs::read_dir(fuzz_dir().join(kind).join(target)) else {
                    continue;
                };
                for entry in dir {
                    let path = entry.unwrap().path();
                    let bytes = std::fs::read(&path).unwrap();
                    let outcome = std::panic::catch_unwind(|| run(&bytes));
                    assert!(outcome.is_ok(), "{} fails its target", path.display());
                    ran += 1;
                }
            }
        }
        assert!(ran >= TARGETS.len(), "the seeds are missing");
    }

    /// Valid data of every type, from the schemas' examples.
    fn examples() -> Vec<(EventType, Value)> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/examples");
        let mut out = Vec::new();
        for t in EventType::ALL {
            let mut files: Vec<_> = std::fs::read_dir(root.join(t.as_str()).join("valid"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            files.sort();
            for f in files {
                out.push((
                    t,
                    serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap(),
                ));
            }
        }
        out
    }

    /// The world's events: each example, signed whole (`false`) or as an SD-JWT.
    fn signed_events(selective: bool) -> Vec<Vec<u8>> {
        let w = world();
        examples()
            .into_iter()
            .enumerate()
            .map(|(i, (t, data))| {
                let e = Event::new(w.publisher.clone(), t, i as u64 + 1, data);
                let signed = if selective {
                    e.sign_selective(&w.key, &w.kid, w.schemas.disclosable(t))
                } else {
                    e.sign(&w.key, &w.kid)
                };
                signed.bytes().to_vec()
            })
            .collect()
    }

    fn page(items: Vec<Value>) -> Vec<u8> {
        let head = items.len();
        serde_json::to_vec(&json!({"events": items, "next": head, "head": head})).unwrap()
    }

    fn item(sequence: usize, jws: &[u8]) -> Value {
        let jws: Value = serde_json::from_slice(jws).unwrap();
        json!({"sequence": sequence, "jws": jws})
    }

    #[test]
    fn the_worlds_own_events_pass_the_receipt_checks() {
        let w = world();
        for selective in [false, true] {
            for (i, bytes) in signed_events(selective).iter().enumerate() {
                let verdict = w.checker().check(bytes, &w.publisher, i as u64 + 1);
                assert!(
                    verdict.is_ok(),
                    "{i}: {:?}",
                    verdict.err().map(|r| r.reason)
                );
            }
        }
    }

    /// Write the seeds of every target to `fuzz/seeds/` (run by hand after a change to the
    /// world or the examples: `cargo test --lib fuzzing -- --ignored`).
    #[test]
    #[ignore]
    fn write_seeds() {
        let w = world();
        let mut seeds: Vec<(&str, String, Vec<u8>)> = Vec::new();
        let mut add = |target, name: &str, bytes: Vec<u8>| seeds.push((target, name.into(), bytes));
        // feed_page: signed pages, an unsigned one, a withheld item and a release, a fault.
        // Pages of three events at most, so that inputs stay within fuzz/run.sh's 8 KiB.
        for (name, selective) in [("signed-whole", false), ("signed-sd-jwt", true)] {
            let items: Vec<Value> = signed_events(selective)
                .iter()
                .enumerate()
                .map(|(i, b)| item(i + 1, b))
                .collect();
            for (n, run) in items.chunks(3).enumerate() {
                add("feed_page", &format!("{name}-{n}"), page(run.to_vec()));
            }
        }
        // Every other item an SD-JWT: the concealed event and its disclosures.
        let unsigned: Vec<Value> = examples()
            .into_iter()
            .enumerate()
            .map(|(i, (t, data))| {
                let mut e = Event::new(w.publisher.clone(), t, i as u64 + 1, data);
                if i % 2 == 1 {
                    return json!({"sequence": i + 1, "jws": {"unsigned": e}});
                }
                let made = disclosure::conceal(&mut e.data, w.schemas.disclosable(t));
                let disclosures: Vec<&str> = made.iter().map(|d| d.encoded.as_str()).collect();
                json!({"sequence": i + 1, "jws": {"unsigned": e, "disclosures": disclosures}})
            })
            .collect();
        for (n, run) in unsigned.chunks(3).enumerate() {
            add("feed_page", &format!("unsigned-{n}"), page(run.to_vec()));
        }
        let first = &signed_events(false)[0];
        let mut released = serde_json::from_slice::<Value>(&page(vec![
            json!({"sequence": 1, "withheld": "no-consent"}),
        ]))
        .unwrap();
        released["released"] = json!([{"release": 1, "sequence": 1, "jws": serde_json::from_slice::<Value>(first).unwrap()}]);
        released["releaseHead"] = json!(1);
        add(
            "feed_page",
            "withheld-and-released",
            serde_json::to_vec(&released).unwrap(),
        );
        add(
            "feed_page",
            "xroad-fault",
            br#"{"type":"Server.ServerProxy.ServiceFailed","message":"timed out","detail":""}"#
                .to_vec(),
        );
        // manifest: the signed file and the payload the authority signs.
        add("manifest", "signed", w.manifest.sign(&w.authority).unwrap());
        add(
            "manifest",
            "payload",
            serde_json::to_vec_pretty(&w.manifest).unwrap(),
        );
        // node_config: the shipped configs and one laid out by the federation builder.
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        for (name, file) in [
            ("example", "config/example/node.toml"),
            ("ha-replica", "config/ha/node-replica.toml"),
        ] {
            add("node_config", name, std::fs::read(root.join(file)).unwrap());
        }
        let laid = crate::node::layout::node_config(
            w.publisher.clone(),
            "127.0.0.1:8402".parse().unwrap(),
            "127.0.0.1:8403".parse().unwrap(),
            vec![crate::federation::sync::Subscription {
                from: w.me.clone(),
                types: vec![EventType::ReturneeRecord],
                via: None,
            }],
            crate::store::kv::Engine::Redb,
            crate::federation::sync::SyncSettings::default(),
        );
        let mut text = toml::to_string(&laid).unwrap();
        text.push_str("\n[xroad]\nprovider_listen = \"127.0.0.1:8404\"\nallow_from = [\"127.0.0.1\"]\nnames = [\"jol.example\"]\n");
        text.push_str("\n[credentials]\nissuer = \"https://jol.example/credentials\"\npublic_listen = \"127.0.0.1:8405\"\nkey_file = \"keys/credential.pem\"\n");
        add("node_config", "laid-out", text.into_bytes());
        // publish_body: each example as one event, and all of them as a batch.
        let mut batch = Vec::new();
        for (i, (t, data)) in examples().into_iter().enumerate() {
            let body =
                json!({"type": t.as_str(), "data": data, "idempotencyKey": format!("k-{i}")});
            add(
                "publish_body",
                &format!("{}-{i}", t.as_str()),
                serde_json::to_vec(&body).unwrap(),
            );
            batch.push(body);
        }
        for (n, run) in batch.chunks(3).enumerate() {
            let body = json!({"events": run});
            add(
                "publish_body",
                &format!("batch-{n}"),
                serde_json::to_vec(&body).unwrap(),
            );
        }
        // xroad_face: path, X-Road-Client, -UserId, -Issue, -Id, query.
        for (name, lines) in [
            ("feed", "/jol-feed/v1/feed\ncentral-server/GOV/70000001/migration\nEE1234\nCASE-7\nmsg-1\nafter=0&limit=100&wait=20"),
            ("person", "/jol-persons/v1/persons/21503199012345\ncentral-server/GOV/70000001/migration\nEE1234\nCASE-7\nmsg-2\nasOf=2026-11-30"),
            ("kpi", "/jol-kpi/v1/kpi\ncentral-server/GOV/70000003/education\nEE99\nISSUE\nmsg-3\nfrom=2026-01-01&to=2026-11-30&structureAt=2026-06-01&asOf=2026-11-30"),
        ] {
            add("xroad_face", name, lines.as_bytes().to_vec());
        }
        // sd_jwt: each example concealed, then its disclosures; a status list's payload.
        for (i, (t, data)) in examples().into_iter().enumerate() {
            let mut concealed = data;
            let made = disclosure::conceal(&mut concealed, w.schemas.disclosable(t));
            if made.is_empty() {
                continue;
            }
            let disclosures: Vec<&str> = made.iter().map(|d| d.encoded.as_str()).collect();
            let text = format!(
                "{}\n{}",
                serde_json::to_string(&concealed).unwrap(),
                disclosures.join("~")
            );
            add("sd_jwt", &format!("{}-{i}", t.as_str()), text.into_bytes());
        }
        let mut list = StatusList::default();
        for idx in 0..20 {
            list.take(idx);
        }
        list.revoke(3);
        let token = list.token(
            &issuer().0,
            "https://issuer.example",
            "https://issuer.example/status/1",
            0,
        );
        let payload = token.split('.').nth(1).unwrap();
        use base64::Engine as _;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        add("sd_jwt", "status-list", payload);
        // erasure_order: an operator's order, and the erasure events' data.
        add(
            "erasure_order",
            "order",
            br#"{"legalBasis": "Law on Personal Information, art. 12", "reason": "the person's request"}"#.to_vec(),
        );
        for (i, (t, data)) in examples().into_iter().enumerate() {
            if t == EventType::Erasure {
                add(
                    "erasure_order",
                    &format!("event-{i}"),
                    serde_json::to_vec_pretty(&data).unwrap(),
                );
            }
        }
        // feed_query.
        for (name, q) in [
            (
                "all",
                "after=5&limit=10&wait=3&types=returnee-record,employment-status&released_after=2",
            ),
            ("plain", "after=0"),
        ] {
            add("feed_query", name, q.as_bytes().to_vec());
        }
        for (target, name, bytes) in seeds {
            let dir = fuzz_dir().join("seeds").join(target);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}
