//! Every shipped example: the valid ones pass their schema, each invalid one fails with an error
//! at the field its file names (`expectPointer`); and Python's jsonschema, a validator we did not
//! write, agrees on everything but Jol's own keywords.

mod common;

use std::path::{Path, PathBuf};

use jol::event::schema::{EventType, Schemas};
use serde_json::Value;

fn examples(t: EventType, kind: &str) -> Vec<PathBuf> {
    let dir = common::repo()
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
    let file =
        common::repo().join("tests/examples/returnee-record/invalid/pin-impossible-date.json");
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

/// What Python's `jsonschema` (a standard 2020-12 validator another agency might use) reports for
/// each example: the instance pointers of its errors.
fn standard_validator_errors() -> serde_json::Map<String, Value> {
    const SCRIPT: &str = r#"
import json, pathlib, sys
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
root = pathlib.Path(sys.argv[1])
base = "https://jol.example/schemas/"
resources = []
for f in (root / "schemas").glob("*.json"):
    resources.append((base + f.name, Resource.from_contents(json.loads(f.read_text()), default_specification=__import__("referencing.jsonschema").jsonschema.DRAFT202012)))
registry = Registry().with_resources(resources)
out = {}
for example in sorted((root / "tests/examples").glob("*/*/*.json")):
    t, kind = example.parent.parent.name, example.parent.name
    schema = json.loads((root / "schemas" / f"{t}.v1.json").read_text())
    doc = json.loads(example.read_text())
    data = doc["data"] if kind == "invalid" else doc
    v = Draft202012Validator(schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER)
    out[f"{t}/{kind}/{example.name}"] = sorted({"".join("/" + str(p) for p in e.absolute_path) for e in v.iter_errors(data)})
print(json.dumps(out))
"#;
    let out = common::tools::python(&["jsonschema", "referencing"])
        .args(["-c", SCRIPT])
        .arg(common::repo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "Python's jsonschema could not check the examples: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_standard_validator_checks_everything_but_the_jol_vocabulary() {
    let results = standard_validator_errors();
    let mut checked = 0;
    for t in EventType::ALL {
        for file in examples(t, "valid") {
            let name = format!(
                "{}/valid/{}",
                t.as_str(),
                file.file_name().unwrap().to_string_lossy()
            );
            assert_eq!(results[&name], Value::Array(vec![]), "{name}");
            checked += 1;
        }
        for file in examples(t, "invalid") {
            let name = format!(
                "{}/invalid/{}",
                t.as_str(),
                file.file_name().unwrap().to_string_lossy()
            );
            let errors = results[&name].as_array().unwrap();
            match read(&file)["onlyJolChecks"].as_str() {
                // What only Jol checks, a standard validator lets through: the README says so.
                Some(_) => assert!(errors.is_empty(), "{name}: {errors:?}"),
                None => assert!(!errors.is_empty(), "{name}: a standard validator misses it"),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, results.len(), "every example was checked");
}
