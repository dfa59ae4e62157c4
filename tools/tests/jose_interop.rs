//! Our JWS verifies with an independent, standard JOSE library, Python's `joserfc` (which knows
//! RFC 9864's fully-specified `Ed25519`), given only the public key in PEM: the flattened form
//! converts to the compact one by joining its members. `cargo xtask install` installs joserfc
//! (`tests/common/tools.rs` finds it).

mod common;

use std::io::Write;
use std::process::Stdio;

use common::flip_char;
use jol::event::identifiers::{KeyName, MemberId};
use jol::event::keys;
use jol::event::schema::EventType;
use jol::event::Event;
use serde_json::{json, Value};

/// What joserfc makes of a flattened JWS and a public key: the header and payload it verified,
/// or the error it raised.
fn joserfc_verify(flattened: &[u8], public_pem: &str) -> Value {
    const SCRIPT: &str = r#"
import json, sys
from joserfc import jws
from joserfc.jwk import OKPKey
doc = json.load(sys.stdin)
key = OKPKey.import_key(doc["pem"])
f = doc["jws"]
compact = f["protected"] + "." + f["payload"] + "." + f["signature"]
try:
    obj = jws.deserialize_compact(compact, key, algorithms=["Ed25519"])
    print(json.dumps({"ok": True, "header": obj.headers(), "payload": json.loads(obj.payload)}))
except Exception as e:
    print(json.dumps({"ok": False, "error": type(e).__name__}))
"#;
    let mut child = common::tools::python(&["joserfc"])
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input =
        json!({"pem": public_pem, "jws": serde_json::from_slice::<Value>(flattened).unwrap()});
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "joserfc could not check the signature: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_standard_jose_library_verifies_our_signature_over_the_exact_bytes() {
    let key = keys::generate();
    let member: MemberId = "central-server/GOV/70000001/migration".parse().unwrap();
    let kid = KeyName::new(member.clone(), "sign-1").unwrap();
    let event = Event::new(
        member,
        EventType::ReturneeRecord,
        1,
        json!({"event": "RETURN_REGISTERED"}),
    );
    let signed = event.sign(&key, &kid);
    let pem = keys::public_pem(&key.verifying_key());

    let verified = joserfc_verify(signed.bytes(), &pem);
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(verified["header"]["alg"], "Ed25519");
    assert_eq!(verified["header"]["typ"], "jol-event+jws");
    assert_eq!(verified["header"]["kid"], kid.to_string());
    assert_eq!(verified["payload"]["id"], json!(event.id));
    assert_eq!(verified["payload"]["sequence"], json!("1"));

    // Flip one character of the payload: the same library refuses it.
    let mut v: Value = serde_json::from_slice(signed.bytes()).unwrap();
    let payload = v["payload"].as_str().unwrap().to_string();
    v["payload"] = flip_char(&payload, 10).into();
    let tampered = serde_json::to_vec(&v).unwrap();
    assert_eq!(joserfc_verify(&tampered, &pem)["ok"], false);

    // And another key does not verify it either.
    let other = keys::public_pem(&keys::generate().verifying_key());
    assert_eq!(joserfc_verify(signed.bytes(), &other)["ok"], false);
}
