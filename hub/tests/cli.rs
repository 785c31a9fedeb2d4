//! The `fleetgate-hub` command line as an operator (or the Helm chart's init container) runs it:
//! `ca init` never replaces a CA (`--if-missing` makes that a success), and `check` accepts a
//! valid configuration and refuses a wrong one with what to change, without starting anything.

use std::process::{Command, Output};

fn hub(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fleetgate-hub"))
        .args(args)
        .output()
        .expect("running fleetgate-hub")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn ca_init_never_replaces_a_ca_and_if_missing_makes_that_a_success() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let pki = pki.to_str().unwrap();
    let first = hub(&["ca", "init", "--pki-dir", pki]);
    assert!(first.status.success(), "{}", stderr(&first));
    let ca = std::fs::read(dir.path().join("pki/ca.crt")).unwrap();

    let again = hub(&["ca", "init", "--pki-dir", pki]);
    assert!(!again.status.success(), "a second ca init must refuse");
    let again = hub(&["ca", "init", "--pki-dir", pki, "--if-missing"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        std::fs::read(dir.path().join("pki/ca.crt")).unwrap(),
        ca,
        "the CA agents trust is unchanged"
    );
}

const VALID: &str = "agentListen: 127.0.0.1:0\nxdsListen: 127.0.0.1:0\npkiDir: /nonexistent/pki\nstorePath: /nonexistent/hub.redb\ndataPlane:\n  address: 127.0.0.1\n  listeners: [{port: 80, bind: '0.0.0.0:8080'}]\ntenants:\n- name: tenant-a\n  hostnames: ['*.a.example']\n  clusters: [{name: east, endpointCidrs: [10.1.0.0/16]}]\n";

#[test]
fn check_accepts_a_valid_configuration_and_names_what_to_fix_in_a_wrong_one() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, VALID).unwrap();
    let out = hub(&["check", "--config", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid (1 tenants)"));
    // Nothing was started or created.
    assert!(!std::path::Path::new("/nonexistent").exists());

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, VALID.replace("'*.a.example'", "'https://a.example/'")).unwrap();
    let out = hub(&["check", "--config", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is not a hostname or *.wildcard"),
        "{}",
        stderr(&out)
    );
}
