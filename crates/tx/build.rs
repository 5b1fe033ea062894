//! Generates the protobuf types of `proto/medledger/v1` with prost (needs `protoc`, installed by
//! scripts/deps.sh from Debian's protobuf-compiler).
fn main() -> std::io::Result<()> {
    // Read at run time, not with env!(): a build script binary compiled for one clone must not
    // point at that clone's protos when cargo reuses it for another (a shared target dir).
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").map_err(std::io::Error::other)?;
    let root = std::path::Path::new(&manifest_dir).join("../../proto");
    let files = [
        "common.proto",
        "tx.proto",
        "state.proto",
        "query.proto",
        "identity.proto",
        "governance.proto",
        "records.proto",
        "claims.proto",
        "gateway.proto",
        "smart.proto",
    ]
    .map(|f| root.join("medledger/v1").join(f));
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    prost_build::Config::new()
        .type_attribute(".", "#[derive(serde::Serialize)]")
        .compile_protos(&files, &[root])
}
