//! Synthetic data for the demo, benchmarks and tests: a returnee population whose pathways follow
//! the seed paper's figures, the events each agency publishes about it, and a load generator that
//! publishes them through a node's local API. Never used by a serving node.

pub mod loadgen;
pub mod offers;
pub mod population;

use serde_json::{json, Value};

/// A valid employment-status document for synthetic person `i` (about 600 bytes).
pub fn sample_data(i: usize) -> Value {
    let pin = format!(
        "2{:02}{:02}19{:02}{:05}",
        1 + i % 28,
        1 + (i / 28) % 12,
        70 + i % 30,
        i % 100_000
    );
    json!({
        "event": "EMPLOYMENT_STARTED",
        "eventDate": "2024-03-01",
        "purpose": "EMPLOYMENT_SERVICES",
        "legalBasis": "Law of the Kyrgyz Republic on Employment Promotion, art. 12",
        "caseRef": format!("ES-2024-{i:07}"),
        "person": {"pin": pin},
        "labourForceStatus": "EMPLOYED",
        "job": {
            "spellId": format!("spell-{i}"),
            "startDate": "2024-03-01",
            "icse18": "41",
            "formality": "FORMAL",
            "formalityEvidence": "SOCIAL_FUND_CONTRIBUTIONS",
            "contractDuration": "PERMANENT",
            "isco08": "7112",
            "isic": "4100",
            "region": "KG-O"
        }
    })
}
