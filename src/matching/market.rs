//! The labour market in aggregate: today's open vacancies against the returnees this node holds.
//!
//! - which persons have at least one matching vacancy ([`persons_with_a_match`], for the
//!   pathway KPIs; "a match" is [`score::is_match`]);
//! - the **skills gap** of each region ([`skills_gap`]): the skills that open vacancies in the
//!   region demand (essential skills, weighted by openings), how many of the region's returnees
//!   lack each, and the open courses that teach it (those in the region first).
//!
//! Aggregates only: counts of persons under the KPIs' small-cell threshold are suppressed, and
//! no PIN leaves this module.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use super::esco::{CodeLists, Labels};
use super::profile;
use super::score::{self, strings, Interner, Job, Seeker};
use crate::event::identifiers::Pin;
use crate::registry::kpi::{reveals_few, SMALL_CELL};
use crate::registry::offers::{self, Offer, OfferKind};
use crate::registry::view::PersonView;
use crate::store::{Store, StoreError};

/// Most skills listed per region, most demanded first.
const SKILLS_PER_REGION: usize = 10;
/// Most courses listed per skill.
const COURSES_PER_SKILL: usize = 3;

/// The PINs of persons with at least one open vacancy that matches; `None` when `vacancies` is
/// empty (no vacancy held: the indicator is not reported rather than zero).
pub(crate) fn persons_with_a_match(
    views: &[PersonView],
    vacancies: &[Offer],
) -> Option<HashSet<Pin>> {
    if vacancies.is_empty() {
        return None;
    }
    let mut interner = Interner::default();
    let jobs: Vec<Job> = vacancies
        .iter()
        .filter(|o| o.open)
        .map(|o| Job::of(o, &mut interner))
        .collect();
    // Only a vacancy sharing an essential skill (or listing none) can match: index them by skill.
    let mut by_skill: HashMap<u32, Vec<usize>> = HashMap::new();
    let mut without_essentials = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        if job.essential.is_empty() {
            without_essentials.push(i);
        }
        for s in &job.essential {
            by_skill.entry(*s).or_default().push(i);
        }
    }
    let matched = views
        .iter()
        .filter(|v| {
            let seeker = Seeker::of(&v.pin, &profile::of(v), &mut interner);
            let mut candidates: Vec<usize> = seeker
                .skills
                .iter()
                .filter_map(|s| by_skill.get(s))
                .flatten()
                .chain(&without_essentials)
                .copied()
                .collect();
            candidates.sort_unstable();
            candidates.dedup();
            candidates
                .into_iter()
                .any(|i| score::is_match(&seeker, &jobs[i]))
        })
        .map(|v| v.pin.clone())
        .collect();
    Some(matched)
}

/// [`persons_with_a_match`] against the vacancies `store` holds (for the KPIs, in the API and
/// in `jol kpi`).
pub(crate) fn persons_with_a_match_held(
    store: &Store,
    views: &[PersonView],
) -> Result<Option<HashSet<Pin>>, StoreError> {
    let vacancies = offers::all(store, OfferKind::Vacancy)?;
    Ok(persons_with_a_match(views, &vacancies))
}

/// The skills gap, region by region.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SkillsGap {
    /// Counts of persons under this are suppressed (`null`), when suppression is on.
    pub(crate) suppressed_below: Option<u64>,
    pub(crate) regions: BTreeMap<String, RegionGap>,
}

/// One region's demand and what its returnees lack.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RegionGap {
    pub(crate) open_vacancies: u64,
    pub(crate) openings: u64,
    /// Returnees whose region this is.
    pub(crate) returnees: Option<u64>,
    pub skills: Vec<SkillGap>,
}

/// One demanded skill in a region.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SkillGap {
    pub uri: String,
    pub label: Option<Labels>,
    /// Openings of the region's open vacancies that list it as essential.
    pub(crate) demand: u64,
    /// The region's returnees who do not hold it.
    pub(crate) returnees_lacking: Option<u64>,
    pub(crate) share_lacking: Option<f64>,
    /// Open courses that teach it, the region's first.
    pub(crate) courses: Vec<CourseRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CourseRef {
    pub(crate) course_code: String,
    pub(crate) title: Option<Value>,
    pub region: Option<String>,
    pub(crate) in_region: bool,
}

fn openings(offer: &Offer) -> u64 {
    offer
        .description
        .get("openings")
        .and_then(Value::as_u64)
        .unwrap_or(1)
}

