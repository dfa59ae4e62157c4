//! The reintegration KPIs (the seed paper's monitoring group), computed from the registry views.
//!
//! Conventions (EU PES / ESF practice): people are counted, not events; a cohort is
//! the returnees whose return date falls in a calendar quarter; an indicator "within N days"
//! counts only persons whose N days have elapsed by the reference date (censoring), and a cohort
//! is reported only once all of its members' windows have elapsed. Every ratio carries its
//! numerator and denominator, or, when it is left blank, why ([`Blank`]: not reportable yet,
//! or suppressed as a small cell), so a chart can show a suppressed cell as such.
//!
//! - registration coverage: registered with the employment service within 90 days of return /
//!   returnees whose consent ever named the employment service (a later withdrawal does not
//!   change the denominator);
//! - **unknown**: a person about whom this node holds no employment information (no
//!   employment-status event it may see) is not counted as unemployed: they are their own row
//!   `unknown` in tables 1 and 2 and are left out of the denominators of the employment rates
//!   below; `employmentInformation` (known / returnees) is printed beside them;
//! - employed within 6 months: first employment start within 183 days of return / returnees
//!   with employment information;
//! - in employment at +6 months: a spell covers return + 183 days / returnees with employment
//!   information (point in time);
//! - employed after retraining: employment start within 183 days after completing (COMPLETED or
//!   CERTIFIED) training / persons with employment information who completed training
//!   (dropouts excluded);
//! - time to first employment: < 91 days, 91–182, 183–364, ≥ 365, not yet employed, unknown;
//! - employment structure at return + 183 days (or a fixed date): no employment information →
//!   unknown; no spell → inactive (last status OUTSIDE_LABOUR_FORCE) or unemployed; else
//!   SEASONAL/CASUAL contract or ICSE-18 43 → seasonal/temporary; else ICSE-18 11, 12, 21, 22 →
//!   self-employed; else FORMAL → formal; else informal. Also the formality × ICSE-18 table of
//!   the employed.
//!
//! The pathway from profiling to placement (matching; a *placement* is a job that fills a
//! vacancy, `job.vacancyId`):
//! - profiled with a match: persons profiled by the reference date who have at least one open
//!   vacancy that matches ([`crate::matching::market`] says which: point in time, today's open
//!   vacancies) / persons profiled; not reported when the node holds no vacancies;
//! - referral → placement: persons placed, within 90 days of their first referral to a vacancy,
//!   in a vacancy they were referred to / persons whose first referral's 90 days have elapsed;
//! - profiling → placement: the median number of days from profiling to the first placement,
//!   over the persons placed after being profiled;
//! - formal placements: persons whose first placement is a FORMAL job / persons placed.
//!
//! Withdrawn consent: a person who withdraws stays in every KPI with what this node received
//! before the withdrawal (the figures are aggregates with small cells suppressed); nothing
//! received after it exists here to count.
//!
//! Why long: every indicator's definition and its small-cell suppression sit together, so a
//! change to one definition is made beside the others; a quarter of the file is tests.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use time::{Date, Month};

use crate::event::identifiers::{MemberId, Pin};
use crate::event::vocab::{ContractDuration, Formality, Icse18, LabourForceStatus};
use crate::registry::view::{days_after, elapsed, within, PersonView, SIX_MONTHS_DAYS};

/// Cells with fewer persons than this are suppressed in exported figures.
pub(crate) const SMALL_CELL: u64 = 5;
const REGISTRATION_DAYS: i64 = 90;
/// How long after a referral a placement counts as following from it.
pub const PLACEMENT_DAYS: i64 = 90;

/// What to compute.
#[derive(Debug, Clone)]
pub struct KpiParams {
    /// The reference date.
    pub as_of: Date,
    /// The member whose registrations count, and whose naming in a consent makes a returnee
    /// part of the registration-coverage denominator.
    pub employment_service: MemberId,
    /// Only returns on or after / on or before these dates.
    pub from: Option<Date>,
    /// See `from`.
    pub to: Option<Date>,
    /// Employment structure at this date instead of at return + 183 days.
    pub structure_at: Option<Date>,
    /// The PINs of persons with at least one matching open vacancy; `None` when the node holds
    /// no vacancies (the indicator is then not reported).
    pub with_a_match: Option<HashSet<Pin>>,
}

/// A ratio with what it is made of. `None` values: the ratio is blank, and `blank` says why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Ratio {
    /// Persons counted.
    pub numerator: Option<u64>,
    /// Persons counted over.
    pub denominator: Option<u64>,
    /// numerator / denominator.
    pub rate: Option<f64>,
    /// Why the figures are left out, when they are (absent in a report written before it was
    /// said).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blank: Option<Blank>,
}

/// Why a ratio is left blank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Blank {
    /// Its window has not elapsed for every person counted (censoring), or there is nothing to
    /// measure it against (no vacancies held).
    NotReportable,
    /// A small cell: its numerator or denominator is under [`SMALL_CELL`], or the
    /// denominator less the numerator is ([`reveals_few`]).
    Suppressed,
}

impl Ratio {
    fn of(numerator: u64, denominator: u64) -> Ratio {
        Ratio {
            numerator: Some(numerator),
            denominator: Some(denominator),
            rate: (denominator > 0).then(|| numerator as f64 / denominator as f64),
            blank: None,
        }
    }

    /// A ratio left out, for `why`.
    fn blank(why: Blank) -> Ratio {
        Ratio {
            blank: Some(why),
            ..Ratio::default()
        }
    }
}

/// Add one person to a table cell.
fn count_one(cell: &mut Option<u64>) {
    *cell = Some(cell.unwrap_or(0) + 1);
}

/// Time from return to first employment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeToEmployment {
    /// Fewer than 91 days.
    pub under_3_months: Option<u64>,
    /// 91 to 182 days.
    pub months_3_to_6: Option<u64>,
    /// 183 to 364 days.
    pub months_6_to_12: Option<u64>,
    /// 365 days or more.
    pub over_12_months: Option<u64>,
    /// No employment since return.
    pub not_yet_employed: Option<u64>,
    /// No employment information visible to this node.
    #[serde(default)]
    pub unknown: Option<u64>,
}

/// Employment structure (the seed's table 1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Structure {
    /// Employed formally.
    pub formal: Option<u64>,
    /// Employed informally.
    pub informal: Option<u64>,
    /// On a seasonal or casual contract, or short-term employees.
    pub seasonal_temporary: Option<u64>,
    /// Employers and independent workers.
    pub self_employed: Option<u64>,
    /// Without a spell, last seen unemployed.
    pub unemployed: Option<u64>,
    /// Without a spell, last seen outside the labour force.
    pub inactive: Option<u64>,
    /// No employment information visible to this node.
    #[serde(default)]
    pub unknown: Option<u64>,
}

impl Structure {
    /// A structure with every cell at zero (not suppressed).
    pub(crate) fn zero() -> Structure {
        Structure {
            formal: Some(0),
            informal: Some(0),
            seasonal_temporary: Some(0),
            self_employed: Some(0),
            unemployed: Some(0),
            inactive: Some(0),
            unknown: Some(0),
        }
    }

