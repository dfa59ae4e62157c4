//! A person's consent, and **the one decision** of whether this node may serve an event about
//! them to a caller ([`may_serve`]): every path that hands out personal data (the peer feed,
//! X-Road's `jol-feed` and `jol-persons`, the local API's person, event, quarantine and matching
//! reads, the webhook) and the writer's withholding ask it, and nothing else decides.
//!
//! The latest consent in the person's returnee records wins, latest by the publisher's sequence
//! (not by the time written into the consent). An event about a person reaches another member
//! only when that consent is granted, names the member as a recipient, and shares a purpose with
//! the member's grant in the manifest. Every consent change reaches every member the person's
//! consent ever named (a withdrawal, or a new consent that no longer names it), so each holder
//! learns to stop; nothing else about the person does. On the node itself, what it recorded is
//! the agency's own file; what it received is served to its own users only while the person's
//! current consent names this node and the user's purpose. A correction that moves a person to
//! a new PIN links the PINs ([`ConsentState::earlier_pins`]): each statement under the new one
//! narrows, never widens, the consent held under the old ([`narrowed`]). A `credential-issued`
//! goes to another member as an event about the person whose event it attests ([`attested`]).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::event::identifiers::MemberId;
use crate::event::schema::EventType;
use crate::event::vocab::ConsentMethod;
use crate::event::Event;

/// A consent statement as carried in a returnee record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Consent {
    pub granted: bool,
    pub purposes: Vec<String>,
    pub recipients: Vec<MemberId>,
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// How it was given (every record carries it; a consent state stored before it was kept
    /// has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<ConsentMethod>,
}

impl Consent {
    /// Whether this statement lets `member` read for one of `purposes`.
    pub(crate) fn names(&self, member: &MemberId, purposes: &[String]) -> bool {
        self.granted
            && self.recipients.contains(member)
            && self.purposes.iter().any(|p| purposes.contains(p))
    }
}

/// Which statement a consent is: its publisher and its sequence there. Statements of one
/// publisher are ordered by it; a node receives them out of that order when an earlier record
/// withheld from it is released after a later one reached it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Stated {
    source: MemberId,
    sequence: u64,
}

impl Stated {
    /// The statement `event` makes (`None` when its sequence is not a number: the receipt
    /// checks refuse such an event, so only a test can make one).
    pub(crate) fn by(event: &Event) -> Option<Stated> {
        Some(Stated {
            source: event.source.clone(),
            sequence: event.sequence_number()?,
        })
    }
}

/// What a node holds about a person's consent. Only [`merge`] makes one (or the store reads one
/// back), so `ever_named` always holds every member a granted consent named: the fields are
/// private, and [`ConsentState::may_hold`] is what the rest of the node asks of it.
///
/// ```compile_fail
/// fn forget(state: &mut jol::policy::consent::ConsentState) {
///     state.ever_named.clear();
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ConsentState {
    current: Consent,
    /// Recipients of the granted consent before the current one. Read only for a state written
    /// before `ever_named` existed (its `ever_named` is empty): it names no purpose.
    #[serde(default)]
    former_recipients: Vec<MemberId>,
    /// Every member a granted consent of the person ever named, with every purpose it was named
    /// for, the current consent included: who may hold the person's data, and so must get every
    /// consent change.
    #[serde(default)]
    ever_named: BTreeMap<MemberId, BTreeSet<String>>,
    /// The PINs a correction moved the person from (`Writer::corrected_from`), with those they
    /// had before them: what was recorded under them is the person's, so a statement given
    /// under this PIN narrows the consent held under each of them ([`narrowed`]). At most
    /// [`MAX_EARLIER_PINS`].
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    earlier_pins: BTreeSet<String>,
    /// The latest statement merged from each publisher (its sequence there): one no later
    /// than its publisher's entry arrived out of order and never becomes current, whichever
    /// publisher's statement is current. Empty for a state stored before it was kept.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    latest: BTreeMap<MemberId, u64>,
    /// The statement `current` is, when it was one (not a narrowing by an unknown statement, nor
    /// a state stored before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    current_stated: Option<Stated>,
}

