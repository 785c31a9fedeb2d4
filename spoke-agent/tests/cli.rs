//! The `fleetgate-agent` binary's answer to flags it cannot run with: a message on stderr that
//! names the flag and the accepted values, and exit code 2, before touching any cluster or hub.

use std::process::Command;

#[test]
fn bad_secrets_values_exit_2_with_the_modes_on_stderr() {
    for (value, why) in [
        ("everything", "unknown mode"),
        ("namespaces=", "at least one namespace"),
        ("namespaces=Not_A_Name", "is not a namespace name"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_fleetgate-agent"))
            .args([
                "--hub",
                "https://127.0.0.1:1",
                "--identity-dir",
                "/nonexistent",
            ])
            .env("FLEETGATE_SECRETS", value)
            .env_remove("FLEETGATE_KUBECONFIG")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{value}: {stderr}");
        for words in [
            "fleetgate-agent: --secrets",
            why,
            "use cluster, label (only Secrets labelled fleetgate.dev/expose=true) or namespaces=NS[,NS...]",
        ] {
            assert!(
                stderr.contains(words),
                "{value}: {words:?} not in {stderr:?}"
            );
        }
    }
}
