//! An operator's erasure order body, and a received erasure event's data; what must hold is in `jol::fuzzing::erasure_order`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jol::fuzzing::erasure_order(data));
