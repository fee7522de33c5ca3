//! Generates the Rust code for the wire contract with tonic's builder.
//!
//! `protoc` comes from the `protoc-bin-vendored` crate unless `PROTOC` names
//! one, so a fresh machine needs nothing beyond the Rust toolchain.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = tonic_prost_build::Config::new();
    if std::env::var_os("PROTOC").is_none() {
        config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    }
    println!("cargo:rerun-if-changed=fleetwatch/v1/ingest.proto");
    // The RPC is named `Connect`, which would clash with the generated
    // client's `connect(endpoint)` constructor; clients are built with
    // `IngestClient::new(channel)` instead.
    tonic_prost_build::configure()
        .build_transport(false)
        .compile_with_config(config, &["fleetwatch/v1/ingest.proto"], &["."])?;
    Ok(())
}
