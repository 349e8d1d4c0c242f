//! Istio's acceptance rules for a Wasm image (`pkg/wasm/imagefetcher.go`),
//! applied to a manifest and its blobs as a registry hands them back.
//!
//! Tried in Istio's order: a Docker schema-2 manifest whose last layer is
//! Docker tar+gzip with `plugin.wasm`; an OCI image whose last layer is OCI
//! tar+gzip with `plugin.wasm` (an uncompressed tar is rejected); the Wasm
//! artifact, exactly two layers, one of them
//! `application/vnd.module.wasm.content.layer.v1+wasm` holding the raw module.

use crate::blob::sha256_digest;
use crate::media_type::{
    DOCKER_LAYER_TAR_GZIP, DOCKER_MANIFEST, OCI_LAYER_TAR_GZIP, PLUGIN_FILE, WASM_CONTENT_LAYER,
};
use flate2::read::GzDecoder;
use serde::Deserialize;
use std::io::Read;
use std::path::Path;

/// Which of Istio's formats an image was read as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Docker schema-2 image, `plugin.wasm` in the last layer.
    DockerCompat,
    /// OCI image, `plugin.wasm` in the last (tar+gzip) layer.
    OciCompat,
    /// Wasm artifact: two layers, one the raw module.
    WasmArtifact,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    #[serde(default)]
    media_type: Option<String>,
    layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: String,
}

/// Reads `manifest` as Istio does and returns the module it would load.
/// `blob` fetches a blob by digest; each blob's content is checked against
/// its digest.
pub fn extract_module(
    manifest: &[u8],
    blob: impl Fn(&str) -> Result<Vec<u8>, String>,
) -> Result<(Format, Vec<u8>), String> {
    let parsed: Manifest =
        serde_json::from_slice(manifest).map_err(|e| format!("manifest is not JSON: {e}"))?;
    let fetch = |d: &Descriptor| -> Result<Vec<u8>, String> {
        let data = blob(&d.digest)?;
        let actual = sha256_digest(&data);
        if actual != d.digest {
            return Err(format!("blob {} has digest {actual}", d.digest));
        }
        Ok(data)
    };
    if parsed.media_type.as_deref() == Some(DOCKER_MANIFEST) {
        let layer = last_layer(&parsed, DOCKER_LAYER_TAR_GZIP)?;
        let module = plugin_from_tar_gz(&fetch(layer)?)?;
        return Ok((Format::DockerCompat, module));
    }
    let compat = last_layer(&parsed, OCI_LAYER_TAR_GZIP)
        .and_then(|layer| plugin_from_tar_gz(&fetch(layer)?));
    let compat_error = match compat {
        Ok(module) => return Ok((Format::OciCompat, module)),
        Err(e) => e,
    };
    if parsed.layers.len() != 2 {
        return Err(format!(
            "not a compat image ({compat_error}); not a Wasm artifact: number of layers must be 2 but got {}",
            parsed.layers.len()
        ));
    }
    let layer = parsed
        .layers
        .iter()
        .find(|l| l.media_type == WASM_CONTENT_LAYER)
        .ok_or_else(|| {
            format!("not a compat image ({compat_error}); not a Wasm artifact: no {WASM_CONTENT_LAYER} layer")
        })?;
    Ok((Format::WasmArtifact, fetch(layer)?))
}

fn last_layer<'m>(manifest: &'m Manifest, media_type: &str) -> Result<&'m Descriptor, String> {
    let layer = manifest
        .layers
        .last()
        .ok_or("number of layers must be greater than zero")?;
    if layer.media_type != media_type {
        return Err(format!(
            "invalid media type {} (expect {media_type})",
            layer.media_type
        ));
    }
    Ok(layer)
}

/// The first tar entry whose base name is `plugin.wasm`.
pub fn plugin_from_tar_gz(layer: &[u8]) -> Result<Vec<u8>, String> {
    let mut archive = tar::Archive::new(GzDecoder::new(layer));
    let entries = archive
        .entries()
        .map_err(|e| format!("layer is not tar+gzip: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("layer is not tar+gzip: {e}"))?;
        let path = entry.path().map_err(|e| format!("bad tar entry: {e}"))?;
        if Path::new(&*path).file_name() == Some(std::ffi::OsStr::new(PLUGIN_FILE)) {
            let mut module = Vec::new();
            entry
                .read_to_end(&mut module)
                .map_err(|e| format!("failed to read {PLUGIN_FILE}: {e}"))?;
            return Ok(module);
        }
    }
    Err(format!("{PLUGIN_FILE} not found in the archive"))
}
