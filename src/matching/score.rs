//! The matching score: transparent, documented, the same for both directions.
//!
//! | term | weight | value in 0..1 |
//! |---|---|---|
//! | `essentialSkills` | 0.45 | share of the vacancy's essential ESCO skills the person has (1 when it lists none) |
//! | `occupation` | 0.25 | ISCO-08 proximity of the closest occupation the person held: same unit group 1, same minor group 0.6, sub-major 0.3, major 0.1, none 0 |
//! | `optionalSkills` | 0.10 | share of the optional skills held (1 when none are listed) |
//! | `region` | 0.10 | 1 when the job is in the person's region, else 0 |
//! | `formality` | 0.05 | 1 for a formal job, 0 for an informal one (formal jobs ranked up) |
//! | `languages` | 0.05 | share of the job's languages the person speaks (1 when none are listed) |
//!
//! A vacancy **matches** a person (the pathway KPIs count persons with at least one) when it
//! scores at least [`MATCH_SCORE`] and the person holds at least one of its essential skills (or
//! it lists none): ranking orders every vacancy, a match is one worth a referral.
//!
//! Essential skills weigh most, so a vacancy whose essential skills the person all has ranks
//! above one that shares none, other things equal; the score is the weighted sum, and every
//! answer lists each term with its weight, value and reason, and the matched and missing skills.
//! Skills are interned to numbers once ([`Interner`]) so that scoring is set arithmetic on
//! sorted vectors: one person against 10,000 vacancies, or one vacancy against 100,000 persons,
//! stays within the benchmark's bounds (BENCHMARKS.md).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::profile::CompetencyProfile;
use crate::event::identifiers::Pin;
use crate::event::vocab::Formality;
use crate::registry::offers::Offer;

/// Each term's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum TermName {
    EssentialSkills,
    Occupation,
    OptionalSkills,
    Region,
    Formality,
    Languages,
}

impl TermName {
    pub(crate) fn weight(self) -> f64 {
        match self {
            TermName::EssentialSkills => 0.45,
            TermName::Occupation => 0.25,
            TermName::OptionalSkills => 0.10,
            TermName::Region => 0.10,
            TermName::Formality => 0.05,
            TermName::Languages => 0.05,
        }
    }
}

/// One term of a score, explained.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Term {
    pub(crate) name: TermName,
    pub(crate) weight: f64,
    pub(crate) value: f64,
    pub(crate) reason: String,
}

/// Skill URIs as numbers.
#[derive(Debug, Default)]
pub struct Interner {
    ids: HashMap<String, u32>,
    uris: Vec<String>,
}

impl Interner {
    pub(crate) fn id(&mut self, uri: &str) -> u32 {
        if let Some(id) = self.ids.get(uri) {
            return *id;
        }
        let id = self.uris.len() as u32;
        self.ids.insert(uri.to_string(), id);
        self.uris.push(uri.to_string());
        id
    }

    /// The known id of a URI (no new one).
    pub(crate) fn known(&self, uri: &str) -> Option<u32> {
        self.ids.get(uri).copied()
    }

    /// The URI of an id (empty for an id it never gave).
    pub fn uri(&self, id: u32) -> &str {
        self.uris.get(id as usize).map_or("", String::as_str)
    }

