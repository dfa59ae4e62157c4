//! What the X-Road provider face reads of a call: the path, the X-Road headers, the query's dates; what must hold is in `jol::fuzzing::xroad_face`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jol::fuzzing::xroad_face(data));
