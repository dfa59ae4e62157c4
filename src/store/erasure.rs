//! What the store keeps of an erasure, and how it forgets a person.
//!
//! An erasure never removes a log entry: the writer replaces an event's stored bytes by its
//! signed part without the disclosures ([`WriteBatch::erase_event`], the writer's alone) and
//! records which erasure did it (`Space::Erased`), so the leaf, the signature and every proof stay
//! as they were. A side-log entry that named the person is rewritten without them
//! ([`WriteBatch::redact_side`]) and marked (`Space::Redacted`): the audit takes its leaf from
//! the subtree recorded when it was appended and reports it as redacted, not altered. What is
//! keyed by the person's PIN (view, consent state, the access log's index, withheld records) is
//! deleted ([`Store::forget_person`]) once nothing about the person is left at this node. The
//! bytes of deleted or rewritten values leave the engine's files at the next compaction.

use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use super::keys::{self, SideLog, Space};
use super::{record, Indexed, LogAppend, Store, StoreError, WriteBatch};
use crate::store::kv::Op;

impl WriteBatch {
    fn delete(&mut self, key: Vec<u8>) {
        self.ops.push(Op::Delete(key));
    }

    /// Delete the copy of credential `id` issued to `pin` and the record of whose it is: the
    /// event it attests was erased, and the copy repeats what that event said of the person.
    pub(crate) fn delete_credential(&mut self, pin: &str, id: &Uuid) {
        self.delete(keys::credential(pin, id));
        self.delete(keys::credential_holder(id));
    }

    /// Replace the stored bytes of the event at `position` by `stripped` (its signed part,
    /// without the disclosures `erasure` deleted), and record that it was erased. On the
    /// embedded engines `stripped` is kept in the KV and the event's segment record is zeroed
    /// once the commit is durable (`store/log/`).
    pub fn erase_event(&mut self, _: LogAppend, position: u64, stripped: &[u8], erasure: &Uuid) {
        self.put(keys::log(position), stripped);
        self.put(keys::erased(position), erasure.as_bytes());
        self.erased.push((position, stripped.to_vec()));
        self.len += 1;
    }

    /// Rewrite side-log entry `number` as `entry` (without the erased person), marking it
    /// redacted by `erasure`: its Merkle leaf stays the one recorded at its append.
    pub fn redact_side(&mut self, log: SideLog, number: u64, entry: &[u8], erasure: &Uuid) {
        self.put(log.entry(number), entry);
        self.put(keys::redacted(log, number), erasure.as_bytes());
    }

    /// Record that the events at `positions` about `pin` were stripped and what is left of the
    /// person here is still to be redone (the projector's, [`Store::pending_erasures`]).
    pub fn set_pending_erasure(&mut self, pin: &str, positions: &[u64]) {
        self.put(keys::pending_erasure(pin), record(&positions));
    }

    /// The erasure's own work on `pin` is done.
    pub fn clear_pending_erasure(&mut self, pin: &str) {
        self.delete(keys::pending_erasure(pin));
    }

    /// Store (or replace) the record of erasure `id`.
    pub fn set_erasure<T: Serialize>(&mut self, id: &Uuid, erasure: &T) {
        self.put(keys::erasure(id), record(erasure));
    }
}

impl Store {
    /// The erasure that stripped the event at `position`, if one did.
    pub fn erased(&self, position: u64) -> Result<Option<Uuid>, StoreError> {
        Ok(self.get_raw(&keys::erased(position))?.and_then(uuid_of))
    }

    /// How many events erasures stripped.
    pub fn erased_count(&self) -> Result<u64, StoreError> {
        count(self.scan(&Space::Erased.all()))
    }

    /// The erasure that rewrote side-log entry `number`, if one did.
    pub fn redacted(&self, log: SideLog, number: u64) -> Result<Option<Uuid>, StoreError> {
        Ok(self
            .get_raw(&keys::redacted(log, number))?
            .and_then(uuid_of))
    }

    /// How many entries of `log` erasures rewrote.
    pub fn redacted_count(&self, log: SideLog) -> Result<u64, StoreError> {
        count(self.scan(&keys::redacted(log, 0)[..2]))
    }

