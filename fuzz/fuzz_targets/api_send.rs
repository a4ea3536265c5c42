//! Fuzz target: `actix_wsc::fuzzing::api_send_body`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    actix_wsc::fuzzing::api_send_body(data);
});
