//! Compiles the e2e crate's own `.proto` (the gRPC echo backend) with `protox`, like
//! `proto/build.rs` does for fleetgate's contracts: no system `protoc` needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["fleetgate/e2e/echo/v1/echo.proto"];
    for p in protos {
        println!("cargo:rerun-if-changed=proto/{p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
