//! What this node serves its own users (a local API token or dashboard session, the webhook):
//! [`consent::may_serve`] applied to the events and person views the store holds, with each
//! person's consent state as this node holds it (latest by the publisher's sequence).
//!
//! A person's view is served whole when every event in it may be served, as the part built
//! from the events that may be (`receivedDataWithheld`) when only some may, and not at all when
//! none may: to the caller that is the same as a person this node never heard of.

use std::collections::HashMap;

use crate::event::identifiers::{MemberId, Pin};
use crate::event::schema::EventType;
use crate::event::Event;
use crate::policy::access::{self, Access, Outcome, Reader};
use crate::policy::consent::{self, Audience, ConsentState, Facts, Withheld};
use crate::registry::projector;
use crate::registry::view::{EventRef, PersonView};
use crate::store::{Store, StoreError};

/// A user of this node: the node, and the purpose the user reads for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LocalUser<'a> {
    pub(crate) node: &'a MemberId,
    pub(crate) purpose: &'a str,
}

impl LocalUser<'_> {
    fn audience(&self) -> Audience<'_> {
        Audience::Local {
            node: self.node,
            purpose: self.purpose,
        }
    }

    /// Whether the event with these facts may be served to this user under `state`.
    fn may_have(&self, facts: Facts<'_>, state: Option<&ConsentState>) -> bool {
        consent::may_serve(facts, state, self.audience()).is_ok()
    }
}

/// For each of `events`, whether `user` may be served it.
pub(crate) fn events(
    store: &Store,
    events: &[&Event],
    user: LocalUser<'_>,
) -> Result<Vec<bool>, StoreError> {
    let pins: Vec<&str> = events.iter().filter_map(|e| e.pin()).collect();
    let states = states_of(store, pins)?;
    Ok(events
        .iter()
        .map(|e| {
            let state = e.pin().and_then(|p| states.get(p)).and_then(Option::as_ref);
            user.may_have(Facts::of(e, None), state)
        })
        .collect())
}

/// Whether `user` may be served `event`.
pub(crate) fn event(store: &Store, event: &Event, user: LocalUser<'_>) -> Result<bool, StoreError> {
    let state: Option<ConsentState> = match event.pin() {
        Some(pin) => store.consent(pin)?,
        None => None,
    };
    Ok(user.may_have(Facts::of(event, None), state.as_ref()))
}

/// Whether the body of a quarantine record from `origin`, naming each of `pins`, may be shown
/// to `user` (`admin`: whether it holds an `admin` token). A body this node's own systems sent
/// is the agency's own; one a peer sent is decided by [`sent_by`]; and none naming a person
/// whose erasure the projector has not finished is shown (it redacts such bodies; until then
/// they stay out, as the person's view does).
pub(crate) fn refused_body(
    store: &Store,
    origin: &str,
    pins: &[Pin],
    user: LocalUser<'_>,
    admin: bool,
) -> Result<Result<(), Withheld>, StoreError> {
    let decision = match origin == crate::store::LOCAL_ORIGIN {
        true => Ok(()),
        false => sent_by(store, origin, pins, user, admin)?,
    };
    match decision {
        Ok(()) => none_being_erased(store, pins),
        refused => Ok(refused),
    }
}

/// Refused as without consent when any of `pins` has an erasure not finished yet.
fn none_being_erased(store: &Store, pins: &[Pin]) -> Result<Result<(), Withheld>, StoreError> {
    for pin in pins {
        if store.pending_erasure(pin.expose())?.is_some() {
            return Ok(Err(Withheld::NoConsent));
        }
    }
    Ok(Ok(()))
}

/// Whether a body `source` sent that this node refused, naming each of `pins`, may be served
/// to `user`. It is the peer's data that this node did not take in: only an administrator
/// (`admin`, who reads it to mend the peer) is shown it, and then only under the consent of
/// every person it names, as their events would be. A body in which no person can be
/// recognised (its PIN malformed, or cut off with the body) no consent can decide: it is shown
/// to the administrator.
fn sent_by(
    store: &Store,
    source: &str,
    pins: &[Pin],
    user: LocalUser<'_>,
    admin: bool,
) -> Result<Result<(), Withheld>, StoreError> {
    if !admin {
        return Ok(Err(Withheld::NotAuthorised));
    }
    let states = states_of(store, pins.iter().map(Pin::expose).collect())?;
    let facts = Facts {
        source,
        event_type: EventType::ReturneeRecord,
        carries: None,
        attests: false,
    };
    let all_consent = states
        .values()
        .all(|state| user.may_have(facts, state.as_ref()));
    Ok(if all_consent {
        Ok(())
    } else {
        Err(Withheld::NoConsent)
    })
}

/// What a person lookup finds for a user. The caller answers the first two alike.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// The node holds nothing about the person.
    NothingHeld,
    /// It holds something, but nothing `user` may be served.
    Refused,
    /// The view as `user` may be served it.
    Served(Box<PersonView>),
    /// The views are being projected again from the start of the log: nobody is answered
    /// until they hold it ([`projector::whole`]), whoever is asked about.
    ViewsRebuilding,
}

/// The person's view as `user` may be served it.
pub(crate) fn person(store: &Store, pin: &Pin, user: LocalUser<'_>) -> Result<Lookup, StoreError> {
    if !projector::whole(store)? {
        return Ok(Lookup::ViewsRebuilding);
    }
    // Read whether the node holds the person or not: a refusal of a person held must not take
    // longer to come than one of a person not held.
    let state: Option<ConsentState> = store.consent(pin.expose())?;
    let Some(view) = projector::person(store, pin)? else {
        return Ok(Lookup::NothingHeld);
    };
    Ok(match served(store, view, state.as_ref(), user)? {
        Some(view) => Lookup::Served(Box::new(view)),
        None => Lookup::Refused,
    })
}

