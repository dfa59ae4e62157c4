//! A feed answer as a subscriber receives it: decoded, then each item through the receipt checks; what must hold is in `jol::fuzzing::feed_page`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jol::fuzzing::feed_page(data));