    /// Count one person in `category`.
    pub(crate) fn add(&mut self, category: Category) {
        let cell = match category {
            Category::Formal => &mut self.formal,
            Category::Informal => &mut self.informal,
            Category::SeasonalTemporary => &mut self.seasonal_temporary,
            Category::SelfEmployed => &mut self.self_employed,
            Category::Unemployed => &mut self.unemployed,
            Category::Inactive => &mut self.inactive,
            Category::Unknown => &mut self.unknown,
        };
        count_one(cell);
    }

    /// The seven cells in table order: formal, informal, seasonal/temporary, self-employed,
    /// unemployed, inactive, unknown.
    pub fn cells(&self) -> [Option<u64>; 7] {
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

    /// The persons in the table (suppressed cells count as none).
    pub fn total(&self) -> u64 {
        self.cells().iter().flatten().sum()
    }
}

/// All indicators for one group of persons.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Indicators {
    /// Persons in the group.
    pub persons: Option<u64>,
    /// Registered with the employment service within 90 days of return.
    pub registration_coverage: Ratio,
    /// Returnees about whom this node holds employment information / returnees: the share the
    /// employment rates are computed over.
    #[serde(default)]
    pub employment_information: Ratio,
    /// First employment within 183 days of return.
    pub employed_within_6_months: Ratio,
    /// In employment at return + 183 days.
    pub in_employment_at_6_months: Ratio,
    /// Employed within 183 days of completing training.
    pub employed_after_retraining: Ratio,
    /// Time from return to first employment (table 2).
    pub time_to_first_employment: TimeToEmployment,
    /// Employment structure (table 1).
    pub employment_structure: Structure,
    /// formality → ICSE-18 → persons employed at the structure's reference date.
    pub(crate) formality_by_icse: BTreeMap<Formality, BTreeMap<Icse18, Option<u64>>>,
    /// Persons who reached each step of the pathway by the reference date.
    pub(crate) funnel: Funnel,
    /// From profiling through matching and referral to placement.
    #[serde(default)]
    pub pathway: Pathway,
}

/// The pathway's indicators from profiling to placement (see the module's conventions).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pathway {
    /// Profiled persons with a matching open vacancy.
    pub profiled_with_a_match: Ratio,
    /// Placed within 90 days of their first referral, in a vacancy they were referred to.
    pub referral_to_placement: Ratio,
    /// Days from profiling to the first placement.
    pub profiling_to_placement: Median,
    /// First placements that are formal jobs.
    pub formal_placements: Ratio,
}

/// A median number of days and the persons it is the median of.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Median {
    /// Persons it is the median of.
    pub persons: Option<u64>,
    /// The median, in days.
    pub days: Option<f64>,
}

impl Median {
    fn of(mut values: Vec<i64>) -> Median {
        values.sort_unstable();
        let n = values.len();
        let days = match n {
            0 => None,
            _ if n % 2 == 1 => Some(values[n / 2] as f64),
            _ => Some((values[n / 2 - 1] + values[n / 2]) as f64 / 2.0),
        };
        Median {
            persons: Some(n as u64),
            days,
        }
    }
}

/// The pathway funnel: returned → registered → profiled → trained → employed → formally employed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Funnel {
    pub(crate) returned: Option<u64>,
    pub(crate) registered: Option<u64>,
    pub(crate) profiled: Option<u64>,
    pub(crate) trained: Option<u64>,
    pub(crate) employed: Option<u64>,
    pub(crate) employed_formally: Option<u64>,
}

/// The whole answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KpiReport {
    /// The reference date.
    pub as_of: String,
    pub(crate) suppressed_below: Option<u64>,
    /// Every returnee.
    pub total: Indicators,
    /// Each quarter's cohort of returns (`2024Q1`).
    pub cohorts: BTreeMap<String, Indicators>,
    pub(crate) breakdowns: BTreeMap<String, BTreeMap<String, Indicators>>,
}

/// The calendar quarter of a date, e.g. `2023Q2`.
pub fn cohort(d: Date) -> String {
    format!("{}Q{}", d.year(), (d.month() as u8 - 1) / 3 + 1)
}

fn quarter_end(d: Date) -> Date {
    let q_last_month = ((d.month() as u8 - 1) / 3 + 1) * 3;
    let month = Month::try_from(q_last_month).unwrap_or(Month::December);
    Date::from_calendar_date(d.year(), month, month.length(d.year())).unwrap_or(d)
}

/// Persons in the KPIs: those with a return date on or before `as_of`, within the range.
fn returnees<'a>(views: &'a [PersonView], p: &KpiParams) -> Vec<(&'a PersonView, Date)> {
    views
        .iter()
        .filter_map(|v| Some((v, v.return_date()?)))
        .filter(|(_, r)| {
            *r <= p.as_of && p.from.is_none_or(|f| *r >= f) && p.to.is_none_or(|t| *r <= t)
        })
        .collect()
}

/// Compute the report; `suppress` blanks cells with fewer than [`SMALL_CELL`] persons.
pub fn compute(views: &[PersonView], p: &KpiParams, suppress: bool) -> KpiReport {
    let people = returnees(views, p);
    let mut cohorts: BTreeMap<String, Vec<(&PersonView, Date)>> = BTreeMap::new();
    for (v, r) in &people {
        cohorts.entry(cohort(*r)).or_default().push((v, *r));
    }
    let mut cohort_figures = BTreeMap::new();
    for (label, members) in &cohorts {
        let end = members
            .iter()
            .map(|(_, r)| quarter_end(*r))
            .max()
            .unwrap_or(p.as_of);
        let mut ind = indicators(members, p);
        if !elapsed(end, REGISTRATION_DAYS, p.as_of) {
            ind.registration_coverage = Ratio::blank(Blank::NotReportable);
        }
        if !elapsed(end, SIX_MONTHS_DAYS, p.as_of) {
            ind.employed_within_6_months = Ratio::blank(Blank::NotReportable);
            ind.in_employment_at_6_months = Ratio::blank(Blank::NotReportable);
        }
        cohort_figures.insert(label.clone(), ind);
    }
    let mut breakdowns: BTreeMap<String, BTreeMap<String, Indicators>> = BTreeMap::new();
    for (dimension, key) in DIMENSIONS {
        let mut groups: BTreeMap<String, Vec<(&PersonView, Date)>> = BTreeMap::new();
        for (v, r) in &people {
            groups.entry(key(v, *r)).or_default().push((v, *r));
        }
        breakdowns.insert(
            dimension.to_string(),
            groups
                .iter()
                .map(|(g, m)| (g.clone(), indicators(m, p)))
                .collect(),
        );
    }
    let mut report = KpiReport {
        as_of: p.as_of.to_string(),
        suppressed_below: suppress.then_some(SMALL_CELL),
        total: indicators(&people, p),
        cohorts: cohort_figures,
        breakdowns,
    };
    if suppress {
        suppress_report(&mut report);
    }
    report
}

