//! Our JWS verifies with an independent, standard JOSE library (jsonwebtoken), given only the
//! public key in PEM: the flattened form converts to the compact one by joining its members.

mod common;

use common::flip_char;
use jol::event::identifiers::{KeyName, MemberId};
use jol::event::keys;
use jol::event::schema::EventType;
use jol::event::Event;
use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};

fn compact(flattened: &[u8]) -> String {
    let v: Value = serde_json::from_slice(flattened).unwrap();
    format!(
        "{}.{}.{}",
        v["protected"].as_str().unwrap(),
        v["payload"].as_str().unwrap(),
        v["signature"].as_str().unwrap()
    )
}

fn validation() -> Validation {
    let mut v = Validation::new(Algorithm::EdDSA);
    v.required_spec_claims.clear();
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v
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
    let decoding = DecodingKey::from_ed_pem(pem.as_bytes()).unwrap();
    let token = decode::<Value>(compact(signed.bytes()), &decoding, &validation()).unwrap();
    assert_eq!(token.header.kid.as_deref(), Some(kid.to_string().as_str()));
    assert_eq!(token.claims["id"], json!(event.id));
    assert_eq!(token.claims["sequence"], json!("1"));

    // Flip one byte of the payload: the same library refuses it.
    let mut v: Value = serde_json::from_slice(signed.bytes()).unwrap();
    let payload = v["payload"].as_str().unwrap().to_string();
    let flipped = flip_char(&payload, 10);
    v["payload"] = flipped.into();
    let tampered = serde_json::to_vec(&v).unwrap();
    assert!(decode::<Value>(compact(&tampered), &decoding, &validation()).is_err());

    // And another key does not verify it either.
    let other = keys::public_pem(&keys::generate().verifying_key());
    let other = DecodingKey::from_ed_pem(other.as_bytes()).unwrap();
    assert!(decode::<Value>(compact(signed.bytes()), &other, &validation()).is_err());
}
