//! A person's competency profile, derived from what their registry view holds at this node:
//! the occupation abroad and the skills acquired there (returnee-record), credentials' learning
//! outcomes and the skills of courses completed (training-enrolment), the profiling segment and
//! the occupations of jobs held (employment-status). Each skill and occupation says where it came
//! from and when, and a skill whether a verifiable credential attests it; what the node may not see (consent) is not in the view, so not in the profile.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;
use time::Date;

use crate::event::vocab::{self, iso_date, Segment};
use crate::registry::view::PersonView;

/// Where a skill in the profile comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkillSource {
    /// Acquired abroad, as the returnee record states (with its evidence).
    AcquiredAbroad,
    /// A learning outcome of a credential awarded.
    Credential,
    /// Taught by a course the person completed.
    CompletedCourse,
}

/// Where an occupation in the profile comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OccupationSource {
    /// The main occupation abroad (returnee record).
    Abroad,
    /// A job held since return (employment status).
    Job,
}

/// A skill the person has, with where that is known from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileSkill {
    /// The ESCO skill, when the source names one (only these can be matched).
    pub esco: Option<String>,
    /// The skill as the source words it.
    pub label: Option<Value>,
    /// Where the profile learned of it.
    pub source: SkillSource,
    /// When it was acquired or attested (return date, issue date, completion date).
    #[serde(with = "iso_date::option")]
    pub date: Option<Date>,
    /// How it is attested (for skills acquired abroad).
    pub evidence: Option<String>,
    /// Whether a verifiable credential its holder keeps attests it (a course or credential
    /// outcome of an enrolment whose completion the issuer attested and has not revoked).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub verified: bool,
}

/// An occupation the person has worked in or aims at.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileOccupation {
    /// Its ISCO-08 code.
    pub isco08: String,
    /// Its ESCO URI, when the source names one.
    pub esco: Option<String>,
    /// Where the profile learned of it.
    pub source: OccupationSource,
    /// When (the job's start, the profiling's date), if known.
    #[serde(with = "iso_date::option")]
    pub date: Option<Date>,
}

/// The profile.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompetencyProfile {
    /// The skills, whatever their source.
    pub skills: Vec<ProfileSkill>,
    /// The occupations held or aimed at.
    pub occupations: Vec<ProfileOccupation>,
    /// The employment service's profiling segment.
    pub segment: Option<Segment>,
    /// The region the person returned to (the returnee record's).
    pub region: Option<String>,
    /// The person's preferred languages.
    pub languages: Vec<String>,
}

impl CompetencyProfile {
    /// The ESCO skills the profile holds, whatever their source.
    pub fn skill_uris(&self) -> BTreeSet<&str> {
        self.skills
            .iter()
            .filter_map(|s| s.esco.as_deref())
            .collect()
    }

    /// The ESCO skills a verifiable credential attests.
    pub fn verified_uris(&self) -> BTreeSet<&str> {
        self.skills
            .iter()
            .filter(|s| s.verified)
            .filter_map(|s| s.esco.as_deref())
            .collect()
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(String::from)
}

/// Derive the profile from a view, no skill verified.
pub fn of(view: &PersonView) -> CompetencyProfile {
    of_attested(view, &BTreeSet::new())
}

/// Derive the profile from a view whose enrolments `attested` (by id) a credential attests
/// (`registry::attestations::attested_enrolments`): their skills are verified.
pub fn of_attested(view: &PersonView, attested: &BTreeSet<String>) -> CompetencyProfile {
    let mut p = CompetencyProfile::default();
    if let Some(r) = &view.returnee {
        let returned = r.return_date;
        p.region = r.region.clone();
        p.languages.extend(r.preferred_language.clone());
        if let Some(o) = &r.occupation_abroad {
            if let Some(isco08) = text(o, "isco08") {
                p.occupations.push(ProfileOccupation {
                    isco08,
                    esco: text(o, "esco"),
                    source: OccupationSource::Abroad,
                    date: returned,
                });
            }
        }
        for s in &r.skills_acquired {
            p.skills.push(ProfileSkill {
                esco: text(s, "esco"),
                label: s.get("label").cloned(),
                source: SkillSource::AcquiredAbroad,
                date: returned,
                evidence: text(s, "evidence"),
                verified: false,
            });
        }
    }
    for e in &view.enrolments {
        let verified = attested.contains(&e.enrolment_id);
        for c in &e.credentials {
            let issued = c
                .get("issueDate")
                .and_then(Value::as_str)
                .and_then(vocab::date);
            for o in c
                .get("learningOutcomes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                p.skills.push(ProfileSkill {
                    esco: text(o, "esco"),
                    label: o.get("description").cloned(),
                    source: SkillSource::Credential,
                    date: issued,
                    evidence: None,
                    verified,
                });
            }
        }
        if let (Some(done), Some(course)) = (e.completed_on, &e.course) {
            for s in course
                .get("skills")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                p.skills.push(ProfileSkill {
                    esco: s.as_str().map(String::from),
                    label: None,
                    source: SkillSource::CompletedCourse,
                    date: Some(done),
                    evidence: None,
                    verified,
                });
            }
        }
    }
    for s in &view.spells {
        p.occupations.push(ProfileOccupation {
            isco08: s.isco08.clone(),
            esco: None,
            source: OccupationSource::Job,
            date: Some(s.start_date),
        });
    }
    p.segment = view.profiling.as_ref().map(|p| p.segment);
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::view::Enrolment;

    #[test]
    fn the_skills_of_an_attested_enrolment_are_verified_and_no_others() {
        let skill = "http://data.europa.eu/esco/skill/9a8b7c6d-1111-2222-3333-444455556666";
        let enrolment = |id: &str| Enrolment {
            enrolment_id: id.into(),
            status: vocab::TrainingEvent::Certified,
            course: Some(serde_json::json!({"skills": [skill]})),
            completed_on: vocab::date("2026-07-05"),
            ..Enrolment::default()
        };
        let mut view = PersonView::new("21503199012345".parse().unwrap());
        view.enrolments = vec![enrolment("EDU-1"), enrolment("EDU-2")];
        let attested = BTreeSet::from(["EDU-2".to_string()]);
        let p = of_attested(&view, &attested);
        let verified: Vec<bool> = p.skills.iter().map(|s| s.verified).collect();
        assert_eq!(verified, [false, true]);
        assert_eq!(p.verified_uris(), BTreeSet::from([skill]));
        assert!(of(&view).verified_uris().is_empty());
    }
}
