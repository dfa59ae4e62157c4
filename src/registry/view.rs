//! The unified registry view: one projection per person from every event the node holds.
//!
//! [`project`] is a pure function of a person's events: corrections remove what they supersede,
//! the rest is applied in business-date order (`eventDate`, which every schema requires: an
//! event without one is in no view), then arrival order. The stored view is exactly what the
//! events say; facts that depend on "today" (pathway stage, durations) are derived when read
//! ([`PersonView::derive`]), so a view rebuilt from the log always equals the one maintained as
//! events arrived.
//!
//! The view is typed where code reads it (the PIN, dates, the consent, a job's formality,
//! contract and ICSE-18 status, labour-force status: [`crate::event::vocab`]) and stored as the
//! events wrote it, so a view stored before it was typed reads back unchanged; what only the
//! person's reader looks at (names, stays abroad, courses, credentials) stays the events' JSON.
//! A part of an event that does not read as its type (the schemas rule that out) is left out.
//!
//! Why long: the projection's rules (one per kind of event) read best in one place; a third of
//! the file is their tests.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::{Date, Duration};

use crate::event::identifiers::{MemberId, Pin, Sex};
use crate::event::schema::EventType;
use crate::event::vocab::{
    self, iso_date, ContractDuration, EmploymentEvent, Formality, Icse18, LabourForceStatus,
    Segment, TrainingEvent,
};
use crate::event::Event;
use crate::policy::consent::Consent;

/// Days after return that count as "six months" (183, as the KPIs define it).
pub(crate) const SIX_MONTHS_DAYS: i64 = 183;

/// The day `days` after `date`; `None` past the calendar's end. A business date is any
/// `YYYY-MM-DD` the schemas accept (`9999-12-31` stands for "unknown" in many registries), and
/// the calendar ends soon after: adding to such a date must not panic, and a window that ends
/// past the calendar has not elapsed by any day.
pub(crate) fn days_after(date: Date, days: i64) -> Option<Date> {
    date.checked_add(Duration::days(days))
}

/// Whether the window of `days` from `date` has elapsed by `by` (one that ends past the
/// calendar never has).
pub(crate) fn elapsed(date: Date, days: i64, by: Date) -> bool {
    days_after(date, days).is_some_and(|end| end <= by)
}

/// Whether `day` falls no later than `days` after `date` (always, when that is past the
/// calendar's end).
pub(crate) fn within(day: Date, date: Date, days: i64) -> bool {
    days_after(date, days).is_none_or(|end| day <= end)
}

/// An event with its arrival position, as the projection takes it.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub position: u64,
    /// Shared with the parse it came from (the projector does not copy events).
    pub(crate) event: std::sync::Arc<Event>,
}

/// Which event fed the view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventRef {
    pub id: String,
    pub source: MemberId,
    #[serde(rename = "type")]
    pub(crate) event_type: EventType,
    /// What the event says happened (its `event`: each type has its own list, in
    /// [`crate::event::vocab`]), as the event wrote it.
    pub(crate) event: String,
    #[serde(with = "iso_date")]
    pub event_date: Date,
    pub position: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) superseded: bool,
    /// The event this one corrects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) supersedes: Option<String>,
}

/// What the migration agency records about the return.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Returnee {
    #[serde(with = "iso_date::option", default)]
    pub(crate) return_date: Option<Date>,
    pub(crate) return_source: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) soate: Option<String>,
    pub(crate) education_level: Option<u8>,
    pub(crate) stays_abroad: Vec<Value>,
    pub(crate) months_abroad: Option<u32>,
    /// Country of the last stay abroad.
    pub(crate) destination_country: Option<String>,
    pub(crate) occupation_abroad: Option<Value>,
    pub(crate) skills_acquired: Vec<Value>,
    pub(crate) preferred_language: Option<String>,
    pub(crate) intends_to_remigrate: Option<String>,
}

