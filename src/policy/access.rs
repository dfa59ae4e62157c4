//! The access log: who read a person's data, when, why, and what. One record per read, written
//! and flushed before the data leaves the node, so "who looked at my data" is never missing a
//! read that happened; a read refused because the person's consent does not cover the reader's
//! purpose is recorded too. The records form a Merkle log of their own that the node's signed
//! checkpoint covers, so a removed or altered record shows in `jol audit`.
//!
//! The reads of one request that differ only in whom and what they are about (a feed page
//! delivering a thousand events) are kept as one log entry listing each person and what of
//! theirs was read, indexed under each of those persons: one entry, one Merkle leaf and one
//! write instead of a thousand. A person's log shows only their own reads from it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::event::identifiers::{MemberId, Pin};
use crate::event::Event;
use crate::store::{Store, StoreError};

/// One read of a person's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AccessRecord {
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// Who read.
    pub reader: ReaderId,
    /// The official: the token's holder on the local API, as `X-Road-UserId` named them through
    /// X-Road.
    pub user: Option<String>,
    /// Why: the token's purpose, or the purposes of the reader's grant.
    pub purpose: Option<String>,
    /// The case the official works on, as `X-Road-Issue` named it (never taken as the purpose).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue: Option<String>,
    /// What was read.
    pub what: String,
    /// One id per request (a feed page delivering several events shares it).
    pub request_id: Uuid,
    /// The X-Road message id (`X-Road-Id`) of a read through X-Road.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Whether the data left the node.
    #[serde(default)]
    pub outcome: Outcome,
}

impl AccessRecord {
    /// The record as a desk that may read the person is shown it (any token but `admin`): who
    /// read (the member, the token), when, why, what and whether it left the node, but not the
    /// official who read at another agency (`X-Road-UserId` is their personal code), their case
    /// or the message id: those are for the data protection officer (`admin`).
    pub(crate) fn for_desk(self) -> AccessRecord {
        AccessRecord {
            user: None,
            issue: None,
            message_id: None,
            ..self
        }
    }
}

/// Who read, written as text: `local:TOKEN-NAME` (a bearer token), `dashboard:TOKEN-NAME`
/// (the token signed in to the dashboard), `webhook:HOST:PORT` (the agency's own system, pushed
/// to), `cli:COMMAND` (an operator at the node's console), or the member id of the reader's
/// node (a feed page, `jol-persons`). A member id has no `:`, so the text says which it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ReaderId {
    /// A bearer token of the local API, by its name, and how it was presented.
    Token { name: String, via: TokenVia },
    /// Another member's node.
    Member(MemberId),
    /// The agency's own system the webhook delivers to.
    Webhook { host_port: String },
    /// An operator at the node's machine running `jol COMMAND`.
    Console { command: String },
}

/// How a token reached the local API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenVia {
    /// `Authorization: Bearer`.
    Bearer,
    /// A dashboard session signed in with the token.
    Dashboard,
}

/// Why a stored reader's text names no reader (the text is not repeated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a reader is `local:`, `dashboard:`, `webhook:` or `cli:` and a name, or a member id")]
pub struct ReaderError;

impl fmt::Display for ReaderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReaderId::Token {
                name,
                via: TokenVia::Bearer,
            } => write!(f, "local:{name}"),
            ReaderId::Token {
                name,
                via: TokenVia::Dashboard,
            } => write!(f, "dashboard:{name}"),
            ReaderId::Member(member) => write!(f, "{member}"),
            ReaderId::Webhook { host_port } => write!(f, "webhook:{host_port}"),
            ReaderId::Console { command } => write!(f, "cli:{command}"),
        }
    }
}

