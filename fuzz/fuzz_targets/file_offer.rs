#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| xep0096_file::fuzzing::fuzz_file_offer(data));
