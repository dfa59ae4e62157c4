//! Matching through the local API: open vacancies and courses, a person's ranked vacancies, a
//! vacancy's ranked candidates, and courses that close a person's gap. Person-level answers go
//! through the same purpose check as a person lookup and are written to the access log first.

use std::collections::{BTreeMap, BTreeSet};

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};

use super::{Caller, LocalApi};
use crate::event::identifiers::Pin;
use crate::matching::esco::CodeLists;
use crate::matching::market;
use crate::matching::profile::{self, CompetencyProfile};
use crate::matching::score::{self, split_skills, strings, Interner, Job, Seeker};
use crate::net::http::{self, storage_problem, Problem, ProblemKind, Response};
use crate::policy::access::{self, Reader};
use crate::registry::offers::{self, Offer, OfferKind};

/// Most results one ranking returns.
const MAX_LIMIT: u64 = 100;

impl LocalApi {
    /// `GET /api/v1/vacancies` and `/api/v1/courses`: the offers this node holds (`?open=false`
    /// for all, closed ones too).
    pub(super) fn list_offers(
        &self,
        kind: OfferKind,
        query: Option<&str>,
    ) -> Result<Response, Problem> {
        let only_open = http::query_param(query, "open") != Some("false");
        let all = offers::all(&self.store, kind).map_err(storage_problem)?;
        let listed: Vec<&Offer> = all.iter().filter(|o| o.open || !only_open).collect();
        Ok(http::json(StatusCode::OK, &json!({"offers": listed})))
    }

    /// `GET /api/v1/skills-gap`: for each region, the skills open vacancies demand that its
    /// returnees lack, with courses that teach them; person counts under 5 suppressed (see
    /// `suppression` for who may ask otherwise).
    pub(super) fn skills_gap(
        &self,
        query: Option<&str>,
        caller: &Caller,
    ) -> Result<Response, Problem> {
        let cells = self.suppression(query, caller, "the skills gap with small cells shown")?;
        let views = super::registry::all_views(&self.store)?;
        cells.record(&self.store, &views)?;
        let vacancies = offers::all(&self.store, OfferKind::Vacancy).map_err(storage_problem)?;
        let courses = offers::all(&self.store, OfferKind::Course).map_err(storage_problem)?;
        let gap = market::skills_gap(&views, &vacancies, &courses, cells.suppressed());
        Ok(http::json(StatusCode::OK, &gap))
    }

    /// `GET /api/v1/persons/{pin}/matches?limit=K`: open vacancies ranked for the person.
    pub(super) fn person_matches(
        &self,
        req: &Request<Incoming>,
        pin: &str,
        who: &Reader,
    ) -> Result<Response, Problem> {
        let (pin, profile) = self.profile_for(pin, who, "vacancies matched to the person")?;
        let limit = limit(req)?;
        let mut interner = Interner::default();
        let seeker = Seeker::of(&pin, &profile, &mut interner);
        let jobs = self.open_jobs(&mut interner)?;
        let ranked = score::top(jobs.iter(), limit, |(j, _)| score::total(&seeker, j));
        let matches: Vec<Value> = ranked
            .iter()
            .map(|(_, (job, offer))| explain(&seeker, job, offer, &interner))
            .collect();
        Ok(http::json(
            StatusCode::OK,
            &json!({"pin": pin, "competencyProfile": profile, "matches": matches}),
        ))
    }

    /// `GET /api/v1/vacancies/{id}/candidates?limit=K`: persons ranked for an open vacancy,
    /// each as this token may be served them (`registry::serve`): the agency's own file, and
    /// what others sent only where the person's consent names this node and the purpose.
    pub(super) fn vacancy_candidates(
        &self,
        req: &Request<Incoming>,
        id: &str,
        who: &Reader,
    ) -> Result<Response, Problem> {
        let offer = offers::get(&self.store, OfferKind::Vacancy, id)
            .map_err(storage_problem)?
            .ok_or_else(|| {
                Problem::new(
                    ProblemKind::VacancyNotFound,
                    "this node holds no vacancy with that id",
                )
            })?;
        let limit = limit(req)?;
        let mut interner = Interner::default();
        let job = Job::of(&offer, &mut interner);
        let views = super::registry::all_views(&self.store)?;
        let views = crate::registry::serve::views(&self.store, views, self.user(who))
            .map_err(storage_problem)?;
        let seekers: Vec<Seeker> = views
            .iter()
            .map(|v| Seeker::of(&v.pin, &profile::of(v), &mut interner))
            .collect();
        let ranked = score::top(seekers.iter(), limit, |s| score::total(s, &job));
        let what = format!("ranked as a candidate for vacancy {id}");
        access::record_reads(&self.store, who, &what, ranked.iter().map(|(_, s)| &s.pin))
            .map_err(storage_problem)?;
        // The ranked ones' skills that credentials attest (the score does not depend on it).
        let mut attested = Vec::with_capacity(ranked.len());
        for (_, s) in &ranked {
            let seeker = match views.iter().find(|v| v.pin == s.pin) {
                Some(view) => Seeker::of(&s.pin, &self.attested_profile(view)?, &mut interner),
                None => (*s).clone(),
            };
            attested.push(seeker);
        }
        let candidates: Vec<Value> = attested
            .iter()
            .map(|s| {
                let mut e = explain(s, &job, &offer, &interner);
                e["pin"] = s.pin.expose().into();
                e
            })
            .collect();
        Ok(http::json(
            StatusCode::OK,
            &json!({"vacancyId": id, "candidates": candidates}),
        ))
    }

