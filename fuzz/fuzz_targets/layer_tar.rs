//! cargo-fuzz entry point of the `layer_tar` target (see fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zones_fuzz::layer_tar(data));