impl FromStr for ReaderId {
    type Err = ReaderError;
    fn from_str(s: &str) -> Result<Self, ReaderError> {
        let Some((kind, name)) = s.split_once(':') else {
            return s.parse().map(ReaderId::Member).map_err(|_| ReaderError);
        };
        let token = |via| ReaderId::Token {
            name: name.to_string(),
            via,
        };
        match kind {
            "local" => Ok(token(TokenVia::Bearer)),
            "dashboard" => Ok(token(TokenVia::Dashboard)),
            "webhook" => Ok(ReaderId::Webhook {
                host_port: name.to_string(),
            }),
            "cli" => Ok(ReaderId::Console {
                command: name.to_string(),
            }),
            _ => Err(ReaderError),
        }
    }
}

impl TryFrom<String> for ReaderId {
    type Error = ReaderError;
    fn try_from(s: String) -> Result<Self, ReaderError> {
        s.parse()
    }
}

impl From<ReaderId> for String {
    fn from(r: ReaderId) -> String {
        r.to_string()
    }
}

/// Whether a read was answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Outcome {
    /// The data was served.
    #[default]
    Served,
    /// Refused: the person's consent does not cover the reader's purpose.
    RefusedNoConsent,
    /// Refused: the node holds nothing about the person (answered exactly as a refusal).
    RefusedNothingHeld,
    /// Not a read: some of the person's data here was erased (the reader is the member that
    /// ordered it; `what` names the erasure and its legal basis).
    Erased,
}

impl Outcome {
    /// How a read the consent decision allowed (`served`) or refused is logged.
    pub(crate) fn of_decision(served: bool) -> Outcome {
        match served {
            true => Outcome::Served,
            false => Outcome::RefusedNoConsent,
        }
    }
}

/// One access-log entry as stored: a record and the PIN it is about, or the reads of one request
/// (`reads`, each with its PIN and what was read; `what` then says how many).
#[derive(Serialize, Deserialize)]
struct Entry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pin: Option<Pin>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    reads: Vec<Read>,
    #[serde(flatten)]
    record: AccessRecord,
}

/// One person's read within an entry of several.
#[derive(Serialize, Deserialize)]
struct Read {
    pin: Pin,
    what: String,
}

impl Entry {
    /// The entry of `records` (one request's reads, all alike but for PIN and what).
    fn of(mut records: Vec<(Pin, AccessRecord)>) -> Entry {
        if records.len() == 1 {
            let (pin, record) = records.remove(0);
            return Entry {
                pin: Some(pin),
                reads: Vec::new(),
                record,
            };
        }
        let mut record = records[0].1.clone();
        record.what = format!("{} reads in one request", records.len());
        Entry {
            pin: None,
            reads: records
                .into_iter()
                .map(|(pin, r)| Read { pin, what: r.what })
                .collect(),
            record,
        }
    }

    /// The PINs it is about, each once, as the store's index keys take them.
    fn pins(&self) -> Vec<String> {
        let mut pins: Vec<&Pin> = self
            .pin
            .iter()
            .chain(self.reads.iter().map(|r| &r.pin))
            .collect();
        pins.sort_unstable();
        pins.dedup();
        pins.into_iter().map(|p| p.expose().to_string()).collect()
    }

    /// The records of `pin`'s reads in it (none of anybody else's).
    fn records_of(self, pin: &Pin) -> Vec<AccessRecord> {
        if self.reads.is_empty() {
            return vec![self.record];
        }
        self.reads
            .into_iter()
            .filter(|r| r.pin == *pin)
            .map(|r| AccessRecord {
                what: r.what,
                ..self.record.clone()
            })
            .collect()
    }
}

/// Whether two records are reads of the same request by the same reader, alike but for what.
fn same_request(a: &AccessRecord, b: &AccessRecord) -> bool {
    a.request_id == b.request_id
        && a.reader == b.reader
        && a.user == b.user
        && a.purpose == b.purpose
        && a.issue == b.issue
        && a.message_id == b.message_id
        && a.outcome == b.outcome
}

/// Who is reading: the reader's name, the official, the purpose, and for a read through X-Road
/// the issue and the message id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reader {
    pub reader: ReaderId,
    pub user: Option<String>,
    pub purpose: Option<String>,
    pub issue: Option<String>,
    /// The X-Road message id, for a read through X-Road.
    pub message_id: Option<String>,
}