    /// `GET /api/v1/persons/{pin}/courses`: open courses that teach the essential skills the
    /// person lacks for their best vacancies, most gap closed first.
    pub(super) fn person_courses(&self, pin: &str, who: &Reader) -> Result<Response, Problem> {
        let (pin, profile) = self.profile_for(pin, who, "courses suggested for the person")?;
        let mut interner = Interner::default();
        let seeker = Seeker::of(&pin, &profile, &mut interner);
        let jobs = self.open_jobs(&mut interner)?;
        let best = score::top(jobs.iter(), 3, |(j, _)| score::total(&seeker, j));
        // The gap: each missing essential skill, with the vacancies that want it.
        let mut gap: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (_, (job, _)) in &best {
            let (_, missing) = split_skills(&job.essential_uris, &seeker.skills, &interner);
            for m in missing {
                gap.entry(m).or_default().insert(job.id.clone());
            }
        }
        let courses = offers::all(&self.store, OfferKind::Course).map_err(storage_problem)?;
        let mut suggested: Vec<(usize, bool, Value)> = courses
            .iter()
            .filter(|c| c.open)
            .filter_map(|c| {
                let taught = strings(&c.description, "skillsTaught");
                let closes: Vec<&String> = gap.keys().filter(|g| taught.contains(g)).collect();
                if closes.is_empty() {
                    return None;
                }
                let for_vacancies: BTreeSet<&String> = closes.iter().flat_map(|g| &gap[*g]).collect();
                let near = c.region() == profile.region.as_deref();
                Some((closes.len(), near, json!({
                    "courseCode": c.id, "title": c.description.get("title"),
                    "region": c.description.get("region"), "hours": c.description.get("hours"),
                    "closes": closes.iter().map(|g| skill(g)).collect::<Vec<_>>(),
                    "forVacancies": for_vacancies,
                    "reason": format!("teaches {} of the {} essential skills the person lacks for their best vacancies{}", closes.len(), gap.len(), if near { ", in the person's region" } else { "" }),
                })))
            })
            .collect();
        suggested.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
        let gap_skills: Vec<Value> = gap.keys().map(|g| skill(g)).collect();
        Ok(http::json(
            StatusCode::OK,
            &json!({"pin": pin, "gap": gap_skills, "courses": suggested.into_iter().map(|(_, _, v)| v).collect::<Vec<_>>()}),
        ))
    }

    /// The person's profile, after the same checks as a person lookup, with the read logged.
    fn profile_for(
        &self,
        pin: &str,
        who: &Reader,
        what: &str,
    ) -> Result<(Pin, CompetencyProfile), Problem> {
        let view = self.served_view(pin, who, what)?;
        let profile = self.attested_profile(&view)?;
        Ok((view.pin.clone(), profile))
    }

    /// The person's profile, each skill a credential attests marked verified.
    pub(super) fn attested_profile(
        &self,
        view: &crate::registry::view::PersonView,
    ) -> Result<CompetencyProfile, Problem> {
        let attested = crate::registry::attestations::attested_enrolments(&self.store, view)
            .map_err(storage_problem)?;
        Ok(profile::of_attested(view, &attested))
    }

    fn open_jobs(&self, interner: &mut Interner) -> Result<Vec<(Job, Offer)>, Problem> {
        Ok(offers::all(&self.store, OfferKind::Vacancy)
            .map_err(storage_problem)?
            .into_iter()
            .filter(|o| o.open)
            .map(|o| (Job::of(&o, interner), o))
            .collect())
    }
}

fn limit(req: &Request<Incoming>) -> Result<usize, Problem> {
    Ok(http::query_u64(req.uri().query(), "limit", 10)?.clamp(1, MAX_LIMIT) as usize)
}

/// A skill with its labels, where the ESCO subset knows it.
fn skill(uri: &str) -> Value {
    json!({"uri": uri, "label": CodeLists::get().skill(uri)})
}

/// One ranked vacancy for one person: the score, each term, matched and missing skills.
fn explain(seeker: &Seeker, job: &Job, offer: &Offer, interner: &Interner) -> Value {
    let (total, terms) = score::score(seeker, job);
    let (matched_e, missing_e) = split_skills(&job.essential_uris, &seeker.skills, interner);
    let (matched_o, missing_o) = split_skills(&job.optional_uris, &seeker.skills, interner);
    let verified = |uri: &str| {
        interner
            .known(uri)
            .is_some_and(|id| seeker.verified.binary_search(&id).is_ok())
    };
    let labels = |v: &[String]| {
        v.iter()
            .map(|s| {
                let mut skill = skill(s);
                if verified(s) {
                    skill["verified"] = true.into();
                }
                skill
            })
            .collect::<Vec<_>>()
    };
    json!({
        "vacancyId": job.id, "title": offer.description.get("title"), "isco08": job.isco08,
        "region": job.region, "formality": offer.description.get("formality"),
        "score": (total * 1000.0).round() / 1000.0, "terms": terms,
        "matchedSkills": labels(&[matched_e, matched_o].concat()),
        "missingEssentialSkills": labels(&missing_e),
        "missingOptionalSkills": labels(&missing_o),
    })
}