/// The skills gap of every region with open vacancies; `suppress` blanks person counts under
/// [`SMALL_CELL`], and counts of those lacking a skill that leave fewer than that holding it
/// ([`reveals_few`]).
pub(crate) fn skills_gap(
    views: &[PersonView],
    vacancies: &[Offer],
    courses: &[Offer],
    suppress: bool,
) -> SkillsGap {
    // Each region's returnees, as the sets of skills they hold.
    let mut held: HashMap<String, Vec<HashSet<String>>> = HashMap::new();
    for v in views {
        let p = profile::of(v);
        if let Some(region) = p.region.clone() {
            let skills = p.skill_uris().into_iter().map(String::from).collect();
            held.entry(region).or_default().push(skills);
        }
    }
    let mut demand: BTreeMap<String, (u64, u64, BTreeMap<String, u64>)> = BTreeMap::new();
    for v in vacancies.iter().filter(|o| o.open) {
        let Some(region) = v.region() else {
            continue;
        };
        let entry = demand.entry(region.to_string()).or_default();
        entry.0 += 1;
        entry.1 += openings(v);
        for s in strings(&v.description, "essentialSkills") {
            *entry.2.entry(s).or_default() += openings(v);
        }
    }
    let cell = |n: u64| (!suppress || n >= SMALL_CELL).then_some(n);
    let regions = demand
        .into_iter()
        .map(|(region, (open_vacancies, openings, skills))| {
            let people = held.get(&region).map_or(&[][..], Vec::as_slice);
            let mut ranked: Vec<(String, u64)> = skills.into_iter().collect();
            ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let skills = ranked
                .into_iter()
                .take(SKILLS_PER_REGION)
                .map(|(uri, demand)| {
                    let lacking = people.iter().filter(|p| !p.contains(&uri)).count() as u64;
                    let whole = people.len() as u64;
                    // Those who hold the skill are counted too: "all but two lack it" names
                    // the two as much as "two lack it" does.
                    let shown = Some(lacking).filter(|_| !suppress || !reveals_few(lacking, whole));
                    SkillGap {
                        label: CodeLists::get().skill(&uri).cloned(),
                        courses: teaching(&uri, &region, courses),
                        share_lacking: shown
                            .filter(|_| !people.is_empty())
                            .map(|n| n as f64 / people.len() as f64),
                        returnees_lacking: shown,
                        uri,
                        demand,
                    }
                })
                .collect();
            let gap = RegionGap {
                open_vacancies,
                openings,
                returnees: cell(people.len() as u64),
                skills,
            };
            (region, gap)
        })
        .collect();
    SkillsGap {
        suppressed_below: suppress.then_some(SMALL_CELL),
        regions,
    }
}

/// Open courses teaching `skill`, those in `region` first.
fn teaching(skill: &str, region: &str, courses: &[Offer]) -> Vec<CourseRef> {
    let mut found: Vec<CourseRef> = courses
        .iter()
        .filter(|c| {
            c.open
                && strings(&c.description, "skillsTaught")
                    .iter()
                    .any(|s| s == skill)
        })
        .map(|c| CourseRef {
            course_code: c.id.clone(),
            title: c.description.get("title").cloned(),
            in_region: c.region() == Some(region),
            region: c.region().map(String::from),
        })
        .collect();
    found.sort_by(|a, b| {
        b.in_region
            .cmp(&a.in_region)
            .then(a.course_code.cmp(&b.course_code))
    });
    found.truncate(COURSES_PER_SKILL);
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::view::Returnee;
    use serde_json::json;

    const PAINT: &str = "http://data.europa.eu/esco/skill/paint-a";
    const PLASTER: &str = "http://data.europa.eu/esco/skill/plaster-b";

    fn offer(kind: OfferKind, id: &str, description: Value) -> Offer {
        Offer {
            kind,
            id: id.into(),
            source: "central-server/GOV/70000002/employment".into(),
            open: true,
            event_date: "2026-09-01".into(),
            position: 1,
            description,
        }
    }

    fn returnee(pin: &Pin, region: &str, skills: &[&str]) -> PersonView {
        PersonView {
            returnee: Some(Returnee {
                return_date: crate::event::vocab::date("2024-01-01"),
                region: Some(region.into()),
                occupation_abroad: Some(json!({"isco08": "7131"})),
                skills_acquired: skills.iter().map(|s| json!({"esco": s})).collect(),
                ..Returnee::default()
            }),
            ..PersonView::new(pin.clone())
        }
    }

    /// The `i`th of a run of PINs.
    fn pin(i: usize) -> Pin {
        format!("2150319901{i:04}").parse().unwrap()
    }

    #[test]
    fn a_match_needs_an_essential_skill_and_the_gap_counts_who_lacks_it() {
        let painter = offer(
            OfferKind::Vacancy,
            "V1",
            json!({"isco08": "7131", "region": "KG-C", "formality": "FORMAL", "openings": 3,
                   "essentialSkills": [PAINT, PLASTER]}),
        );
        let course = offer(
            OfferKind::Course,
            "C1",
            json!({"title": {"en": "Plastering"}, "region": "KG-C", "skillsTaught": [PLASTER]}),
        );
        let mut views: Vec<PersonView> = (0..6)
            .map(|i| returnee(&pin(i), "KG-C", &[PAINT]))
            .collect();
        views.push(returnee(&pin(6), "KG-C", &[]));
        let with = persons_with_a_match(&views, std::slice::from_ref(&painter)).unwrap();
        assert!(with.contains(&pin(0)) && !with.contains(&pin(6)));
        assert!(persons_with_a_match(&views, &[]).is_none());
        // Five who hold both.
        views.extend((7..12).map(|i| returnee(&pin(i), "KG-C", &[PAINT, PLASTER])));

        let gap = skills_gap(
            &views,
            std::slice::from_ref(&painter),
            std::slice::from_ref(&course),
            true,
        );
        let c = &gap.regions["KG-C"];
        assert_eq!(
            (c.open_vacancies, c.openings, c.returnees),
            (1, 3, Some(12))
        );
        let plaster = c.skills.iter().find(|s| s.uri == PLASTER).unwrap();
        assert_eq!(plaster.returnees_lacking, Some(7));
        assert_eq!(plaster.courses[0].course_code, "C1");
        // One person lacks painting: a small cell, suppressed.
        let paint = c.skills.iter().find(|s| s.uri == PAINT).unwrap();
        assert_eq!(paint.returnees_lacking, None);
        assert_eq!(paint.demand, 3);
        // Four hold plastering: "all but four lack it" names the four; so does "all lack it".
        for holders in [4, 0] {
            let fewer = &views[..7 + holders];
            let gap = skills_gap(
                fewer,
                std::slice::from_ref(&painter),
                std::slice::from_ref(&course),
                true,
            );
            let plaster = gap.regions["KG-C"].skills.iter().find(|s| s.uri == PLASTER);
            assert_eq!(
                plaster.unwrap().returnees_lacking,
                None,
                "{holders} hold it"
            );
        }
    }
}
