//! Every key space of the store, and the only place store keys are built.
//!
//! The store is one ordered table; a key is one [`Space`] byte followed by that space's parts.
//! Big-endian numbers keep each space in numeric order, so "the last position" or "cursor after N"
//! is a range scan. Named single values (cursors of background tasks, the stored manifest, what a
//! witness last saw) live in [`Space::Meta`] under a [`Meta`] name.

use uuid::Uuid;

use crate::event::identifiers::MemberId;

/// One key space: its prefix byte and what it maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Space {
    /// position (u64 BE) → the event's JWS bytes (the node-local log, in arrival order) on
    /// PostgreSQL. On the embedded engines the log is in segment files (`store/log/`) and this
    /// space holds only an erased event's stripped bytes, which replace its zeroed record.
    Log,
    /// source, 0, sequence (u64 BE) → position.
    Sequence,
    /// event id (16 bytes), source → position. An event is identified by its source and id
    /// together; a store written before that has keys without the source.
    Id,
    /// idempotency key → position (8) + request digest (32).
    Idempotency,
    /// [`Meta`] name → value.
    Meta,
    /// source → last sequence received from it (u64 BE).
    Cursor,
    /// PIN → the person's consent state (JSON) on PostgreSQL; the embedded engines keep the
    /// consent states in their own file (`store/persons.rs`), and a store from before that has
    /// them moved there at open.
    Consent,
    /// PIN → the person's projected view (JSON, packed: `store/packed.rs`) on PostgreSQL; the
    /// embedded engines keep the views in their own file (`store/persons.rs`), and a store from
    /// before that has them moved there at open.
    View,
    /// PIN, 0, position → nothing: the events about a person, a rebuild's scratch (a view names
    /// its events' positions; stores written before that kept this index all along).
    PersonEvent,
    /// PIN, 0, complement of the access-log number (u64 BE) → that number: a person's reads,
    /// newest first. (A store written before the access log was numbered keys these by the
    /// complement of the time with 4 random bytes, and the value is the record itself.)
    Access,
    /// number (u64 BE) → access-log entry (JSON: the PIN and the record).
    AccessLog,
    /// kind (1 byte: vacancy, course offer), id → the offer's latest state (JSON).
    Offer,
    /// level (1 byte), index (u64 BE) → hash of a perfect subtree of the access log.
    AccessSubtree,
    /// level (1 byte), index (u64 BE) → hash of a perfect subtree of the event log.
    Subtree,
    /// tree size (u64 BE) → signed checkpoint.
    Checkpoint,
    /// tree size (u64 BE), witness → co-signature.
    Cosignature,
    /// number (u64 BE) → quarantine record (JSON).
    Quarantine,
    /// level (1 byte), index (u64 BE) → hash of a perfect subtree of the quarantine log.
    QuarantineSubtree,
    /// reader, 0, PIN, 0, position (u64 BE) → 0 (still withheld) or 1 (released): an own event
    /// about the person that the reader's consent did not admit when it was published.
    Withheld,
    /// reader, 0, release number (u64 BE) → position: the reader's release log, the withheld
    /// events a later consent admitted, in the order they were released.
    Release,
    /// position (u64 BE) → erasure id (16 bytes): an event whose disclosures an erasure deleted
    /// (its signed part stays, so its leaf and every proof still verify).
    Erased,
    /// side log (1 byte), number (u64 BE) → erasure id: a side-log entry an erasure rewrote
    /// without the person; its leaf is the one recorded when it was appended.
    Redacted,
    /// PIN → the positions an erasure stripped (JSON): what is left of the person at this node
    /// (view, consent state, access-log index, withheld records) is still to be redone or
    /// removed by the projector, which deletes this record in the same write.
    PendingErasure,
    /// erasure id (16 bytes) → the erasure's record (JSON): what was ordered, and which holders
    /// confirmed it when.
    Erasure,
    /// month (`YYYY-MM`) → the node's signed KPI report of that month (JWS).
    KpiReport,
    /// PIN, 0, credential id (16 bytes) → the credential issued to the person (JSON: its
    /// SD-JWT VC, status list index, what it attests, its revocation).
    Credential,
    /// credential id (16 bytes) → PIN: whose credential it is (revocation finds it by id).
    CredentialHolder,
    /// credential id (16 bytes) → what revoking it takes, nothing of the person (JSON: its
    /// status list entry, type, legal basis, the event it attests, when revoked). Outlives the
    /// copy an erasure deletes: the credential the holder keeps can still be revoked.
    CredentialEntry,
    /// source, 0, event id (16 bytes) → the credential its publisher issued for that event
    /// (JSON: its id, type, whether revoked), folded from `credential-issued` events.
    Attestation,
}