    fn ids<'a>(&mut self, uris: impl IntoIterator<Item = &'a str>) -> Vec<u32> {
        let mut v: Vec<u32> = uris.into_iter().map(|u| self.id(u)).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// A vacancy, ready to score.
#[derive(Debug, Clone)]
pub struct Job {
    pub(crate) id: String,
    /// The skills as the vacancy lists them (for explanations, in its order)…
    pub(crate) essential_uris: Vec<String>,
    pub(crate) optional_uris: Vec<String>,
    /// …and as sorted numbers (for scoring).
    pub(crate) essential: Vec<u32>,
    pub(crate) optional: Vec<u32>,
    /// The ISCO-08 code of the occupation.
    pub isco08: String,
    /// The region it is in.
    pub region: Option<String>,
    pub(crate) formal: bool,
    /// The languages it asks for.
    pub languages: Vec<String>,
}

/// A person, ready to score.
#[derive(Debug, Clone)]
pub struct Seeker {
    pub(crate) pin: Pin,
    /// The person's skills as sorted numbers.
    pub skills: Vec<u32>,
    /// Those of `skills` a verifiable credential attests (sorted).
    pub(crate) verified: Vec<u32>,
    pub(crate) iscos: Vec<String>,
    /// The region the person is in.
    pub region: Option<String>,
    /// The person's preferred languages.
    pub languages: Vec<String>,
}

/// The strings of the array `key` of `v` (e.g. an offer's skills).
pub(crate) fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect()
}

impl Job {
    /// A vacancy as the scores take it, its skills numbered by `interner`.
    pub fn of(offer: &Offer, interner: &mut Interner) -> Job {
        let d = &offer.description;
        let (essential_uris, optional_uris) =
            (strings(d, "essentialSkills"), strings(d, "optionalSkills"));
        Job {
            id: offer.id.clone(),
            essential: interner.ids(essential_uris.iter().map(String::as_str)),
            optional: interner.ids(optional_uris.iter().map(String::as_str)),
            essential_uris,
            optional_uris,
            isco08: d
                .get("isco08")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            region: offer.region().map(String::from),
            formal: d
                .get("formality")
                .and_then(|f| Formality::deserialize(f).ok())
                == Some(Formality::Formal),
            languages: strings(d, "languages"),
        }
    }
}

impl Seeker {
    /// A person as the scores take it, their skills numbered by `interner`.
    pub fn of(pin: &Pin, profile: &CompetencyProfile, interner: &mut Interner) -> Seeker {
        Seeker {
            pin: pin.clone(),
            skills: interner.ids(profile.skill_uris()),
            verified: interner.ids(profile.verified_uris()),
            iscos: profile
                .occupations
                .iter()
                .map(|o| o.isco08.clone())
                .collect(),
            region: profile.region.clone(),
            languages: profile.languages.clone(),
        }
    }
}

