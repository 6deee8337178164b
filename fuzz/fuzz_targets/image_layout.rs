//! cargo-fuzz entry point of the `image_layout` target (see fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zones_fuzz::image_layout(data));