    /// The numbers of the entries of `log` erasures rewrote.
    pub fn redacted_numbers(
        &self,
        log: SideLog,
    ) -> Result<std::collections::HashSet<u64>, StoreError> {
        self.scan(&keys::redacted(log, 0)[..2])
            .map(|entry| {
                let (key, _) = entry?;
                key.get(2..10)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_be_bytes)
                    .ok_or(StoreError::Corrupt("redaction key"))
            })
            .collect()
    }

    /// The leaf recorded for side-log entry `number` when it was appended.
    pub fn side_leaf(&self, log: SideLog, number: u64) -> Result<crate::merkle::Hash, StoreError> {
        crate::merkle::Subtrees::perfect(
            &super::SideLogTree(self, log),
            0,
            number.saturating_sub(1),
        )
    }

    /// The persons whose erasure the writer committed and whose view, consent state and
    /// access-log index are still to be redone: each PIN with the positions stripped.
    pub fn pending_erasures(&self) -> Result<Vec<(String, Vec<u64>)>, StoreError> {
        self.scan(&Space::PendingErasure.all())
            .map(|entry| {
                let (key, value) = entry?;
                let pin = String::from_utf8(key[1..].to_vec())
                    .map_err(|_| StoreError::Corrupt("pending erasure key"))?;
                let positions = serde_json::from_slice(&value)
                    .map_err(|_| StoreError::Corrupt("pending erasure"))?;
                Ok((pin, positions))
            })
            .collect()
    }

    /// The positions pending erasure for `pin`, if any.
    pub fn pending_erasure(&self, pin: &str) -> Result<Option<Vec<u64>>, StoreError> {
        self.get_raw(&keys::pending_erasure(pin))?
            .map(|v| serde_json::from_slice(&v).map_err(|_| StoreError::Corrupt("pending erasure")))
            .transpose()
    }

    /// The record of erasure `id`.
    pub fn erasure<T: DeserializeOwned>(&self, id: &Uuid) -> Result<Option<T>, StoreError> {
        self.get_raw(&keys::erasure(id))?
            .map(|v| serde_json::from_slice(&v).map_err(|_| StoreError::Corrupt("erasure record")))
            .transpose()
    }

    /// The access-log entries indexed under `pin`: each entry's number and bytes.
    pub fn access_entries_numbered(&self, pin: &str) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for indexed in self.access_index(pin, usize::MAX)? {
            // A record from before the access log was numbered has no entry to rewrite: it goes
            // with the index (`forget_person`).
            let Indexed::Number(number) = indexed else {
                continue;
            };
            if let Some(bytes) = self.get_raw(&SideLog::Access.entry(number))? {
                out.push((number, bytes));
            }
        }
        Ok(out)
    }

    /// Stage the deletion of everything keyed by `pin`: its view, consent state, rebuild index,
    /// access-log index, the withheld records of every reader, the pending erasure, and the
    /// issuer's copies of the credentials issued to the person (their holder keeps theirs, the
    /// status list still says they are not revoked, and each stays revocable by its entry,
    /// `Space::CredentialEntry`, which holds nothing of the person and is kept).
    pub fn forget_person(&self, pin: &str, batch: &mut WriteBatch) -> Result<(), StoreError> {
        batch.delete_view(pin);
        batch.delete_consent(pin);
        batch.delete(keys::pending_erasure(pin));
        let credentials = keys::credentials_of(pin);
        for entry in self.scan(&credentials) {
            let (key, _) = entry?;
            match key
                .get(credentials.len()..)
                .and_then(|b| Uuid::from_slice(b).ok())
            {
                Some(id) => batch.delete_credential(pin, &id),
                None => batch.delete(key),
            }
        }
        for prefix in [keys::accesses(pin), keys::person_events(pin)] {
            for entry in self.scan(&prefix) {
                batch.delete(entry?.0);
            }
        }
        for key in self.withheld_keys_about(pin)? {
            batch.delete(key);
        }
        Ok(())
    }

    /// The keys of the records withheld about `pin` from every reader: only each reader's
    /// records about `pin` are read (a few reads a reader, not every record held back).
    fn withheld_keys_about(&self, pin: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut found = Vec::new();
        for reader in self.withheld_readers()? {
            for entry in self.scan(&keys::withheld_from_about(reader.as_bytes(), pin)) {
                found.push(entry?.0);
            }
        }
        Ok(found)
    }
}

fn uuid_of(bytes: Vec<u8>) -> Option<Uuid> {
    Uuid::from_slice(&bytes).ok()
}

