//! A person's consent and what it lets a publisher deliver to a reader.
//!
//! The latest consent in the person's returnee records wins, latest by the publisher's sequence
//! (not by the time written into the consent). An event
//! about a person reaches a reader only when that consent is granted, names the reader as a
//! recipient, and shares a purpose with the reader's grant in the manifest. A withdrawal still
//! reaches the former recipients, so they learn to stop; nothing after it does.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::event::identifiers::MemberId;
use crate::event::schema::EventType;
use crate::event::Event;

/// A consent statement as carried in a returnee record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    pub granted: bool,
    pub purposes: Vec<String>,
    pub recipients: Vec<MemberId>,
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
}

/// What a node holds about a person's consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentState {
    pub current: Consent,
    /// Recipients of the consent before the current one (to deliver a withdrawal to).
    #[serde(default)]
    pub former_recipients: Vec<MemberId>,
}

/// Why an event is withheld from a reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withheld {
    NotAuthorised,
    NotRequested,
    NoConsent,
}

impl Withheld {
    pub fn code(self) -> &'static str {
        match self {
            Withheld::NotAuthorised => "not-authorised",
            Withheld::NotRequested => "not-requested",
            Withheld::NoConsent => "no-consent",
        }
    }
}

/// The PIN an event is about (every schema requires `person.pin`).
pub fn person_pin(data: &Value) -> Option<&str> {
    data.get("person")?.get("pin")?.as_str()
}

/// The consent a returnee-record event carries, if any.
pub fn carried(event: &Event) -> Option<Consent> {
    if event.event_type != EventType::ReturneeRecord {
        return None;
    }
    serde_json::from_value(event.data.get("consent")?.clone()).ok()
}

/// The state after `consent` arrives. Consent is ordered by the publisher's sequence (the order
/// the writer stages the events that carry it), never by the `time` the publisher wrote into
/// it: a later statement always replaces the held one, so a future-dated consent cannot hide a
/// withdrawal that follows it.
pub fn merge(held: Option<ConsentState>, consent: Consent) -> ConsentState {
    match held {
        Some(h) => ConsentState {
            former_recipients: h.current.recipients,
            current: consent,
        },
        None => ConsentState {
            current: consent,
            former_recipients: Vec::new(),
        },
    }
}

/// The consent time rule: a consent statement cannot be dated after the event that carries it
/// (beyond the clock skew allowed between agencies).
pub fn time_is_plausible(consent: &Consent, event: &Event) -> bool {
    consent.time <= event.time + crate::event::CLOCK_SKEW
}

/// Whether the person's current consent is granted, names `reader` and shares a purpose with
/// `reader_purposes` (the reader's grant in the manifest).
pub fn admits(state: Option<&ConsentState>, reader: &MemberId, reader_purposes: &[String]) -> bool {
    state.is_some_and(|s| {
        let c = &s.current;
        c.granted
            && c.recipients.contains(reader)
            && c.purposes.iter().any(|p| reader_purposes.contains(p))
    })
}

/// May `event` go to `reader`, whose manifest grant for its type has `reader_purposes`?
pub fn decide(
    event: &Event,
    state: Option<&ConsentState>,
    reader: &MemberId,
    reader_purposes: &[String],
) -> Result<(), Withheld> {
    let state = state.ok_or(Withheld::NoConsent)?;
    if admits(Some(state), reader, reader_purposes) {
        return Ok(());
    }
    let is_withdrawal = carried(event).is_some_and(|e| !e.granted);
    if is_withdrawal && state.former_recipients.contains(reader) {
        return Ok(());
    }
    Err(Withheld::NoConsent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::Duration;

    fn m(s: &str) -> MemberId {
        format!("central-server/GOV/{s}").parse().unwrap()
    }

    fn consent(granted: bool, to: &[&str], at: OffsetDateTime) -> Consent {
        Consent {
            granted,
            purposes: if granted {
                vec!["EMPLOYMENT_SERVICES".into()]
            } else {
                vec![]
            },
            recipients: to.iter().map(|s| m(s)).collect(),
            time: at,
        }
    }

    fn record(c: &Consent) -> Event {
        Event::new(
            m("1/migration"),
            EventType::ReturneeRecord,
            1,
            json!({"person": {"pin": "x"}, "consent": c}),
        )
    }

    #[test]
    fn only_consented_recipients_with_a_shared_purpose_are_served() {
        let now = OffsetDateTime::now_utc();
        let state = merge(None, consent(true, &["2/employment"], now));
        let e = record(&state.current);
        let purposes = vec!["EMPLOYMENT_SERVICES".to_string()];
        assert_eq!(
            decide(&e, Some(&state), &m("2/employment"), &purposes),
            Ok(())
        );
        assert_eq!(
            decide(&e, Some(&state), &m("3/education"), &purposes),
            Err(Withheld::NoConsent)
        );
        assert_eq!(
            decide(&e, Some(&state), &m("2/employment"), &["STATISTICS".into()]),
            Err(Withheld::NoConsent)
        );
        assert_eq!(
            decide(&e, None, &m("2/employment"), &purposes),
            Err(Withheld::NoConsent)
        );
    }

    #[test]
    fn a_withdrawal_reaches_former_recipients_and_stops_the_rest() {
        let now = OffsetDateTime::now_utc();
        let granted = merge(None, consent(true, &["2/employment"], now));
        let withdrawal = consent(false, &[], now + Duration::days(1));
        let state = merge(Some(granted.clone()), withdrawal.clone());
        let purposes = vec!["EMPLOYMENT_SERVICES".to_string()];
        assert_eq!(
            decide(
                &record(&withdrawal),
                Some(&state),
                &m("2/employment"),
                &purposes
            ),
            Ok(())
        );
        assert_eq!(
            decide(
                &record(&granted.current),
                Some(&state),
                &m("2/employment"),
                &purposes
            ),
            Err(Withheld::NoConsent)
        );
        // A later statement replaces the held one whatever time it claims: a consent dated in
        // the future cannot hide the withdrawal published after it.
        let future = merge(
            None,
            consent(true, &["2/employment"], now + Duration::days(30)),
        );
        let withdrawn = merge(Some(future), consent(false, &[], now));
        assert!(!withdrawn.current.granted);
        assert_eq!(withdrawn.former_recipients, [m("2/employment")]);
    }
}
