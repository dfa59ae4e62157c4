//! The crash loop: migration and employment run as separate `jol serve` processes, each
//! publishing its own events and subscribing to the other's, while a killer SIGKILLs one of
//! them at a random moment, round after round. Consent changes are in the mix: the employment
//! service publishes jobs about people whose consent (in migration's records) may reach it only
//! later, so those jobs are withheld and then released. Afterwards every acknowledged event
//! exists exactly once at its publisher and at its subscriber, sequences have no gaps, and the
//! views equal a rebuild from the log. On the embedded engines every third kill is also a power
//! loss for the views file, which is never fdatasynced: it is cut to a prefix of any length,
//! and the node projects the views again from the log.
//!
//! `JOL_CRASH_ROUNDS` sets the number of kills (default 20); `JOL_CRASH_SEED` replays a run.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// Whom the employment service's `n`th job is about: every other one is far ahead of the
/// migration agency's records, so its consent comes later (often only at the end).
fn job_person(n: usize) -> usize {
    if n.is_multiple_of(2) {
        n
    } else {
        n * 4
    }
}

fn returnee_body(n: usize, key: &str) -> Value {
    json!({
        "type": "returnee-record",
        "data": returnee(
            &pin(n),
            &[EMPLOYMENT, MIGRATION],
            &["EMPLOYMENT_SERVICES", "REINTEGRATION_CASE_MANAGEMENT"],
        ),
        "idempotencyKey": key,
    })
}

fn job_body(n: usize, key: &str) -> Value {
    let mut d = example("employment-status", "employment-started.json");
    d["person"] = json!({"pin": pin(n)});
    d["job"]["spellId"] = format!("JOB-{n}").into();
    json!({"type": "employment-status", "data": d, "idempotencyKey": key})
}

/// Which of the two nodes is running, so the killer can take either.
struct Pair {
    fed: Federation,
    nodes: Mutex<BTreeMap<&'static str, Node>>,
}

impl Pair {
    fn restart(&self, agency: &'static str) {
        let node = self.fed.start(agency);
        self.nodes.lock().unwrap().insert(agency, node);
    }

    fn kill(&self, agency: &'static str) {
        if let Some(n) = self.nodes.lock().unwrap().remove(agency) {
            n.kill();
        }
    }

    /// What a power loss after the kill would leave of `agency`'s views file, which is never
    /// fdatasynced: a prefix of what was written, of any length (the embedded engines; on
    /// PostgreSQL the views are rows of its table).
    fn lose_unsynced_views(&self, agency: &str, rng: &mut impl Rng) {
        let folder = self.fed.path(&format!("{agency}/data/views"));
        let Ok(files) = std::fs::read_dir(folder) else {
            return;
        };
        for file in files.map(|f| f.unwrap().path()) {
            let file = std::fs::OpenOptions::new().write(true).open(file).unwrap();
            let len = file.metadata().unwrap().len();
            file.set_len(rng.random_range(0..=len)).unwrap();
        }
    }

    fn addr(&self, agency: &str) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.fed.local[agency]))
    }
}

#[test]
fn on_sled_publisher_and_subscriber_killed_at_random_lose_and_duplicate_nothing() {
    crash_loop("sled");
}

#[test]
fn on_redb_publisher_and_subscriber_killed_at_random_lose_and_duplicate_nothing() {
    crash_loop("redb");
}

#[test]
fn on_postgres_publisher_and_subscriber_killed_at_random_lose_and_duplicate_nothing() {
    crash_loop("postgres");
}

