//! The peer feed's query string; what must hold is in `jol::fuzzing::feed_query`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jol::fuzzing::feed_query(data));
