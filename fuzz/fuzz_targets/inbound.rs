//! Fuzz target: `actix_wsc::fuzzing::inbound_frames`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    actix_wsc::fuzzing::inbound_frames(data);
});