impl Space {
    pub(super) fn prefix(self) -> u8 {
        match self {
            Space::Log => b'L',
            Space::Sequence => b'S',
            Space::Id => b'I',
            Space::Idempotency => b'K',
            Space::Meta => b'M',
            Space::Cursor => b'R',
            Space::Consent => b'C',
            Space::View => b'P',
            Space::PersonEvent => b'X',
            Space::Access => b'A',
            Space::Subtree => b'T',
            Space::Checkpoint => b'Z',
            Space::Cosignature => b'W',
            Space::AccessLog => b'G',
            Space::Offer => b'O',
            Space::AccessSubtree => b'U',
            Space::Quarantine => b'Q',
            Space::QuarantineSubtree => b'V',
            Space::Withheld => b'H',
            Space::Release => b'E',
            Space::Erased => b'D',
            Space::Redacted => b'Y',
            Space::PendingErasure => b'N',
            Space::Erasure => b'B',
            Space::Credential => b'F',
            Space::CredentialHolder => b'J',
            Space::CredentialEntry => b'c',
            Space::Attestation => b'a',
            Space::KpiReport => b'k',
        }
    }

    /// The whole space, for a scan.
    pub(super) fn all(self) -> Vec<u8> {
        vec![self.prefix()]
    }

    fn key(self, parts: &[&[u8]]) -> Vec<u8> {
        let mut k = Vec::with_capacity(1 + parts.iter().map(|p| p.len()).sum::<usize>());
        k.push(self.prefix());
        for p in parts {
            k.extend_from_slice(p);
        }
        k
    }
}

/// The named single values kept in [`Space::Meta`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meta {
    /// How many quarantine records exist (u64 BE).
    QuarantineSize,
    /// How many bytes the quarantine records take, each as stored (u64 BE).
    QuarantineBytes,
    /// How many access-log entries exist (u64 BE).
    AccessLogSize,
    /// The last log position the view projector has folded in (u64 BE).
    ViewCursor,
    /// Present while the views are being projected again from the start of the log (their
    /// file was damaged or cut short by a power loss, or a rebuild cleared them): until the
    /// projector reaches the end of the log, no person or KPI is answered from them.
    ViewsRebuilding,
    /// The last log position delivered to the webhook (u64 BE).
    WebhookCursor,
    /// The newest manifest this node trusts (JWS bytes).
    Manifest,
    /// The last checkpoint of this publisher the witness accepted.
    Witnessed(MemberId),
    /// The last co-signature this witness made for this publisher.
    Cosigned(MemberId),
    /// The size of this node's log that the witness of this name last co-signed (u64 BE): the
    /// `old` size of the next `add-checkpoint` sent to it.
    WitnessAcked(String),
    /// The alarms raised about this publisher's log (JSON: the statements kept as evidence, by
    /// kind, the last one raised, and how many were counted only; a store from before this kept
    /// the last note alarmed itself, which `federation/alarm.rs` reads too).
    ForkAlarm(MemberId),
    /// The last checkpoint of this publisher whose side logs the split-view check proved to
    /// extend the ones before (the baseline of the next side-log proofs).
    SidesProven(MemberId),
    /// The checkpoints of this publisher whose grown side logs the witness co-signed and no
    /// split-view check has proven yet (JSON, oldest first, at most a few dozen).
    SidesPending(MemberId),
    /// The SHA-256 of the last checkpoint this publisher served that did not verify (so the
    /// same one is kept in quarantine once, not every round).
    BadCheckpoint(MemberId),
    /// The last number of this publisher's release log for this node that was taken (u64 BE).
    ReleaseCursor(MemberId),
    /// The last sequence of this publisher's feed whose inclusion in a checkpoint this witness
    /// checked (u64 BE).
    InclusionChecked(MemberId),
    /// How many quarantine records came from this origin (`local-api` or a member id; u64 BE).
    QuarantinedFrom(String),
    /// How many bytes the quarantine records from this origin take, each as stored (u64 BE).
    QuarantinedBytesFrom(String),
    /// Present once every origin's records and bytes in the quarantine are counted (at the
    /// first record, or measured once when a store from before opens).
    QuarantineSharesCounted,
    /// The last log position the credential issuer has looked at (u64 BE).
    CredentialCursor,
    /// The credential issuer's status list: one bit per credential issued, 1 revoked.
    StatusList,
    /// Present once every credential copy has its entry (`Space::CredentialEntry`): written at
    /// issue since, once for the copies of a store from before.
    CredentialEntriesKept,
    /// How many events the embedded engines' segment files hold as committed (u64 BE): the
    /// log's commit point (`store/log/`); bytes past it in the segments are cut at open.
    LogSize,
    /// The embedded engines' views file: its generation (u64 BE) and how many of its bytes
    /// are committed (u64 BE), the views' commit point (`store/persons.rs`).
    ViewsAt,
    /// The embedded engines' file of consent states: its generation and committed length, as
    /// [`Meta::ViewsAt`].
    ConsentsAt,
    /// Present from before a per-person file of this kind is first made (its records moved
    /// over from the KV) until the commit that records it: a file found while it is present
    /// is that move's, cut short by a crash, and the move starts over.
    FileStarting(&'static str),
}

