//! A synthetic population of returnees whose pathways follow the seed paper's figures, with the
//! events each agency would publish and the ground truth they encode.
//!
//! Deterministic for a seed. Each person is a plain record of facts (return, consent,
//! registration, training, job spells); [`Population::events`] turns the facts into the events
//! of each agency, in the three phases a live system goes through (returns and consents; the
//! pathway; corrections and withdrawals). The ground truth is computed from the facts alone,
//! never from the node's views, so comparing the two checks the whole exchange.
//!
//! Visibility follows consent, as the exchange does: a person who did not consent to the
//! employment service has no employment-service events; one who did not consent to the
//! education ministry has no training events. Everyone consents to the migration agency.
//!
//! Why one long file: the facts, the events made from them and the ground truth must change
//! together, and splitting them would let one drift from the others.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use time::{Date, Duration, Month};

use jol::event::schema::EventType;

pub use crate::federation::{EDUCATION, EMPLOYMENT, MIGRATION};

/// How a training ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Certified,
    DroppedOut,
}

/// A training enrolment.
#[derive(Debug, Clone)]
pub struct Training {
    pub id: String,
    pub start: Date,
    pub end: Date,
    pub outcome: Outcome,
}

/// A job spell.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub start: Date,
    pub end: Option<Date>,
    pub icse18: &'static str,
    pub formality: &'static str,
    pub contract: &'static str,
    pub after_training: Option<String>,
    /// The vacancy the job fills (a placement).
    pub vacancy: Option<String>,
}

/// A referral to a vacancy.
#[derive(Debug, Clone)]
pub struct Referral {
    pub date: Date,
    pub vacancy: String,
}

/// One returnee's facts.
#[derive(Debug, Clone)]
pub struct Person {
    pub pin: String,
    pub male: bool,
    pub birth: Date,
    pub returned: Date,
    /// The region as first recorded, and as corrected (when a correction follows).
    pub region_recorded: &'static str,
    pub region: &'static str,
    pub country: &'static str,
    pub education: u8,
    pub consent_employment: bool,
    pub consent_education: bool,
    pub withdraws: bool,
    pub registered: Option<Date>,
    pub inactive_from: Option<Date>,
    pub training: Option<Training>,
    pub jobs: Vec<Job>,
    pub referral: Option<Referral>,
}

/// An event an agency publishes. `corrects` names the person whose returnee record this
/// corrects; the caller fills `data.supersedes` with that record's event id.
#[derive(Debug, Clone)]
pub struct Planned {
    pub agency: &'static str,
    pub event_type: EventType,
    pub data: Value,
    pub corrects: Option<String>,
}

/// The population and its three publishing phases.
pub struct Population {
    pub persons: Vec<Person>,
}

pub(crate) fn pick<T: Copy>(rng: &mut StdRng, weighted: &[(T, u32)]) -> T {
    let total: u32 = weighted.iter().map(|(_, w)| w).sum();
    let mut x = rng.random_range(0..total);
    for (v, w) in weighted {
        if x < *w {
            return *v;
        }
        x -= w;
    }
    weighted[0].0
}

fn days(d: i64) -> Duration {
    Duration::days(d)
}

fn day(y: i32, m: u8, d: u8) -> Date {
    Date::from_calendar_date(y, Month::try_from(m).unwrap_or(Month::January), d)
        .unwrap_or(Date::MIN)
}

/// Regions of return and their weights (the migration agency's shares).
pub(crate) const REGIONS: [(&str, u32); 9] = [
    ("KG-O", 25),
    ("KG-C", 18),
    ("KG-B", 14),
    ("KG-J", 12),
    ("KG-GB", 10),
    ("KG-GO", 7),
    ("KG-N", 5),
    ("KG-T", 5),
    ("KG-Y", 4),
];
const COUNTRIES: [(&str, u32); 8] = [
    ("RU", 70),
    ("KZ", 15),
    ("TR", 6),
    ("KR", 5),
    ("DE", 1),
    ("AE", 1),
    ("US", 1),
    ("GB", 1),
];

