//! Erasure as the writer does it: the order a member gives for the person's events it
//! published, a holder's part when the order reaches it, and the record kept of both.
//!
//! Erasing an event deletes its disclosures and keeps its signed part: the stored bytes become
//! the SD-JWT without disclosures ([`strip`]), so the log's leaf, the signature, every inclusion
//! and consistency proof and every witness's co-signature stay valid, and the values are gone.
//! An event signed whole (before the federation moved to SD-JWT) cannot lose its values without
//! breaking its leaf: it is counted as not erasable, never rewritten. The order is itself a
//! signed event (`erasure`, `ERASURE_ORDERED`) naming the erased events' ids, never a value or
//! the person; a holder that erased copies answers with its own signed `ERASURE_CONFIRMED`,
//! in the same write as the erasure, so a crash loses neither or both. What is left of the
//! person at a node (view, consent state, access-log index) is finished by the projector from
//! the pending record staged with the erasure ([`crate::store::WriteBatch::set_pending_erasure`]).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::event::identifiers::{MemberId, Pin};
use crate::event::{jws, SignedEvent};
use crate::store::{Store, StoreError};

/// Why an erasure was ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Cause {
    /// A person's or an authority's request.
    Request,
    /// The retention the manifest sets for the type has ended.
    Retention,
}

/// What a member's operator orders erased: the person's events this node published.
#[derive(Debug, Clone)]
pub struct ErasureOrder {
    /// The erasure's id.
    pub id: Uuid,
    /// The person.
    pub pin: Pin,
    /// Positions of this node's own events about the person.
    pub positions: Vec<u64>,
    /// The members that received any of those events (from the person's access log).
    pub holders: Vec<MemberId>,
    /// The act that requires it.
    pub legal_basis: String,
    /// Why, in the operator's words; kept in this node's record, never sent.
    pub reason: String,
    /// The purpose the order is published under (the ordering token's); empty: the purpose
    /// the first erased event was processed for.
    pub purpose: String,
    /// A request, or the end of a retention.
    pub cause: Cause,
}

/// One holder of erased events and when it confirmed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Holder {
    /// The member that received erased events.
    pub member: MemberId,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    /// When its signed confirmation says it erased them (none yet: not confirmed).
    pub confirmed: Option<OffsetDateTime>,
    /// How many of the events it held and erased, as its confirmation says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased: Option<u64>,
}

/// The record a node keeps of an erasure: one it ordered (with its holders' confirmations) or
/// one it carried out as a holder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErasureRecord {
    /// The erasure's id.
    pub id: Uuid,
    /// The member that ordered it (this node, or the publisher whose order it carried out).
    pub ordered_by: MemberId,
    /// When this node did it.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The act that requires it.
    pub legal_basis: String,
    /// A request, or the end of a retention.
    pub cause: Cause,
    /// The operator's reason (only on the ordering node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Events erased at this node.
    pub erased: u64,
    /// Events of the person signed whole, before selective disclosure: not erasable.
    #[serde(default)]
    pub not_erasable: u64,
    /// The signed event that ordered or confirmed it (its id in this node's log).
    pub event: Uuid,
    /// On the ordering node: every member that received any of the events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holders: Vec<Holder>,
}

impl ErasureRecord {
    /// Where what it erased came from, as the quarantine names an origin: this node's own
    /// systems when it was ordered here (only the ordering node keeps a reason), else the member
    /// whose order it carried out.
    pub(crate) fn origin(&self) -> String {
        match self.reason {
            Some(_) => crate::store::LOCAL_ORIGIN.to_string(),
            None => self.ordered_by.to_string(),
        }
    }

    /// Take `holder`'s confirmation; `false` when it is not a holder of this erasure or had
    /// confirmed already.
    pub fn confirm(&mut self, holder: &MemberId, at: OffsetDateTime, erased: u64) -> bool {
        match self.holders.iter_mut().find(|h| &h.member == holder) {
            Some(h) if h.confirmed.is_none() => {
                h.confirmed = Some(at);
                h.erased = Some(erased);
                true
            }
            _ => false,
        }
    }
}

/// What the writer answers an order with, once durable.
#[derive(Debug, Clone)]
pub struct ErasureOrdered {
    /// The record kept of it.
    pub record: ErasureRecord,
}

/// What erasing the stored event at a position comes to.
pub(super) enum Strip {
    /// Its signed part without disclosures, to store instead; the event's id and the person.
    Stripped {
        id: Uuid,
        pin: Pin,
        /// The purpose the event was processed for.
        purpose: Option<String>,
        bytes: Vec<u8>,
    },
    /// Signed whole, before selective disclosure: its values cannot go without its leaf.
    WholeJws,
    /// Not an event of `source` about the person, or already without disclosures.
    Nothing,
}

/// Erase the event at `position` if it is `source`'s and (when `pin` is given) about `pin`.
pub(super) fn strip(
    store: &Store,
    position: u64,
    source: &MemberId,
    pin: Option<&Pin>,
) -> Result<Strip, StoreError> {
    let Some(bytes) = store.get(position)? else {
        return Ok(Strip::Nothing);
    };
    strip_bytes(&bytes, source, pin)
}

