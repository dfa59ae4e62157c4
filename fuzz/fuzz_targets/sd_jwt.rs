//! SD-JWT disclosures revealed and concealed, an SD-JWT VC as a verifier reads it, a status list; what must hold is in `jol::fuzzing::sd_jwt`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jol::fuzzing::sd_jwt(data));
