//! Fuzz target: `actix_wsc::fuzzing::config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    actix_wsc::fuzzing::config(data);
});
