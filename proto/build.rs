//! Compiles the `.proto` contracts with `protox` (a pure-Rust protobuf compiler), so a fresh
//! machine builds with cargo alone: no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "fleetgate/spoke/v1/spoke.proto",
        "fleetgate/enroll/v1/enroll.proto",
        "fleetgate/aigateway/v1/aigateway.proto",
    ];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["."])?;
    // The descriptors themselves, for tests that print messages as proto JSON (golden files).
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("fleetgate_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Carries a private key: `src/lib.rs` implements a Debug that redacts it.
        .skip_debug([
            ".fleetgate.spoke.v1.Certificate",
            // Carries a bootstrap token: redacted the same way.
            ".fleetgate.enroll.v1.EnrollRequest",
            // Carries a provider key: redacted the same way.
            ".fleetgate.aigateway.v1.BackendAuth",
            // Carries a provider key from the tenant's Secret: redacted the same way.
            ".fleetgate.spoke.v1.AiAuth",
            // Carry the tenant's MCP session keys: redacted the same way.
            ".fleetgate.aigateway.v1.TenantConfig",
            ".fleetgate.aigateway.v1.McpSessionKey",
        ])
        // An MCP backend is larger than every other kind of object: boxed, so that it does not
        // make every `object::Spec` as large.
        .boxed(".fleetgate.spoke.v1.AiBackend.mcp")
        .compile_fds(fds)?;
    Ok(())
}
