//! The local API's publish and batch bodies: strict JSON, drafts, and what a valid draft signs to; what must hold is in `jol::fuzzing::publish_body`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jol::fuzzing::publish_body(data));