type Dimension = (&'static str, fn(&PersonView, Date) -> String);

const DIMENSIONS: [Dimension; 5] = [
    ("sex", |v, _| {
        v.sex.map_or("unknown", |s| s.code()).to_string()
    }),
    ("ageBand", age_band),
    ("region", |v, _| {
        v.returnee
            .as_ref()
            .and_then(|r| r.region.clone())
            .unwrap_or_else(|| "unknown".into())
    }),
    ("destinationCountry", |v, _| {
        v.returnee
            .as_ref()
            .and_then(|r| r.destination_country.clone())
            .unwrap_or_else(|| "unknown".into())
    }),
    ("education", education_band),
];

fn age_band(v: &PersonView, returned: Date) -> String {
    let Some(born) = v.birth_date else {
        return "unknown".into();
    };
    let mut age = returned.year() - born.year();
    if (returned.month(), returned.day()) < (born.month(), born.day()) {
        age -= 1;
    }
    match age {
        ..=24 => "15-24",
        25..=34 => "25-34",
        35..=44 => "35-44",
        45..=54 => "45-54",
        55..=64 => "55-64",
        _ => "65+",
    }
    .into()
}

fn education_band(v: &PersonView, _: Date) -> String {
    match v.returnee.as_ref().and_then(|r| r.education_level) {
        Some(0..=2) => "ISCED 0-2",
        Some(3..=4) => "ISCED 3-4",
        Some(5..=8) => "ISCED 5-8",
        _ => "unknown",
    }
    .into()
}

/// A cell of the employment structure (table 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Category {
    Formal,
    Informal,
    SeasonalTemporary,
    SelfEmployed,
    Unemployed,
    Inactive,
    /// No employment information visible to this node.
    Unknown,
}

/// A bucket of time to first employment (table 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeBucket {
    Under3Months,
    Months3To6,
    Months6To12,
    Over12Months,
    NotYetEmployed,
    /// No employment information visible to this node.
    Unknown,
}

impl TimeBucket {
    /// The bucket of `days` from return to first employment (`None`: not yet employed).
    pub(crate) fn of(days: Option<i64>) -> TimeBucket {
        match days {
            Some(..91) => TimeBucket::Under3Months,
            Some(91..183) => TimeBucket::Months3To6,
            Some(183..365) => TimeBucket::Months6To12,
            Some(_) => TimeBucket::Over12Months,
            None => TimeBucket::NotYetEmployed,
        }
    }
}

impl TimeToEmployment {
    /// Every bucket at zero (not suppressed).
    pub(crate) fn zero() -> TimeToEmployment {
        TimeToEmployment {
            under_3_months: Some(0),
            months_3_to_6: Some(0),
            months_6_to_12: Some(0),
            over_12_months: Some(0),
            not_yet_employed: Some(0),
            unknown: Some(0),
        }
    }

    /// The six cells in table order: under 3 months, 3–6, 6–12, over 12, not yet, unknown.
    pub fn cells(&self) -> [Option<u64>; 6] {
        [
            self.under_3_months,
            self.months_3_to_6,
            self.months_6_to_12,
            self.over_12_months,
            self.not_yet_employed,
            self.unknown,
        ]
    }

    /// Count one person in `bucket`.
    pub(crate) fn add(&mut self, bucket: TimeBucket) {
        let cell = match bucket {
            TimeBucket::Under3Months => &mut self.under_3_months,
            TimeBucket::Months3To6 => &mut self.months_3_to_6,
            TimeBucket::Months6To12 => &mut self.months_6_to_12,
            TimeBucket::Over12Months => &mut self.over_12_months,
            TimeBucket::NotYetEmployed => &mut self.not_yet_employed,
            TimeBucket::Unknown => &mut self.unknown,
        };
        count_one(cell);
    }
}

/// The structure category at `day` of a person this node holds employment information about,
/// by the precedence rule: no job (inactive when
/// outside the labour force, else unemployed); seasonal or casual contract or ICSE-18 43;
/// self-employed ICSE-18 groups; formal; informal.
pub(crate) fn structure_category(v: &PersonView, day: Date) -> Category {
    let Some(s) = v.spell_at(day) else {
        return if v.status_at(day) == Some(LabourForceStatus::OutsideLabourForce) {
            Category::Inactive
        } else {
            Category::Unemployed
        };
    };
    let short = matches!(
        s.contract_duration,
        ContractDuration::Seasonal | ContractDuration::Casual
    );
    if short || s.icse18 == Icse18::ShortTermEmployee {
        Category::SeasonalTemporary
    } else if s.icse18.is_independent() {
        Category::SelfEmployed
    } else if s.formality == Formality::Formal {
        Category::Formal
    } else {
        Category::Informal
    }
}

fn indicators(people: &[(&PersonView, Date)], p: &KpiParams) -> Indicators {
    let mut coverage = (0, 0);
    let mut information = (0, 0);
    let mut within6 = (0, 0);
    let mut at6 = (0, 0);
    let mut retraining = (0, 0);
    let mut tte = TimeToEmployment::zero();
    let mut funnel = [0u64; 6];
    let mut structure = Structure::zero();
    let mut table: BTreeMap<Formality, BTreeMap<Icse18, Option<u64>>> = BTreeMap::new();
    for (v, ret) in people {
        let (v, ret) = (*v, *ret);
        if elapsed(ret, REGISTRATION_DAYS, p.as_of) && consents_to(v, &p.employment_service) {
            coverage.1 += 1;
            let registered = v
                .registration_date()
                .is_some_and(|d| d >= ret && within(d, ret, REGISTRATION_DAYS));
            coverage.0 += u64::from(registered);
        }
        let first = v.first_employment(false).filter(|d| *d <= p.as_of);
        let known = v.has_employment_information(p.as_of);
        information.1 += 1;
        information.0 += u64::from(known);
        let six_at = days_after(ret, SIX_MONTHS_DAYS).filter(|d| *d <= p.as_of);
        if let (Some(six_at), true) = (six_at, known) {
            within6.1 += 1;
            within6.0 += u64::from(first.is_some_and(|d| d <= six_at));
            at6.1 += 1;
            at6.0 += u64::from(v.spell_at(six_at).is_some());
        }
        let trained = v.enrolments.iter().filter_map(|e| e.completed_on).min();
        if let Some(done) = trained {
            if elapsed(done, SIX_MONTHS_DAYS, p.as_of) && known {
                retraining.1 += 1;
                let hired = v
                    .spells
                    .iter()
                    .any(|s| s.start_date >= done && within(s.start_date, done, SIX_MONTHS_DAYS));
                retraining.0 += u64::from(hired);
            }
        }
        let by = |d: Option<Date>| d.is_some_and(|d| d <= p.as_of);
        let profiled = v.profiling_date();
        for (i, reached) in [
            true,
            by(v.registration_date()),
            by(profiled),
            by(trained),
            first.is_some(),
            by(v.first_employment(true)),
        ]
        .into_iter()
        .enumerate()
        {
            funnel[i] += u64::from(reached);
        }
        tte.add(match known {
            true => TimeBucket::of(first.map(|d| (d - ret).whole_days())),
            false => TimeBucket::Unknown,
        });
        // Six months after a return past the calendar's end never comes: not counted.
        let reference = p.structure_at.or_else(|| days_after(ret, SIX_MONTHS_DAYS));
        if let Some(reference) = reference.filter(|r| *r <= p.as_of && ret <= *r) {
            structure.add(match known {
                true => structure_category(v, reference),
                false => Category::Unknown,
            });
            if let Some(s) = v.spell_at(reference) {
                let cell = table
                    .entry(s.formality)
                    .or_default()
                    .entry(s.icse18)
                    .or_insert(Some(0));
                count_one(cell);
            }
        }
    }
    Indicators {
        pathway: pathway(people, p),
        persons: Some(people.len() as u64),
        registration_coverage: Ratio::of(coverage.0, coverage.1),
        employment_information: Ratio::of(information.0, information.1),
        employed_within_6_months: Ratio::of(within6.0, within6.1),
        in_employment_at_6_months: Ratio::of(at6.0, at6.1),
        employed_after_retraining: Ratio::of(retraining.0, retraining.1),
        time_to_first_employment: tte,
        employment_structure: structure,
        formality_by_icse: table,
        funnel: Funnel {
            returned: Some(funnel[0]),
            registered: Some(funnel[1]),
            profiled: Some(funnel[2]),
            trained: Some(funnel[3]),
            employed: Some(funnel[4]),
            employed_formally: Some(funnel[5]),
        },
    }
}