/// A training enrolment and its latest state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Enrolment {
    pub(crate) enrolment_id: String,
    pub(crate) status: TrainingEvent,
    pub(crate) provider: Option<Value>,
    pub(crate) course: Option<Value>,
    #[serde(with = "iso_date::option", default)]
    pub(crate) start: Option<Date>,
    #[serde(with = "iso_date::option", default)]
    pub(crate) end: Option<Date>,
    /// When it was completed (COMPLETED or CERTIFIED), for "employed after retraining".
    #[serde(with = "iso_date::option", default)]
    pub(crate) completed_on: Option<Date>,
    pub(crate) credentials: Vec<Value>,
}

/// An employment spell. It has the names of an employment-status event's `job`, so a job reads
/// as a spell (what the view does not keep, such as `endReason`, is left out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Spell {
    pub(crate) spell_id: String,
    #[serde(with = "iso_date")]
    pub(crate) start_date: Date,
    #[serde(with = "iso_date::option", default)]
    pub(crate) end_date: Option<Date>,
    pub(crate) icse18: Icse18,
    pub(crate) formality: Formality,
    pub(crate) contract_duration: ContractDuration,
    pub(crate) isco08: String,
    pub(crate) region: Option<String>,
    pub(crate) training_enrolment_id: Option<String>,
    /// The vacancy the job fills: the spell is then a placement.
    #[serde(default)]
    pub(crate) vacancy_id: Option<String>,
}

/// A labour-force status as observed on a date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StatusAt {
    pub(crate) status: LabourForceStatus,
    #[serde(with = "iso_date")]
    pub date: Date,
}

/// The person's registration as a job-seeker (an employment-status event's `registration`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Registration {
    pub(crate) office: String,
    pub(crate) region: String,
    #[serde(with = "iso_date")]
    pub date: Date,
}

/// The employment service's profiling of the person (an employment-status event's
/// `profiling`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Profiling {
    /// Distance from the labour market.
    pub(crate) segment: Segment,
    #[serde(with = "iso_date")]
    pub date: Date,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) target_isco08: Option<Vec<String>>,
}

/// A referral to a course or a vacancy (an employment-status event's `referral`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Referral {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) course_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) provider_id: Option<String>,
    /// The vacancy the person is referred to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) vacancy_id: Option<String>,
    #[serde(with = "iso_date")]
    pub date: Date,
}

/// The projection of one person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonView {
    pub(crate) pin: Pin,
    pub(crate) sex: Option<Sex>,
    #[serde(with = "iso_date::option", default)]
    pub(crate) birth_date: Option<Date>,
    pub(crate) name: Option<Value>,
    pub(crate) pin_history: Vec<Pin>,
    pub(crate) returnee: Option<Returnee>,
    pub(crate) consent: Option<Consent>,
    /// Every member a consent of the person ever named while granted (a later withdrawal does
    /// not remove it): the stable population for registration coverage.
    #[serde(default)]
    pub(crate) consented_to: Vec<MemberId>,
    pub(crate) registration: Option<Registration>,
    pub(crate) profiling: Option<Profiling>,
    pub(crate) referrals: Vec<Referral>,
    pub(crate) enrolments: Vec<Enrolment>,
    pub(crate) spells: Vec<Spell>,
    pub(crate) status_history: Vec<StatusAt>,
    pub(crate) events: Vec<EventRef>,
    /// Set when the view is served after a withdrawal: what other members sent about the
    /// person is left out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) received_data_withheld: bool,
}

/// Where a person is on the reintegration pathway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Stage {
    Unknown,
    Returned,
    Registered,
    Profiled,
    InTraining,
    Trained,
    Employed,
    EmployedFormally,
    Sustained,
}

