//! Where the harness finds Envoy and the filter modules.

use std::path::PathBuf;

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .and_then(|p| p.parent())
        .map(PathBuf::from)
        .unwrap_or(here)
}

/// The Envoy binary: `$ENVOY_BIN`, else the one the scripts (`ensure_envoy`
/// in `scripts/lib.sh`) put in the project's virtualenv (`.venv`), else
/// `envoy` on `PATH`.
pub fn envoy_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("ENVOY_BIN").filter(|v| !v.is_empty()) {
        return PathBuf::from(bin);
    }
    let lib = workspace_root().join(".venv").join("lib");
    if let Ok(entries) = std::fs::read_dir(&lib) {
        for entry in entries.flatten() {
            let bin = entry.path().join("site-packages/envoy/_bin/envoy");
            if bin.is_file() {
                return bin;
            }
        }
    }
    PathBuf::from("envoy")
}

/// Directory of the built filter modules: `$FILTERS_WASM_DIR`, else
/// `target/filters` (what `scripts/build.sh` writes, after wasm-opt), else
/// cargo's `target/wasm32-wasip1/release`.
pub fn wasm_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FILTERS_WASM_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    let built = workspace_root().join("target/filters");
    if built.is_dir() {
        return built;
    }
    workspace_root().join("target/wasm32-wasip1/release")
}

/// Path of a filter module by name (`attributegen` → `…/attributegen.wasm`).
pub fn module(name: &str) -> PathBuf {
    wasm_dir().join(format!("{name}.wasm"))
}
