//! The pinned flyteidl2 crate ships generated code for ClusterService and DataProxyService
//! but does not compile it into its module tree. This finds that crate's sources through
//! `cargo metadata` and writes a module file that includes them, so the messages and service
//! traits come from the published crate rather than from copied .proto files.

use std::env;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

const EXTRA_PACKAGES: &[(&str, &str)] = &[
    ("cluster", "flyteidl2.cluster.rs"),
    ("dataproxy", "flyteidl2.dataproxy.rs"),
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=Cargo.toml");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest_dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(&manifest_dir)
        .output()
        .expect("run cargo metadata");
    if !output.status.success() {
        panic!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let flyteidl2 = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "flyteidl2")
        .expect("flyteidl2 is a dependency");
    let manifest = PathBuf::from(
        flyteidl2["manifest_path"]
            .as_str()
            .expect("a package has a manifest_path"),
    );
    let src = manifest
        .parent()
        .expect("a manifest has a directory")
        .join("src");
    let mut module = String::new();
    for (name, file) in EXTRA_PACKAGES {
        let path = src.join(file);
        assert!(path.is_file(), "{} is missing", path.display());
        println!("cargo:rerun-if-changed={}", path.display());
        module.push_str(&format!(
            "pub mod {name} {{\n    include!({:?});\n}}\n",
            path.display().to_string()
        ));
    }
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("idl_extra.rs");
    fs::write(&out, module).expect("write idl_extra.rs");
}
