#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| xep0095_si::fuzzing::fuzz_si_stanza(data));