impl GroundTruth {
    /// Table 1's cells in table order (as `Structure::cells`).
    pub fn structure_cells(&self) -> [u64; 7] {
        [
            self.formal,
            self.informal,
            self.seasonal_temporary,
            self.self_employed,
            self.unemployed,
            self.inactive,
            self.unknown,
        ]
    }

    /// Table 2's cells in table order (as `TimeToEmployment::cells`).
    pub fn time_cells(&self) -> [u64; 6] {
        [
            self.under_3_months,
            self.months_3_to_6,
            self.months_6_to_12,
            self.over_12_months,
            self.not_yet_employed,
            self.unknown_time,
        ]
    }
}

impl Person {
    /// Whether the employment service published anything about the person dated by `day`
    /// (registration, a job, a status observation): what makes the person's employment
    /// situation known to the exchange.
    pub fn has_employment_information(&self, day: Date) -> bool {
        self.registered.is_some_and(|r| r <= day)
            || self.jobs.iter().any(|j| j.start <= day)
            || self.inactive_from.is_some_and(|d| d <= day)
    }
}

impl Population {
    /// `n` persons returning over 2022–2024, reproducible from `seed`.
    pub fn generate(n: usize, seed: u64) -> Population {
        let mut rng = StdRng::seed_from_u64(seed);
        let first = day(2022, 1, 1);
        let span = (day(2024, 12, 31) - first).whole_days();
        let mut persons = Vec::with_capacity(n);
        for i in 0..n {
            let returned = first + days(rng.random_range(0..=span));
            let male = rng.random_bool(0.62);
            let age = rng.random_range(20..=55);
            // Persons 100,000 apart share the PIN's serial digits: their birth days differ, so
            // their PINs do too (up to 2.8 million persons).
            let month = rng.random_range(1..=12);
            let drawn_day: u8 = rng.random_range(0..28);
            let birth = day(
                returned.year() - age,
                month,
                1 + (drawn_day + ((i / 100_000) % 28) as u8) % 28,
            );
            let pin = format!(
                "{}{:02}{:02}{}{:05}",
                if male { 2 } else { 1 },
                birth.day(),
                birth.month() as u8,
                birth.year(),
                i % 100_000
            );
            let region = pick(&mut rng, &REGIONS);
            let corrected = rng.random_bool(0.05);
            let region_recorded = if corrected {
                pick(&mut rng, &REGIONS)
            } else {
                region
            };
            let consent = pick(
                &mut rng,
                &[((true, true), 90), ((true, false), 7), ((false, false), 3)],
            );
            let mut p = Person {
                pin,
                male,
                birth,
                returned,
                region_recorded,
                region,
                country: pick(&mut rng, &COUNTRIES),
                education: pick(&mut rng, &[(2u8, 15), (3, 55), (4, 15), (6, 15)]),
                consent_employment: consent.0,
                consent_education: consent.1,
                withdraws: rng.random_bool(0.04),
                registered: None,
                inactive_from: None,
                training: None,
                jobs: Vec::new(),
                referral: None,
            };
            if p.consent_employment {
                plan_pathway(&mut rng, &mut p, i);
                plan_referral(&mut p, seed, i);
            }
            persons.push(p);
        }
        Population { persons }
    }

    /// Phase 1: the migration agency registers every return with the person's consent.
    /// Phase 2: the employment service and the education ministry record the pathway.
    /// Phase 3: corrections and withdrawals of consent.
    pub fn events(&self) -> [Vec<Planned>; 3] {
        let mut phases: [Vec<Planned>; 3] = Default::default();
        for p in &self.persons {
            phases[0].push(returnee_record(p));
            phases[1].extend(pathway_events(p));
            if p.region_recorded != p.region {
                // A correction restates the whole record: it replaces the one it supersedes.
                let mut correction = returnee_record(p);
                correction.data["event"] = "RECORD_CORRECTED".into();
                correction.data["eventDate"] = (p.returned + days(20)).to_string().into();
                correction.data["region"] = p.region.into();
                correction.corrects = Some(p.pin.clone());
                phases[2].push(correction);
            }
            if p.withdraws {
                phases[2].push(Planned {
                    agency: "migration",
                    event_type: EventType::ReturneeRecord,
                    data: json!({"event": "CONSENT_WITHDRAWN", "eventDate": "2025-06-01", "purpose": "REINTEGRATION_CASE_MANAGEMENT",
                        "legalBasis": "Law on Personal Information, art. 9", "person": {"pin": p.pin},
                        "consent": {"granted": false, "purposes": [], "recipients": [], "time": "2025-06-01T10:00:00Z", "method": "ONLINE_PORTAL"}}),
                    corrects: None,
                });
            }
        }
        phases
    }
}

