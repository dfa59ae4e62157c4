//! Synthetic vacancies, course offers and job-seekers' competency profiles, drawn from the
//! shipped ESCO subset, in the regions returnees come back to (weighted as the population is): each vacancy asks for the essential skills of a real ESCO occupation
//! (some dropped, as real vacancies list fewer), each seeker holds part of an occupation's
//! skills. For the matching benchmark and the demo; never used by a serving node.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use jol::matching::esco::{CodeLists, Occupation};
use jol::matching::profile::{
    CompetencyProfile, OccupationSource, ProfileOccupation, ProfileSkill, SkillSource,
};

/// A region, weighted as returnees are (demand follows the population).
fn region(rng: &mut StdRng) -> &'static str {
    super::population::pick(rng, &super::population::REGIONS)
}

fn occupation(rng: &mut StdRng) -> &'static Occupation {
    let all = &CodeLists::get().occupations;
    &all[rng.random_range(0..all.len())]
}

fn some_of(rng: &mut StdRng, skills: &[String], keep: f64) -> Vec<String> {
    skills
        .iter()
        .filter(|_| rng.random_bool(keep))
        .cloned()
        .collect()
}

/// Vacancy data (valid against `vacancy.v1.json`) number `i` of a generator seeded `seed`.
pub fn vacancy_data(i: usize, seed: u64) -> Value {
    let mut rng = StdRng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9E37_79B9));
    let o = occupation(&mut rng);
    let mut essential = some_of(&mut rng, &o.essential_skills, 0.85);
    if essential.is_empty() {
        essential.push(o.essential_skills[0].clone());
    }
    let formal = rng.random_bool(0.55);
    json!({
        "event": "VACANCY_OPENED", "eventDate": "2026-09-01", "purpose": "EMPLOYMENT_SERVICES",
        "legalBasis": "Law on Employment Promotion, art. 9", "vacancyId": format!("VAC-{i:06}"),
        "title": o.label, "isco08": o.isco08, "escoOccupation": o.uri,
        "essentialSkills": essential, "optionalSkills": some_of(&mut rng, &o.optional_skills, 0.6),
        "region": region(&mut rng),
        "formality": if formal { "FORMAL" } else { "INFORMAL" },
        "contractType": if formal { "PERMANENT" } else { "CASUAL" },
        "languages": if rng.random_bool(0.5) { json!(["ky", "ru"]) } else { json!(["ky"]) },
        "openings": rng.random_range(1..=5),
    })
}

/// Course-offer data (valid against `course-offer.v1.json`) number `i`.
pub fn course_data(i: usize, seed: u64) -> Value {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xC0_55E5 ^ (i as u64).wrapping_mul(0x85EB_CA6B));
    let o = occupation(&mut rng);
    json!({
        "event": "COURSE_OFFERED", "eventDate": "2026-08-20", "purpose": "TRAINING_SERVICES",
        "legalBasis": "Law on Education, art. 31", "courseCode": format!("EDU-C-{i:05}"),
        "title": o.label, "provider": {"name": "Professional Lyceum"}, "targetIsco08": o.isco08,
        "skillsTaught": o.essential_skills, "region": region(&mut rng),
        "mode": "IN_PERSON", "hours": rng.random_range(80..=400), "seats": 20, "funding": "STATE",
    })
}

/// A job-seeker's profile number `i`: an occupation held abroad, part of its skills.
pub fn seeker_profile(i: usize, seed: u64) -> CompetencyProfile {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5EE4 ^ (i as u64).wrapping_mul(0xC2B2_AE35));
    let o = occupation(&mut rng);
    let skills = some_of(&mut rng, &o.essential_skills, 0.6)
        .into_iter()
        .chain(some_of(&mut rng, &o.optional_skills, 0.3))
        .map(|esco| ProfileSkill {
            esco: Some(esco),
            label: None,
            source: SkillSource::AcquiredAbroad,
            date: None,
            evidence: Some("SELF_DECLARED".into()),
            verified: false,
        })
        .collect();
    CompetencyProfile {
        skills,
        occupations: vec![ProfileOccupation {
            isco08: o.isco08.clone(),
            esco: Some(o.uri.clone()),
            source: OccupationSource::Abroad,
            date: None,
        }],
        segment: None,
        region: Some(region(&mut rng).to_string()),
        languages: vec!["ky".into()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jol::event::schema::{EventType, Schemas};

    #[test]
    fn generated_offers_are_valid_events() {
        let schemas = Schemas::load().unwrap();
        for i in 0..50 {
            schemas
                .validate(EventType::Vacancy, &vacancy_data(i, 7))
                .unwrap();
            schemas
                .validate(EventType::CourseOffer, &course_data(i, 7))
                .unwrap();
        }
        assert!(!seeker_profile(1, 7).occupations.is_empty());
    }
}