/// The most earlier PINs a consent state links (a person's PIN rarely changes at all; the bound
/// keeps what one statement makes the writer stage small whatever a record lists).
pub(crate) const MAX_EARLIER_PINS: usize = 16;

impl ConsentState {
    /// Whether `member`, reading for `purposes`, may hold the person's data: a granted consent
    /// of the person named it for one of them. (A state written before `ever_named` existed
    /// knows only the former recipients, and counts each; any other state counts a member only
    /// for a purpose it was named for.)
    pub(crate) fn may_hold(&self, member: &MemberId, purposes: &[String]) -> bool {
        let named = self
            .ever_named
            .get(member)
            .is_some_and(|p| purposes.iter().any(|x| p.contains(x)));
        let written_before_ever_named = self.ever_named.is_empty();
        named
            || self.current.names(member, purposes)
            || (written_before_ever_named && self.former_recipients.contains(member))
    }

    /// This state knowing also `pins` as the person's earlier PINs (up to
    /// [`MAX_EARLIER_PINS`] in all; `own`, the PIN the state is kept under, is never one).
    pub(crate) fn with_earlier_pins<'p>(
        mut self,
        own: &str,
        pins: impl IntoIterator<Item = &'p str>,
    ) -> ConsentState {
        for pin in pins.into_iter().filter(|p| *p != own) {
            if self.earlier_pins.len() >= MAX_EARLIER_PINS {
                break;
            }
            self.earlier_pins.insert(pin.to_string());
        }
        self
    }

    /// The person's earlier PINs, under which every consent statement given under this PIN
    /// narrows the consent held.
    pub(crate) fn earlier_pins(&self) -> impl Iterator<Item = &str> {
        self.earlier_pins.iter().map(String::as_str)
    }

    /// A state that holds no consent of the person, kept for the PINs it links alone (a
    /// correction moved the person to a PIN under which they have stated nothing yet): it
    /// decides as if none were held (nothing granted, nobody named).
    pub(crate) fn without_consent(at: OffsetDateTime) -> ConsentState {
        let nothing = Consent {
            granted: false,
            purposes: Vec::new(),
            recipients: Vec::new(),
            time: at,
            method: None,
        };
        merge(None, nothing, None)
    }

    /// Whether a statement of `stated`'s publisher at or after its sequence was merged: then
    /// `stated` arrives out of order (or again) and does not become current.
    pub(crate) fn has_seen_after(&self, stated: &Stated) -> bool {
        self.latest
            .get(&stated.source)
            .is_some_and(|seen| *seen >= stated.sequence)
    }

    /// The current statement and which statement it is, to narrow the states under a person's
    /// earlier PINs by.
    pub(crate) fn current(&self) -> (&Consent, Option<&Stated>) {
        (&self.current, self.current_stated.as_ref())
    }
}

/// `ever_named` with every member `consent` grants to, named for its purposes.
fn name(ever_named: &mut BTreeMap<MemberId, BTreeSet<String>>, consent: &Consent) {
    if !consent.granted {
        return;
    }
    for member in &consent.recipients {
        ever_named
            .entry(member.clone())
            .or_default()
            .extend(consent.purposes.iter().cloned());
    }
}

/// Who asks to be served an event about a person.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Audience<'a> {
    /// Another member's node (the peer feed, X-Road's `jol-feed` and `jol-persons`), reading for
    /// the purposes of its grant in the manifest for the event's type.
    Member {
        id: &'a MemberId,
        purposes: &'a [String],
    },
    /// This node's own users (a token or dashboard session of the local API, the webhook),
    /// reading for `purpose`; `node` is this node.
    Local {
        node: &'a MemberId,
        purpose: &'a str,
    },
}

/// What the decision needs to know of an event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Facts<'a> {
    /// The member that published it.
    pub source: &'a str,
    pub event_type: EventType,
    /// The consent it carries (a returnee record's), if any.
    pub carries: Option<&'a Consent>,
    /// It attests a personal event of its publisher's (a `credential-issued`): about the person
    /// that event is about, whose consent state the caller passes.
    pub attests: bool,
}

