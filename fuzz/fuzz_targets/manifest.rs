//! A manifest: the signed file, and the payload as the authority signed it; what must hold is in `jol::fuzzing::manifest`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jol::fuzzing::manifest(data));
