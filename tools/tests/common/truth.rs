//! The KPI figures a correct exchange must show, computed from the generated facts of a
//! synthetic population (not from the node's view or KPI code), and the comparison with a KPI
//! answer.

use std::collections::BTreeMap;

use jol_tools::synthetic::population::{Outcome, Person};
use serde_json::Value;
use time::{Date, Duration as Days};

fn days(n: i64) -> Days {
    Days::days(n)
}

/// The figures a correct exchange must show at the migration agency, from the facts.
#[derive(Debug, Default)]
pub struct Expected {
    pub persons: u64,
    pub coverage: (u64, u64),
    pub within6: (u64, u64),
    pub at6: (u64, u64),
    pub retraining: (u64, u64),
    pub tte: [u64; 6],
    pub information: (u64, u64),
    pub structure: BTreeMap<&'static str, u64>,
}

fn first_job(p: &Person) -> Option<Date> {
    p.jobs.iter().map(|j| j.start).min()
}

/// The figures at `as_of`. A person whose employment situation the employment service never
/// published anything about by then (no registration, job or status) is `unknown` and outside
/// the employment rates; the coverage population is everyone who consented to the employment
/// service, whether or not they withdrew later.
pub fn expected(people: &[&Person], as_of: Date) -> Expected {
    let mut e = Expected::default();
    for p in people {
        e.persons += 1;
        let known = p.registered.is_some_and(|r| r <= as_of)
            || p.jobs.iter().any(|j| j.start <= as_of)
            || p.inactive_from.is_some_and(|i| i <= as_of);
        e.information.1 += 1;
        e.information.0 += u64::from(known);
        if p.consent_employment {
            e.coverage.1 += 1;
            e.coverage.0 += u64::from(p.registered.is_some_and(|r| r <= p.returned + days(90)));
        }
        let six = p.returned + days(183);
        if !known {
            e.tte[5] += 1;
            *e.structure.entry("unknown").or_default() += 1;
            continue;
        }
        e.within6.1 += 1;
        e.within6.0 += u64::from(first_job(p).is_some_and(|f| f <= six));
        let job_at_six = p
            .jobs
            .iter()
            .find(|j| j.start <= six && j.end.is_none_or(|end| end >= six));
        e.at6.1 += 1;
        e.at6.0 += u64::from(job_at_six.is_some());
        if let Some(t) = p
            .training
            .as_ref()
            .filter(|t| t.outcome != Outcome::DroppedOut)
        {
            e.retraining.1 += 1;
            e.retraining.0 += u64::from(
                p.jobs
                    .iter()
                    .any(|j| j.start >= t.end && j.start <= t.end + days(183)),
            );
        }
        let bucket = match first_job(p).map(|f| (f - p.returned).whole_days()) {
            Some(x) if x < 91 => 0,
            Some(x) if x < 183 => 1,
            Some(x) if x < 365 => 2,
            Some(_) => 3,
            None => 4,
        };
        e.tte[bucket] += 1;
        let category = match job_at_six {
            None if p.inactive_from.is_some_and(|i| i <= six) => "inactive",
            None => "unemployed",
            Some(j) if j.contract == "SEASONAL" || j.icse18 == "43" => "seasonalTemporary",
            Some(j) if j.icse18 == "22" => "selfEmployed",
            Some(j) if j.formality == "FORMAL" => "formal",
            Some(_) => "informal",
        };
        *e.structure.entry(category).or_default() += 1;
    }
    e
}

fn ratio(v: &Value) -> (u64, u64) {
    (
        v["numerator"].as_u64().unwrap(),
        v["denominator"].as_u64().unwrap(),
    )
}

pub fn check(name: &str, got: &Value, want: &Expected) {
    assert_eq!(
        got["persons"].as_u64(),
        Some(want.persons),
        "{name}: persons"
    );
    assert_eq!(
        ratio(&got["registrationCoverage"]),
        want.coverage,
        "{name}: registration coverage"
    );
    assert_eq!(
        ratio(&got["employmentInformation"]),
        want.information,
        "{name}: employment information"
    );
    assert_eq!(
        ratio(&got["employedWithin6Months"]),
        want.within6,
        "{name}: employed within 6 months"
    );
    assert_eq!(
        ratio(&got["inEmploymentAt6Months"]),
        want.at6,
        "{name}: in employment at +6 months"
    );
    assert_eq!(
        ratio(&got["employedAfterRetraining"]),
        want.retraining,
        "{name}: employed after retraining"
    );
    let t = &got["timeToFirstEmployment"];
    let tte = [
        "under3Months",
        "months3To6",
        "months6To12",
        "over12Months",
        "notYetEmployed",
        "unknown",
    ]
    .map(|k| t[k].as_u64().unwrap());
    assert_eq!(tte, want.tte, "{name}: time to first employment");
    for k in [
        "formal",
        "informal",
        "seasonalTemporary",
        "selfEmployed",
        "unemployed",
        "inactive",
        "unknown",
    ] {
        assert_eq!(
            got["employmentStructure"][k].as_u64(),
            Some(want.structure.get(k).copied().unwrap_or(0)),
            "{name}: structure {k}"
        );
    }
}
