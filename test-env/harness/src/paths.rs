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

/// The Envoy binary: `$ENVOY_BIN`, else Envoy `$ENVOY_VERSION` (default
/// 1.40.0) in the cached virtualenv `ensure_envoy` (`scripts/lib.sh`)
/// installs (`${XDG_CACHE_HOME:-$HOME/.cache}/wasm-telemetry-filters/envoy/<version>`),
/// else the project's older `.venv`, else `envoy` on `PATH`.
pub fn envoy_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("ENVOY_BIN").filter(|v| !v.is_empty()) {
        return PathBuf::from(bin);
    }
    let version = std::env::var("ENVOY_VERSION")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "1.40.0".to_string());
    let cache = std::env::var_os("ENVOY_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .map(|c| c.join("wasm-telemetry-filters/envoy"))
        });
    let venvs = cache
        .map(|c| c.join(version))
        .into_iter()
        .chain(std::iter::once(workspace_root().join(".venv")));
    for venv in venvs {
        if let Ok(entries) = std::fs::read_dir(venv.join("lib")) {
            for entry in entries.flatten() {
                let bin = entry.path().join("site-packages/envoy/_bin/envoy");
                if bin.is_file() {
                    return bin;
                }
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