/// The pathway's indicators for a group (see the module's conventions).
fn pathway(people: &[(&PersonView, Date)], p: &KpiParams) -> Pathway {
    let mut matched = (0, 0);
    let mut converted = (0, 0);
    let mut waits = Vec::new();
    let mut formal = (0, 0);
    for (v, _) in people {
        let profiled = v.profiling_date().filter(|d| *d <= p.as_of);
        if let (Some(_), Some(with)) = (profiled, &p.with_a_match) {
            matched.1 += 1;
            matched.0 += u64::from(with.contains(&v.pin));
        }
        let placement = v.first_placement().filter(|s| s.start_date <= p.as_of);
        let referrals: Vec<(Date, &str)> = v.vacancy_referrals().collect();
        if let Some(first) = referrals.iter().map(|(d, _)| *d).min() {
            if elapsed(first, PLACEMENT_DAYS, p.as_of) {
                converted.1 += 1;
                let placed = v.spells.iter().any(|s| {
                    referrals.iter().any(|(d, id)| {
                        s.vacancy_id.as_deref() == Some(*id)
                            && s.start_date >= *d
                            && within(s.start_date, *d, PLACEMENT_DAYS)
                    })
                });
                converted.0 += u64::from(placed);
            }
        }
        if let Some(spell) = placement {
            formal.1 += 1;
            formal.0 += u64::from(spell.formality == Formality::Formal);
            if let Some(from) = profiled.filter(|d| *d <= spell.start_date) {
                waits.push((spell.start_date - from).whole_days());
            }
        }
    }
    Pathway {
        profiled_with_a_match: match p.with_a_match {
            Some(_) => Ratio::of(matched.0, matched.1),
            None => Ratio::blank(Blank::NotReportable),
        },
        referral_to_placement: Ratio::of(converted.0, converted.1),
        profiling_to_placement: Median::of(waits),
        formal_placements: Ratio::of(formal.0, formal.1),
    }
}

/// Whether the person's consent ever named `member` (withdrawals later do not undo it: the
/// coverage denominator does not shrink retroactively).
fn consents_to(v: &PersonView, member: &MemberId) -> bool {
    v.consented_to.contains(member)
}

fn small(n: &mut Option<u64>) {
    if n.is_some_and(|n| n < SMALL_CELL) {
        *n = None;
    }
}

/// Whether a count of `part` out of `whole` tells something of fewer than [`SMALL_CELL`]
/// persons: the part is small, or what is left of the whole (the complement: "all but two",
/// or "all of them", says as much of those few as "two" or "none" does).
pub(crate) fn reveals_few(part: u64, whole: u64) -> bool {
    part < SMALL_CELL || whole.saturating_sub(part) < SMALL_CELL
}

fn suppress_ratio(r: &mut Ratio) {
    let few = match (r.numerator, r.denominator) {
        (Some(n), Some(d)) => reveals_few(n, d),
        (n, d) => n.or(d).is_some_and(|x| x < SMALL_CELL),
    };
    if few {
        *r = Ratio::blank(Blank::Suppressed);
    }
}

/// Cells that add up to a total shown beside them (the persons counted): each small one
/// suppressed, and then, while exactly one is blank or the blank ones add up to fewer than
/// [`SMALL_CELL`], the smallest shown one too (else the total less the others gives back the
/// one, or says how few the blank ones hold between them).
fn suppress_partition(cells: &mut [&mut Option<u64>]) {
    let whole: u64 = cells.iter().filter_map(|n| **n).sum();
    for n in cells.iter_mut() {
        small(n);
    }
    loop {
        let blank = cells.iter().filter(|n| n.is_none()).count();
        let shown: u64 = cells.iter().filter_map(|n| **n).sum();
        if blank == 0 || (blank > 1 && whole - shown >= SMALL_CELL) {
            return;
        }
        let Some(smallest) = cells
            .iter_mut()
            .filter(|n| n.is_some())
            .min_by_key(|n| n.unwrap_or(u64::MAX))
        else {
            return;
        };
        **smallest = None;
    }
}

impl Indicators {
    /// Every ratio among the indicators.
    fn ratios_mut(&mut self) -> [&mut Ratio; 8] {
        [
            &mut self.pathway.profiled_with_a_match,
            &mut self.pathway.referral_to_placement,
            &mut self.pathway.formal_placements,
            &mut self.registration_coverage,
            &mut self.employment_information,
            &mut self.employed_within_6_months,
            &mut self.in_employment_at_6_months,
            &mut self.employed_after_retraining,
        ]
    }
}

fn suppress_indicators(i: &mut Indicators) {
    small(&mut i.persons);
    let w = &mut i.pathway.profiling_to_placement;
    if w.persons.is_some_and(|n| n < SMALL_CELL) {
        *w = Median::default();
    }
    for r in i.ratios_mut() {
        suppress_ratio(r);
    }
    let t = &mut i.time_to_first_employment;
    suppress_partition(&mut [
        &mut t.under_3_months,
        &mut t.months_3_to_6,
        &mut t.months_6_to_12,
        &mut t.over_12_months,
        &mut t.not_yet_employed,
        &mut t.unknown,
    ]);
    let s = &mut i.employment_structure;
    suppress_partition(&mut [
        &mut s.formal,
        &mut s.informal,
        &mut s.seasonal_temporary,
        &mut s.self_employed,
        &mut s.unemployed,
        &mut s.inactive,
        &mut s.unknown,
    ]);
    for row in i.formality_by_icse.values_mut() {
        row.values_mut().for_each(small);
    }
    let f = &mut i.funnel;
    for n in [
        &mut f.returned,
        &mut f.registered,
        &mut f.profiled,
        &mut f.trained,
        &mut f.employed,
        &mut f.employed_formally,
    ] {
        small(n);
    }
}

fn suppress_report(r: &mut KpiReport) {
    suppress_indicators(&mut r.total);
    r.cohorts.values_mut().for_each(suppress_indicators);
    for groups in r.breakdowns.values_mut() {
        groups.values_mut().for_each(suppress_indicators);
    }
    suppress_across(&r.total, r.cohorts.values_mut());
    for groups in r.breakdowns.values_mut() {
        suppress_across(&r.total, groups.values_mut());
    }
}