/// Facts derived at a reference date.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Derived {
    #[serde(with = "iso_date")]
    pub as_of: Date,
    pub(crate) stage: Stage,
    pub(crate) labour_force_status: Option<LabourForceStatus>,
    pub(crate) days_to_registration: Option<i64>,
    pub(crate) days_to_first_employment: Option<i64>,
    pub(crate) days_to_first_formal_employment: Option<i64>,
    pub(crate) employed_six_months_after_return: Option<bool>,
}

/// Parse a `YYYY-MM-DD` date a caller gave (a query parameter, a command-line option), as the
/// dates in the data are read ([`vocab::date`]): ISO 8601's other forms (`2026-334`,
/// `2026-W48-1`, `20261130`, `+002026-11-30`) are refused, as the answers say.
pub fn date(s: &str) -> Option<Date> {
    vocab::date(s)
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(String::from)
}

/// The date at `key` of `v`.
fn date_at(v: &Value, key: &str) -> Option<Date> {
    v.get(key)?.as_str().and_then(vocab::date)
}

/// The part `key` of `v` read as its type (`None` when absent or not of that type).
fn part<'v, T: Deserialize<'v>>(v: &'v Value, key: &str) -> Option<T> {
    T::deserialize(v.get(key)?).ok()
}

/// Build a person's view from their events (in any order).
pub(crate) fn project(pin: &Pin, events: &[Stored]) -> PersonView {
    // A correction supersedes only an event of its own source and type (the person is the same:
    // a view holds one person's events). Any other `supersedes` is ignored.
    let superseded: HashSet<(&MemberId, EventType, String)> = events
        .iter()
        .filter_map(|s| {
            let target = text(&s.event.data, "supersedes")?;
            Some((&s.event.source, s.event.event_type, target))
        })
        .collect();
    let is_superseded =
        |e: &Event| superseded.contains(&(&e.source, e.event_type, e.id.to_string()));
    let mut view = PersonView::new(pin.clone());
    for (date, s) in in_order(events) {
        apply(&mut view, s, date, is_superseded(&s.event));
    }
    view
}

/// The events with a business date, in the order they are applied: business date, then
/// arrival.
fn in_order(events: &[Stored]) -> Vec<(Date, &Stored)> {
    let mut ordered: Vec<(Date, &Stored)> = events
        .iter()
        .filter_map(|s| Some((date_at(&s.event.data, "eventDate")?, s)))
        .collect();
    ordered.sort_by_key(|(date, s)| (*date, s.position));
    ordered
}

/// Apply one event (in order, on its business date) to a view.
fn apply(view: &mut PersonView, s: &Stored, date: Date, superseded: bool) {
    let e = &s.event;
    view.events.push(EventRef {
        id: e.id.to_string(),
        source: e.source.clone(),
        event_type: e.event_type,
        event: text(&e.data, "event").unwrap_or_default(),
        event_date: date,
        position: s.position,
        superseded,
        supersedes: text(&e.data, "supersedes"),
    });
    if superseded {
        return;
    }
    match e.event_type {
        EventType::ReturneeRecord => apply_returnee(view, &e.data),
        EventType::TrainingEnrolment => apply_training(view, &e.data, date),
        EventType::EmploymentStatus => apply_employment(view, &e.data, date),
        // Not about a person: never in a view (see `crate::registry::offers`).
        EventType::Vacancy
        | EventType::CourseOffer
        | EventType::Erasure
        | EventType::CredentialIssued => {}
    }
}

/// The fast path for events arriving in order: when every new event comes after everything the
/// view holds (business date, then arrival) and no correction is involved, applying them to the
/// view gives exactly what [`project`] over all the events would. `false`: the view is left
/// unchanged, project from scratch (its `events` name every position it was built from).
pub(crate) fn extend(view: &mut PersonView, new: &[Stored]) -> bool {
    let ordered = in_order(new);
    let last = view.events.last().map(|e| (e.event_date, e.position));
    let first = ordered.first().map(|(date, s)| (*date, s.position));
    if let (Some(last), Some(first)) = (last, first) {
        if first <= last {
            return false;
        }
    }
    let corrections = new.iter().any(|s| s.event.data.get("supersedes").is_some());
    let named = new.iter().any(|s| {
        let id = s.event.id.to_string();
        view.events
            .iter()
            .any(|e| e.supersedes.as_deref() == Some(id.as_str()))
    });
    if corrections || named {
        return false;
    }
    for (date, s) in ordered {
        apply(view, s, date, false);
    }
    true
}