/// What X-Road's headers say about a call: the official (`X-Road-UserId`), the case
/// (`X-Road-Issue`) and the message id (`X-Road-Id`). Empty for a call that did not come
/// through X-Road.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Official {
    pub user: Option<String>,
    pub issue: Option<String>,
    pub message_id: Option<String>,
}

impl Reader {
    /// A member's node reading for `purpose`, on behalf of `official`.
    pub(crate) fn member(
        member: &MemberId,
        purpose: Option<String>,
        official: &Official,
    ) -> Reader {
        Reader {
            reader: ReaderId::Member(member.clone()),
            user: official.user.clone(),
            purpose,
            issue: official.issue.clone(),
            message_id: official.message_id.clone(),
        }
    }

    /// One of this node's own readers (a token, the webhook, the console), reading for
    /// `purpose`, held by `user`.
    pub(crate) fn local(reader: ReaderId, user: Option<String>, purpose: Option<String>) -> Reader {
        Reader {
            reader,
            user,
            purpose,
            issue: None,
            message_id: None,
        }
    }

    /// The record of this reader reading `what`, now.
    pub(crate) fn record(&self, what: &str, outcome: Outcome, request_id: Uuid) -> AccessRecord {
        AccessRecord {
            time: OffsetDateTime::now_utc(),
            reader: self.reader.clone(),
            user: self.user.clone(),
            purpose: self.purpose.clone(),
            issue: self.issue.clone(),
            what: what.to_string(),
            request_id,
            message_id: self.message_id.clone(),
            outcome,
        }
    }
}

/// One person's part in a request: whose data, what of it, whether it was served, and the
/// purpose when it is not the reader's (a feed page reads each type for its grant's purposes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Access {
    pub pin: Pin,
    pub what: String,
    pub outcome: Outcome,
    pub purpose: Option<String>,
}

impl Access {
    pub(crate) fn new(pin: &Pin, what: impl Into<String>, outcome: Outcome) -> Access {
        Access {
            pin: pin.clone(),
            what: what.into(),
            outcome,
            purpose: None,
        }
    }

    /// The read of a stored `event`: `None` for an event about no person. A stored event whose
    /// `person.pin` is not a PIN is damaged (the schemas refuse one), and is not read.
    pub(crate) fn of_event(
        event: &Event,
        what: impl Into<String>,
        outcome: Outcome,
    ) -> Result<Option<Access>, StoreError> {
        let Some(pin) = event.pin() else {
            return Ok(None);
        };
        let pin: Pin = pin
            .parse()
            .map_err(|_| StoreError::Corrupt("stored event"))?;
        Ok(Some(Access::new(&pin, what, outcome)))
    }
}

/// **The one way a read of personal data is logged**, on every path: one request of `who`, with
/// each person it touched, written and flushed before the data leaves. A read that cannot be
/// recorded must not be answered: the caller refuses it on `Err`.
pub(crate) fn log(
    store: &Store,
    who: &Reader,
    accesses: impl IntoIterator<Item = Access>,
) -> Result<(), StoreError> {
    let request_id = Uuid::now_v7();
    append(
        store,
        accesses.into_iter().map(|a| {
            let mut record = who.record(&a.what, a.outcome, request_id);
            if a.purpose.is_some() {
                record.purpose = a.purpose;
            }
            (a.pin, record)
        }),
    )
}

/// [`log`] for reads served to `who`: `what` about each of `pins`.
pub(crate) fn record_reads<'a>(
    store: &Store,
    who: &Reader,
    what: &str,
    pins: impl IntoIterator<Item = &'a Pin>,
) -> Result<(), StoreError> {
    log(
        store,
        who,
        pins.into_iter()
            .map(|pin| Access::new(pin, what, Outcome::Served)),
    )
}

