//! `jol bench match`: the matching score at scale, in process: one person against 10,000 open
//! vacancies, and one vacancy against 100,000 persons, with the interned-skill index the API
//! uses (`matching::score`). Reports p50 and p99 per query.

use std::time::{Duration, Instant};

use anyhow::Result;

use super::{figure, percentile, Figure};
use crate::synthetic::offers::{seeker_profile, vacancy_data};
use jol::matching::score::{self, Interner, Job, Seeker};
use jol::registry::offers::{Offer, OfferKind};

const VACANCIES: usize = 10_000;
const PERSONS: usize = 100_000;

pub(super) fn matching() -> Result<Vec<Figure>> {
    let mut interner = Interner::default();
    let jobs: Vec<Job> = (0..VACANCIES)
        .map(|i| {
            let offer = Offer {
                kind: OfferKind::Vacancy,
                id: format!("VAC-{i:06}"),
                source: String::new(),
                open: true,
                event_date: String::new(),
                position: i as u64,
                description: vacancy_data(i, 11),
            };
            Job::of(&offer, &mut interner)
        })
        .collect();
    // Persons born on 1 January 1990, numbered: PINs of the PIN's form.
    let seekers: Vec<Seeker> = (0..PERSONS)
        .map(|i| {
            let pin = format!("201011990{i:05}").parse()?;
            Ok(Seeker::of(&pin, &seeker_profile(i, 11), &mut interner))
        })
        .collect::<Result<_>>()?;
    let mut person_times = Vec::new();
    for s in seekers.iter().take(300) {
        let t = Instant::now();
        let best = score::top(jobs.iter(), 10, |j| score::total(s, j));
        person_times.push(t.elapsed());
        std::hint::black_box(best);
    }
    let mut vacancy_times = Vec::new();
    for j in jobs.iter().take(30) {
        let t = Instant::now();
        let best = score::top(seekers.iter(), 10, |s| score::total(s, j));
        vacancy_times.push(t.elapsed());
        std::hint::black_box(best);
    }
    person_times.sort();
    vacancy_times.sort();
    let ms = |v: &[Duration], p| percentile(v, p);
    Ok(vec![
        figure(
            format!("one person vs {VACANCIES} vacancies, p50"),
            ms(&person_times, 0.5),
            "ms",
        ),
        figure("  p99", ms(&person_times, 0.99), "ms"),
        figure(
            format!("one vacancy vs {PERSONS} persons, p50"),
            ms(&vacancy_times, 0.5),
            "ms",
        ),
        figure("  p99", ms(&vacancy_times, 0.99), "ms"),
    ])
}
