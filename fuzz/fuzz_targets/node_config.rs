//! A node config: parsed, written back and read again; what must hold is in `jol::fuzzing::node_config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jol::fuzzing::node_config(data));