impl Meta {
    /// Whether any replica of a member may store it, not only the writer: the manifest (signed
    /// by the authority, the newest one wins wherever it is read).
    pub(crate) fn is_shared(&self) -> bool {
        matches!(self, Meta::Manifest)
    }

    fn name(&self) -> String {
        match self {
            Meta::QuarantineSize => "quarantine-size".into(),
            Meta::QuarantineBytes => "quarantine-bytes".into(),
            Meta::AccessLogSize => "access-log-size".into(),
            Meta::ViewCursor => "view-cursor".into(),
            Meta::ViewsRebuilding => "views-rebuilding".into(),
            Meta::ViewsAt => "views-at".into(),
            Meta::ConsentsAt => "consents-at".into(),
            Meta::WebhookCursor => "webhook-cursor".into(),
            Meta::Manifest => "manifest".into(),
            Meta::Witnessed(m) => format!("witnessed/{m}"),
            Meta::Cosigned(m) => format!("cosigned/{m}"),
            Meta::WitnessAcked(w) => format!("witness-acked/{w}"),
            Meta::ForkAlarm(m) => format!("fork/{m}"),
            Meta::BadCheckpoint(m) => format!("bad-checkpoint/{m}"),
            Meta::SidesProven(m) => format!("sides-proven/{m}"),
            Meta::SidesPending(m) => format!("sides-pending/{m}"),
            Meta::ReleaseCursor(m) => format!("release-cursor/{m}"),
            Meta::InclusionChecked(m) => format!("inclusion-checked/{m}"),
            Meta::QuarantinedFrom(o) => format!("quarantined-from/{o}"),
            Meta::QuarantinedBytesFrom(o) => format!("quarantined-bytes-from/{o}"),
            Meta::QuarantineSharesCounted => "quarantine-shares-counted".into(),
            Meta::CredentialCursor => "credential-cursor".into(),
            Meta::StatusList => "status-list".into(),
            Meta::CredentialEntriesKept => "credential-entries-kept".into(),
            Meta::LogSize => "log-size".into(),
            Meta::FileStarting(kind) => format!("file-starting/{kind}"),
        }
    }
}

pub(super) fn log(position: u64) -> Vec<u8> {
    Space::Log.key(&[&position.to_be_bytes()])
}

pub(super) fn sequence(source: &MemberId, sequence: u64) -> Vec<u8> {
    Space::Sequence.key(&[source.as_str().as_bytes(), &[0], &sequence.to_be_bytes()])
}

/// All sequences of one source.
pub(super) fn sequences_of(source: &MemberId) -> Vec<u8> {
    Space::Sequence.key(&[source.as_str().as_bytes(), &[0]])
}

pub(super) fn id(source: &MemberId, id: &Uuid) -> Vec<u8> {
    Space::Id.key(&[id.as_bytes(), source.as_str().as_bytes()])
}

/// Every event with this id, whatever its source.
pub(super) fn ids(id: &Uuid) -> Vec<u8> {
    Space::Id.key(&[id.as_bytes()])
}

