//! Golden files of the agent's translation: every `testdata/<case>.in.yaml` (Kubernetes and
//! Gateway API YAML, read as `--manifests` reads a file) is translated into the intent the agent
//! sends, printed as proto JSON in YAML, and compared with `testdata/<case>.out.yaml`.
//!
//! After an intended change to the translation, regenerate them all and review the diff:
//!
//! ```text
//! FLEETGATE_BLESS=1 cargo test -p fleetgate-spoke-agent golden
//! ```
//!
//! The endpoint mode is the one `--manifests` picks (node when the file has Nodes, else pod);
//! `--all-load-balancers` is off. A comment line `# agent: --gateway-class NAME` in the input
//! starts the agent with that flag.

use std::path::{Path, PathBuf};

use fleetgate_spoke_agent::config::EndpointMode;
use fleetgate_spoke_agent::{manifests, run};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// The intent of one input file, as YAML.
fn translated(input: &str) -> String {
    let mut state = manifests::parse_file(input).expect("the input parses");
    state.claimed_class_names = input
        .lines()
        .filter_map(|l| l.strip_prefix("# agent: --gateway-class "))
        .map(|c| c.trim().to_string())
        .collect();
    // As a folder scan does once it has read every file.
    manifests::keep_referenced_ai_secrets(&mut state);
    state.normalize();
    let mode = if state.nodes.is_empty() {
        EndpointMode::Pod
    } else {
        EndpointMode::Node
    };
    let pool = DescriptorPool::decode(fleetgate_proto::FILE_DESCRIPTOR_SET)
        .expect("the descriptors decode");
    let object = pool
        .get_message_by_name("fleetgate.spoke.v1.Object")
        .expect("Object is described");
    let options = SerializeOptions::new().stringify_64_bit_integers(false);
    let objects: Vec<serde_json::Value> = run::intent_with(&state, mode, false)
        .iter()
        .map(|o| {
            let m = DynamicMessage::decode(object.clone(), o.encode_to_vec().as_slice())
                .expect("an Object decodes");
            m.serialize_with_options(serde_json::value::Serializer, &options)
                .expect("an Object serializes")
        })
        .collect();
    serde_yaml::to_string(&objects).expect("YAML")
}

#[test]
fn golden_translation() {
    let bless = std::env::var_os("FLEETGATE_BLESS").is_some();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(testdata())
        .expect("testdata/")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".in.yaml"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no testdata/*.in.yaml");
    let mut failed = Vec::new();
    for input in cases {
        let name = input
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".in.yaml", "");
        let output = input.with_file_name(format!("{name}.out.yaml"));
        let got = translated(&std::fs::read_to_string(&input).expect("the input reads"));
        if bless {
            std::fs::write(&output, &got).expect("the golden file writes");
            continue;
        }
        let want = std::fs::read_to_string(&output).unwrap_or_default();
        if got != want {
            eprintln!(
                "--- {} (want)\n{want}\n+++ translated (got)\n{got}",
                output.display()
            );
            failed.push(name);
        }
    }
    assert!(
        failed.is_empty(),
        "translation differs from the golden files of {failed:?}; if the change is intended, \
         regenerate with `FLEETGATE_BLESS=1 cargo test -p fleetgate-spoke-agent golden` and review the diff"
    );
}