/// [`strip`] for an event's bytes as stored, or as staged in the round that stores them.
pub(super) fn strip_bytes(
    bytes: &[u8],
    source: &MemberId,
    pin: Option<&Pin>,
) -> Result<Strip, StoreError> {
    let signed = SignedEvent::from_store(bytes).map_err(|_| StoreError::Corrupt("stored event"))?;
    let e = signed.event();
    let about: Option<Pin> = e.pin().and_then(|p| p.parse().ok());
    let named = match (pin, &about) {
        (Some(wanted), Some(held)) => wanted == held,
        (None, Some(_)) => true,
        (_, None) => false,
    };
    if &e.source != source || !named {
        return Ok(Strip::Nothing);
    }
    if !signed.is_selective() {
        return Ok(Strip::WholeJws);
    }
    let (Some(pin), Some(stripped)) = (about, jws::with_disclosures(bytes, [])) else {
        return Ok(Strip::Nothing);
    };
    Ok(Strip::Stripped {
        id: e.id,
        pin,
        purpose: e
            .data
            .get("purpose")
            .and_then(|p| p.as_str())
            .map(String::from),
        bytes: stripped,
    })
}

/// The data of the order event: the erased events' ids, never a value.
pub(super) fn order_data(order: &ErasureOrder, ids: &[Uuid], today: time::Date) -> Value {
    json!({
        "event": "ERASURE_ORDERED",
        "eventDate": today.to_string(),
        "purpose": order.purpose,
        "legalBasis": order.legal_basis,
        "erasureId": order.id,
        "cause": order.cause,
        "events": ids,
    })
}

/// What an order event says, as a holder reads it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrderSays {
    pub(super) erasure_id: Uuid,
    pub(super) legal_basis: String,
    pub(super) purpose: String,
    pub(super) cause: Cause,
    pub(super) events: Vec<Uuid>,
}

/// What a confirmation event says, as the ordering node reads it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConfirmationSays {
    pub(super) erasure_id: Uuid,
    pub(super) publisher: MemberId,
    pub(super) erased: u64,
}

/// Which of the two an erasure event is.
pub(crate) enum Says {
    Order(OrderSays),
    Confirmation(ConfirmationSays),
}

/// Read an erasure event's data (it passed the schema on its way in).
pub(crate) fn says(data: &Value) -> Option<Says> {
    match data.get("event")?.as_str()? {
        "ERASURE_ORDERED" => serde_json::from_value(data.clone()).ok().map(Says::Order),
        "ERASURE_CONFIRMED" => serde_json::from_value(data.clone())
            .ok()
            .map(Says::Confirmation),
        _ => None,
    }
}

/// The data of a holder's confirmation of `order` from `publisher`.
pub(super) fn confirmation_data(
    order: &OrderSays,
    publisher: &MemberId,
    erased: u64,
    today: time::Date,
) -> Value {
    json!({
        "event": "ERASURE_CONFIRMED",
        "eventDate": today.to_string(),
        "purpose": order.purpose,
        "legalBasis": order.legal_basis,
        "erasureId": order.erasure_id,
        "publisher": publisher,
        "erased": erased,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::schema::{EventType, Schemas};

    fn order() -> ErasureOrder {
        ErasureOrder {
            id: Uuid::now_v7(),
            pin: "21503199012345".parse().unwrap(),
            positions: vec![1],
            holders: vec![],
            legal_basis: "Law on Personal Information, art. 12".into(),
            reason: "the person asked".into(),
            purpose: "REINTEGRATION_CASE_MANAGEMENT".into(),
            cause: Cause::Request,
        }
    }

    #[test]
    fn orders_and_confirmations_satisfy_the_schema_and_name_no_person() {
        let schemas = Schemas::load().unwrap();
        let o = order();
        let today = OffsetDateTime::now_utc().date();
        let data = order_data(&o, &[Uuid::now_v7()], today);
        schemas.validate(EventType::Erasure, &data).unwrap();
        assert!(!data.to_string().contains(o.pin.expose()));
        assert!(
            !data.to_string().contains(&o.reason),
            "the reason stays home"
        );
        let Some(Says::Order(read)) = says(&data) else {
            panic!("an order reads back as one")
        };
        let publisher: MemberId = "central-server/GOV/70000001/migration".parse().unwrap();
        let confirmed = confirmation_data(&read, &publisher, 1, today);
        schemas.validate(EventType::Erasure, &confirmed).unwrap();
        assert!(matches!(says(&confirmed), Some(Says::Confirmation(c)) if c.erased == 1));
    }

    #[test]
    fn a_holder_confirms_once_and_only_a_holder() {
        let holder: MemberId = "central-server/GOV/70000003/education".parse().unwrap();
        let stranger: MemberId = "central-server/GOV/70000009/other".parse().unwrap();
        let mut record = ErasureRecord {
            id: Uuid::now_v7(),
            ordered_by: "central-server/GOV/70000001/migration".parse().unwrap(),
            at: OffsetDateTime::now_utc(),
            legal_basis: "x".into(),
            cause: Cause::Request,
            reason: None,
            erased: 1,
            not_erasable: 0,
            event: Uuid::now_v7(),
            holders: vec![Holder {
                member: holder.clone(),
                confirmed: None,
                erased: None,
            }],
        };
        let now = OffsetDateTime::now_utc();
        assert!(!record.confirm(&stranger, now, 1));
        assert!(record.confirm(&holder, now, 1));
        assert!(!record.confirm(&holder, now, 1));
        assert_eq!(record.holders[0].confirmed, Some(now));
    }
}