fn apply_returnee(view: &mut PersonView, d: &Value) {
    let r = view.returnee.get_or_insert_with(Returnee::default);
    if let Some(p) = d.get("person") {
        if let Some(n) = p.get("name") {
            view.name = Some(n.clone());
        }
        if let Some(h) = p.get("pinHistory").and_then(Value::as_array) {
            view.pin_history = h
                .iter()
                .filter_map(Value::as_str)
                .filter_map(|pin| pin.parse().ok())
                .collect();
        }
    }
    if let Some(ret) = d.get("return") {
        r.return_date = date_at(ret, "date");
        r.return_source = text(ret, "source");
    }
    if let Some(stays) = d.get("staysAbroad").and_then(Value::as_array) {
        r.stays_abroad = stays.clone();
        r.destination_country = stays
            .iter()
            .max_by_key(|s| text(s, "from"))
            .and_then(|s| text(s, "country"));
    }
    if let Some(m) = d.get("monthsAbroad").and_then(Value::as_u64) {
        r.months_abroad = u32::try_from(m).ok();
    }
    if let Some(o) = d.get("occupationAbroad") {
        r.occupation_abroad = Some(o.clone());
    }
    if let Some(s) = d.get("skillsAcquired").and_then(Value::as_array) {
        r.skills_acquired = s.clone();
    }
    if let Some(l) = d.get("educationLevel").and_then(Value::as_u64) {
        r.education_level = u8::try_from(l).ok();
    }
    for (field, slot) in [
        ("region", &mut r.region),
        ("soate", &mut r.soate),
        ("preferredLanguage", &mut r.preferred_language),
        ("intendsToRemigrate", &mut r.intends_to_remigrate),
    ] {
        if let Some(v) = text(d, field) {
            *slot = Some(v);
        }
    }
    if let Some(consent) = part::<Consent>(d, "consent") {
        if consent.granted {
            for member in &consent.recipients {
                if !view.consented_to.contains(member) {
                    view.consented_to.push(member.clone());
                }
            }
            view.consented_to.sort();
        }
        view.consent = Some(consent);
    }
}

fn apply_training(view: &mut PersonView, d: &Value, date: Date) {
    let Some(id) = text(d, "enrolmentId") else {
        return;
    };
    let event = part::<TrainingEvent>(d, "event");
    let pos = match view.enrolments.iter().position(|e| e.enrolment_id == id) {
        Some(p) => p,
        None => {
            view.enrolments.push(Enrolment {
                enrolment_id: id,
                status: TrainingEvent::Enrolled,
                ..Enrolment::default()
            });
            view.enrolments.len() - 1
        }
    };
    let e = &mut view.enrolments[pos];
    if let Some(p) = d.get("provider") {
        e.provider = Some(p.clone());
    }
    if let Some(c) = d.get("course") {
        e.course = Some(c.clone());
    }
    if let Some(dates) = d.get("dates") {
        e.start = date_at(dates, "start").or(e.start);
        e.end = date_at(dates, "end").or(e.end);
    }
    match event {
        Some(TrainingEvent::RecordCorrected) | None => {}
        Some(state) => e.status = state,
    }
    let completes = match event {
        Some(TrainingEvent::Completed) => true,
        Some(TrainingEvent::Certified) => e.completed_on.is_none(),
        _ => false,
    };
    if completes {
        e.completed_on = e.end.or(Some(date));
    }
    if let Some(c) = d.get("credential") {
        e.credentials.push(c.clone());
    }
}

