//! Deterministic OCI images of the filter modules for Istio's `WasmPlugin`
//! (`url: oci://…`), built without Docker.
//!
//! Two of the shapes Istio's image fetcher (`pkg/wasm/imagefetcher.go`)
//! accepts are produced:
//! - [`wasm_artifact`]: the Wasm OCI artifact, exactly two layers, the runtime
//!   config (`application/vnd.module.wasm.config.v1+json`) and the raw module
//!   (`application/vnd.module.wasm.content.layer.v1+wasm`); the manifest's
//!   config blob is the same runtime config;
//! - [`compat_image`]: the "compat" OCI image, one
//!   `application/vnd.oci.image.layer.v1.tar+gzip` layer holding `plugin.wasm`
//!   (what `FROM scratch` + `COPY plugin.wasm ./` builds).
//!
//! The same module bytes give the same blobs and manifest digests on any
//! machine: tar entries have fixed mtime, owner and mode, the gzip header has
//! no mtime or name, the JSON documents carry no timestamps.
//!
//! [`accept::extract_module`] applies Istio's acceptance rules to a pulled
//! image, for tests that check what a registry hands back.
//!
//! Naming used by the `oci-image` command and the manifests: a module
//! `target/filters/get_calls.wasm` is pushed as `<repo>/get-calls:<tag>`
//! (the Wasm artifact, which the `WasmPlugin`s reference) and
//! `<repo>/get-calls:<tag>-compat` (the compat image). Library users that do
//! not push (e.g. a manifest generator) depend on this crate with
//! `default-features = false`.

pub mod accept;
mod artifact;
mod blob;
mod compat;
pub mod media_type;

pub use artifact::wasm_artifact;
pub use blob::{sha256_digest, Blob};
pub use compat::compat_image;

/// Repository name of a module's images: the module's file stem with `-`
/// for `_` (`get_calls` → `get-calls`).
pub fn repository_name(module_stem: &str) -> String {
    module_stem.replace('_', "-")
}

/// Tag of the compat image pushed next to the Wasm artifact tagged `tag`.
pub fn compat_tag(tag: &str) -> String {
    format!("{tag}-compat")
}

/// An image: its manifest and the blobs the manifest references.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    manifest: Vec<u8>,
    config: Blob,
    layers: Vec<Blob>,
}

impl Image {
    /// The manifest's digest, `sha256:<hex>`: what a registry reports for the
    /// pushed image and what a `WasmPlugin`'s `sha256` (hex part) must carry
    /// for an `oci://` URL.
    pub fn manifest_digest(&self) -> String {
        sha256_digest(&self.manifest)
    }

    /// The manifest's hex digest alone, as a `WasmPlugin`'s `sha256` field wants it.
    pub fn manifest_sha256_hex(&self) -> String {
        let digest = self.manifest_digest();
        digest.trim_start_matches("sha256:").to_owned()
    }

    /// The manifest document, byte for byte as pushed.
    pub fn manifest_bytes(&self) -> &[u8] {
        &self.manifest
    }

    /// The manifest's media type (always the OCI image manifest).
    pub fn manifest_media_type(&self) -> &'static str {
        media_type::OCI_MANIFEST
    }

    /// The config blob.
    pub fn config(&self) -> &Blob {
        &self.config
    }

    /// The layer blobs, in manifest order.
    pub fn layers(&self) -> &[Blob] {
        &self.layers
    }

    /// Every distinct blob to upload before the manifest (config first).
    pub fn blobs(&self) -> Vec<&Blob> {
        let mut out: Vec<&Blob> = vec![&self.config];
        for layer in &self.layers {
            if out.iter().all(|b| b.digest() != layer.digest()) {
                out.push(layer);
            }
        }
        out
    }
}

/// Builds the manifest document of `config` and `layers` and wraps them up.
fn assemble(config: Blob, layers: Vec<Blob>) -> Result<Image, oci_spec::OciSpecError> {
    use oci_spec::image::{ImageManifestBuilder, MediaType};
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config.descriptor()?)
        .layers(
            layers
                .iter()
                .map(Blob::descriptor)
                .collect::<Result<Vec<_>, _>>()?,
        )
        .build()?;
    let manifest =
        serde_json::to_vec(&manifest).map_err(|e| oci_spec::OciSpecError::Other(e.to_string()))?;
    Ok(Image {
        manifest,
        config,
        layers,
    })
}