/// What a person read answers once it is decided and logged ([`person_read`]).
#[derive(Debug)]
pub(crate) enum Read {
    /// The view as the user may be served it; the read is in the person's access log.
    Served(Box<PersonView>),
    /// Nothing the user may be served, whether the node holds the person or not; the refusal
    /// is in the person's access log.
    Refused,
    /// The views are being projected again: nobody is answered, nothing is logged.
    ViewsRebuilding,
}

/// **The one way a person is read for a local user** (the local API, `jol view`): the lookup
/// ([`person`]) decided by `who`'s purpose, then logged as `what` before anything is answered,
/// a person not held and one nothing of whom may be served logged alike.
pub(crate) fn person_read(
    store: &Store,
    pin: &Pin,
    user: LocalUser<'_>,
    who: &Reader,
    what: &str,
) -> Result<Read, StoreError> {
    let outcome = match person(store, pin, user)? {
        Lookup::Served(view) => {
            access::record_reads(store, who, what, [pin])?;
            return Ok(Read::Served(view));
        }
        Lookup::Refused => Outcome::RefusedNoConsent,
        Lookup::NothingHeld => Outcome::RefusedNothingHeld,
        // Said of every person alike, and nothing was looked up: not a refusal about them.
        Lookup::ViewsRebuilding => return Ok(Read::ViewsRebuilding),
    };
    access::log(store, who, [Access::new(pin, what, outcome)])?;
    Ok(Read::Refused)
}

/// Each of `views` as `user` may be served it (views of which nothing may be served are left
/// out): for rankings over many persons.
pub(crate) fn views(
    store: &Store,
    views: Vec<PersonView>,
    user: LocalUser<'_>,
) -> Result<Vec<PersonView>, StoreError> {
    let pins: Vec<Pin> = views.iter().map(|v| v.pin.clone()).collect();
    let states = states_of(store, pins.iter().map(Pin::expose).collect())?;
    let mut out = Vec::with_capacity(views.len());
    for view in views {
        let state = states.get(view.pin.expose()).and_then(Option::as_ref);
        if let Some(v) = served(store, view, state, user)? {
            out.push(v);
        }
    }
    Ok(out)
}

/// `view` as `user` may be served it under `state`.
fn served(
    store: &Store,
    view: PersonView,
    state: Option<&ConsentState>,
    user: LocalUser<'_>,
) -> Result<Option<PersonView>, StoreError> {
    let allowed: Vec<u64> = view
        .events
        .iter()
        .filter(|e| user.may_have(facts_of(e), state))
        .map(|e| e.position)
        .collect();
    if allowed.len() == view.events.len() {
        return Ok(Some(view));
    }
    if allowed.is_empty() {
        return Ok(None);
    }
    let mut part = projector::project_positions(store, &view.pin, &allowed)?;
    part.consent = view.consent;
    part.received_data_withheld = true;
    Ok(Some(part))
}

/// The decision's facts of an event a view names.
fn facts_of(e: &EventRef) -> Facts<'_> {
    Facts {
        source: e.source.as_str(),
        event_type: e.event_type,
        carries: None,
        attests: false,
    }
}

/// The consent state of each of `pins`, read once each.
fn states_of<'p>(
    store: &Store,
    mut pins: Vec<&'p str>,
) -> Result<HashMap<&'p str, Option<ConsentState>>, StoreError> {
    pins.sort_unstable();
    pins.dedup();
    let states = store.consents::<ConsentState>(&pins)?;
    Ok(pins.into_iter().zip(states).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::consent::Consent;
    use crate::store::WriteBatch;

    const PIN: &str = "21503199012345";

    fn member(s: &str) -> MemberId {
        s.parse().unwrap()
    }

    /// A store in which the person's consent names `me` for employment services.
    fn consenting(dir: &tempfile::TempDir, me: &MemberId) -> Store {
        let store = Store::open(dir.path()).unwrap();
        let consent = Consent {
            granted: true,
            purposes: vec!["EMPLOYMENT_SERVICES".into()],
            recipients: vec![me.clone()],
            time: time::OffsetDateTime::now_utc(),
            method: None,
        };
        let mut batch = WriteBatch::default();
        batch.set_consent(PIN, &consent::merge(None, consent, None));
        store.apply_other(batch).unwrap();
        store
    }

    #[test]
    fn a_refused_body_a_peer_sent_is_shown_to_an_admin_only_and_under_consent() {
        let dir = tempfile::tempdir().unwrap();
        let me = member("central-server/GOV/70000002/employment");
        let store = consenting(&dir, &me);
        let peer = "central-server/GOV/70000001/migration";
        let user = |purpose| LocalUser { node: &me, purpose };
        let pins = [PIN.parse::<Pin>().unwrap()];
        let decide = |pins: &[Pin], purpose, admin| {
            sent_by(&store, peer, pins, user(purpose), admin).unwrap()
        };
        assert_eq!(decide(&pins, "EMPLOYMENT_SERVICES", true), Ok(()));
        // Being an administrator does not widen the person's consent.
        assert_eq!(decide(&pins, "STATISTICS", true), Err(Withheld::NoConsent));
        // Nobody recognisable: no consent decides it, so an administrator alone reads it.
        assert_eq!(decide(&[], "EMPLOYMENT_SERVICES", true), Ok(()));
        // Any other token: never, whatever the consent.
        for pins in [&pins[..], &[]] {
            let refused = decide(pins, "EMPLOYMENT_SERVICES", false);
            assert_eq!(refused, Err(Withheld::NotAuthorised));
        }
    }
}