fn apply_employment(view: &mut PersonView, d: &Value, date: Date) {
    let corrects = part::<EmploymentEvent>(d, "event") == Some(EmploymentEvent::RecordCorrected);
    if let Some(status) = part::<LabourForceStatus>(d, "labourForceStatus") {
        view.status_history.push(StatusAt { status, date });
    }
    if let Some(r) = part::<Registration>(d, "registration") {
        if view.registration.is_none() || corrects {
            view.registration = Some(r);
        }
    }
    if let Some(p) = part::<Profiling>(d, "profiling") {
        view.profiling = Some(p);
    }
    if let Some(r) = part::<Referral>(d, "referral") {
        view.referrals.push(r);
    }
    if let Some(spell) = part::<Spell>(d, "job") {
        match view
            .spells
            .iter_mut()
            .find(|s| s.spell_id == spell.spell_id)
        {
            Some(existing) => *existing = spell,
            None => view.spells.push(spell),
        }
    }
}

impl Spell {
    /// Whether the spell covers `day`.
    pub(crate) fn covers(&self, day: Date) -> bool {
        self.start_date <= day && self.end_date.is_none_or(|e| e >= day)
    }
}

impl PersonView {
    /// The view of a person no event has been applied to yet: the sex and birth date their
    /// PIN states.
    pub(crate) fn new(pin: Pin) -> PersonView {
        PersonView {
            sex: Some(pin.sex()),
            birth_date: Some(pin.birth_date()),
            pin,
            name: None,
            pin_history: Vec::new(),
            returnee: None,
            consent: None,
            consented_to: Vec::new(),
            registration: None,
            profiling: None,
            referrals: Vec::new(),
            enrolments: Vec::new(),
            spells: Vec::new(),
            status_history: Vec::new(),
            events: Vec::new(),
            received_data_withheld: false,
        }
    }

    pub(crate) fn return_date(&self) -> Option<Date> {
        self.returnee.as_ref()?.return_date
    }

    /// The spell that covers `day`, preferring the one that started last.
    pub(crate) fn spell_at(&self, day: Date) -> Option<&Spell> {
        self.spells
            .iter()
            .filter(|s| s.covers(day))
            .max_by_key(|s| s.start_date)
    }

    /// The last labour-force status observed on or before `day`.
    pub(crate) fn status_at(&self, day: Date) -> Option<LabourForceStatus> {
        self.status_history
            .iter()
            .filter(|s| s.date <= day)
            .max_by_key(|s| s.date)
            .map(|s| s.status)
    }

    /// The first spell start on or after the return (or the first at all without a return).
    pub(crate) fn first_employment(&self, formal_only: bool) -> Option<Date> {
        self.spells_since_return()
            .filter(|s| !formal_only || s.formality == Formality::Formal)
            .map(|s| s.start_date)
            .min()
    }

    /// The spells that started on or after the return (all, when the return is unknown).
    fn spells_since_return(&self) -> impl Iterator<Item = &Spell> {
        let ret = self.return_date();
        self.spells
            .iter()
            .filter(move |s| ret.is_none_or(|r| s.start_date >= r))
    }

    /// Whether this node sees any employment information about the person dated by `day`: an
    /// employment-status event (registration, job, status) that consent let it hold.
    pub(crate) fn has_employment_information(&self, day: Date) -> bool {
        self.events
            .iter()
            .any(|e| e.event_type == EventType::EmploymentStatus && e.event_date <= day)
    }

    /// When the employment service profiled the person.
    pub(crate) fn profiling_date(&self) -> Option<Date> {
        self.profiling.as_ref().map(|p| p.date)
    }

    /// The person's referrals to vacancies: the date and the vacancy's id.
    pub(crate) fn vacancy_referrals(&self) -> impl Iterator<Item = (Date, &str)> {
        self.referrals
            .iter()
            .filter_map(|r| Some((r.date, r.vacancy_id.as_deref()?)))
    }

