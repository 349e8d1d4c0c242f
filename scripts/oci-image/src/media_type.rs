//! The media types of the images and the ones Istio's image fetcher tells apart.

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker image manifest, schema 2 (read by the acceptance check only).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// OCI image config (compat image).
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI tar+gzip layer: the compat image's layer holding `plugin.wasm`.
pub const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Docker tar+gzip layer (read by the acceptance check only).
pub const DOCKER_LAYER_TAR_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Wasm artifact: runtime config (config blob and one of the two layers).
pub const WASM_CONFIG: &str = "application/vnd.module.wasm.config.v1+json";
/// Wasm artifact: the raw module.
pub const WASM_CONTENT_LAYER: &str = "application/vnd.module.wasm.content.layer.v1+wasm";

/// The file name Istio looks for in a compat image's last layer.
pub const PLUGIN_FILE: &str = "plugin.wasm";
