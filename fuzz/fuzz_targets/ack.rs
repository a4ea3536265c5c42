//! Fuzz target: `actix_wsc::fuzzing::ack`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    actix_wsc::fuzzing::ack(data);
});
