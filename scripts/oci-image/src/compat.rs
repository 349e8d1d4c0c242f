//! The "compat" image: a one-layer OCI image whose tar+gzip layer holds
//! `plugin.wasm`, what `FROM scratch` + `COPY plugin.wasm ./` builds and the
//! first OCI shape Istio's image fetcher tries.

use crate::blob::{sha256_digest, Blob};
use crate::media_type::{OCI_CONFIG, OCI_LAYER_TAR_GZIP, PLUGIN_FILE};
use crate::{assemble, Image};
use flate2::{Compression, GzBuilder};
use oci_spec::image::{Arch, ImageConfigurationBuilder, Os, RootFsBuilder};
use std::io::Write;

/// A tar holding `plugin.wasm` with fixed metadata (mtime 0, root, 0644).
fn plugin_tar(module: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut header = tar::Header::new_ustar();
    header.set_path(PLUGIN_FILE)?;
    header.set_size(module.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, module)?;
    builder.into_inner()
}

/// gzip without mtime or file name in the header, at a fixed level.
fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), Compression::best());
    encoder.write_all(data)?;
    encoder.finish()
}

/// The OCI image config: `wasm`/`wasip1`, one layer, nothing else.
fn image_config(diff_id: String) -> Result<Vec<u8>, oci_spec::OciSpecError> {
    let config = ImageConfigurationBuilder::default()
        .architecture(Arch::Wasm)
        .os(Os::Other("wasip1".to_owned()))
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![diff_id])
                .build()?,
        )
        .build()?;
    serde_json::to_vec(&config).map_err(|e| oci_spec::OciSpecError::Other(e.to_string()))
}

fn build(module: &[u8]) -> Result<Image, oci_spec::OciSpecError> {
    let tar = plugin_tar(module)?;
    let layer = Blob::new(OCI_LAYER_TAR_GZIP, None, gzip(&tar)?);
    let config = Blob::new(OCI_CONFIG, None, image_config(sha256_digest(&tar))?);
    assemble(config, vec![layer])
}

/// The compat image of `module`: one `application/vnd.oci.image.layer.v1.tar+gzip`
/// layer whose tar holds `plugin.wasm`.
#[allow(clippy::expect_used)] // in-memory tar and gzip of a byte slice cannot fail
pub fn compat_image(module: &[u8]) -> Image {
    build(module).expect("in-memory image")
}