    /// The first placement since return: the earliest spell that fills a vacancy.
    pub(crate) fn first_placement(&self) -> Option<&Spell> {
        self.spells_since_return()
            .filter(|s| s.vacancy_id.is_some())
            .min_by_key(|s| s.start_date)
    }

    pub(crate) fn registration_date(&self) -> Option<Date> {
        self.registration.as_ref().map(|r| r.date)
    }

    /// Facts at `as_of`: stage on the pathway, current status, durations from return.
    pub(crate) fn derive(&self, as_of: Date) -> Derived {
        let ret = self.return_date();
        let days_from_return = |d: Option<Date>| Some((d? - ret?).whole_days());
        let first = self.first_employment(false).filter(|d| *d <= as_of);
        let first_formal = self.first_employment(true).filter(|d| *d <= as_of);
        let six_months = ret.and_then(|r| days_after(r, SIX_MONTHS_DAYS));
        let employed_at_six = six_months
            .filter(|d| *d <= as_of)
            .map(|d| self.spell_at(d).is_some());
        let current = self.spell_at(as_of);
        let by = |d: Option<Date>| d.is_some_and(|d| d <= as_of);
        let trained = self.enrolments.iter().any(|e| by(e.completed_on));
        let in_training = self
            .enrolments
            .iter()
            .any(|e| by(e.start) && !by(e.end) && !by(e.completed_on));
        let profiled = by(self.profiling_date());
        let registered = by(self.registration_date());
        let stage = match current {
            Some(_) if employed_at_six == Some(true) => Stage::Sustained,
            Some(s) if s.formality == Formality::Formal => Stage::EmployedFormally,
            Some(_) => Stage::Employed,
            None if trained => Stage::Trained,
            None if in_training => Stage::InTraining,
            None if profiled => Stage::Profiled,
            None if registered => Stage::Registered,
            None if ret.is_some() => Stage::Returned,
            None => Stage::Unknown,
        };
        let labour_force_status = match current {
            Some(_) => Some(LabourForceStatus::Employed),
            None => self
                .status_at(as_of)
                .filter(|s| *s != LabourForceStatus::Employed)
                .or_else(|| registered.then_some(LabourForceStatus::Unemployed)),
        };
        Derived {
            as_of,
            stage,
            labour_force_status,
            days_to_registration: days_from_return(
                self.registration_date().filter(|d| *d <= as_of),
            ),
            days_to_first_employment: days_from_return(first),
            days_to_first_formal_employment: days_from_return(first_formal),
            employed_six_months_after_return: employed_at_six,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_callers_date_is_read_only_as_yyyy_mm_dd() {
        // Found by fuzz/fuzz_targets/xroad_face.rs: `asOf=2026-103` was read as 13 April.
        assert_eq!(
            date("2026-11-30").map(|d| d.to_string()),
            Some("2026-11-30".into())
        );
        for other in [
            "2026-103",
            "2026-W48-1",
            "20261130",
            "+002026-11-30",
            "+2026-11-30",
            "2026-11-30 ",
        ] {
            assert_eq!(date(other), None, "{other}");
        }
    }
    use serde_json::json;

    fn ev(t: EventType, source: &str, data: Value) -> Event {
        Event::new(
            format!("central-server/GOV/{source}").parse().unwrap(),
            t,
            1,
            data,
        )
    }

    fn pathway() -> Vec<Event> {
        let pin = "21503199012345";
        let ret = ev(
            EventType::ReturneeRecord,
            "1/migration",
            json!({"event": "RETURN_REGISTERED", "eventDate": "2024-01-10",
            "person": {"pin": pin}, "return": {"date": "2024-01-05", "source": "BORDER_RECORD"}, "region": "KG-O",
            "staysAbroad": [{"country": "KZ", "from": "2020-01-01", "to": "2021-01-01"}, {"country": "RU", "from": "2021-02-01"}],
            "educationLevel": 3}),
        );
        let corrected = ev(
            EventType::ReturneeRecord,
            "1/migration",
            json!({"event": "RECORD_CORRECTED", "eventDate": "2024-01-12",
            "supersedes": ret.id.to_string(), "person": {"pin": pin}, "return": {"date": "2024-01-03", "source": "BORDER_RECORD"}, "region": "KG-B"}),
        );
        vec![
            ret,
            corrected,
            ev(
                EventType::EmploymentStatus,
                "2/employment",
                json!({"event": "JOBSEEKER_REGISTERED", "eventDate": "2024-02-01",
                "person": {"pin": pin}, "labourForceStatus": "UNEMPLOYED", "registration": {"office": "O1", "region": "KG-B", "date": "2024-02-01"}}),
            ),
            ev(
                EventType::TrainingEnrolment,
                "3/education",
                json!({"event": "ENROLLED", "eventDate": "2024-02-10",
                "person": {"pin": pin}, "enrolmentId": "E1", "dates": {"start": "2024-02-10"}}),
            ),
            ev(
                EventType::TrainingEnrolment,
                "3/education",
                json!({"event": "COMPLETED", "eventDate": "2024-04-10",
                "person": {"pin": pin}, "enrolmentId": "E1", "dates": {"start": "2024-02-10", "end": "2024-04-10"}}),
            ),
            ev(
                EventType::EmploymentStatus,
                "2/employment",
                json!({"event": "EMPLOYMENT_STARTED", "eventDate": "2024-05-01",
                "person": {"pin": pin}, "labourForceStatus": "EMPLOYED", "job": {"spellId": "S1", "startDate": "2024-05-01",
                "icse18": "41", "formality": "FORMAL", "contractDuration": "PERMANENT", "isco08": "7112"}}),
            ),
        ]
    }

    fn the_pin() -> Pin {
        "21503199012345".parse().unwrap()
    }

    fn stored(events: &[Event], order: &[usize]) -> Vec<Stored> {
        order
            .iter()
            .enumerate()
            .map(|(pos, &i)| Stored {
                position: pos as u64 + 1,
                event: std::sync::Arc::new(events[i].clone()),
            })
            .collect()
    }

    #[test]
    fn the_pathway_is_assembled_with_corrections_applied() {
        let events = pathway();
        let v = project(&the_pin(), &stored(&events, &[0, 1, 2, 3, 4, 5]));
        let r = v.returnee.as_ref().unwrap();
        assert_eq!(r.return_date, date("2024-01-03"));
        assert_eq!(r.region.as_deref(), Some("KG-B"));
        assert_eq!(
            r.destination_country, None,
            "the correction superseded the record with the stays"
        );
        assert!(v.events[0].superseded);
        assert_eq!(v.enrolments[0].status, TrainingEvent::Completed);
        assert_eq!(v.sex, Some(Sex::Male));
        let d = v.derive(date("2024-12-31").unwrap());
        assert_eq!(d.stage, Stage::Sustained);
        assert_eq!(d.days_to_registration, Some(29));
        assert_eq!(d.days_to_first_employment, Some(119));
        assert_eq!(d.days_to_first_formal_employment, Some(119));
        assert_eq!(d.employed_six_months_after_return, Some(true));
        let early = v.derive(date("2024-03-01").unwrap());
        assert_eq!(early.stage, Stage::InTraining);
        assert_eq!(early.days_to_first_employment, None);
        assert_eq!(early.employed_six_months_after_return, None);
    }

    #[test]
    fn a_correction_by_another_member_or_of_another_type_is_ignored() {
        let events = pathway();
        let pin = "21503199012345";
        let record = &events[0];
        // The employment service "corrects" the migration agency's record: ignored.
        let foreign = ev(
            EventType::EmploymentStatus,
            "2/employment",
            json!({"event": "RECORD_CORRECTED", "eventDate": "2024-01-11", "supersedes": record.id.to_string(),
            "person": {"pin": pin}, "labourForceStatus": "UNEMPLOYED"}),
        );
        // The migration agency's own correction, but of an employment event's id: ignored.
        let other_type = ev(
            EventType::ReturneeRecord,
            "1/migration",
            json!({"event": "RECORD_CORRECTED", "eventDate": "2024-03-01", "supersedes": events[2].id.to_string(),
            "person": {"pin": pin}, "return": {"date": "2024-01-05", "source": "BORDER_RECORD"}, "region": "KG-O"}),
        );
        let v = project(
            &the_pin(),
            &stored(
                &[record.clone(), foreign, events[2].clone(), other_type],
                &[0, 1, 2, 3],
            ),
        );
        assert!(
            v.events.iter().all(|e| !e.superseded),
            "nothing is superseded: {:?}",
            v.events
        );
        assert!(
            v.registration_date().is_some(),
            "the jobseeker registration stands"
        );
    }

    #[test]
    fn extending_in_order_equals_projecting_everything() {
        let events = pathway();
        let all = stored(&events, &[0, 1, 2, 3, 4, 5]);
        let reference = project(&the_pin(), &all);
        // The correction (event 1) forces a full projection; after it, the rest extend.
        let upto_correction = project(&the_pin(), &all[..2]);
        assert!(!extend(&mut project(&the_pin(), &all[..1]), &all[1..2]));
        let mut extended = upto_correction;
        assert!(extend(&mut extended, &all[2..]), "in-order events extend");
        assert_eq!(extended, reference);
        // An event dated before what the view holds does not extend.
        let late = stored(&events, &[0, 1, 5, 2]);
        let view = project(&the_pin(), &late[..3]);
        let mut extended = view.clone();
        assert!(!extend(&mut extended, &late[3..]));
        assert_eq!(extended, view, "left unchanged");
    }

    #[test]
    fn any_arrival_order_gives_the_same_view() {
        let events = pathway();
        let reference = project(&the_pin(), &stored(&events, &[0, 1, 2, 3, 4, 5]));
        for order in [[5, 4, 3, 2, 1, 0], [1, 0, 3, 5, 2, 4], [2, 5, 0, 4, 1, 3]] {
            let mut v = project(&the_pin(), &stored(&events, &order));
            // Positions differ with arrival; everything else must not.
            for e in v.events.iter_mut() {
                e.position = 0;
            }
            let mut r = reference.clone();
            for e in r.events.iter_mut() {
                e.position = 0;
            }
            assert_eq!(v, r, "order {order:?}");
        }
    }

    /// Views the code before the typed view stored read back and write back as they were
    /// stored, the typed projection builds them alike from the same events, and `derive` says
    /// what it said then.
    #[test]
    fn views_stored_before_typing_read_back_and_are_projected_alike() {
        let fixture: Vec<Value> = serde_json::from_str(include_str!(
            "../../tests/fixtures/views-before-typing.json"
        ))
        .unwrap();
        assert_eq!(fixture.len(), 4);
        for person in fixture {
            let held: PersonView = serde_json::from_value(person["view"].clone()).unwrap();
            assert_eq!(serde_json::to_value(&held).unwrap(), person["view"]);
            let events: Vec<Event> = serde_json::from_value(person["events"].clone()).unwrap();
            let all: Vec<usize> = (0..events.len()).collect();
            assert_eq!(project(&held.pin, &stored(&events, &all)), held);
            let then = person["derived"].as_array().unwrap();
            for (as_of, then) in ["2024-06-30", "2025-12-31"].into_iter().zip(then) {
                let now = held.derive(date(as_of).unwrap());
                assert_eq!(&serde_json::to_value(now).unwrap(), then, "{as_of}");
            }
        }
    }
}