const LEGAL_MIGRATION: &str = "Law of the Kyrgyz Republic on External Migration, art. 20; consent";
const LEGAL_EMPLOYMENT: &str = "Law of the Kyrgyz Republic on Employment Promotion, art. 12";
const LEGAL_EDUCATION: &str = "Law of the Kyrgyz Republic on Education, art. 31";

/// Draw a pathway in the shape of the seed's tables (time to first job; job types).
fn plan_pathway(rng: &mut StdRng, p: &mut Person, i: usize) {
    let ret = p.returned;
    if rng.random_bool(0.85) {
        let within = rng.random_bool(0.8);
        p.registered = Some(
            ret + days(if within {
                rng.random_range(3..=90)
            } else {
                rng.random_range(91..=200)
            }),
        );
    }
    // Table 2: < 3 months 27.5%, 3–6 32.5%, 6–12 22.5%, > 12 12.5%, never 5%.
    let bucket = pick(rng, &[(0, 275), (1, 325), (2, 225), (3, 125), (4, 50)]);
    let first_job = match bucket {
        0 => Some(rng.random_range(10..=90)),
        1 => Some(rng.random_range(91..=182)),
        2 => Some(rng.random_range(183..=364)),
        3 => Some(rng.random_range(365..=600)),
        _ => None,
    }
    .map(|d| ret + days(d));
    // Retraining: mostly those whose first job comes in months 6–12 (shortly after the course),
    // some who find work only much later or not at all.
    let trains = p.consent_education
        && match bucket {
            2 => rng.random_bool(0.6),
            3 => rng.random_bool(0.3),
            4 => rng.random_bool(0.3),
            _ => false,
        };
    if trains {
        let end = match first_job {
            Some(job) if bucket == 2 => job - days(rng.random_range(15..=60)),
            _ => ret + days(rng.random_range(120..=170)),
        };
        let start = end - days(rng.random_range(60..=90));
        let outcome = if rng.random_bool(0.5) {
            Outcome::Certified
        } else {
            Outcome::Completed
        };
        p.training = Some(Training {
            id: format!("EDU-{i}"),
            start,
            end,
            outcome,
        });
    } else if p.consent_education && rng.random_bool(0.08) {
        let start = ret + days(rng.random_range(20..=60));
        p.training = Some(Training {
            id: format!("EDU-{i}"),
            start,
            end: start + days(rng.random_range(10..=40)),
            outcome: Outcome::DroppedOut,
        });
    }
    match first_job {
        Some(start) => {
            // Table 1 shares among the employed: formal 17.5, informal 42.5, seasonal 22.5,
            // self-employed 7.5 (parts of the informal and formal totals of the seed).
            let kind = pick(rng, &[(0, 175), (1, 425), (2, 225), (3, 75)]);
            let (icse18, formality, contract) = match kind {
                0 => ("41", "FORMAL", "PERMANENT"),
                1 => ("41", "INFORMAL", "NONE"),
                2 => (
                    if rng.random_bool(0.5) { "43" } else { "42" },
                    if rng.random_bool(0.2) {
                        "FORMAL"
                    } else {
                        "INFORMAL"
                    },
                    "SEASONAL",
                ),
                _ => (
                    "22",
                    if rng.random_bool(0.3) {
                        "FORMAL"
                    } else {
                        "INFORMAL"
                    },
                    "NONE",
                ),
            };
            let end = (kind == 2).then(|| start + days(rng.random_range(60..=150)));
            let after_training = p
                .training
                .as_ref()
                .filter(|t| t.outcome != Outcome::DroppedOut)
                .map(|t| t.id.clone());
            p.jobs.push(Job {
                id: format!("JOB-{i}-1"),
                start,
                end,
                icse18,
                formality,
                contract,
                after_training,
                vacancy: None,
            });
        }
        None if rng.random_bool(0.3) => {
            // Observed outside the labour force after any registration, so that is the latest
            // status six months after return.
            p.registered = p.registered.map(|r| r.min(ret + days(90)));
            p.inactive_from = Some(ret + days(100));
        }
        None => {}
    }
}