/// How many of `wanted` (sorted) are in `held` (sorted).
fn overlap(wanted: &[u32], held: &[u32]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < wanted.len() && j < held.len() {
        match wanted[i].cmp(&held[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

fn share(n: usize, of: usize) -> f64 {
    if of == 0 {
        1.0
    } else {
        n as f64 / of as f64
    }
}

/// ISCO-08 proximity of two unit groups (see the table above), and the level they share.
pub(crate) fn isco_proximity(a: &str, b: &str) -> (f64, &'static str) {
    let common = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    match common.min(a.len()).min(b.len()) {
        4 => (1.0, "same unit group"),
        3 => (0.6, "same minor group"),
        2 => (0.3, "same sub-major group"),
        1 => (0.1, "same major group"),
        _ => (0.0, "different major group"),
    }
}

/// What a score is made of, before weighting: counts and the occupation's proximity.
struct Parts {
    essential: usize,
    optional: usize,
    occupation: f64,
    level: &'static str,
    region: bool,
    spoken: usize,
}

fn parts(seeker: &Seeker, job: &Job) -> Parts {
    let (occupation, level) = seeker
        .iscos
        .iter()
        .map(|i| isco_proximity(i, &job.isco08))
        .fold((0.0, "no occupation known"), |best, p| {
            if p.0 > best.0 {
                p
            } else {
                best
            }
        });
    Parts {
        essential: overlap(&job.essential, &seeker.skills),
        optional: overlap(&job.optional, &seeker.skills),
        occupation,
        level,
        region: seeker.region.is_some() && seeker.region == job.region,
        spoken: job
            .languages
            .iter()
            .filter(|l| seeker.languages.contains(l))
            .count(),
    }
}

impl Parts {
    /// Each term's value in 0..1, in [`TermName`] order.
    fn values(&self, job: &Job) -> [(TermName, f64); 6] {
        [
            (
                TermName::EssentialSkills,
                share(self.essential, job.essential.len()),
            ),
            (TermName::Occupation, self.occupation),
            (
                TermName::OptionalSkills,
                share(self.optional, job.optional.len()),
            ),
            (TermName::Region, f64::from(u8::from(self.region))),
            (TermName::Formality, f64::from(u8::from(job.formal))),
            (TermName::Languages, share(self.spoken, job.languages.len())),
        ]
    }
}

/// The least score of a match.
pub(crate) const MATCH_SCORE: f64 = 0.5;

/// Whether `job` matches `seeker` (see the module's doc).
pub(crate) fn is_match(seeker: &Seeker, job: &Job) -> bool {
    let shares_essential = job.essential.is_empty() || overlap(&job.essential, &seeker.skills) > 0;
    shares_essential && total(seeker, job) >= MATCH_SCORE
}

/// The score of `job` for `seeker` (the weighted sum, without the explanations).
pub fn total(seeker: &Seeker, job: &Job) -> f64 {
    parts(seeker, job)
        .values(job)
        .iter()
        .map(|(name, value)| name.weight() * value)
        .sum()
}

/// The score of `job` for `seeker`, with its terms explained.
pub fn score(seeker: &Seeker, job: &Job) -> (f64, Vec<Term>) {
    let p = parts(seeker, job);
    let terms: Vec<Term> = p
        .values(job)
        .into_iter()
        .map(|(name, value)| {
            let reason = match name {
                TermName::EssentialSkills => format!(
                    "{} of {} essential skills held{}",
                    p.essential,
                    job.essential.len(),
                    verified(&job.essential, seeker)
                ),
                TermName::Occupation => format!("ISCO-08 {}: {}", job.isco08, p.level),
                TermName::OptionalSkills => format!(
                    "{} of {} optional skills held{}",
                    p.optional,
                    job.optional.len(),
                    verified(&job.optional, seeker)
                ),
                TermName::Region if p.region => "in the person's region".into(),
                TermName::Region => "outside the person's region".into(),
                TermName::Formality if job.formal => "a formal job".into(),
                TermName::Formality => "an informal job".into(),
                TermName::Languages => {
                    format!("{} of {} languages spoken", p.spoken, job.languages.len())
                }
            };
            term(name, value, reason)
        })
        .collect();
    let total = terms.iter().map(|t| t.weight * t.value).sum();
    (total, terms)
}

/// How many of the `wanted` skills the seeker holds a credential attests, as a reason says it
/// (nothing when none).
fn verified(wanted: &[u32], seeker: &Seeker) -> String {
    match overlap(wanted, &seeker.verified) {
        0 => String::new(),
        n => format!(", {n} verified by a credential"),
    }
}

fn term(name: TermName, value: f64, reason: String) -> Term {
    Term {
        name,
        weight: name.weight(),
        value,
        reason,
    }
}

/// The skills of `wanted` (URIs, in their order) the seeker holds, and those it lacks.
pub(crate) fn split_skills(
    wanted: &[String],
    held: &[u32],
    interner: &Interner,
) -> (Vec<String>, Vec<String>) {
    wanted.iter().cloned().partition(|uri| {
        interner
            .known(uri)
            .is_some_and(|id| held.binary_search(&id).is_ok())
    })
}

/// The `limit` best of `items` by `score`, best first; ties keep the input's order, so
/// rankings are stable.
pub fn top<T>(
    items: impl Iterator<Item = T>,
    limit: usize,
    score: impl Fn(&T) -> f64,
) -> Vec<(f64, T)> {
    let mut scored: Vec<(f64, usize, T)> =
        items.enumerate().map(|(i, t)| (score(&t), i, t)).collect();
    let cmp = |a: &(f64, usize, T), b: &(f64, usize, T)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    if scored.len() > limit {
        scored.select_nth_unstable_by(limit, cmp);
        scored.truncate(limit);
    }
    scored.sort_by(cmp);
    scored.into_iter().map(|(s, _, t)| (s, t)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, essential: &[u32], isco: &str, formal: bool) -> Job {
        Job {
            id: id.into(),
            essential_uris: vec![],
            optional_uris: vec![],
            essential: essential.to_vec(),
            optional: vec![],
            isco08: isco.into(),
            region: Some("KG-C".into()),
            formal,
            languages: vec![],
        }
    }

    fn seeker(skills: &[u32], isco: &str) -> Seeker {
        Seeker {
            pin: "21503199012345".parse().unwrap(),
            skills: skills.to_vec(),
            verified: Vec::new(),
            iscos: vec![isco.into()],
            region: Some("KG-C".into()),
            languages: vec!["ky".into()],
        }
    }

    #[test]
    fn all_essential_skills_rank_above_none_other_things_equal() {
        let s = seeker(&[1, 2, 3], "7131");
        let all = score(&s, &job("a", &[1, 2, 3], "7131", true)).0;
        let none = score(&s, &job("b", &[7, 8, 9], "7131", true)).0;
        assert!(all > none, "{all} vs {none}");
    }

    #[test]
    fn a_reason_says_how_many_skills_a_credential_verifies_and_the_score_does_not_change() {
        let mut s = seeker(&[1, 2, 3], "7131");
        let j = job("a", &[1, 2, 9], "7131", true);
        let (before, terms) = score(&s, &j);
        assert_eq!(terms[0].reason, "2 of 3 essential skills held");
        s.verified = vec![2, 3];
        let (after, terms) = score(&s, &j);
        assert_eq!(
            terms[0].reason,
            "2 of 3 essential skills held, 1 verified by a credential"
        );
        assert_eq!(before, after);
    }

    #[test]
    fn the_same_unit_group_ranks_above_another_major_group() {
        let s = seeker(&[1], "7131");
        let same = score(&s, &job("a", &[1], "7131", true)).0;
        let minor = score(&s, &job("b", &[1], "7132", true)).0;
        let other = score(&s, &job("c", &[1], "5120", true)).0;
        assert!(same > minor && minor > other, "{same} {minor} {other}");
    }

    #[test]
    fn a_formal_job_ranks_above_an_identical_informal_one() {
        let s = seeker(&[1], "7131");
        let ranked = top(
            [
                job("informal", &[1], "7131", false),
                job("formal", &[1], "7131", true),
            ]
            .into_iter(),
            2,
            |j| total(&s, j),
        );
        assert_eq!(ranked[0].1.id, "formal");
    }

    #[test]
    fn the_terms_add_up_and_skills_split_into_matched_and_missing() {
        let mut i = Interner::default();
        let (a, b, c) = (i.id("x:a"), i.id("x:b"), i.id("x:c"));
        assert!(b != c);
        let s = seeker(&[a, b], "7131");
        let mut j = job("j", &[a, c], "7131", true);
        j.essential_uris = vec!["x:c".into(), "x:a".into()];
        let (total, terms) = score(&s, &j);
        let sum: f64 = terms.iter().map(|t| t.weight * t.value).sum();
        assert!((total - sum).abs() < 1e-12);
        assert!(
            (super::total(&s, &j) - total).abs() < 1e-12,
            "one rule for both"
        );
        assert!((terms.iter().map(|t| t.weight).sum::<f64>() - 1.0).abs() < 1e-12);
        let (matched, missing) = split_skills(&j.essential_uris, &s.skills, &i);
        assert_eq!(
            (matched, missing),
            (vec!["x:a".to_string()], vec!["x:c".to_string()])
        );
    }

    #[test]
    fn top_keeps_the_best_in_order() {
        let got = top([3.0, 1.0, 5.0, 2.0].into_iter(), 2, |x| *x);
        assert_eq!(got.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [5.0, 3.0]);
    }
}
