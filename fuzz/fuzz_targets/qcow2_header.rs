//! cargo-fuzz entry point of the `qcow2_header` target (see fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zones_fuzz::qcow2_header(data));
