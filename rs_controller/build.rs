//! Binaries embed Python. With the default features pyo3 links libpython itself; in the
//! wheel's configuration (`extension-module`) it must not, so here libpython is linked into
//! the binaries only (never into the extension module), with an rpath so they find it.

fn main() {
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    if std::env::var_os("CARGO_FEATURE_EXTENSION_MODULE").is_none() {
        return;
    }
    let config = pyo3_build_config::get();
    let (Some(dir), Some(name)) = (config.lib_dir.as_ref(), config.lib_name.as_ref()) else {
        println!(
            "cargo:warning=no libpython found: flyte-submit will not link in this configuration"
        );
        return;
    };
    for kind in ["bins", "tests"] {
        println!("cargo:rustc-link-arg-{kind}=-L{dir}");
        println!("cargo:rustc-link-arg-{kind}=-l{name}");
        println!("cargo:rustc-link-arg-{kind}=-Wl,-rpath,{dir}");
    }
}