fn count(
    entries: impl Iterator<Item = Result<super::kv::Entry, StoreError>>,
) -> Result<u64, StoreError> {
    let mut n = 0;
    for entry in entries {
        entry?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::identifiers::MemberId;

    const PIN: &str = "21503199012345";

    #[test]
    fn forgetting_a_person_deletes_every_key_of_theirs_and_nobody_elses() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let other = "21503199012346";
        let reader: MemberId = "central-server/GOV/70000002/employment".parse().unwrap();
        // Readers whose ids sort around the first's, one of them starting with it.
        let readers: Vec<MemberId> = ["70000002/employment-2", "70000001/migration"]
            .iter()
            .map(|r| format!("central-server/GOV/{r}").parse().unwrap())
            .chain([reader.clone()])
            .collect();
        let mut b = WriteBatch::default();
        for pin in [PIN, other] {
            b.set_view(pin, &serde_json::json!({"pin": pin}));
            b.set_consent(pin, &serde_json::json!({"granted": true}));
            b.index_person(pin, 3);
            for (reader, position) in readers.iter().flat_map(|r| [(r, 3), (r, 4)]) {
                b.set_withheld(reader, pin, position, false);
            }
            b.set_pending_erasure(pin, &[3]);
        }
        let (mine, theirs) = (Uuid::from_u128(1), Uuid::from_u128(2));
        b.set_credential(PIN, &mine, &serde_json::json!({"pin": PIN}));
        b.set_credential(other, &theirs, &serde_json::json!({"pin": other}));
        store.apply_other(b).unwrap();
        let mut named: Vec<String> = readers.iter().map(MemberId::to_string).collect();
        named.sort();
        assert_eq!(store.withheld_readers().unwrap(), named, "each reader once");
        store
            .append_access(vec![(vec![PIN.into(), other.into()], b"{}".to_vec())])
            .unwrap();
        let mut forget = WriteBatch::default();
        store.forget_person(PIN, &mut forget).unwrap();
        store.apply_other(forget).unwrap();
        assert!(store.view::<serde_json::Value>(PIN).unwrap().is_none());
        assert!(store.consent::<serde_json::Value>(PIN).unwrap().is_none());
        for reader in &readers {
            assert!(store.withheld(reader, PIN).unwrap().is_empty(), "{reader}");
            assert_eq!(store.withheld(reader, other).unwrap().len(), 2, "{reader}");
        }
        assert!(store.access_entries(PIN, 10).unwrap().is_empty());
        assert_eq!(store.pending_erasures().unwrap().len(), 1);
        assert!(store
            .credentials_of::<serde_json::Value>(PIN)
            .unwrap()
            .is_empty());
        assert_eq!(store.credential_holder(&mine).unwrap(), None);
        assert_eq!(
            store
                .credentials_of::<serde_json::Value>(other)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            store.credential_holder(&theirs).unwrap().as_deref(),
            Some(other)
        );
        // The other person keeps everything, the shared access-log entry included.
        assert!(store.view::<serde_json::Value>(other).unwrap().is_some());
        assert!(store.consent::<serde_json::Value>(other).unwrap().is_some());
        assert_eq!(store.access_entries(other, 10).unwrap().len(), 1);
    }

    #[test]
    fn erased_events_and_redacted_entries_are_recorded_with_their_erasure() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let source: crate::event::identifiers::MemberId =
            "central-server/GOV/70000001/migration".parse().unwrap();
        let mut b = WriteBatch::default();
        for position in 1..=5 {
            b.append(
                LogAppend::for_tests(),
                super::super::Append {
                    position,
                    source: &source,
                    sequence: position,
                    id: Uuid::now_v7(),
                    jws: b"signed part~disclosure~",
                    leaf: [0; 32],
                    idempotency: None,
                },
            );
        }
        store.apply(LogAppend::for_tests(), b).unwrap();
        let id = Uuid::now_v7();
        let mut b = WriteBatch::default();
        b.erase_event(LogAppend::for_tests(), 5, b"signed part", &id);
        b.redact_side(SideLog::Access, 2, b"{}", &id);
        b.set_erasure(&id, &serde_json::json!({"events": 1}));
        store.apply_other(b).unwrap();
        assert_eq!(store.erased(5).unwrap(), Some(id));
        assert_eq!(store.erased(4).unwrap(), None);
        assert_eq!(store.erased_count().unwrap(), 1);
        assert_eq!(store.redacted(SideLog::Access, 2).unwrap(), Some(id));
        assert_eq!(store.redacted(SideLog::Quarantine, 2).unwrap(), None);
        assert_eq!(store.redacted_count(SideLog::Access).unwrap(), 1);
        assert_eq!(store.get(5).unwrap().unwrap(), b"signed part");
        assert_eq!(store.get(4).unwrap().unwrap(), b"signed part~disclosure~");
        let record: serde_json::Value = store.erasure(&id).unwrap().unwrap();
        assert_eq!(record["events"], 1);
    }
}