/// Referrals to vacancies and the placements that follow, drawn apart from the pathway (their
/// own generator per person) so that the seed paper's figures are unchanged: about half of the
/// profiled persons whose first job comes at least two weeks after profiling were referred to a
/// vacancy before it, and seven in ten of those took the vacancy they were referred to; some
/// others were referred and not placed.
fn plan_referral(p: &mut Person, seed: u64, i: usize) {
    let Some(profiled) = p.registered.map(|r| r + days(PROFILED_AFTER_DAYS)) else {
        return;
    };
    let mut rng = StdRng::seed_from_u64(seed ^ 0x00FE_44A1 ^ (i as u64).wrapping_mul(0x9E37_79B9));
    let vacancy = format!("VAC-H{i:06}");
    match p.jobs.first_mut() {
        Some(job) if (job.start - profiled).whole_days() >= 14 && rng.random_bool(0.5) => {
            let lead = rng.random_range(5..=(job.start - profiled).whole_days().min(60));
            p.referral = Some(Referral {
                date: job.start - days(lead),
                vacancy: vacancy.clone(),
            });
            if rng.random_bool(0.7) {
                job.vacancy = Some(vacancy);
            }
        }
        None if p.inactive_from.is_none() && rng.random_bool(0.3) => {
            p.referral = Some(Referral {
                date: profiled + days(rng.random_range(14..=60)),
                vacancy,
            });
        }
        _ => {}
    }
}

/// Days from registration to profiling.
const PROFILED_AFTER_DAYS: i64 = 7;

/// The migration agency's record of a person's return, with their consent.
pub fn returnee_record(p: &Person) -> Planned {
    let mut recipients = vec![MIGRATION];
    let mut purposes = vec!["REINTEGRATION_CASE_MANAGEMENT"];
    if p.consent_employment {
        recipients.push(EMPLOYMENT);
        purposes.push("EMPLOYMENT_SERVICES");
    }
    if p.consent_education {
        recipients.push(EDUCATION);
        purposes.push("TRAINING_SERVICES");
    }
    let abroad_from = p.returned - days(365 * 2);
    let work = work_abroad(&p.pin);
    Planned {
        agency: "migration",
        event_type: EventType::ReturneeRecord,
        data: json!({
            "event": "RETURN_REGISTERED", "eventDate": (p.returned + days(2)).to_string(),
            "purpose": "REINTEGRATION_CASE_MANAGEMENT", "legalBasis": LEGAL_MIGRATION,
            "person": {"pin": p.pin, "sex": if p.male { "M" } else { "F" }, "birthDate": p.birth.to_string()},
            "return": {"date": p.returned.to_string(), "source": "BORDER_RECORD"},
            "staysAbroad": [{"country": p.country, "from": abroad_from.to_string(), "to": (p.returned - days(1)).to_string()}],
            "monthsAbroad": 24, "educationLevel": p.education, "region": p.region_recorded,
            "preferredLanguage": "ky", "intendsToRemigrate": "UNDECIDED",
            "occupationAbroad": work["occupation"], "skillsAcquired": work["skills"],
            "consent": {"granted": true, "purposes": purposes, "recipients": recipients,
                "time": format!("{}T09:00:00Z", p.returned + days(2)), "method": "WRITTEN_SIGNED"}
        }),
        corrects: None,
    }
}

