//! `jol store --config C compact` on a real node's store, on each embedded engine: refused while
//! the node runs (the engine's lock on its files), done once it is stopped; the node restarted on
//! the compacted store serves every event and every person's view as before, and its log still
//! verifies.

mod common;

use common::*;
use serde_json::Value;

const EVENTS: usize = 60;

/// Every event, and the view of each person they name, as the node at `addr` serves them.
fn everything_served(addr: std::net::SocketAddr) -> (Vec<Value>, Vec<Value>) {
    wait_for_views(addr);
    let events = all_events(addr);
    let views = (0..EVENTS)
        .map(|i| {
            let pin = employment_data(i, "")["person"]["pin"].clone();
            let pin = pin.as_str().unwrap();
            let answer = get(addr, &format!("/api/v1/persons/{pin}"));
            assert_eq!(
                answer.status,
                200,
                "{}",
                String::from_utf8_lossy(&answer.body)
            );
            let mut view = answer.json();
            // Derived facts are computed as of today, not stored.
            view.as_object_mut().unwrap().remove("derived");
            view
        })
        .collect();
    (events, views)
}

/// What `jol ARGS` prints on stderr; it must fail.
fn jol_fails(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_jol"))
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success(), "jol {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_compacted_store_serves_everything_it_served_before() {
    for engine in ["redb", "sled"] {
        let node_dir = NodeDir::new("");
        let text = std::fs::read_to_string(&node_dir.config).unwrap();
        let text = text.replace(&format!("store_engine = \"{}\"", test_engine()), "");
        std::fs::write(
            &node_dir.config,
            format!("store_engine = \"{engine}\"\n{text}"),
        )
        .unwrap();
        let config = node_dir.config.to_str().unwrap();

        let node = node_dir.start();
        for i in 0..EVENTS {
            let case = format!("ES-COMPACT-{i:04}");
            publish(node.addr, "employment-status", &employment_data(i, &case));
        }
        // A second event about the first person rewrites that person's view.
        let mut corrected = employment_data(0, "ES-COMPACT-0000");
        corrected["eventDate"] = "2024-03-02".into();
        publish(node.addr, "employment-status", &corrected);
        let before = everything_served(node.addr);
        assert_eq!(before.0.len(), EVENTS + 1, "{engine}");

        let refused = jol_fails(&["store", "--config", config, "compact"]);
        assert!(
            refused.contains("is its node running?"),
            "{engine}: {refused}"
        );

        node.stop();
        let said = jol(["store", "--config", config, "compact"]);
        assert!(
            said.contains(&format!("{engine} store compacted")),
            "{engine}: {said}"
        );
        let data = node_dir.path().join("data");
        assert!(!data.join("compacting").exists() && !data.join("compacted").exists());
        jol(["verify", "--config", config]);

        let node = node_dir.start();
        assert_eq!(everything_served(node.addr), before, "{engine}");
        node.stop();
    }
}