/// Groups whose figures add up to the total's (the cohorts; a breakdown's groups). A figure
/// suppressed in one group alone would come back as the total less the others', and several
/// suppressed whose sum is small would tell that sum, and a figure the total blanked is the
/// sum of the groups' when they all show it; so while some figure the total shows is blank in
/// exactly one group, or in groups whose figures add up to fewer than [`SMALL_CELL`], or the
/// total's blank figure is shown by every group,
/// the smallest group (by persons) not blank there is suppressed whole: every figure of it,
/// so that no identity between its figures (a ratio's denominator is its persons; the
/// buckets add up to them) gives one back. A figure a group cannot report yet (its window has
/// not elapsed) is left as it is: its group's elapsed part stays in the total (not hidden
/// here; a decision for the data protection officer).
fn suppress_across<'a>(total: &Indicators, groups: impl Iterator<Item = &'a mut Indicators>) {
    let mut groups: Vec<&mut Indicators> = groups.collect();
    if groups.len() < 2 {
        return;
    }
    let Ok(total) = serde_json::to_value(total) else {
        return;
    };
    let mut values: Vec<serde_json::Value> = groups
        .iter()
        .map(|g| serde_json::to_value(&**g).unwrap_or_default())
        .collect();
    // Every figure the total or a group shows (a figure the total blanked is given back by
    // the groups that all show it).
    let mut counts = Vec::new();
    for value in std::iter::once(&total).chain(&values) {
        counts_in(value, String::new(), &mut counts);
    }
    counts.sort_unstable();
    counts.dedup();
    // Figures no group is left to blank for (each is blank in every group showing it).
    let mut settled: HashSet<String> = HashSet::new();
    while let Some(path) = counts
        .iter()
        .find(|p| !settled.contains(*p) && gives_back(&total, &values, p))
    {
        // Only a group that shows a figure there: blanking it changes what the path gives.
        let shown_there = |v: &serde_json::Value| v.pointer(path).is_some_and(|c| c.is_u64());
        let persons = |v: &serde_json::Value| v.get("persons").and_then(serde_json::Value::as_u64);
        let next = (values.iter().enumerate())
            .filter(|(_, v)| shown_there(v))
            .min_by_key(|(_, v)| persons(v).unwrap_or(0))
            .map(|(i, _)| i);
        let Some(i) = next else {
            settled.insert(path.clone());
            continue;
        };
        let mut whole = Vec::new();
        counts_in(&values[i], String::new(), &mut whole);
        for count in whole {
            blank_at(&mut values[i], &count);
        }
    }
    for (group, value) in groups.iter_mut().zip(values) {
        // Every field of the indicators reads back; were one not to, the group goes blank
        // whole rather than shown unsuppressed.
        **group = serde_json::from_value(value).unwrap_or_else(|_| blank_indicators());
    }
}

/// Whether the groups' figures at `path` give back what is blank there: blank in exactly one
/// group, or in several whose figures add up (the total less the shown) to fewer than
/// [`SMALL_CELL`]. A figure some group cannot report yet is not counted on.
fn gives_back(total: &serde_json::Value, groups: &[serde_json::Value], path: &str) -> bool {
    let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
    let not_reportable = |v: &serde_json::Value| {
        v.pointer(parent)
            .and_then(|h| h.get("blank"))
            .is_some_and(|b| b == "not-reportable")
    };
    if groups.iter().any(not_reportable) {
        return false;
    }
    let blank = groups
        .iter()
        .filter(|v| v.pointer(path).is_some_and(|c| c.is_null()))
        .count();
    let Some(whole) = total.pointer(path).and_then(serde_json::Value::as_u64) else {
        // The total blank there and every group showing it: their sum gives it back.
        return total.pointer(path).is_some_and(|c| c.is_null())
            && blank == 0
            && groups
                .iter()
                .any(|v| v.pointer(path).is_some_and(|c| c.is_u64()));
    };
    let shown: u64 = groups
        .iter()
        .filter_map(|v| v.pointer(path)?.as_u64())
        .sum();
    blank == 1 || (blank > 1 && whole.saturating_sub(shown) < SMALL_CELL)
}

/// Indicators with every figure blank.
fn blank_indicators() -> Indicators {
    let mut i = Indicators::default();
    suppress_indicators(&mut i);
    for r in i.ratios_mut() {
        *r = Ratio::blank(Blank::Suppressed);
    }
    i
}

/// The pointers of every count in `value` (not the rates and medians derived from them).
fn counts_in(value: &serde_json::Value, at: String, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(members) => {
            for (name, member) in members {
                let name = name.replace('~', "~0").replace('/', "~1");
                counts_in(member, format!("{at}/{name}"), out);
            }
        }
        serde_json::Value::Number(n) if n.is_u64() && !at.ends_with("/rate") => {
            out.push(at);
        }
        _ => {}
    }
}

/// Blank the count at `path`: the whole ratio or median it belongs to, else the count alone.
fn blank_at(value: &mut serde_json::Value, path: &str) {
    let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
    let Some(holder) = value.pointer_mut(parent) else {
        return;
    };
    if holder.get("denominator").is_some() {
        *holder = serde_json::to_value(Ratio::blank(Blank::Suppressed)).unwrap_or_default();
    } else if holder.get("days").is_some() {
        *holder = serde_json::to_value(Median::default()).unwrap_or_default();
    } else if let Some(count) = value.pointer_mut(path) {
        *count = serde_json::Value::Null;
    }
}

/// CSV rows `dimension,group,indicator,numerator,denominator,rate` (cohorts as dimension
/// `cohort`, the total as `total,all`).
pub(crate) fn to_csv(r: &KpiReport) -> String {
    let mut out = String::from("dimension,group,indicator,numerator,denominator,rate\n");
    let mut emit = |dim: &str, group: &str, i: &Indicators| {
        let cell = |n: Option<u64>| n.map_or(String::new(), |n| n.to_string());
        let mut row = |name: &str, num: Option<u64>, den: Option<u64>, rate: Option<f64>| {
            let rate = rate.map_or(String::new(), |r| format!("{r:.4}"));
            out.push_str(&format!(
                "{dim},{group},{name},{},{},{rate}\n",
                cell(num),
                cell(den)
            ));
        };
        row("persons", i.persons, None, None);
        for (name, ratio) in [
            ("registration_coverage", i.registration_coverage),
            ("employment_information", i.employment_information),
            ("employed_within_6_months", i.employed_within_6_months),
            ("in_employment_at_6_months", i.in_employment_at_6_months),
            ("employed_after_retraining", i.employed_after_retraining),
            ("profiled_with_a_match", i.pathway.profiled_with_a_match),
            ("referral_to_placement", i.pathway.referral_to_placement),
            ("formal_placements", i.pathway.formal_placements),
        ] {
            row(name, ratio.numerator, ratio.denominator, ratio.rate);
        }
        let wait = &i.pathway.profiling_to_placement;
        row(
            "median_days_profiling_to_placement",
            None,
            wait.persons,
            wait.days,
        );
        let t = &i.time_to_first_employment;
        for (name, n) in [
            ("tte_under_3_months", t.under_3_months),
            ("tte_3_to_6_months", t.months_3_to_6),
            ("tte_6_to_12_months", t.months_6_to_12),
            ("tte_over_12_months", t.over_12_months),
            ("tte_not_yet_employed", t.not_yet_employed),
            ("tte_unknown", t.unknown),
        ] {
            row(name, n, i.persons, None);
        }
        let s = &i.employment_structure;
        for (name, n) in [
            ("structure_formal", s.formal),
            ("structure_informal", s.informal),
            ("structure_seasonal_temporary", s.seasonal_temporary),
            ("structure_self_employed", s.self_employed),
            ("structure_unemployed", s.unemployed),
            ("structure_inactive", s.inactive),
            ("structure_unknown", s.unknown),
        ] {
            row(name, n, None, None);
        }
    };
    emit("total", "all", &r.total);
    for (c, i) in &r.cohorts {
        emit("cohort", c, i);
    }
    for (dim, groups) in &r.breakdowns {
        for (g, i) in groups {
            emit(dim, &g.replace(',', " "), i);
        }
    }
    out
}