pub(super) fn idempotency(key: &str) -> Vec<u8> {
    Space::Idempotency.key(&[key.as_bytes()])
}

pub(super) fn meta(name: &Meta) -> Vec<u8> {
    Space::Meta.key(&[name.name().as_bytes()])
}

pub(super) fn cursor(source: &MemberId) -> Vec<u8> {
    Space::Cursor.key(&[source.as_str().as_bytes()])
}

pub(super) fn consent(pin: &str) -> Vec<u8> {
    Space::Consent.key(&[pin.as_bytes()])
}

pub(super) fn view(pin: &str) -> Vec<u8> {
    Space::View.key(&[pin.as_bytes()])
}

pub(super) fn person_event(pin: &str, position: u64) -> Vec<u8> {
    Space::PersonEvent.key(&[pin.as_bytes(), &[0], &position.to_be_bytes()])
}

/// A person's access-log entry `number`, newest first (the key orders by the complement).
pub(super) fn access(pin: &str, number: u64) -> Vec<u8> {
    Space::Access.key(&[pin.as_bytes(), &[0], &(u64::MAX - number).to_be_bytes()])
}

/// All access records of one person.
pub(super) fn accesses(pin: &str) -> Vec<u8> {
    Space::Access.key(&[pin.as_bytes(), &[0]])
}

pub(super) fn offer(kind: u8, id: &str) -> Vec<u8> {
    Space::Offer.key(&[&[kind], id.as_bytes()])
}

/// Every offer of one kind.
pub(super) fn offers(kind: u8) -> Vec<u8> {
    Space::Offer.key(&[&[kind]])
}

pub(super) fn subtree(level: u32, index: u64) -> Vec<u8> {
    Space::Subtree.key(&[&[level as u8], &index.to_be_bytes()])
}

pub(super) fn checkpoint(size: u64) -> Vec<u8> {
    Space::Checkpoint.key(&[&size.to_be_bytes()])
}

pub(super) fn cosignature(size: u64, witness: &str) -> Vec<u8> {
    Space::Cosignature.key(&[&size.to_be_bytes(), witness.as_bytes()])
}

/// All co-signatures of one tree size.
pub(super) fn cosignatures(size: u64) -> Vec<u8> {
    Space::Cosignature.key(&[&size.to_be_bytes()])
}

pub(super) fn withheld(reader: &MemberId, pin: &str, position: u64) -> Vec<u8> {
    Space::Withheld.key(&[
        reader.as_str().as_bytes(),
        &[0],
        pin.as_bytes(),
        &[0],
        &position.to_be_bytes(),
    ])
}

/// Everything withheld from `reader` about `pin`.
pub(super) fn withheld_about(reader: &MemberId, pin: &str) -> Vec<u8> {
    withheld_from_about(reader.as_str().as_bytes(), pin)
}

/// [`withheld_about`] for a reader as a withheld record's key names it.
pub(super) fn withheld_from_about(reader: &[u8], pin: &str) -> Vec<u8> {
    Space::Withheld.key(&[reader, &[0], pin.as_bytes(), &[0]])
}

/// The reader a withheld record's key names.
pub(super) fn withheld_reader(key: &[u8]) -> Option<&[u8]> {
    let rest = key.strip_prefix(&[Space::Withheld.prefix()])?;
    rest.split(|&b| b == 0).next()
}

/// Everything withheld from `reader` (a member id holds no byte 0).
pub(super) fn withheld_from(reader: &[u8]) -> Vec<u8> {
    Space::Withheld.key(&[reader, &[0]])
}

pub(super) fn release(reader: &MemberId, number: u64) -> Vec<u8> {
    Space::Release.key(&[reader.as_str().as_bytes(), &[0], &number.to_be_bytes()])
}

/// The whole release log of `reader`.
pub(super) fn releases_of(reader: &MemberId) -> Vec<u8> {
    Space::Release.key(&[reader.as_str().as_bytes(), &[0]])
}

pub(super) fn credential(pin: &str, id: &Uuid) -> Vec<u8> {
    Space::Credential.key(&[pin.as_bytes(), &[0], id.as_bytes()])
}

/// Every credential issued to `pin`.
pub(super) fn credentials_of(pin: &str) -> Vec<u8> {
    Space::Credential.key(&[pin.as_bytes(), &[0]])
}