/// Append records (each with the PIN it is about) to the access log, durably; a run of reads of
/// one request becomes one entry.
fn append(
    store: &Store,
    records: impl IntoIterator<Item = (Pin, AccessRecord)>,
) -> Result<(), StoreError> {
    let mut groups: Vec<Vec<(Pin, AccessRecord)>> = Vec::new();
    for (pin, record) in records {
        match groups.last_mut() {
            Some(group) if same_request(&group[0].1, &record) => group.push((pin, record)),
            _ => groups.push(vec![(pin, record)]),
        }
    }
    let entries = groups
        .into_iter()
        .map(|group| {
            let entry = Entry::of(group);
            (entry.pins(), serde_json::to_vec(&entry).unwrap_or_default())
        })
        .collect();
    store.append_access(entries)
}

/// A person's access log, newest first.
pub(crate) fn log_of(
    store: &Store,
    pin: &Pin,
    limit: usize,
) -> Result<Vec<AccessRecord>, StoreError> {
    let mut records = Vec::new();
    for bytes in store.access_entries(pin.expose(), limit)? {
        let entry: Entry =
            serde_json::from_slice(&bytes).map_err(|_| StoreError::Corrupt("access record"))?;
        records.extend(entry.records_of(pin));
    }
    records.truncate(limit);
    Ok(records)
}

/// How many of a person's access records are read to find who their events went to.
const DELIVERIES_READ: usize = 100_000;

/// The members this node delivered any of the events `ids` about `pin` to, as the person's
/// access log records it (every delivery is logged before the page leaves): who holds a copy.
pub(crate) fn delivered_to(
    store: &Store,
    pin: &Pin,
    ids: &[&str],
) -> Result<Vec<MemberId>, StoreError> {
    let mut members: Vec<MemberId> = log_of(store, pin, DELIVERIES_READ)?
        .into_iter()
        .filter(|r| r.outcome == Outcome::Served && ids.iter().any(|id| r.what.contains(id)))
        .filter_map(|r| match r.reader {
            ReaderId::Member(m) => Some(m),
            _ => None,
        })
        .collect();
    members.sort();
    members.dedup();
    Ok(members)
}

/// An access-log entry as stored, without `pin`'s reads: for an entry about that person alone,
/// the record with no person and `what` saying it was erased; for an entry of several persons'
/// reads, the others' reads only. Nothing of the erased person is left in it.
pub(crate) fn without(entry: &[u8], pin: &Pin) -> Result<Vec<u8>, StoreError> {
    let mut entry: Entry =
        serde_json::from_slice(entry).map_err(|_| StoreError::Corrupt("access record"))?;
    if entry.pin.as_ref() == Some(pin) {
        entry.pin = None;
        entry.record.what = "a read of a person since erased".into();
    }
    entry.reads.retain(|r| &r.pin != pin);
    serde_json::to_vec(&entry).map_err(|_| StoreError::Corrupt("access record"))
}

/// Every PIN a quarantined or stored body mentions, each once: any run of exactly 14 digits
/// that is a well-formed PIN, in the body itself, in any base64url part of it (a JWS payload),
/// and in its JSON strings and keys as decoded (a `\u0032` escape hides no digit), down through
/// JSON held in a string and payloads held in those, whatever shape the body has: a single
/// event, a batch, a refused fragment, a quarantine record. A reader of such a body is logged
/// under each of them.
pub(crate) fn pins_in(body: &[u8]) -> Vec<Pin> {
    let mut pins = Vec::new();
    scan_for_pins(body, &mut pins, PIN_SCAN_DEPTH);
    pins.sort_unstable();
    pins.dedup();
    pins
}

/// How many layers of encoding [`pins_in`] undoes: a quarantine record's JSON, the body held in
/// it as a string, the JWS payload in that, and the payload's own JSON.
const PIN_SCAN_DEPTH: u8 = 4;

