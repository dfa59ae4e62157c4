//! Several replicas of one member on one PostgreSQL, and PostgreSQL itself going away.
//!
//! Failover: two `jol serve` replicas of the migration agency share its database; publishing
//! clients are spread over both (a standby answers 503 and the client retries, as behind a load
//! balancer); the employment service and the education ministry follow migration's feed through
//! a TCP load balancer in front of both replicas' peer listeners (what HAProxy does in
//! `docs/deploy-ha.md`). Round after round the writer is SIGKILLed at a random moment, or frozen
//! with SIGSTOP until its lease runs out and then woken (it must find itself deposed and exit),
//! and the other replica must take over; the stopped one comes back as a standby. Afterwards
//! every acknowledged event exists once, sequences and positions run without a gap, `jol verify`
//! is clean, both subscribers hold every event once, and every node's views equal a rebuild from
//! its log. The time from the kill or freeze to the first publish the new writer acknowledges is
//! printed (p50, p99), never asserted.
//!
//! PostgreSQL restart: the same federation on one replica each while the database server is
//! stopped (fast, then immediate: a crash) and started again under load; nothing acknowledged
//! is lost and the nodes carry on by themselves.
//!
//! `JOL_FAILOVER_ROUNDS` sets the kills (default 8); `JOL_FAILOVER_SEED` replays a run.

mod common;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use throwaway_pg::Shutdown;

const SYNC: &str = "min_backoff_ms = 50\nmax_backoff_ms = 400\nwait_secs = 2";

fn returnee_body(n: usize, key: &str) -> Value {
    json!({
        "type": "returnee-record",
        "data": returnee(
            &pin(n),
            &[EMPLOYMENT, EDUCATION, MIGRATION],
            &["EMPLOYMENT_SERVICES", "REINTEGRATION_CASE_MANAGEMENT", "TRAINING_SERVICES"],
        ),
        "idempotencyKey": key,
    })
}

/// A TCP load balancer: each connection goes to the first backend (in turn) that accepts it.
struct Balancer {
    stop: Arc<AtomicBool>,
}

impl Balancer {
    fn start(listen: u16, backends: Vec<SocketAddr>) -> Balancer {
        let listener = TcpListener::bind(("127.0.0.1", listen)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            let mut turn = 0;
            while !stopped.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                turn += 1;
                let order: Vec<SocketAddr> = (0..backends.len())
                    .map(|i| backends[(turn + i) % backends.len()])
                    .collect();
                std::thread::spawn(move || forward(client, &order));
            }
        });
        Balancer { stop }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn forward(client: TcpStream, backends: &[SocketAddr]) {
    let _ = client.set_nonblocking(false);
    let Some(server) = backends
        .iter()
        .find_map(|b| TcpStream::connect_timeout(b, Duration::from_millis(200)).ok())
    else {
        return;
    };
    let (Ok(mut c2), Ok(mut s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let (mut client, mut server) = (client, server);
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut s2);
        let _ = s2.shutdown(std::net::Shutdown::Both);
    });
    let _ = std::io::copy(&mut server, &mut client);
    let _ = client.shutdown(std::net::Shutdown::Both);
    let _ = up.join();
}

/// A copy of `config` for another replica: its own local and peer ports.
fn replica_config(config: &Path, name: &str, local: u16, peer: u16) -> PathBuf {
    let mut doc: toml::Table = std::fs::read_to_string(config).unwrap().parse().unwrap();
    doc["local"]["listen"] = format!("127.0.0.1:{local}").into();
    doc["federation"]["peer_listen"] = format!("127.0.0.1:{peer}").into();
    // Replicas notice a dead writer by its session; a paused one by its lease (short here).
    let store = doc["store"].as_table_mut().unwrap();
    store.insert("lease_ms".into(), 3000.into());
    store.insert("poll_ms".into(), 100.into());
    let path = config.with_file_name(format!("{name}.toml"));
    std::fs::write(&path, toml::to_string(&doc).unwrap()).unwrap();
    path
}