impl<'a> Facts<'a> {
    /// The facts of `event`, with the consent it carries (`carried(event)`, passed in so that
    /// it is decoded once).
    pub(crate) fn of(event: &'a Event, carries: Option<&'a Consent>) -> Facts<'a> {
        Facts {
            source: event.source.as_str(),
            event_type: event.event_type,
            carries,
            attests: false,
        }
    }

    /// Whether the decision is about a person: a personal event, or one attesting one.
    fn about_a_person(&self) -> bool {
        self.event_type.is_personal() || self.attests
    }
}

/// Why an event is withheld from a reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Withheld {
    NotAuthorised,
    NotRequested,
    NoConsent,
}

impl Withheld {
    pub(crate) fn code(self) -> &'static str {
        match self {
            Withheld::NotAuthorised => "not-authorised",
            Withheld::NotRequested => "not-requested",
            Withheld::NoConsent => "no-consent",
        }
    }
}

/// What a consent lets a reader have of a personal event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admitted {
    /// The event, as far as the reader's grant goes.
    Event,
    /// Only that the person's consent changed and no longer names the member, which must stop
    /// serving what it holds: the PIN and the always-visible fields (the consent among them),
    /// nothing else the event says of the person.
    ConsentChange,
}

/// The PIN an event is about (every schema requires `person.pin`).
pub(crate) fn person_pin(data: &Value) -> Option<&str> {
    data.get("person")?.get("pin")?.as_str()
}

/// The event a `credential-issued` attests, when it is one of its publisher's own (the only
/// kind an issuer attests): its id.
pub(crate) fn attested(event: &Event) -> Option<uuid::Uuid> {
    if event.event_type != EventType::CredentialIssued {
        return None;
    }
    let attests = event.data.get("attests")?;
    if attests.get("source")?.as_str()? != event.source.as_str() {
        return None;
    }
    attests.get("id")?.as_str()?.parse().ok()
}

/// The consent a returnee-record event carries, if any.
pub(crate) fn carried(event: &Event) -> Option<Consent> {
    if event.event_type != EventType::ReturneeRecord {
        return None;
    }
    // Read from the event's data where it is, not from a copy of it.
    Consent::deserialize(event.data.get("consent")?).ok()
}

/// The state after `consent`, the statement `stated`, arrives. Consent is ordered by the
/// publisher's sequence, never by the `time` the publisher wrote into it: a later statement
/// replaces the held one, so a future-dated consent cannot hide a withdrawal that follows it;
/// an earlier one arriving late (a record released after a later one reached this node) does
/// not, and only adds the members it granted to those who may hold the person's data.
pub(crate) fn merge(
    held: Option<ConsentState>,
    consent: Consent,
    stated: Option<Stated>,
) -> ConsentState {
    let (former_recipients, mut ever_named, earlier_pins, mut latest) = match held {
        Some(mut h) if stated.as_ref().is_some_and(|s| h.has_seen_after(s)) => {
            name(&mut h.ever_named, &consent);
            return h;
        }
        Some(h) if h.current.granted => {
            (h.current.recipients, h.ever_named, h.earlier_pins, h.latest)
        }
        Some(h) => (h.former_recipients, h.ever_named, h.earlier_pins, h.latest),
        None => Default::default(),
    };
    if let Some(s) = &stated {
        latest.insert(s.source.clone(), s.sequence);
    }
    name(&mut ever_named, &consent);
    ConsentState {
        former_recipients,
        current: consent,
        ever_named,
        earlier_pins,
        latest,
        current_stated: stated,
    }
}

