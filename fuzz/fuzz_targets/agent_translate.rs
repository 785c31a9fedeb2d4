//! Agent side: arbitrary bytes as a YAML/JSON manifests file -> Kubernetes objects -> intent.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fleetgate_fuzz::agent_translate(data));