fn crash_loop(engine: &str) {
    let rounds: usize = env_number("JOL_CRASH_ROUNDS").unwrap_or(20);
    let seed: u64 = env_number("JOL_CRASH_SEED").unwrap_or_else(rand::random);
    eprintln!("crash loop on {engine}: {rounds} rounds, JOL_CRASH_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let pair = Arc::new(Pair {
        fed: Federation::build_on(
            engine,
            "min_backoff_ms = 20\nmax_backoff_ms = 200\nwait_secs = 2",
        ),
        nodes: Mutex::default(),
    });
    pair.restart("migration");
    pair.restart("employment");

    let stop = Arc::new(AtomicBool::new(false));
    let returnees: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let jobs: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    // A few people are known (with their consent) at employment from the start; the jobs are
    // about everyone, often before migration's record with the person's consent is published.
    let first = Publisher {
        addr: pair.addr("migration"),
        acked: returnees.clone(),
    };
    for n in 0..3 {
        first.publish_until_acked(
            &format!("migration-{n}"),
            &returnee_body(n, &format!("migration-{n}")),
        );
    }
    assert!(eventually(Duration::from_secs(10), || events_from(
        pair.addr("employment"),
        MIGRATION
    )
    .len()
        == 3)
    .is_some());
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let stop = stop.clone();
            // Three clients publish returnee records at migration; one publishes jobs for
            // the same people at employment, so both nodes publish and subscribe.
            let (agency, acked) = if w < 3 {
                ("migration", returnees.clone())
            } else {
                ("employment", jobs.clone())
            };
            let client = Publisher {
                addr: pair.addr(agency),
                acked,
            };
            std::thread::spawn(move || {
                let mut n = w + 3;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("{agency}-{n}");
                    let body = if w < 3 {
                        returnee_body(n, &key)
                    } else {
                        job_body(job_person(n), &key)
                    };
                    client.publish_until_acked(&key, &body);
                    n += if w < 3 { 3 } else { 1 };
                }
            })
        })
        .collect();

    let mut kills = BTreeMap::<&str, usize>::new();
    let mut power_losses = 0;
    for round in 0..rounds {
        std::thread::sleep(Duration::from_millis(rng.random_range(100..600)));
        let victim = if rng.random_bool(0.5) {
            "migration"
        } else {
            "employment"
        };
        pair.kill(victim);
        *kills.entry(victim).or_default() += 1;
        // Every third kill is a power loss too: what was not fdatasynced may be gone.
        if engine != "postgres" && round % 3 == 2 {
            pair.lose_unsynced_views(victim, &mut rng);
            power_losses += 1;
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(0..300)));
        pair.restart(victim);
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    // Everyone who has a job gets their record (with consent) in the end, so every job is
    // eventually released to migration.
    let late = Publisher {
        addr: pair.addr("migration"),
        acked: returnees.clone(),
    };
    let job_people: Vec<usize> = jobs
        .lock()
        .unwrap()
        .keys()
        .filter_map(|k| k.strip_prefix("employment-")?.parse().ok())
        .map(job_person)
        .collect();
    let mut consent_late = 0;
    for n in job_people {
        let key = format!("migration-{n}");
        if !returnees.lock().unwrap().contains_key(&key) {
            late.publish_until_acked(&key, &returnee_body(n, &key));
            consent_late += 1;
        }
    }
    eprintln!("crash loop on {engine}: {consent_late} people's consent came after their job");
    assert!(consent_late > 0, "no job waited for its consent");
    let returnees = returnees.lock().unwrap().clone();
    let jobs = jobs.lock().unwrap().clone();
    eprintln!(
        "crash loop on {engine}: kills {kills:?} ({power_losses} with a power loss); acknowledged {} returnee records, {} jobs",
        returnees.len(),
        jobs.len()
    );
    assert!(
        returnees.len() > rounds && !jobs.is_empty(),
        "too little was published"
    );

    let (mig, emp) = (pair.addr("migration"), pair.addr("employment"));
    // Each node ends with its own events and the other's, each exactly once and in order.
    for (publisher, subscriber, source, acked) in [
        (mig, emp, MIGRATION, &returnees),
        (emp, mig, EMPLOYMENT, &jobs),
    ] {
        let received = wait_for_events(subscriber, source, acked.len(), "the subscriber");
        let at_publisher = check_exactly_once(&events_from(publisher, source), acked, source);
        let at_subscriber = check_exactly_once(&in_sequence_order(received), acked, source);
        assert_eq!(
            at_publisher, at_subscriber,
            "{source}: the two copies differ"
        );
    }

    // The views each node built while being killed equal a rebuild from its log.
    let people: Vec<String> = (0..returnees.len().min(60)).map(pin).collect();
    for agency in ["migration", "employment"] {
        let before = views(pair.addr(agency), &people);
        pair.nodes.lock().unwrap().remove(agency).unwrap().stop();
        let config = pair.fed.config(agency);
        jol([
            "rebuild-view".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
        ]);
        pair.restart(agency);
        assert_eq!(
            views(pair.addr(agency), &people),
            before,
            "{agency}: views differ from a rebuild"
        );
    }
    let nodes = std::mem::take(&mut *pair.nodes.lock().unwrap());
    for (_, n) in nodes {
        n.stop();
    }
}
