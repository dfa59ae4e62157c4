//! A tlog-witness add-checkpoint body as a node's witness reads it; what must hold is in `jol::fuzzing::witness_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jol::fuzzing::witness_request(data));