/// [`pins_in`] to `depth` more layers of base64url or JSON.
fn scan_for_pins(bytes: &[u8], pins: &mut Vec<Pin>, depth: u8) {
    use base64::Engine;
    digits_runs(bytes, pins);
    // Digits written as JSON escapes, whether or not the text around them parses.
    if bytes.windows(4).any(|w| w == b"\\u00") {
        digits_runs(&unescaped_digits(bytes), pins);
    }
    let Some(deeper) = depth.checked_sub(1) else {
        return;
    };
    for part in bytes.split(|b| !(b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')) {
        if part.len() >= 24 {
            if let Ok(decoded) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part) {
                scan_for_pins(&decoded, pins, deeper);
            }
        }
    }
    let text = bytes.trim_ascii_start();
    if text
        .first()
        .is_some_and(|b| matches!(b, b'{' | b'[' | b'"'))
    {
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(text) {
            scan_json_for_pins(&value, pins, deeper);
        }
    }
}

/// `bytes` with each `\u003N` escape (an ASCII digit) written as the digit.
fn unescaped_digits(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes.get(i..i + 6) {
            Some([b'\\', b'u', b'0', b'0', b'3', d]) if d.is_ascii_digit() => {
                out.push(*d);
                i += 6;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

/// [`scan_for_pins`] over every string and key of `value`.
fn scan_json_for_pins(value: &serde_json::Value, pins: &mut Vec<Pin>, depth: u8) {
    match value {
        serde_json::Value::String(s) => scan_for_pins(s.as_bytes(), pins, depth),
        serde_json::Value::Array(items) => {
            items
                .iter()
                .for_each(|v| scan_json_for_pins(v, pins, depth));
        }
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                scan_for_pins(key.as_bytes(), pins, depth);
                scan_json_for_pins(v, pins, depth);
            }
        }
        _ => {}
    }
}

/// The well-formed PINs among the runs of exactly 14 digits in `bytes`.
fn digits_runs(bytes: &[u8], pins: &mut Vec<Pin>) {
    for run in bytes.split(|b| !b.is_ascii_digit()) {
        if run.len() != 14 {
            continue;
        }
        if let Some(pin) = std::str::from_utf8(run).ok().and_then(|t| t.parse().ok()) {
            pins.push(pin);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SideLog;

    const ANNA: &str = "21503199012345";
    const BEK: &str = "10101199000001";

    /// A PIN written with JSON escapes, in a body, in a JWS payload, or in a body held as a
    /// string in a quarantine record, is found as plainly written ones are.
    #[test]
    fn pins_hidden_by_escapes_or_encodings_are_found() {
        use base64::Engine;
        let escaped: String = ANNA
            .chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect();
        let body = format!("{{\"person\": {{\"pin\": \"{escaped}\"}}, \"other\": \"{BEK}\"}}");
        assert_eq!(pins_in(body.as_bytes()), [pin(BEK), pin(ANNA)]);
        // Cut off: not JSON any more, the escapes still read as digits.
        assert_eq!(pins_in(&body.as_bytes()[..110]), [pin(ANNA)]);
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&body);
        let jws =
            format!("{{\"protected\": \"eyJhbGciOiJFZERTQSJ9\", \"payload\": \"{payload}\"}}");
        assert_eq!(pins_in(jws.as_bytes()), [pin(BEK), pin(ANNA)]);
        // Two letters of the payload escaped: its base64url run is cut where they are written,
        // and what follows no longer decodes in step.
        let escaped: String = payload[..2]
            .chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect();
        let hidden = jws.replacen(&payload, &format!("{escaped}{}", &payload[2..]), 1);
        assert_eq!(pins_in(hidden.as_bytes()), [pin(BEK), pin(ANNA)]);
        let record = serde_json::json!({"origin": "peer", "body": jws}).to_string();
        assert_eq!(pins_in(record.as_bytes()), [pin(BEK), pin(ANNA)]);
        assert!(pins_in(b"{\"pin\": \"2150319901234\"}").is_empty());
    }

    fn pin(digits: &str) -> Pin {
        digits.parse().unwrap()
    }

    fn page_reader() -> Reader {
        Reader {
            reader: ReaderId::Member("central-server/GOV/70000002/employment".parse().unwrap()),
            user: None,
            purpose: Some("EMPLOYMENT_SERVICES".into()),
            issue: None,
            message_id: None,
        }
    }

    /// A feed page's reads are one entry; each person sees only their own reads from it.
    #[test]
    fn one_request_is_one_entry_and_each_person_sees_only_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let request = Uuid::now_v7();
        let reader = page_reader();
        let read =
            |digits: &str, what: &str| (pin(digits), reader.record(what, Outcome::Served, request));
        append(
            &store,
            [
                read(ANNA, "event 1"),
                read(BEK, "event 2"),
                read(ANNA, "event 3"),
            ],
        )
        .unwrap();
        assert_eq!(store.side_len(SideLog::Access), 1);
        let anna = log_of(&store, &pin(ANNA), 100).unwrap();
        let whats: Vec<&str> = anna.iter().map(|r| r.what.as_str()).collect();
        assert_eq!(whats, ["event 1", "event 3"]);
        assert!(anna.iter().all(|r| r.request_id == request));
        let bek = log_of(&store, &pin(BEK), 100).unwrap();
        assert_eq!(bek.len(), 1);
        assert_eq!(bek[0].what, "event 2");
        assert_eq!(log_of(&store, &pin(ANNA), 1).unwrap().len(), 1);
    }

    /// Reads of different requests, or a single read, stay entries of their own, as before.
    #[test]
    fn different_requests_are_different_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let reader = page_reader();
        record_reads(&store, &reader, "the person's view", [&pin(ANNA)]).unwrap();
        log(
            &store,
            &reader,
            [Access::new(
                &pin(ANNA),
                "the person's view",
                Outcome::RefusedNoConsent,
            )],
        )
        .unwrap();
        assert_eq!(store.side_len(SideLog::Access), 2);
        let anna = log_of(&store, &pin(ANNA), 100).unwrap();
        assert_eq!(anna.len(), 2);
        assert_eq!(anna[0].outcome, Outcome::RefusedNoConsent, "newest first");
        assert!(log_of(&store, &pin(BEK), 100).unwrap().is_empty());
    }

    /// Every PIN in a body is found, whatever its shape: plain, in a batch, inside a JWS
    /// payload, in a fragment that is not JSON; digits that are not a PIN are not.
    #[test]
    fn every_pin_in_a_body_is_found() {
        use base64::Engine;
        let batch =
            format!(r#"{{"events":[{{"data":{{"person":{{"pin":"{ANNA}"}}}}}},{{"x":"{BEK}"}}]}}"#);
        assert_eq!(pins_in(batch.as_bytes()), [pin(BEK), pin(ANNA)]);
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!(r#"{{"data":{{"person":{{"pin":"{ANNA}"}}}}}}"#));
        let jws = format!(
            r#"{{"protected":"eyJhbGciOiJFZDI1NTE5In0","payload":"{payload}","signature":"AAAA"}}"#
        );
        assert_eq!(pins_in(jws.as_bytes()), [pin(ANNA)]);
        assert_eq!(
            pins_in(format!("garbage {ANNA}, truncated").as_bytes()),
            [pin(ANNA)]
        );
        assert!(pins_in(b"order 12345678901234567 and 99999999999999").is_empty());
    }

    /// Entries the code before typed PINs and readers stored read back: each person gets
    /// their reads as they were recorded, and an entry writes back as it was stored.
    #[test]
    fn entries_stored_before_typing_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let stored: Vec<serde_json::Value> = serde_json::from_str(include_str!(
            "../../tests/fixtures/access-entries-before-typing.json"
        ))
        .unwrap();
        for raw in &stored {
            let entry: Entry = serde_json::from_value(raw.clone()).unwrap();
            assert_eq!(&serde_json::to_value(&entry).unwrap(), raw);
            let bytes = serde_json::to_vec(raw).unwrap();
            store.append_access(vec![(entry.pins(), bytes)]).unwrap();
        }
        let anna = log_of(&store, &pin(ANNA), 100).unwrap();
        let read: Vec<(&ReaderId, &str, Outcome)> = anna
            .iter()
            .map(|r| (&r.reader, r.what.as_str(), r.outcome))
            .collect();
        let employment =
            ReaderId::Member("central-server/GOV/70000002/employment".parse().unwrap());
        let token = |name: &str, via| ReaderId::Token {
            name: name.into(),
            via,
        };
        let view = "the person's view";
        let served = Outcome::Served;
        assert_eq!(
            read,
            [
                (&employment, "event 3", Outcome::RefusedNoConsent),
                (&employment, "event 1", served),
                (&employment, view, served),
                (
                    &ReaderId::Console {
                        command: "export".into()
                    },
                    view,
                    served
                ),
                (
                    &ReaderId::Webhook {
                        host_port: "127.0.0.1:9000".into()
                    },
                    view,
                    served
                ),
                (&token("desk-officer", TokenVia::Dashboard), view, served),
                (&token("statistics-desk", TokenVia::Bearer), view, served),
            ]
        );
        assert_eq!(anna[0].message_id.as_deref(), Some("msg-1"));
        let bek = log_of(&store, &pin(BEK), 100).unwrap();
        assert_eq!(bek.len(), 1);
        assert_eq!(bek[0].what, "event 2");
    }

    /// A stored event's read is about the PIN it names; one about no person is not a read of
    /// personal data, and one whose PIN is not a PIN is damage, not a read to log under it.
    #[test]
    fn an_event_is_read_under_its_pin() {
        use crate::event::schema::EventType;
        let source: crate::event::identifiers::MemberId =
            "central-server/GOV/70000002/employment".parse().unwrap();
        let about = |data| Event::new(source.clone(), EventType::EmploymentStatus, 1, data);
        let read = |e: &Event| Access::of_event(e, "an event", Outcome::Served);
        let anna = about(serde_json::json!({"person": {"pin": ANNA}}));
        assert_eq!(read(&anna).unwrap().map(|a| a.pin), Some(pin(ANNA)));
        let vacancy = Event::new(source.clone(), EventType::Vacancy, 1, serde_json::json!({}));
        assert_eq!(read(&vacancy).unwrap(), None);
        let damaged = about(serde_json::json!({"person": {"pin": "13104199012345"}}));
        assert!(matches!(read(&damaged), Err(StoreError::Corrupt(_))));
    }

    /// Each reader is written as the access log has always written it, and read back; text
    /// that names no reader is refused.
    #[test]
    fn readers_are_written_as_text_and_read_back() {
        let employment: MemberId = "central-server/GOV/70000002/employment".parse().unwrap();
        for (reader, text) in [
            (
                ReaderId::Token {
                    name: "desk".into(),
                    via: TokenVia::Bearer,
                },
                "local:desk",
            ),
            (
                ReaderId::Token {
                    name: "desk".into(),
                    via: TokenVia::Dashboard,
                },
                "dashboard:desk",
            ),
            (
                ReaderId::Webhook {
                    host_port: "[::1]:9000".into(),
                },
                "webhook:[::1]:9000",
            ),
            (
                ReaderId::Console {
                    command: "view".into(),
                },
                "cli:view",
            ),
            (ReaderId::Member(employment.clone()), employment.as_str()),
        ] {
            assert_eq!(serde_json::to_value(&reader).unwrap(), text);
            assert_eq!(text.parse::<ReaderId>(), Ok(reader));
        }
        for refused in ["", "local", "admin:desk", "central-server/GOV/70000002"] {
            assert_eq!(refused.parse::<ReaderId>(), Err(ReaderError), "{refused}");
        }
        let bad: Result<AccessRecord, _> = serde_json::from_value(serde_json::json!({
            "time": "2026-01-01T00:00:00Z", "reader": "admin:desk", "user": null,
            "purpose": null, "what": "x", "requestId": Uuid::nil(),
        }));
        assert!(bad.is_err(), "a record naming no reader is damage");
    }
}