/// The state under a person's earlier PIN after `by`, a statement given under their current
/// one: the held consent narrowed to what `by` grants too, never widened. A correction cannot
/// tell a changed PIN from a mistyped one (both list the old PIN in `pinHistory`), and a
/// mistyped PIN may be a stranger's: so a stranger's data may be withheld for the person's
/// withdrawal, never shared for their grant. A later statement under the earlier PIN itself
/// replaces it as any does.
pub(crate) fn narrowed(held: ConsentState, by: &Consent, stated: Option<Stated>) -> ConsentState {
    fn both<T: PartialEq + Clone>(a: &[T], b: &[T]) -> Vec<T> {
        a.iter().filter(|x| b.contains(x)).cloned().collect()
    }
    let granted = held.current.granted && by.granted;
    let (recipients, purposes) = match granted {
        true => (
            both(&held.current.recipients, &by.recipients),
            both(&held.current.purposes, &by.purposes),
        ),
        false => (Vec::new(), Vec::new()),
    };
    let current = Consent {
        granted,
        purposes,
        recipients,
        time: by.time,
        method: by.method,
    };
    merge(Some(held), current, stated)
}

/// The consent time rule: a consent statement cannot be dated after the event that carries it
/// (beyond the clock skew allowed between agencies).
pub(crate) fn time_is_plausible(consent: &Consent, event: &Event) -> bool {
    consent.time <= event.time + crate::event::CLOCK_SKEW
}

/// **The decision**: may this node serve the event described by `event` to `to`, given the
/// person's current consent `state` (the latest by the publisher's sequence, as this node holds
/// it)? Events not about a person need no consent (a member's grant was checked before).
///
/// - A member is served what the current consent names it for, and every consent change that no
///   longer does, when any consent of the person named it: it may hold the person's data and
///   must learn to stop.
/// - This node's own users are served what this node recorded itself (the agency's own file,
///   kept under its own legal basis) and what it received only while the current consent is
///   granted and names this node and the user's purpose.
pub(crate) fn may_serve(
    event: Facts<'_>,
    state: Option<&ConsentState>,
    to: Audience<'_>,
) -> Result<Admitted, Withheld> {
    if !event.about_a_person() {
        return Ok(Admitted::Event);
    }
    match to {
        Audience::Member { id, purposes } => {
            let state = state.ok_or(Withheld::NoConsent)?;
            if state.current.names(id, purposes) {
                return Ok(Admitted::Event);
            }
            let tells_it_to_stop = event.carries.is_some_and(|c| !c.names(id, purposes));
            if tells_it_to_stop && state.may_hold(id, purposes) {
                return Ok(Admitted::ConsentChange);
            }
            Err(Withheld::NoConsent)
        }
        Audience::Local { node, purpose } => {
            if event.source == node.as_str() {
                return Ok(Admitted::Event);
            }
            let purpose = [purpose.to_string()];
            match state.is_some_and(|s| s.current.names(node, &purpose)) {
                true => Ok(Admitted::Event),
                false => Err(Withheld::NoConsent),
            }
        }
    }
}

