#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| xep0030_disco::fuzzing::fuzz_disco(data));
