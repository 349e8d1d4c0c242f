//! The Wasm OCI artifact (solo-io "Wasm artifact image" spec, the third
//! format Istio's image fetcher accepts): exactly two layers, the runtime
//! config and the raw module.

use crate::blob::Blob;
use crate::media_type::{WASM_CONFIG, WASM_CONTENT_LAYER};
use crate::{assemble, Image};
use serde::Serialize;

/// The proxy-wasm ABI the modules export (`proxy_abi_version_0_2_1`).
const ABI_VERSION: &str = "proxy_abi_version_0_2_1";

/// Runtime config (`application/vnd.module.wasm.config.v1+json`). Fields in
/// a fixed order, no timestamps.
#[derive(Serialize)]
struct RuntimeConfig {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "abiVersions")]
    abi_versions: [&'static str; 1],
    config: Empty,
}

#[derive(Serialize)]
struct Empty {}

fn runtime_config() -> Vec<u8> {
    let config = RuntimeConfig {
        kind: "envoy_proxy",
        abi_versions: [ABI_VERSION],
        config: Empty {},
    };
    serde_json::to_vec(&config).unwrap_or_default()
}

/// The Wasm artifact of `module`: manifest config and first layer are the
/// runtime config (`application/vnd.module.wasm.config.v1+json`), the second
/// layer is the module itself (`application/vnd.module.wasm.content.layer.v1+wasm`).
#[allow(clippy::expect_used)] // every input is a constant or a computed sha256: cannot fail
pub fn wasm_artifact(module: &[u8]) -> Image {
    let config = Blob::new(WASM_CONFIG, None, runtime_config());
    let layers = vec![
        Blob::new(WASM_CONFIG, Some("runtime-config.json"), runtime_config()),
        Blob::new(WASM_CONTENT_LAYER, Some("plugin.wasm"), module.to_vec()),
    ];
    assemble(config, layers).expect("artifact manifest of constant parts")
}