/// [`may_serve`] for a stored or staged `event` going to another member. A `credential-issued`
/// is decided as about the person whose event it attests (`state` is theirs, [`attested`]):
/// that a returnee completed a course, and when, is the person's data, and a member that held
/// the enrolment could tell whose it is.
pub(crate) fn decide(
    event: &Event,
    state: Option<&ConsentState>,
    reader: &MemberId,
    reader_purposes: &[String],
) -> Result<Admitted, Withheld> {
    let carries = carried(event);
    let facts = Facts {
        attests: attested(event).is_some(),
        ..Facts::of(event, carries.as_ref())
    };
    may_serve(
        facts,
        state,
        Audience::Member {
            id: reader,
            purposes: reader_purposes,
        },
    )
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
            method: Some(ConsentMethod::OnlinePortal),
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
    fn a_statement_under_a_new_pin_narrows_the_earlier_one_and_never_widens_it() {
        let now = OffsetDateTime::now_utc();
        let (emp, edu) = (m("2/employment"), m("3/education"));
        let purposes = ["EMPLOYMENT_SERVICES".to_string()];
        let held = merge(
            None,
            consent(true, &["2/employment", "3/education"], now),
            None,
        );
        let kept = narrowed(
            held.clone(),
            &consent(true, &["2/employment", "4/other"], now),
            None,
        );
        assert!(kept.current.names(&emp, &purposes));
        assert!(
            !kept.current.names(&edu, &purposes),
            "kept one the new statement drops"
        );
        assert!(!kept.current.names(&m("4/other"), &purposes), "widened");
        // Everyone it ever named still learns of the change.
        assert!(kept.may_hold(&edu, &purposes));
        let withdrawn = narrowed(held, &consent(false, &[], now), None);
        assert!(!withdrawn.current.granted);
        let none = ConsentState::without_consent(now);
        let status = record(&consent(true, &["2/employment"], now));
        assert!(decide(&status, Some(&none), &emp, &purposes).is_err());
    }

    /// A member named for one purpose is never a holder to tell for another: not after a
    /// change of consent, nor after a narrowing under a corrected PIN.
    #[test]
    fn a_member_named_for_another_purpose_is_not_told_of_changes() {
        let now = OffsetDateTime::now_utc();
        let education = m("3/education");
        let theirs = ["EDUCATION".to_string()];
        let held = merge(
            None,
            consent(true, &["2/employment", "3/education"], now),
            None,
        );
        assert!(!held.may_hold(&education, &theirs));
        let changed = merge(
            Some(held.clone()),
            consent(true, &["2/employment"], now),
            None,
        );
        assert!(!changed.may_hold(&education, &theirs));
        let kept = narrowed(held, &consent(false, &[], now), None);
        assert!(!kept.may_hold(&education, &theirs));
        // A withdrawal that lists recipients names nobody.
        let listed = merge(None, consent(false, &["3/education"], now), None);
        let next = merge(Some(listed), consent(false, &[], now), None);
        assert!(!next.may_hold(&education, &["EMPLOYMENT_SERVICES".to_string()]));
    }

    #[test]
    fn a_state_links_at_most_sixteen_earlier_pins_never_its_own() {
        let state = merge(
            None,
            consent(true, &["2/employment"], OffsetDateTime::now_utc()),
            None,
        );
        let pins: Vec<String> = (0..20).map(|i| format!("2150319901{i:04}")).collect();
        let own = pins[3].as_str();
        let state = state.with_earlier_pins(own, pins.iter().map(String::as_str));
        let linked: Vec<&str> = state.earlier_pins().collect();
        assert_eq!(linked.len(), MAX_EARLIER_PINS);
        assert!(!linked.contains(&own));
        // Kept by the next statement.
        let next = merge(
            Some(state.clone()),
            consent(false, &[], OffsetDateTime::now_utc()),
            None,
        );
        assert!(next.earlier_pins().eq(state.earlier_pins()));
    }

    #[test]
    fn only_consented_recipients_with_a_shared_purpose_are_served() {
        let now = OffsetDateTime::now_utc();
        let state = merge(None, consent(true, &["2/employment"], now), None);
        let e = record(&state.current);
        let purposes = vec!["EMPLOYMENT_SERVICES".to_string()];
        assert_eq!(
            decide(&e, Some(&state), &m("2/employment"), &purposes),
            Ok(Admitted::Event)
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
        let granted = merge(None, consent(true, &["2/employment"], now), None);
        let withdrawal = consent(false, &[], now + Duration::days(1));
        let state = merge(Some(granted.clone()), withdrawal.clone(), None);
        let purposes = vec!["EMPLOYMENT_SERVICES".to_string()];
        assert_eq!(
            decide(
                &record(&withdrawal),
                Some(&state),
                &m("2/employment"),
                &purposes
            ),
            Ok(Admitted::ConsentChange),
            "the withdrawal, and nothing else of the person"
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
            None,
        );
        let withdrawn = merge(Some(future), consent(false, &[], now), None);
        assert!(!withdrawn.current.granted);
        assert_eq!(withdrawn.former_recipients, [m("2/employment")]);
    }

    /// A new consent that still grants but drops a member reaches that member (and any member
    /// an earlier consent named, however late it reads), and the record before it does not.
    #[test]
    fn dropping_a_recipient_reaches_it_however_late_it_reads() {
        let now = OffsetDateTime::now_utc();
        let both = consent(true, &["2/employment", "3/education"], now);
        let only_employment = consent(true, &["2/employment"], now + Duration::days(1));
        let renewed = consent(true, &["2/employment"], now + Duration::days(2));
        let state = merge(None, both.clone(), None);
        let state = merge(Some(state), only_employment.clone(), None);
        let purposes = vec!["EMPLOYMENT_SERVICES".to_string()];
        let education = m("3/education");
        assert_eq!(
            decide(
                &record(&only_employment),
                Some(&state),
                &education,
                &purposes
            ),
            Ok(Admitted::ConsentChange),
            "the change that drops it reaches it"
        );
        // Read after a further change: the drop still reaches it, the old grant does not.
        let state = merge(Some(state), renewed.clone(), None);
        assert_eq!(state.former_recipients, [m("2/employment")]);
        assert!(state.may_hold(&education, &purposes));
        assert!(!state.may_hold(&education, &["STATISTICS".into()]));
        assert_eq!(
            decide(
                &record(&only_employment),
                Some(&state),
                &education,
                &purposes
            ),
            Ok(Admitted::ConsentChange)
        );
        assert_eq!(
            decide(&record(&both), Some(&state), &education, &purposes),
            Err(Withheld::NoConsent),
            "a record whose own consent names it is not a notice to stop"
        );
        // A member never named learns nothing.
        assert_eq!(
            decide(&record(&renewed), Some(&state), &m("4/tax"), &purposes),
            Err(Withheld::NoConsent)
        );
        // A state stored before `ever_named` existed still knows the former recipients.
        let old: ConsentState = serde_json::from_value(json!({
            "current": only_employment, "former_recipients": [m("3/education")]
        }))
        .unwrap();
        assert!(old.may_hold(&education, &purposes));
    }

    /// A record withheld from this node and released after a later one reached it carries an
    /// earlier statement: it does not replace the later one (which may have dropped a member),
    /// whichever publisher's statement came between, and the members it granted to are still
    /// told of every change.
    #[test]
    fn an_earlier_statement_released_late_does_not_replace_the_later_one() {
        let now = OffsetDateTime::now_utc();
        let (emp, edu) = (m("2/employment"), m("3/education"));
        let purposes = ["EMPLOYMENT_SERVICES".to_string()];
        let stated = |source: &str, sequence| {
            Some(Stated {
                source: m(source),
                sequence,
            })
        };
        let later = merge(
            None,
            consent(true, &["2/employment"], now),
            stated("1/migration", 2),
        );
        let after = merge(
            Some(later.clone()),
            consent(true, &["3/education"], now),
            stated("1/migration", 1),
        );
        assert_eq!(after.current, later.current, "the later statement stays");
        assert!(after.current.names(&emp, &purposes));
        assert!(!after.current.names(&edu, &purposes));
        assert!(
            after.may_hold(&edu, &purposes),
            "education may hold what it granted"
        );
        // Again, the same statement: nothing changes.
        let again = merge(
            Some(after.clone()),
            consent(false, &[], now),
            stated("1/migration", 2),
        );
        assert_eq!(again.current, later.current);
        // A later statement of the same publisher, or any of another, is taken as it arrives.
        let next = merge(
            Some(after.clone()),
            consent(false, &[], now),
            stated("1/migration", 3),
        );
        assert!(!next.current.granted);
        let other = merge(
            Some(after.clone()),
            consent(true, &["2/employment"], now),
            stated("9/other", 1),
        );
        assert!(other.current.granted);
        // ... and an earlier one of the first publisher arriving after it is still earlier.
        let late = merge(
            Some(other.clone()),
            consent(true, &["3/education"], now),
            stated("1/migration", 1),
        );
        assert_eq!(late.current, other.current);
        // A state stored before statements were kept takes what arrives, as before.
        let unknown = merge(
            Some(ConsentState {
                latest: BTreeMap::new(),
                current_stated: None,
                ..after
            }),
            consent(false, &[], now),
            stated("1/migration", 1),
        );
        assert!(!unknown.current.granted);
        // Narrowing under an earlier PIN by an earlier statement leaves the later one too.
        let narrowed_late = narrowed(
            later.clone(),
            &consent(false, &[], now),
            stated("1/migration", 1),
        );
        assert_eq!(narrowed_late.current, later.current);
    }

    /// A credential attesting one of its publisher's events is decided by the consent of that
    /// event's person (the state the caller passes); one attesting another member's event, or
    /// none, is not about a person anyone here knows.
    #[test]
    fn a_credential_is_decided_by_the_attested_persons_consent() {
        let now = OffsetDateTime::now_utc();
        let (emp, edu) = (m("2/employment"), m("3/education"));
        let purposes = ["EMPLOYMENT_SERVICES".to_string()];
        let credential = |source: &str| {
            Event::new(
                m("1/migration"),
                EventType::CredentialIssued,
                2,
                json!({"attests": {"source": m(source), "id": uuid::Uuid::now_v7()}}),
            )
        };
        let own = credential("1/migration");
        assert!(attested(&own).is_some());
        let state = merge(None, consent(true, &["2/employment"], now), None);
        assert_eq!(
            decide(&own, Some(&state), &emp, &purposes),
            Ok(Admitted::Event)
        );
        assert_eq!(
            decide(&own, Some(&state), &edu, &purposes),
            Err(Withheld::NoConsent)
        );
        assert_eq!(
            decide(&own, None, &emp, &purposes),
            Err(Withheld::NoConsent)
        );
        assert!(attested(&credential("3/education")).is_none());
    }

    /// This node's own users: its own records always, what it received only while the current
    /// consent names this node and the user's purpose.
    #[test]
    fn local_users_see_received_data_only_under_the_current_consent() {
        let now = OffsetDateTime::now_utc();
        let me = m("2/employment");
        let granted = merge(None, consent(true, &["2/employment"], now), None);
        let received = record(&granted.current);
        let own = Event::new(
            me.clone(),
            EventType::EmploymentStatus,
            1,
            json!({"person": {"pin": "x"}}),
        );
        let local = |purpose| Audience::Local { node: &me, purpose };
        let facts = |e| Facts::of(e, None);
        let ok = Ok(Admitted::Event);
        assert_eq!(
            may_serve(
                facts(&received),
                Some(&granted),
                local("EMPLOYMENT_SERVICES")
            ),
            ok
        );
        assert_eq!(
            may_serve(facts(&received), Some(&granted), local("STATISTICS")),
            Err(Withheld::NoConsent),
            "a purpose the person never consented to"
        );
        assert_eq!(
            may_serve(facts(&received), None, local("EMPLOYMENT_SERVICES")),
            Err(Withheld::NoConsent)
        );
        let dropped = merge(
            Some(granted.clone()),
            consent(true, &["3/education"], now + Duration::days(1)),
            None,
        );
        assert_eq!(
            may_serve(
                facts(&received),
                Some(&dropped),
                local("EMPLOYMENT_SERVICES")
            ),
            Err(Withheld::NoConsent),
            "no longer named: received data is not served"
        );
        assert_eq!(
            may_serve(facts(&own), Some(&dropped), local("STATISTICS")),
            ok,
            "the agency's own file"
        );
        let vacancy = Event::new(m("2/employment"), EventType::Vacancy, 1, json!({}));
        assert_eq!(may_serve(facts(&vacancy), None, local("ANY")), ok);
    }

    /// The decision's property tests: `PROPTEST_CASES` sets how many cases (256 by default, as
    /// CI runs them; `PROPTEST_CASES=20000` for the long run the README gives).
    mod properties {
        use super::*;
        use proptest::prelude::*;

        const MEMBERS: [&str; 3] = ["1/migration", "2/employment", "3/education"];
        const PURPOSES: [&str; 3] = ["EMPLOYMENT_SERVICES", "TRAINING_SERVICES", "STATISTICS"];

        fn some_of(names: &'static [&'static str]) -> impl Strategy<Value = Vec<&'static str>> {
            proptest::sample::subsequence(names, 0..=names.len())
        }

        fn a_consent() -> impl Strategy<Value = Consent> {
            (
                any::<bool>(),
                some_of(&PURPOSES),
                some_of(&MEMBERS),
                0i64..1000,
            )
                .prop_map(|(granted, purposes, recipients, minutes)| Consent {
                    granted,
                    purposes: purposes.into_iter().map(String::from).collect(),
                    recipients: recipients.into_iter().map(m).collect(),
                    time: OffsetDateTime::UNIX_EPOCH + Duration::minutes(minutes),
                    method: None,
                })
        }

        /// Whether `c` grants `member` one of `purposes`, read off the statement itself.
        fn grants(c: &Consent, member: &MemberId, purposes: &[String]) -> bool {
            c.granted
                && c.recipients.iter().any(|r| r == member)
                && c.purposes.iter().any(|p| purposes.iter().any(|q| q == p))
        }

        /// The rule for a member as the module's documentation states it, from the history of
        /// the person's consent statements in the publisher's order.
        fn expected_for_member(
            history: &[Consent],
            event_type: EventType,
            carries: Option<&Consent>,
            reader: &MemberId,
            purposes: &[String],
        ) -> Result<Admitted, Withheld> {
            if !event_type.is_personal() {
                return Ok(Admitted::Event);
            }
            let Some(current) = history.last() else {
                return Err(Withheld::NoConsent);
            };
            if grants(current, reader, purposes) {
                return Ok(Admitted::Event);
            }
            // Only a granted consent naming the member for one of its purposes makes it a
            // holder to tell (the purpose-blind former recipients count only in states written
            // before `ever_named`, which `merge` never makes).
            let ever_named = history.iter().any(|c| grants(c, reader, purposes));
            let tells_it_to_stop = carries.is_some_and(|c| !grants(c, reader, purposes));
            if tells_it_to_stop && ever_named {
                return Ok(Admitted::ConsentChange);
            }
            Err(Withheld::NoConsent)
        }

        proptest! {
            #[test]
            fn the_decision_for_a_member_is_the_documented_rule(
                history in proptest::collection::vec(a_consent(), 0..6),
                type_index in 0..EventType::ALL.len(),
                carries in proptest::option::of(a_consent()),
                reader in proptest::sample::select(&MEMBERS[..]),
                purposes in some_of(&PURPOSES),
            ) {
                let event_type = EventType::ALL[type_index];
                let carries = carries.filter(|_| event_type == EventType::ReturneeRecord);
                let reader = m(reader);
                let purposes: Vec<String> = purposes.into_iter().map(String::from).collect();
                let state = history.iter().cloned().fold(None, |held, c| Some(merge(held, c, None)));
                let facts = Facts { source: "central-server/GOV/1/migration", event_type, carries: carries.as_ref(), attests: false };
                let decided = may_serve(facts, state.as_ref(), Audience::Member { id: &reader, purposes: &purposes });
                let expected = expected_for_member(&history, event_type, carries.as_ref(), &reader, &purposes);
                prop_assert_eq!(decided, expected);
                // Whatever else holds: a member no statement ever named is never served a
                // personal event.
                if event_type.is_personal() && !history.iter().any(|c| c.recipients.contains(&reader)) {
                    prop_assert_eq!(decided, Err(Withheld::NoConsent));
                }
            }

            #[test]
            fn this_nodes_users_read_received_events_only_under_the_current_consent(
                history in proptest::collection::vec(a_consent(), 0..6),
                type_index in 0..EventType::ALL.len(),
                node in proptest::sample::select(&MEMBERS[..]),
                source in proptest::sample::select(&MEMBERS[..]),
                purpose in proptest::sample::select(&PURPOSES[..]),
            ) {
                let event_type = EventType::ALL[type_index];
                let node = m(node);
                let source = m(source);
                let state = history.iter().cloned().fold(None, |held, c| Some(merge(held, c, None)));
                let facts = Facts { source: source.as_str(), event_type, carries: None, attests: false };
                let decided = may_serve(facts, state.as_ref(), Audience::Local { node: &node, purpose });
                let own = source == node;
                let consented = history.last().is_some_and(|c| grants(c, &node, &[purpose.to_string()]));
                let expected = if !event_type.is_personal() || own || consented {
                    Ok(Admitted::Event)
                } else {
                    Err(Withheld::NoConsent)
                };
                prop_assert_eq!(decided, expected);
            }
        }
    }
}
