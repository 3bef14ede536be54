#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| xep0047_ibb::fuzzing::fuzz_payload(data));
