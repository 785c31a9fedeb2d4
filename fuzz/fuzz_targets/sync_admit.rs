//! Hub side: arbitrary bytes as a Sync `AgentMessage` -> admission -> compile -> Envoy resources.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fleetgate_fuzz::sync_admit(data));
