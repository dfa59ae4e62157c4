//! A signed note, the checkpoint body in it and a tlog-proof, as a witness or a verifier reads them; what must hold is in `jol::fuzzing::signed_note`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jol::fuzzing::signed_note(data));
