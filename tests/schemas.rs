//! Every shipped example: the valid ones pass their schema, each invalid one fails with an error
//! at the field its file names (`expectPointer`).

use std::path::{Path, PathBuf};

use jol::event::schema::{EventType, Schemas};
use serde_json::Value;

fn examples(t: EventType, kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/examples")
        .join(t.as_str())
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 3, "too few examples in {}", dir.display());
    files
}

fn read(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn valid_examples_pass() {
    let schemas = Schemas::load().unwrap();
    for t in EventType::ALL {
        for file in examples(t, "valid") {
            if let Err(errors) = schemas.validate(t, &read(&file)) {
                panic!("{} should be valid: {errors:#?}", file.display());
            }
        }
    }
}

#[test]
fn invalid_examples_fail_at_the_named_field() {
    let schemas = Schemas::load().unwrap();
    for t in EventType::ALL {
        for file in examples(t, "invalid") {
            let doc = read(&file);
            let expected = doc["expectPointer"].as_str().unwrap();
            let errors = match schemas.validate(t, &doc["data"]) {
                Ok(()) => panic!("{} should be invalid", file.display()),
                Err(errors) => errors,
            };
            assert!(
                errors.iter().any(|e| e.pointer == expected),
                "{}: no error at {expected:?}: {errors:#?}",
                file.display()
            );
            for e in &errors {
                assert!(!e.reason.is_empty() && !e.keyword.is_empty(), "{e:?}");
            }
        }
    }
}

#[test]
fn error_reasons_never_repeat_personal_data() {
    let schemas = Schemas::load().unwrap();
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/examples/returnee-record/invalid/pin-impossible-date.json");
    let doc = read(&file);
    let errors = schemas
        .validate(EventType::ReturneeRecord, &doc["data"])
        .unwrap_err();
    let text = format!("{errors:?}");
    assert!(!text.contains("23002199012345"), "{text}");
}

#[test]
fn a_wrong_type_is_an_error_too() {
    // A valid training enrolment is not a valid employment status.
    let schemas = Schemas::load().unwrap();
    for file in examples(EventType::TrainingEnrolment, "valid") {
        assert!(schemas
            .validate(EventType::EmploymentStatus, &read(&file))
            .is_err());
    }
}