pub(super) fn credential_holder(id: &Uuid) -> Vec<u8> {
    Space::CredentialHolder.key(&[id.as_bytes()])
}

pub(super) fn credential_entry(id: &Uuid) -> Vec<u8> {
    Space::CredentialEntry.key(&[id.as_bytes()])
}

pub(super) fn attestation(source: &str, id: &Uuid) -> Vec<u8> {
    Space::Attestation.key(&[source.as_bytes(), &[0], id.as_bytes()])
}

pub(super) fn erased(position: u64) -> Vec<u8> {
    Space::Erased.key(&[&position.to_be_bytes()])
}

pub(super) fn redacted(log: SideLog, number: u64) -> Vec<u8> {
    Space::Redacted.key(&[&[log as u8], &number.to_be_bytes()])
}

pub(super) fn pending_erasure(pin: &str) -> Vec<u8> {
    Space::PendingErasure.key(&[pin.as_bytes()])
}

pub(super) fn kpi_report(month: &str) -> Vec<u8> {
    Space::KpiReport.key(&[month.as_bytes()])
}

pub(super) fn erasure(id: &Uuid) -> Vec<u8> {
    Space::Erasure.key(&[id.as_bytes()])
}

/// A rebuild's scratch index of the person's events.
pub(super) fn person_events(pin: &str) -> Vec<u8> {
    Space::PersonEvent.key(&[pin.as_bytes(), &[0]])
}

/// The store's numbered side logs: each has its entries, the perfect subtrees of its Merkle log,
/// and its size, and the signed checkpoint covers its root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SideLog {
    /// Refused input, with its reason.
    Quarantine,
    /// Reads of personal data.
    Access,
}

impl SideLog {
    pub(super) fn entry(self, number: u64) -> Vec<u8> {
        let space = match self {
            SideLog::Quarantine => Space::Quarantine,
            SideLog::Access => Space::AccessLog,
        };
        space.key(&[&number.to_be_bytes()])
    }

    pub(super) fn subtree(self, level: u32, index: u64) -> Vec<u8> {
        let space = match self {
            SideLog::Quarantine => Space::QuarantineSubtree,
            SideLog::Access => Space::AccessSubtree,
        };
        space.key(&[&[level as u8], &index.to_be_bytes()])
    }

    pub(super) fn size(self) -> Meta {
        match self {
            SideLog::Quarantine => Meta::QuarantineSize,
            SideLog::Access => Meta::AccessLogSize,
        }
    }

    /// What the log is called in errors.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SideLog::Quarantine => "quarantine",
            SideLog::Access => "access log",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_sort_numerically_within_a_space() {
        assert!(log(2) < log(10));
        assert!(log(u64::MAX) < Space::Meta.all());
        let m: MemberId = "a/b/c/d".parse().unwrap();
        assert!(sequence(&m, 9) < sequence(&m, 256));
        assert!(sequence(&m, 1).starts_with(&sequences_of(&m)));
    }

    #[test]
    fn newer_access_records_sort_first() {
        assert!(access("p", 2) < access("p", 1));
        assert!(access("p", 1).starts_with(&accesses("p")));
    }

    #[test]
    fn every_space_has_its_own_prefix() {
        let spaces = [
            Space::Log,
            Space::Sequence,
            Space::Id,
            Space::Idempotency,
            Space::Meta,
            Space::Cursor,
            Space::Consent,
            Space::View,
            Space::PersonEvent,
            Space::Access,
            Space::AccessLog,
            Space::AccessSubtree,
            Space::Offer,
            Space::Subtree,
            Space::Checkpoint,
            Space::Cosignature,
            Space::Quarantine,
            Space::QuarantineSubtree,
            Space::Withheld,
            Space::Release,
            Space::Erased,
            Space::Redacted,
            Space::PendingErasure,
            Space::Erasure,
            Space::Credential,
            Space::CredentialHolder,
            Space::CredentialEntry,
            Space::Attestation,
            Space::KpiReport,
        ];
        let mut prefixes: Vec<u8> = spaces.iter().map(|s| s.prefix()).collect();
        prefixes.sort_unstable();
        prefixes.dedup();
        assert_eq!(prefixes.len(), spaces.len());
    }
}