/// The occupation a person held abroad: one of the shipped ESCO subset, drawn from the PIN (so
/// the same person always gets the same, and the seed paper's figures are untouched), with the
/// person's true skills split into those the returnee record shows and the latent ones (held but
/// not declared, or only learnt by training: a training course teaches them).
struct Abroad {
    occupation: &'static jol::matching::esco::Occupation,
    shown: Vec<&'static String>,
    latent: Vec<&'static String>,
}

fn abroad(pin: &str) -> Abroad {
    let lists = jol::matching::esco::CodeLists::get();
    let h = pin
        .bytes()
        .fold(17u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let occupation = &lists.occupations[(h % lists.occupations.len() as u64) as usize];
    let (shown, latent) = occupation
        .essential_skills
        .iter()
        .chain(&occupation.optional_skills)
        .enumerate()
        .partition::<Vec<_>, _>(|(i, _)| (h >> (8 + i)) & 3 != 0);
    let uris = |v: Vec<(usize, &'static String)>| v.into_iter().map(|(_, s)| s).collect();
    Abroad {
        occupation,
        shown: uris(shown),
        latent: uris(latent),
    }
}

/// The returnee record's `occupationAbroad` and `skillsAcquired` (the shown skills).
fn work_abroad(pin: &str) -> Value {
    let lists = jol::matching::esco::CodeLists::get();
    let a = abroad(pin);
    let skills: Vec<Value> = a
        .shown
        .iter()
        .map(|uri| {
            let label = lists.skill(uri).cloned().unwrap_or_default();
            json!({"esco": uri, "label": label, "evidence": "SELF_DECLARED"})
        })
        .collect();
    json!({"occupation": {"isco08": a.occupation.isco08, "esco": a.occupation.uri}, "skills": skills})
}

/// The course a person is trained in: their occupation's, teaching its essential skills they did
/// not show (all of them when none is latent).
fn course_json(pin: &str) -> Value {
    let a = abroad(pin);
    let essential = &a.occupation.essential_skills;
    let latent: Vec<&String> = essential.iter().filter(|s| a.latent.contains(s)).collect();
    let taught: Vec<&String> = if latent.is_empty() {
        essential.iter().collect()
    } else {
        latent
    };
    json!({"code": format!("VET-{}", a.occupation.isco08), "title": a.occupation.label, "iscedField": "0732",
        "targetIsco08": a.occupation.isco08, "skills": taught, "hours": 120, "mode": "BLENDED", "funding": "STATE_BUDGET"})
}

fn employment(p: &Person, event: &str, date: Date, status: &str, extra: Value) -> Planned {
    let mut data = json!({"event": event, "eventDate": date.to_string(), "purpose": "EMPLOYMENT_SERVICES",
        "legalBasis": LEGAL_EMPLOYMENT, "person": {"pin": p.pin}, "labourForceStatus": status});
    if let (Some(d), Some(e)) = (data.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    Planned {
        agency: "employment",
        event_type: EventType::EmploymentStatus,
        data,
        corrects: None,
    }
}

fn training(p: &Person, event: &str, date: Date, extra: Value) -> Planned {
    let mut data = json!({"event": event, "eventDate": date.to_string(), "purpose": "TRAINING_SERVICES",
        "legalBasis": LEGAL_EDUCATION, "person": {"pin": p.pin}});
    if let (Some(d), Some(e)) = (data.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    Planned {
        agency: "education",
        event_type: EventType::TrainingEnrolment,
        data,
        corrects: None,
    }
}

fn job_json(j: &Job, p: &Person, with_end: bool) -> Value {
    let isco08 = &abroad(&p.pin).occupation.isco08;
    let mut job = json!({"spellId": j.id, "startDate": j.start.to_string(), "icse18": j.icse18, "formality": j.formality,
        "contractDuration": j.contract, "isco08": isco08, "isic": "4100", "region": p.region});
    if let Some(v) = &j.vacancy {
        job["vacancyId"] = v.as_str().into();
    }
    if j.formality == "FORMAL" {
        job["formalityEvidence"] = (if j.icse18 == "22" {
            "PATENT"
        } else {
            "SOCIAL_FUND_CONTRIBUTIONS"
        })
        .into();
    }
    if let Some(t) = &j.after_training {
        job["trainingEnrolmentId"] = t.as_str().into();
    }
    if with_end {
        if let Some(e) = j.end {
            job["endDate"] = e.to_string().into();
            job["endReason"] = "SEASON_END".into();
        }
    }
    job
}

fn pathway_events(p: &Person) -> Vec<Planned> {
    let mut out = Vec::new();
    if let Some(r) = p.registered {
        out.push(employment(
            p,
            "JOBSEEKER_REGISTERED",
            r,
            "UNEMPLOYED",
            json!({"registration": {"office": "ES-01", "region": p.region, "date": r.to_string()}}),
        ));
        let profiled = r + days(PROFILED_AFTER_DAYS);
        out.push(employment(
            p,
            "PROFILED",
            profiled,
            "UNEMPLOYED",
            json!({"profiling": {"segment": "B_SUPPORT", "date": profiled.to_string()}}),
        ));
    }
    if let Some(referral) = &p.referral {
        out.push(employment(
            p,
            "REFERRED_TO_VACANCY",
            referral.date,
            "UNEMPLOYED",
            json!({"referral": {"vacancyId": referral.vacancy, "date": referral.date.to_string()}}),
        ));
    }
    if let Some(t) = &p.training {
        let course = course_json(&p.pin);
        if let Some(r) = p.registered.filter(|r| *r <= t.start) {
            out.push(employment(p, "REFERRED_TO_TRAINING", r.max(t.start - days(5)), "UNEMPLOYED", json!({"referral": {"courseCode": course["code"], "date": (t.start - days(5)).max(r).to_string()}})));
        }
        out.push(training(p, "ENROLLED", t.start, json!({"enrolmentId": t.id,
            "provider": {"id": "LYCEUM-7", "name": {"ru": "Профессиональный лицей №7"}, "region": p.region},
            "course": course,
            "dates": {"start": t.start.to_string()}})));
        let ended = if t.outcome == Outcome::DroppedOut {
            "DROPPED_OUT"
        } else {
            "COMPLETED"
        };
        out.push(training(p, ended, t.end, json!({"enrolmentId": t.id, "dates": {"start": t.start.to_string(), "end": t.end.to_string()}})));
        if t.outcome == Outcome::Certified {
            out.push(training(p, "CERTIFIED", t.end + days(3), json!({"enrolmentId": t.id, "credential": {"type": "MICRO_CREDENTIAL",
                "title": course["title"], "awardingBody": {"ru": "Министерство образования"}, "issueDate": (t.end + days(3)).to_string()}})));
        }
    }
    for j in &p.jobs {
        out.push(employment(
            p,
            "EMPLOYMENT_STARTED",
            j.start,
            "EMPLOYED",
            json!({"job": job_json(j, p, false)}),
        ));
        if let Some(e) = j.end {
            out.push(employment(
                p,
                "EMPLOYMENT_ENDED",
                e,
                "UNEMPLOYED",
                json!({"job": job_json(j, p, true)}),
            ));
        }
    }
    if let Some(d) = p.inactive_from {
        out.push(employment(
            p,
            "STATUS_OBSERVED",
            d,
            "OUTSIDE_LABOUR_FORCE",
            json!({}),
        ));
    }
    out
}

/// The ground truth of the seed's two tables at `as_of`, from the facts alone: employment
/// structure at return + 183 days and time to first employment, over all returnees.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroundTruth {
    pub persons: u64,
    pub formal: u64,
    pub informal: u64,
    pub seasonal_temporary: u64,
    pub self_employed: u64,
    pub unemployed: u64,
    pub inactive: u64,
    /// No employment information (no registration, job or status observation) by the date.
    pub unknown: u64,
    pub under_3_months: u64,
    pub months_3_to_6: u64,
    pub months_6_to_12: u64,
    pub over_12_months: u64,
    pub not_yet_employed: u64,
    pub unknown_time: u64,
    /// Persons whose referral to a vacancy is 90 days old, and those of them placed in it.
    pub referred: u64,
    pub placed_after_referral: u64,
    /// Persons placed in a vacancy, and those of them in a formal job.
    pub placed: u64,
    pub placed_formally: u64,
}

impl GroundTruth {
    /// The pathway's referral and placement counts for one person.
    fn count_placements(&mut self, p: &Person, as_of: Date) {
        let window = days(jol::registry::kpi::PLACEMENT_DAYS);
        if let Some(r) = p.referral.as_ref().filter(|r| r.date + window <= as_of) {
            self.referred += 1;
            let took_it = p.jobs.iter().any(|j| {
                j.vacancy.as_ref() == Some(&r.vacancy)
                    && j.start >= r.date
                    && j.start <= r.date + window
            });
            self.placed_after_referral += u64::from(took_it);
        }
        if let Some(j) = p
            .jobs
            .iter()
            .find(|j| j.vacancy.is_some() && j.start <= as_of)
        {
            self.placed += 1;
            self.placed_formally += u64::from(j.formality == "FORMAL");
        }
    }
}

impl Population {
    pub fn ground_truth(&self, as_of: Date) -> GroundTruth {
        let mut g = GroundTruth::default();
        for p in self.persons.iter().filter(|p| p.returned <= as_of) {
            g.persons += 1;
            g.count_placements(p, as_of);
            let first = p.jobs.iter().map(|j| j.start).filter(|d| *d <= as_of).min();
            let known = p.has_employment_information(as_of);
            if !known {
                g.unknown_time += 1;
            }
            match first.map(|d| (d - p.returned).whole_days()) {
                _ if !known => {}
                Some(d) if d < 91 => g.under_3_months += 1,
                Some(d) if d < 183 => g.months_3_to_6 += 1,
                Some(d) if d < 365 => g.months_6_to_12 += 1,
                Some(_) => g.over_12_months += 1,
                None => g.not_yet_employed += 1,
            }
            let reference = p.returned + days(183);
            if reference > as_of {
                continue;
            }
            let job = p
                .jobs
                .iter()
                .find(|j| j.start <= reference && j.end.is_none_or(|e| e >= reference));
            match job {
                _ if !known => g.unknown += 1,
                None if p.inactive_from.is_some_and(|d| d <= reference) => g.inactive += 1,
                None => g.unemployed += 1,
                Some(j) if j.contract == "SEASONAL" || j.icse18 == "43" => {
                    g.seasonal_temporary += 1
                }
                Some(j) if j.icse18 == "22" => g.self_employed += 1,
                Some(j) if j.formality == "FORMAL" => g.formal += 1,
                Some(_) => g.informal += 1,
            }
        }
        g
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jol::event::schema::Schemas;

    #[test]
    fn every_generated_event_is_valid_and_the_population_is_reproducible() {
        let schemas = Schemas::load().unwrap();
        let pop = Population::generate(400, 7);
        for phase in pop.events() {
            for mut e in phase {
                if e.corrects.is_some() {
                    e.data["supersedes"] = "01890a5d-ac96-774b-bcce-b302099a8057".into();
                }
                if let Err(errors) = schemas.validate(e.event_type, &e.data) {
                    panic!("{} {}: {errors:?}", e.event_type, e.data);
                }
            }
        }
        let again = Population::generate(400, 7);
        assert_eq!(
            pop.persons.iter().map(|p| &p.pin).collect::<Vec<_>>(),
            again.persons.iter().map(|p| &p.pin).collect::<Vec<_>>()
        );
        let mut pins: Vec<_> = pop.persons.iter().map(|p| &p.pin).collect();
        pins.sort();
        pins.dedup();
        assert_eq!(pins.len(), 400, "PINs are unique");
        let g = pop.ground_truth(day(2026, 1, 1));
        assert_eq!(g.persons, 400);
        assert!(
            g.informal > g.formal && g.months_3_to_6 > g.over_12_months,
            "{g:?}"
        );
    }
}