fn share(n: Option<u64>, of: u64) -> String {
    match n {
        Some(n) if of > 0 => format!("{:>5.1}% ({n:>6})", 100.0 * n as f64 / of as f64),
        Some(n) => format!("{:>6}  ({n:>6})", "-"),
        None => format!("{:>16}", "suppressed"),
    }
}

/// The seed paper's tables 1 (employment structure) and 2 (time to integration), as shares with
/// the counts behind them, for the total and each cohort.
pub(crate) fn seed_tables(r: &KpiReport) -> String {
    let mut out = format!(
        "KPIs as of {} (cells under {} persons suppressed: {})\n",
        r.as_of,
        SMALL_CELL,
        r.suppressed_below.is_some()
    );
    let mut groups: Vec<(&str, &Indicators)> = vec![("all cohorts", &r.total)];
    groups.extend(r.cohorts.iter().map(|(c, i)| (c.as_str(), i)));
    out.push_str("\nTable 1. Employment structure of returnees at return + 6 months\n");
    out.push_str(&format!(
        "{:<12} {:>16} {:>16} {:>16} {:>16} {:>16} {:>16} {:>16}\n",
        "cohort",
        "formal",
        "informal",
        "seasonal/temp.",
        "self-employed",
        "unemployed",
        "inactive",
        "unknown"
    ));
    for (name, i) in &groups {
        let s = &i.employment_structure;
        let of = s.total();
        out.push_str(&format!(
            "{name:<12} {} {} {} {} {} {} {}\n",
            share(s.formal, of),
            share(s.informal, of),
            share(s.seasonal_temporary, of),
            share(s.self_employed, of),
            share(s.unemployed, of),
            share(s.inactive, of),
            share(s.unknown, of)
        ));
    }
    out.push_str("\nTable 2. Time to labour-market integration after return\n");
    out.push_str(&format!(
        "{:<12} {:>16} {:>16} {:>16} {:>16} {:>16} {:>16}\n",
        "cohort", "< 3 months", "3-6 months", "6-12 months", "> 12 months", "not yet", "unknown"
    ));
    for (name, i) in &groups {
        let t = &i.time_to_first_employment;
        let of = i.persons.unwrap_or(0);
        out.push_str(&format!(
            "{name:<12} {} {} {} {} {} {}\n",
            share(t.under_3_months, of),
            share(t.months_3_to_6, of),
            share(t.months_6_to_12, of),
            share(t.over_12_months, of),
            share(t.not_yet_employed, of),
            share(t.unknown, of)
        ));
    }
    out.push_str("\nMonitoring indicators (numerator / denominator)\n");
    for (name, i) in &groups {
        out.push_str(&format!("{name:<12} registered ≤90d: {} | employment known: {} | employed ≤6m: {} | employed at +6m: {} | employed after retraining: {}\n",
            ratio_text(&i.registration_coverage), ratio_text(&i.employment_information), ratio_text(&i.employed_within_6_months), ratio_text(&i.in_employment_at_6_months), ratio_text(&i.employed_after_retraining)));
    }
    out.push_str("\nThe pathway: profiling → match → referral → placement\n");
    for (name, i) in &groups {
        let p = &i.pathway;
        let wait = match (
            p.profiling_to_placement.days,
            p.profiling_to_placement.persons,
        ) {
            (Some(d), Some(n)) => format!("{d:.0} days (n={n})"),
            _ => "not reportable".to_string(),
        };
        out.push_str(&format!(
            "{name:<12} profiled with a match: {} | referral → placement ≤90d: {} | median profiling → placement: {wait} | formal placements: {}\n",
            ratio_text(&p.profiled_with_a_match),
            ratio_text(&p.referral_to_placement),
            ratio_text(&p.formal_placements)
        ));
    }
    out
}