/// Two replicas of migration on its database, each on ports of its own, with the operator's
/// token: their configs, and their peer ports.
fn two_replicas(fed: &Federation) -> ([PathBuf; 2], [u16; 2]) {
    let [local_a, peer_a, local_b, peer_b] = free_ports(4)[..] else {
        unreachable!()
    };
    let configs = [
        replica_config(&fed.config("migration"), "replica-a", local_a, peer_a),
        replica_config(&fed.config("migration"), "replica-b", local_b, peer_b),
    ];
    let token = token_of_config(fed, "migration");
    for c in &configs {
        register_token(c, &token);
    }
    (configs, [peer_a, peer_b])
}

fn role(addr: SocketAddr) -> String {
    match request(addr, "GET", "/readyz", &[], b"") {
        Ok(a) => a.json()["role"].as_str().unwrap_or_default().to_string(),
        Err(_) => "down".into(),
    }
}

/// Publish at `addr` until acknowledged; how long it took.
fn first_ack(addr: SocketAddr, key: &str, body: &Value) -> Duration {
    let started = Instant::now();
    loop {
        if let Ok(a) = post_json(addr, "/api/v1/events", body) {
            match a.status {
                200 | 201 => return started.elapsed(),
                s if s >= 500 => {}
                s => panic!("{key}: {s} {}", String::from_utf8_lossy(&a.body)),
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Every acknowledged migration event is in migration's log once, in a gap-free sequence, at
/// gap-free positions; `jol verify` is clean; both subscribers hold each once.
fn check_everything_once(fed: &Federation, reader: SocketAddr, acked: &HashMap<String, String>) {
    let at_publisher = check_exactly_once(&events_from(reader, MIGRATION), acked, MIGRATION);
    let positions: Vec<u64> = all_events(reader)
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(
        positions,
        (1..=positions.len() as u64).collect::<Vec<_>>(),
        "positions have a gap"
    );
    let config = fed.config("migration");
    jol(["verify".as_ref(), "--config".as_ref(), config.as_os_str()]);
    for agency in ["employment", "education"] {
        let addr = SocketAddr::from(([127, 0, 0, 1], fed.local[agency]));
        let received = wait_for_events(addr, MIGRATION, acked.len(), agency);
        let copy = check_exactly_once(&in_sequence_order(received), acked, MIGRATION);
        assert_eq!(copy, at_publisher, "{agency}'s copy differs");
    }
}

/// Clients publishing returnee records until `stop`, each at its own replica(s), taking turns.
fn publishers(
    targets: Vec<Vec<SocketAddr>>,
    acked: Arc<Mutex<HashMap<String, String>>>,
    stop: Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<()>> {
    let clients = targets.len();
    targets
        .into_iter()
        .enumerate()
        .map(|(w, addrs)| {
            let (acked, stop) = (acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = w;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("migration-{n}");
                    let client = Publisher {
                        addr: addrs[n / clients % addrs.len()],
                        acked: acked.clone(),
                    };
                    client.publish_until_acked_anywhere(&addrs, &key, &returnee_body(n, &key));
                    n += clients;
                }
            })
        })
        .collect()
}

#[test]
fn the_writer_killed_at_random_fails_over_and_nothing_is_lost_or_doubled() {
    let rounds: usize = env_number("JOL_FAILOVER_ROUNDS").unwrap_or(8);
    let seed: u64 = env_number("JOL_FAILOVER_SEED").unwrap_or_else(rand::random);
    eprintln!("failover: {rounds} rounds, JOL_FAILOVER_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let fed = Federation::build_on("postgres", SYNC);
    let (configs, [peer_a, peer_b]) = two_replicas(&fed);
    // The manifest's address for migration's peer listener is the load balancer's.
    let _balancer = Balancer::start(
        fed.peer["migration"],
        vec![
            SocketAddr::from(([127, 0, 0, 1], peer_a)),
            SocketAddr::from(([127, 0, 0, 1], peer_b)),
        ],
    );
    let mut replicas: Vec<Option<Node>> = configs.iter().map(|c| Some(Node::start(c))).collect();
    let addrs: Vec<SocketAddr> = replicas.iter().map(|r| r.as_ref().unwrap().addr).collect();
    let roles: Vec<String> = addrs.iter().map(|a| role(*a)).collect();
    assert_eq!(
        roles.iter().filter(|r| *r == "writer").count(),
        1,
        "exactly one replica writes: {roles:?}"
    );
    let others = [fed.start("employment"), fed.start("education")];

    let acked = Arc::new(Mutex::new(HashMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    // Four clients: two at each replica, each retrying at the other when refused.
    let targets = vec![
        vec![addrs[0], addrs[1]],
        vec![addrs[1], addrs[0]],
        vec![addrs[0], addrs[1]],
        vec![addrs[1], addrs[0]],
    ];
    let workers = publishers(targets, acked.clone(), stop.clone());

    let mut failovers = Vec::new();
    let mut pauses = 0;
    for round in 0..rounds {
        std::thread::sleep(Duration::from_millis(rng.random_range(200..900)));
        let writer = (0..2)
            .find(|i| role(addrs[*i]) == "writer")
            .unwrap_or_else(|| panic!("round {round}: no writer"));
        let survivor = 1 - writer;
        let deposed = replicas[writer].take().unwrap();
        let frozen = if rng.random_bool(0.25) {
            deposed.signal("STOP");
            Some(deposed)
        } else {
            deposed.kill();
            None
        };
        let stopped = Instant::now();
        let key = format!("probe-{round}");
        let body = returnee_body(PROBES + round, &key);
        first_ack(addrs[survivor], &key, &body);
        failovers.push(stopped.elapsed());
        if let Some(mut paused) = frozen {
            pauses += 1;
            paused.signal("CONT");
            let status = paused
                .exited_within(Duration::from_secs(30))
                .unwrap_or_else(|| panic!("round {round}: the woken writer did not stop"));
            assert!(
                !status.success(),
                "round {round}: a deposed writer exits with an error"
            );
        }
        // The probe is an acknowledged event like any other.
        let probe = Publisher {
            addr: addrs[survivor],
            acked: acked.clone(),
        };
        probe.publish_until_acked(&key, &body);
        assert_eq!(role(addrs[survivor]), "writer");
        replicas[writer] = Some(Node::start(&configs[writer]));
        assert_eq!(
            role(addrs[writer]),
            "standby",
            "round {round}: the restarted replica"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    failovers.sort();
    eprintln!(
        "failover: writer killed or frozen → first publish acknowledged by the new writer over {} rounds ({pauses} frozen): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        failovers.len(),
        percentile(&failovers, 0.5).as_secs_f64() * 1000.0,
        percentile(&failovers, 0.99).as_secs_f64() * 1000.0,
        failovers.last().unwrap().as_secs_f64() * 1000.0,
    );
    let acked = acked.lock().unwrap().clone();
    eprintln!("failover: {} events acknowledged", acked.len());
    assert!(acked.len() > rounds * 5, "too little was published");
    // Read through the standby: it serves the same log.
    let standby = (0..2).find(|i| role(addrs[*i]) == "standby").unwrap();
    check_everything_once(&fed, addrs[standby], &acked);
    views_equal_a_rebuild(&fed, &configs, replicas, others);
}

/// People whose records the soak's probes carry (far from the publishing clients' people).
const PROBES: usize = 1_000_000_000;

/// Every node's views equal a rebuild from its log: each subscriber stopped, rebuilt and
/// started again, and migration's replicas both stopped, one rebuilt, one started.
fn views_equal_a_rebuild(
    fed: &Federation,
    replica_configs: &[PathBuf; 2],
    replicas: Vec<Option<Node>>,
    subscribers: [Node; 2],
) {
    let people: Vec<String> = (0..60).map(pin).collect();
    let rebuild = |config: &Path| {
        jol([
            "rebuild-view".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
        ]);
    };
    for (agency, node) in ["employment", "education"].into_iter().zip(subscribers) {
        let before = views(node.addr, &people);
        node.stop();
        rebuild(&fed.config(agency));
        let again = fed.start(agency);
        assert_eq!(
            views(again.addr, &people),
            before,
            "{agency}: views differ from a rebuild"
        );
    }
    let writer = replicas
        .iter()
        .flatten()
        .find(|r| role(r.addr) == "writer")
        .unwrap();
    let before = views(writer.addr, &people);
    for replica in replicas.into_iter().flatten() {
        replica.stop();
    }
    rebuild(&replica_configs[0]);
    let again = Node::start(&replica_configs[0]);
    assert_eq!(
        views(again.addr, &people),
        before,
        "migration: views differ from a rebuild"
    );
}

/// A writer frozen (SIGSTOP) past its lease is replaced; woken (SIGCONT), it finds another
/// epoch and exits with an error, and nothing it had in flight is committed twice or lost.
#[test]
fn a_paused_writer_is_replaced_and_stops_when_it_wakes() {
    let fed = Federation::build_on("postgres", SYNC);
    let (configs, _) = two_replicas(&fed);
    let mut a = Node::start(&configs[0]);
    let b = Node::start(&configs[1]);
    assert_eq!(
        (role(a.addr), role(b.addr)),
        ("writer".into(), "standby".into())
    );
    let acked = Arc::new(Mutex::new(HashMap::new()));
    let client = Publisher {
        addr: a.addr,
        acked: acked.clone(),
    };
    for n in 0..20 {
        let key = format!("migration-{n}");
        client.publish_until_acked(&key, &returnee_body(n, &key));
    }
    a.signal("STOP");
    let paused = Instant::now();
    // The standby takes over once the frozen writer's lease (3 s here) has run out.
    let key = "after-pause".to_string();
    let body = returnee_body(20, &key);
    first_ack(b.addr, &key, &body);
    eprintln!(
        "paused writer replaced: first publish acknowledged by the new writer {:.1} s after the pause",
        paused.elapsed().as_secs_f64()
    );
    Publisher {
        addr: b.addr,
        acked: acked.clone(),
    }
    .publish_until_acked(&key, &body);
    assert_eq!(role(b.addr), "writer");
    a.signal("CONT");
    let status = a
        .exited_within(Duration::from_secs(30))
        .expect("the deposed writer did not stop");
    assert!(
        !status.success(),
        "a deposed writer exits with an error: {status}"
    );
    let acked = acked.lock().unwrap().clone();
    let events = events_from(b.addr, MIGRATION);
    check_exactly_once(&events, &acked, MIGRATION);
    let config = fed.config("migration");
    jol(["verify".as_ref(), "--config".as_ref(), config.as_os_str()]);
}

#[test]
fn postgres_stopped_and_started_under_load_loses_nothing_acknowledged() {
    let fed = Federation::build_on("postgres", SYNC);
    let cluster = fed.pg.as_ref().unwrap();
    let _nodes = AGENCIES.map(|a| fed.start(a));
    let migration = SocketAddr::from(([127, 0, 0, 1], fed.local["migration"]));
    let acked = Arc::new(Mutex::new(HashMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let workers = publishers(vec![vec![migration]; 3], acked.clone(), stop.clone());
    for how in [Shutdown::Fast, Shutdown::Immediate, Shutdown::Fast] {
        std::thread::sleep(Duration::from_millis(700));
        let before = acked.lock().unwrap().len();
        cluster.stop(how).unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        cluster.restart().unwrap();
        // The nodes recover by themselves: publishing goes on without restarting them.
        assert!(
            eventually(Duration::from_secs(60), || acked.lock().unwrap().len()
                > before + 20)
            .is_some(),
            "publishing did not resume after a {how:?} restart of PostgreSQL"
        );
        eprintln!("postgres restart ({how:?}): publishing resumed");
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    eprintln!("postgres restarts: {} events acknowledged", acked.len());
    check_everything_once(&fed, migration, &acked);
    // The operator's view of the store: who writes, and a migration with nothing to do.
    let config = fed.config("migration");
    let status = jol([
        "store".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "status".as_ref(),
    ]);
    assert!(
        status.contains(&format!("held by {MIGRATION} at ")),
        "{status}"
    );
    let migrate = jol([
        "store".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "migrate".as_ref(),
    ]);
    assert!(migrate.contains("nothing to do"), "{migrate}");
}

fn token_of_config(fed: &Federation, agency: &str) -> String {
    fed.laid
        .iter()
        .find(|l| l.folder == agency)
        .unwrap()
        .operator_token
        .clone()
}
