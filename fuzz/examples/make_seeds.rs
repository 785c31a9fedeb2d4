//! Writes the seed corpora the fuzz targets start from (committed under `fuzz/seeds/`):
//! every manifests file in `examples/` and `fuzz/seeds/agent_translate/` (the YAML the e2e
//! tests apply) is a seed of `agent_translate`; its translated intent, as a full-state Update,
//! and a Hello are seeds of `sync_admit`.
//!
//! Run from the repository root: `cargo run --manifest-path fuzz/Cargo.toml --example make_seeds`
//! (a plain, uninstrumented build: an example, because every binary of this crate is linked
//! against libFuzzer).

use std::path::{Path, PathBuf};

use fleetgate_proto::spoke::v1 as pb;
use prost::Message;

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml") {
            out.push(p);
        }
    }
}

fn main() {
    let manifests = Path::new("fuzz/seeds/agent_translate");
    let updates = Path::new("fuzz/seeds/sync_admit");
    std::fs::create_dir_all(manifests).expect("create seeds dir");
    std::fs::create_dir_all(updates).expect("create seeds dir");
    let mut files = Vec::new();
    for dir in ["examples/tenant-a", "examples/tenant-b"] {
        yaml_files(Path::new(dir), &mut files);
    }
    for f in &files {
        let name = f.to_string_lossy().replace('/', "_");
        std::fs::copy(f, manifests.join(name)).expect("copy seed");
    }
    yaml_files(manifests, &mut files);
    files.sort();
    files.dedup();
    let hello = pb::AgentMessage {
        kind: Some(pb::agent_message::Kind::Hello(pb::Hello {
            cluster: "c1".into(),
            agent_version: "seed".into(),
        })),
    };
    std::fs::write(updates.join("hello.pb"), hello.encode_to_vec()).expect("write seed");
    let mut written = 1;
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read seed");
        let Some(upserts) = fleetgate_fuzz::agent_intent(&text) else {
            eprintln!("{}: not a manifests file the agent reads", f.display());
            continue;
        };
        if upserts.is_empty() {
            continue;
        }
        let msg = pb::AgentMessage {
            kind: Some(pb::agent_message::Kind::Update(pb::Update {
                revision: 1,
                full_state: true,
                upserts,
                deletes: vec![],
                traceparent: String::new(),
            })),
        };
        let stem = f.file_stem().unwrap_or_default().to_string_lossy();
        std::fs::write(updates.join(format!("{stem}.pb")), msg.encode_to_vec()).expect("write");
        written += 1;
    }
    eprintln!("{} manifests seeds, {written} sync seeds", files.len());
}
