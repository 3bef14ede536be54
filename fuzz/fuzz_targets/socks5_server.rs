#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| xep0065_s5b::fuzzing::fuzz_socks5_server(data));
