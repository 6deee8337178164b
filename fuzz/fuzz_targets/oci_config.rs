//! cargo-fuzz entry point of the `oci_config` target (see fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zones_fuzz::oci_config(data));
