//! Any bytes offered as an event from a peer: parsing, signature verification and schema
//! validation must answer (accept or refuse with an error), never panic or hang.
#![no_main]

use std::sync::OnceLock;

use jol::event::jws::{Jws, Typ};
use jol::event::schema::{EventType, Schemas};
use jol::event::SignedEvent;
use libfuzzer_sys::fuzz_target;

fn schemas() -> &'static Schemas {
    static S: OnceLock<std::sync::Arc<Schemas>> = OnceLock::new();
    S.get_or_init(|| Schemas::load().expect("shipped schemas compile"))
}

fuzz_target!(|data: &[u8]| {
    static KEY: OnceLock<ed25519_dalek::SigningKey> = OnceLock::new();
    let key = KEY.get_or_init(jol::event::keys::generate).verifying_key();
    if let Ok(jws) = Jws::parse(data, Typ::Event) {
        let _ = jws.verify(&key);
    }
    if let Ok((signed, jws)) = SignedEvent::parse(data) {
        let _ = jws.verify(&key);
        for t in EventType::ALL {
            let _ = schemas().validate(t, &signed.event().data);
        }
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        for t in EventType::ALL {
            let _ = schemas().validate(t, &v);
        }
    }
});
