//! Which events a credential attests: folded from `credential-issued` events (the issuer's own,
//! or received from it), so a reader of a person's course knows the course is also attested by
//! a credential its holder can show anyone, and whether that credential was revoked.
//!
//! Only the publisher of an event can attest it: a `credential-issued` event naming another
//! member's event is left out. Nothing here names a person; the person's view links them
//! (its events name their positions, and the attested event names its enrolment).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::event::cloudevent::SignedEvent;
use crate::event::schema::EventType;
use crate::event::Event;
use crate::registry::view::PersonView;
use crate::store::{Store, StoreError, WriteBatch};

/// What a credential says of the event it attests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attestation {
    /// The credential's id.
    pub credential_id: Uuid,
    /// Its type.
    pub vct: String,
    /// Whether its issuer revoked it.
    pub revoked: bool,
}

/// The event a `credential-issued` event attests, and what it says of it; `None` for another
/// type, or when it names another member's event.
pub fn of(event: &Event) -> Option<(String, Uuid, Attestation)> {
    if event.event_type != EventType::CredentialIssued {
        return None;
    }
    let d = &event.data;
    let source = d.pointer("/attests/source")?.as_str()?;
    if source != event.source.as_str() {
        return None;
    }
    let id = Uuid::parse_str(d.pointer("/attests/id")?.as_str()?).ok()?;
    let attestation = Attestation {
        credential_id: Uuid::parse_str(d.get("credentialId")?.as_str()?).ok()?,
        vct: d.get("vct")?.as_str()?.to_string(),
        revoked: d.get("event").and_then(Value::as_str) == Some("CREDENTIAL_REVOKED"),
    };
    Some((source.to_string(), id, attestation))
}

/// Stage the attestations of `events` (in log order: a revocation after its issuance wins).
/// A revocation stays: the issuance of a credential the store already holds as revoked is not
/// folded over it (the views projected again from the log after a damaged views file meet the
/// issuance again before the revocation, and a revoked credential must not read as valid
/// meanwhile).
pub fn stage<'a>(
    store: &Store,
    batch: &mut WriteBatch,
    events: impl IntoIterator<Item = &'a Event>,
) -> Result<(), StoreError> {
    for (source, id, attestation) in events.into_iter().filter_map(of) {
        if !attestation.revoked && revoked_already(store, &source, &id, &attestation)? {
            continue;
        }
        batch.set_attestation(&source, &id, &attestation);
    }
    Ok(())
}

/// Whether the store holds `attestation`'s credential as revoked.
fn revoked_already(
    store: &Store,
    source: &str,
    id: &Uuid,
    attestation: &Attestation,
) -> Result<bool, StoreError> {
    let held: Option<Attestation> = store.attestation(source, id)?;
    Ok(held.is_some_and(|h| h.revoked && h.credential_id == attestation.credential_id))
}

/// The enrolments of `view` whose completion a credential attests, not revoked.
pub fn attested_enrolments(
    store: &Store,
    view: &PersonView,
) -> Result<BTreeSet<String>, StoreError> {
    let mut out = BTreeSet::new();
    let training = EventType::TrainingEnrolment;
    for e in view
        .events
        .iter()
        .filter(|e| e.event_type == training && !e.superseded)
    {
        let Ok(id) = Uuid::parse_str(&e.id) else {
            continue;
        };
        let held: Option<Attestation> = store.attestation(e.source.as_str(), &id)?;
        if held.is_none_or(|a| a.revoked) {
            continue;
        }
        let Some(bytes) = store.get(e.position)? else {
            continue;
        };
        let enrolment = SignedEvent::from_store(&bytes).ok().and_then(|s| {
            s.event()
                .data
                .get("enrolmentId")
                .and_then(Value::as_str)
                .map(String::from)
        });
        out.extend(enrolment);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::identifiers::MemberId;
    use serde_json::json;

    fn issued(by: &str, attested_source: &str, event: &str) -> Event {
        let source: MemberId = by.parse().unwrap();
        Event::new(
            source,
            EventType::CredentialIssued,
            1,
            json!({"event": event, "credentialId": "01937e1c-5a1b-7cc2-9a4e-3f7e2b1d0c11",
                "vct": "https://i.example/vct/course-completion",
                "attests": {"source": attested_source, "id": "01937e1a-0000-7aaa-8bbb-000000000001"}}),
        )
    }

    #[test]
    fn only_an_events_publisher_attests_it() {
        let edu = "central-server/GOV/70000003/education";
        let other = "central-server/GOV/70000001/migration";
        let (source, _, a) = of(&issued(edu, edu, "CREDENTIAL_ISSUED")).unwrap();
        assert_eq!((source.as_str(), a.revoked), (edu, false));
        assert!(
            of(&issued(edu, edu, "CREDENTIAL_REVOKED"))
                .unwrap()
                .2
                .revoked
        );
        assert_eq!(of(&issued(other, edu, "CREDENTIAL_ISSUED")), None);
    }

    /// Folded again from the start of the log (the views projected again), an issuance does
    /// not bring back as valid a credential the store holds as revoked; another credential
    /// for the same event does attest it.
    #[test]
    fn an_issuance_folded_again_leaves_its_revocation_standing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let edu = "central-server/GOV/70000003/education";
        let fold = |events: &[Event]| {
            let mut batch = WriteBatch::default();
            stage(&store, &mut batch, events).unwrap();
            store.apply_other(batch).unwrap();
        };
        let held = || {
            let (source, id, _) = of(&issued(edu, edu, "CREDENTIAL_ISSUED")).unwrap();
            store
                .attestation::<Attestation>(&source, &id)
                .unwrap()
                .unwrap()
        };
        let issuance = issued(edu, edu, "CREDENTIAL_ISSUED");
        fold(&[issuance.clone(), issued(edu, edu, "CREDENTIAL_REVOKED")]);
        assert!(held().revoked);
        fold(std::slice::from_ref(&issuance));
        assert!(held().revoked, "the revocation stands");

        let mut another = issuance;
        another.data["credentialId"] = json!("01937e1c-5a1b-7cc2-9a4e-3f7e2b1d0c99");
        fold(&[another]);
        assert!(!held().revoked, "a new credential attests the event");
    }
}