/// A ratio as `12.5% (1/8)`, or why it has no value.
fn ratio_text(r: &Ratio) -> String {
    match (r.numerator, r.denominator, r.rate) {
        (Some(n), Some(d), Some(rate)) => format!("{:>5.1}% ({n}/{d})", rate * 100.0),
        (Some(n), Some(d), None) => format!("  -   ({n}/{d})"),
        _ => "not reportable".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::vocab::ConsentMethod;
    use crate::policy::consent::Consent;
    use crate::registry::view::{
        Enrolment, Profiling, Referral, Registration, Returnee, Spell, StatusAt,
    };
    use serde_json::json;

    fn d(s: &str) -> Date {
        crate::registry::view::date(s).unwrap()
    }

    fn pin(p: &str) -> Pin {
        p.parse().unwrap()
    }

    fn employment() -> MemberId {
        "central-server/GOV/70000002/employment".parse().unwrap()
    }

    fn consent(granted: bool, to: Vec<MemberId>) -> Consent {
        Consent {
            granted,
            purposes: vec!["EMPLOYMENT_SERVICES".into()],
            recipients: to,
            time: time::OffsetDateTime::UNIX_EPOCH,
            method: Some(ConsentMethod::WrittenSigned),
        }
    }

    fn person(p: &str, returned: &str) -> PersonView {
        PersonView {
            returnee: Some(Returnee {
                return_date: Some(d(returned)),
                region: Some("KG-O".into()),
                education_level: Some(3),
                ..Returnee::default()
            }),
            consent: Some(consent(true, vec![employment()])),
            consented_to: vec![employment()],
            ..PersonView::new(pin(p))
        }
    }

    /// The employment service published something about the person on `day`.
    fn known(v: &mut PersonView, day: &str) {
        v.events.push(crate::registry::view::EventRef {
            id: format!("e{}", v.events.len()),
            source: employment(),
            event_type: crate::event::schema::EventType::EmploymentStatus,
            event: "STATUS_OBSERVED".into(),
            event_date: d(day),
            position: v.events.len() as u64 + 1,
            superseded: false,
            supersedes: None,
        });
    }

    fn spell(
        start: &str,
        end: Option<&str>,
        icse18: Icse18,
        formality: Formality,
        contract_duration: ContractDuration,
    ) -> Spell {
        Spell {
            spell_id: start.into(),
            start_date: d(start),
            end_date: end.map(d),
            icse18,
            formality,
            contract_duration,
            isco08: "7112".into(),
            region: None,
            training_enrolment_id: None,
            vacancy_id: None,
        }
    }

    fn params(as_of: &str) -> KpiParams {
        KpiParams {
            as_of: d(as_of),
            employment_service: "central-server/GOV/70000002/employment".parse().unwrap(),
            from: None,
            to: None,
            structure_at: None,
            with_a_match: None,
        }
    }

    #[test]
    fn structure_follows_the_precedence_rule() {
        use ContractDuration::{Casual, Permanent, Seasonal};
        use Icse18::{OwnAccountWorker, PermanentEmployee, ShortTermEmployee};
        let day = d("2024-07-01");
        let mut v = person("21503199012345", "2024-01-01");
        assert_eq!(structure_category(&v, day), Category::Unemployed);
        v.status_history.push(StatusAt {
            status: LabourForceStatus::OutsideLabourForce,
            date: d("2024-05-01"),
        });
        assert_eq!(structure_category(&v, day), Category::Inactive);
        let formal = Formality::Formal;
        let current =
            |icse18, formality, contract| spell("2024-06-01", None, icse18, formality, contract);
        let ended = spell(
            "2024-06-01",
            Some("2024-06-30"),
            PermanentEmployee,
            formal,
            Permanent,
        );
        for (held, category) in [
            (
                current(PermanentEmployee, formal, Seasonal),
                Category::SeasonalTemporary,
            ),
            (
                current(PermanentEmployee, formal, Casual),
                Category::SeasonalTemporary,
            ),
            (
                current(ShortTermEmployee, formal, Permanent),
                Category::SeasonalTemporary,
            ),
            (
                current(OwnAccountWorker, formal, ContractDuration::None),
                Category::SelfEmployed,
            ),
            (
                current(PermanentEmployee, formal, Permanent),
                Category::Formal,
            ),
            (
                current(PermanentEmployee, Formality::Unknown, Permanent),
                Category::Informal,
            ),
            (ended, Category::Inactive),
        ] {
            v.spells = vec![held];
            assert_eq!(structure_category(&v, day), category, "{:?}", v.spells);
        }
    }

    #[test]
    fn windows_are_censored_and_cohorts_reported_when_complete() {
        let mut a = person("21503199012345", "2024-01-10");
        let employee = Icse18::PermanentEmployee;
        let permanent = ContractDuration::Permanent;
        a.spells = vec![spell(
            "2024-02-01",
            None,
            employee,
            Formality::Informal,
            permanent,
        )];
        a.registration = Some(Registration {
            office: "ES-01".into(),
            region: "KG-O".into(),
            date: d("2024-01-20"),
        });
        known(&mut a, "2024-01-20");
        let mut b = person("11503199012345", "2024-02-10");
        b.spells = vec![spell(
            "2024-12-01",
            None,
            employee,
            Formality::Formal,
            permanent,
        )];
        known(&mut b, "2024-03-01");
        b.enrolments = vec![Enrolment {
            enrolment_id: "E".into(),
            status: crate::event::vocab::TrainingEvent::Completed,
            completed_on: Some(d("2024-10-01")),
            ..Enrolment::default()
        }];
        let c = person("21503199012346", "2024-06-10");
        let views = vec![a, b, c];
        let r = compute(&views, &params("2024-10-15"), false);
        let q1 = &r.cohorts["2024Q1"];
        assert_eq!(q1.employed_within_6_months, Ratio::of(1, 2));
        assert_eq!(q1.registration_coverage, Ratio::of(1, 2));
        assert_eq!(
            r.cohorts["2024Q2"].employed_within_6_months,
            Ratio::blank(Blank::NotReportable),
            "window not elapsed"
        );
        assert_eq!(r.total.persons, Some(3));
        // Suppressed, a small cell says so; a censored one still says its window is open.
        let shown = compute(&views, &params("2024-10-15"), true);
        assert_eq!(
            shown.cohorts["2024Q1"].employed_within_6_months,
            Ratio::blank(Blank::Suppressed)
        );
        assert_eq!(
            shown.cohorts["2024Q2"].employed_within_6_months,
            Ratio::blank(Blank::NotReportable)
        );
        assert!(serde_json::to_string(&shown.cohorts["2024Q1"])
            .unwrap()
            .contains(r#""blank":"suppressed""#));
        assert_eq!(r.total.time_to_first_employment.under_3_months, Some(1));
        assert_eq!(r.total.time_to_first_employment.not_yet_employed, Some(1));
        // c: nothing from the employment service: unknown, not "not yet employed", and outside
        // the employment rates, whose base is printed beside them.
        assert_eq!(r.total.time_to_first_employment.unknown, Some(1));
        assert_eq!(r.total.employment_information, Ratio::of(2, 3));
        assert_eq!(
            r.total.employment_structure.unknown,
            Some(0),
            "c's +6 months not reached"
        );
        let much_later = compute(&views, &params("2025-06-01"), false);
        assert_eq!(much_later.total.employment_structure.unknown, Some(1));
        // A withdrawal later does not shrink the coverage base.
        let mut withdrawn = views.clone();
        withdrawn[1].consent = Some(consent(false, vec![]));
        let w = compute(&withdrawn, &params("2024-10-15"), false);
        assert_eq!(w.cohorts["2024Q1"].registration_coverage, Ratio::of(1, 2));
        let later = compute(&views, &params("2025-06-01"), false);
        assert_eq!(later.total.employed_after_retraining, Ratio::of(1, 1));
        assert_eq!(later.total.time_to_first_employment.over_12_months, Some(0));
        assert_eq!(later.total.time_to_first_employment.months_6_to_12, Some(1));
        assert_eq!(later.breakdowns["sex"]["M"].persons, Some(2));
        // The formality × ICSE-18 table is keyed as the data writes them, and reads back (the
        // demo reads the report the API sends).
        let table = serde_json::to_value(&later.total.formality_by_icse).unwrap();
        assert_eq!(table, json!({"INFORMAL": {"41": 1}}));
        let sent = serde_json::to_value(&later).unwrap();
        let read: KpiReport = serde_json::from_value(sent).unwrap();
        assert_eq!(read.total, later.total);
        let suppressed = compute(&views, &params("2025-06-01"), true);
        assert_eq!(suppressed.total.persons, None);
        assert!(to_csv(&later).contains("cohort,2024Q1,employed_within_6_months,1,2,0.5000"));
    }

    #[test]
    fn the_pathway_counts_matches_conversions_and_formal_placements() {
        let placed = |v: &mut PersonView, referred: &str, filled: &str, start: &str, formality| {
            v.profiling = Some(Profiling {
                segment: crate::event::vocab::Segment::Support,
                date: d("2024-02-01"),
                target_isco08: None,
            });
            v.referrals.push(Referral {
                course_code: None,
                provider_id: None,
                vacancy_id: Some(referred.into()),
                date: d("2024-03-01"),
            });
            let permanent = ContractDuration::Permanent;
            let mut s = spell(start, None, Icse18::PermanentEmployee, formality, permanent);
            s.vacancy_id = Some(filled.into());
            v.spells.push(s);
        };
        let mut a = person("21503199012345", "2024-01-10");
        placed(&mut a, "V1", "V1", "2024-03-20", Formality::Formal);
        let mut b = person("11503199012345", "2024-01-20");
        placed(&mut b, "V2", "V3", "2024-04-01", Formality::Informal);
        let mut p = params("2024-10-15");
        p.with_a_match = Some([pin("21503199012345")].into());
        let r = compute(&[a.clone(), b.clone()], &p, false).total.pathway;
        assert_eq!(r.profiled_with_a_match, Ratio::of(1, 2));
        assert_eq!(
            r.referral_to_placement,
            Ratio::of(1, 2),
            "b was placed elsewhere"
        );
        assert_eq!(r.formal_placements, Ratio::of(1, 2));
        assert_eq!(r.profiling_to_placement.days, Some((48.0 + 60.0) / 2.0));
        // Within 90 days of the referral not yet elapsed: not counted; no vacancies: no ratio.
        let early = compute(&[a, b], &params("2024-04-15"), false).total.pathway;
        assert_eq!(early.referral_to_placement, Ratio::of(0, 0));
        assert_eq!(
            early.profiled_with_a_match,
            Ratio::blank(Blank::NotReportable)
        );
    }

    /// `9999-12-31` (many registries' "unknown") as a return, a referral, a completed course
    /// and the report's date: every window past the calendar's end is simply not elapsed, and
    /// nothing panics (each addition of days to such a date used to).
    #[test]
    fn dates_at_the_calendar_s_end_count_as_windows_not_elapsed() {
        let mut v = person("21503199012345", "9999-12-31");
        v.referrals.push(Referral {
            course_code: None,
            provider_id: None,
            vacancy_id: Some("V1".into()),
            date: d("9999-12-31"),
        });
        v.enrolments.push(crate::registry::view::Enrolment {
            enrolment_id: "E1".into(),
            completed_on: Some(d("9999-12-31")),
            ..Default::default()
        });
        known(&mut v, "9999-12-31");
        for as_of in ["2024-10-15", "9999-12-31"] {
            let r = compute(std::slice::from_ref(&v), &params(as_of), false);
            assert_eq!(r.total.pathway.referral_to_placement, Ratio::of(0, 0));
        }
        let _ = v.derive(d("9999-12-31"));
    }

    /// A ratio is suppressed when few are counted on either side of it, and a breakdown that
    /// adds up to its total never leaves a single suppressed cell to be worked out.
    #[test]
    fn few_on_either_side_of_a_ratio_or_a_lone_blank_in_a_breakdown_are_suppressed() {
        let shown = |n, d| {
            let mut r = Ratio::of(n, d);
            suppress_ratio(&mut r);
            r.blank.is_none()
        };
        assert!(shown(5, 10) && shown(7, 12));
        assert!(!shown(4, 10), "four employed");
        assert!(!shown(8, 10), "all but two employed");
        assert!(!shown(5, 5), "everyone employed");
        assert!(!shown(0, 20), "nobody employed");
        let (mut a, mut b, mut c, mut d) = (Some(3), Some(9), Some(6), Some(20));
        suppress_partition(&mut [&mut a, &mut b, &mut c, &mut d]);
        assert_eq!(
            (a, b, c, d),
            (None, Some(9), None, Some(20)),
            "the smallest other too"
        );
        let (mut a, mut b, mut c) = (Some(3), Some(2), Some(9));
        suppress_partition(&mut [&mut a, &mut b, &mut c]);
        assert_eq!(
            (a, b, c),
            (None, None, Some(9)),
            "two blanks, five between them"
        );
        // Two employed, one each in two cells: the blanks hold fewer than five between them.
        let (mut a, mut b, mut c, mut d) = (Some(1), Some(1), Some(20), Some(8));
        suppress_partition(&mut [&mut a, &mut b, &mut c, &mut d]);
        assert_eq!((a, b, c, d), (None, None, Some(20), None));
    }

    /// A group's figure blanked alone would come back as the total less the other groups', or
    /// through an identity between a group's figures: the smallest other group goes blank
    /// whole, and so on while blanks add up to fewer than five.
    #[test]
    fn no_group_s_blank_figure_is_the_total_less_the_others() {
        let group = |persons: Option<u64>, known: Ratio| Indicators {
            persons,
            employment_information: known,
            ..Indicators::default()
        };
        let all_blank = |i: &Indicators| {
            let mut shown = Vec::new();
            counts_in(&serde_json::to_value(i).unwrap(), String::new(), &mut shown);
            shown.is_empty()
        };
        // A has 3 persons; B 20 with information on 10; C 30 with information on 8.
        let total = group(Some(53), Ratio::of(19, 53));
        let mut a = group(None, Ratio::blank(Blank::Suppressed));
        let mut b = group(Some(20), Ratio::of(10, 20));
        let mut c = group(Some(30), Ratio::of(8, 30));
        suppress_across(&total, [&mut a, &mut b, &mut c].into_iter());
        assert!(all_blank(&b), "the smallest other goes whole: {b:?}");
        assert_eq!(c.persons, Some(30));
        // Two blank already, adding up to 5 or more: nothing more.
        let total = group(Some(60), Ratio::of(32, 60));
        let mut d = group(None, Ratio::blank(Blank::Suppressed));
        let mut e = group(Some(30), Ratio::of(15, 30));
        let mut f = blank_indicators();
        let mut g = group(Some(25), Ratio::of(12, 25));
        let before = (e.clone(), g.clone());
        // d and f: 5 persons between them, the information ratio 5 of them.
        suppress_across(&total, [&mut d, &mut e, &mut f, &mut g].into_iter());
        assert_eq!((e.clone(), g.clone()), before, "{e:?} {g:?}");
        // Two blank adding up to fewer than five: the next smallest goes too.
        let total = group(Some(58), Ratio::of(30, 58));
        let mut d = group(None, Ratio::blank(Blank::Suppressed));
        let mut f = blank_indicators();
        let mut e = group(Some(30), Ratio::of(15, 30));
        let mut g = group(Some(25), Ratio::of(12, 25));
        suppress_across(&total, [&mut d, &mut e, &mut f, &mut g].into_iter());
        assert!(all_blank(&g), "{g:?}");
        assert_eq!(e.persons, Some(30));
    }

    /// A figure the total blanked comes back as the sum of the groups' when every group shows
    /// it: one group goes blank whole.
    #[test]
    fn a_figure_the_total_blanked_is_not_the_sum_of_the_groups() {
        let total = Indicators {
            persons: Some(24),
            ..Indicators::default()
        };
        let mut groups: Vec<Indicators> = [6, 6, 12]
            .iter()
            .map(|n| Indicators {
                persons: Some(*n),
                funnel: Funnel {
                    registered: Some(*n),
                    ..Funnel::default()
                },
                ..Indicators::default()
            })
            .collect();
        let mut blanked = total.clone();
        blanked.funnel.registered = None;
        suppress_across(&blanked, groups.iter_mut());
        // The smallest goes whole; its persons then blank alone, the next smallest with it.
        let shown: Vec<Option<u64>> = groups.iter().map(|g| g.funnel.registered).collect();
        assert_eq!(shown, [None, None, Some(12)], "{groups:?}");
    }
}
