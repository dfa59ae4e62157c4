//! Synthetic data for the demo, benchmarks and tests: a returnee population whose pathways follow
//! the seed paper's figures, the events each agency publishes about it, and a load generator that
//! publishes them through a node's local API. Never used by a serving node.

pub mod loadgen;
pub mod offers;
pub mod population;

use serde_json::{json, Value};

/// Days of a synthetic birth year: days 1 to 28 of each month exist in every year.
const BIRTH_DAYS: u64 = 28 * 12;
/// Birth years 1950 to 2009, which the PIN's `19`/`20` century digits allow.
const BIRTH_YEARS: u64 = 60;
/// Distinct serial numbers on one birth date and sex (the PIN's last five digits).
const SERIALS: u64 = 100_000;

/// The PIN of synthetic person `n`: well-formed and with a real birth date for every `n`, and
/// distinct for the first 2 × 60 × 336 × 100,000 (about four billion) persons, so a test or a soak
/// may run as long as it likes. Serial first, then birth date, then year, then sex.
pub fn pin(n: u64) -> String {
    let serial = n % SERIALS;
    let date = n / SERIALS;
    let day = date % BIRTH_DAYS;
    let year = 1950 + (date / BIRTH_DAYS) % BIRTH_YEARS;
    let sex = 1 + (date / BIRTH_DAYS / BIRTH_YEARS) % 2;
    format!(
        "{sex}{:02}{:02}{year}{serial:05}",
        1 + day % 28,
        1 + day / 28
    )
}

/// A valid employment-status document for synthetic person `i` (about 600 bytes).
pub fn sample_data(i: usize) -> Value {
    let pin = pin(i as u64);
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

#[cfg(test)]
mod tests {
    use super::pin;
    use jol::event::identifiers::Pin;

    #[test]
    fn synthetic_pins_stay_valid_and_distinct_at_any_scale() {
        let capacity = 2 * 60 * 336 * 100_000u64;
        let far = [
            99_999,
            100_000,
            33_599_999,
            33_600_000,
            2_015_999_999,
            2_016_000_000,
        ];
        let within: std::collections::BTreeSet<u64> =
            (0..200_000).chain(far).chain([capacity - 1]).collect();
        let mut seen = std::collections::HashSet::new();
        for &n in &within {
            let p = pin(n);
            assert!(
                p.parse::<Pin>().is_ok(),
                "synthetic person {n}: {p} is not a valid PIN"
            );
            assert!(seen.insert(p), "synthetic person {n} repeats a PIN");
        }
        for n in [capacity, u64::MAX] {
            assert!(pin(n).parse::<Pin>().is_ok(), "synthetic person {n}");
        }
    }
}
