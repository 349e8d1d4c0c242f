//! The images' shapes, as Istio's image fetcher reads them, and their determinism.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use oci_image::accept::{extract_module, plugin_from_tar_gz, Format};
use oci_image::media_type::*;
use oci_image::{compat_image, sha256_digest, wasm_artifact, Image};
use serde_json::Value;

/// A small valid module (header only) plus some payload.
fn module(seed: u8) -> Vec<u8> {
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    m.extend((0..5000u32).map(|i| (i as u8).wrapping_mul(seed)));
    m
}

fn manifest(image: &Image) -> Value {
    serde_json::from_slice(image.manifest_bytes()).unwrap()
}

fn blob_lookup(image: &Image) -> impl Fn(&str) -> Result<Vec<u8>, String> + '_ {
    move |digest| {
        image
            .blobs()
            .into_iter()
            .find(|b| b.digest() == digest)
            .map(|b| b.data().to_vec())
            .ok_or_else(|| format!("no blob {digest}"))
    }
}

#[test]
fn artifact_has_exactly_two_layers_one_the_raw_module() {
    let m = module(3);
    let image = wasm_artifact(&m);
    let doc = manifest(&image);
    assert_eq!(doc["schemaVersion"], 2);
    assert_eq!(doc["mediaType"], OCI_MANIFEST);
    assert_eq!(doc["config"]["mediaType"], WASM_CONFIG);
    let layers = doc["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0]["mediaType"], WASM_CONFIG);
    assert_eq!(layers[1]["mediaType"], WASM_CONTENT_LAYER);
    assert_eq!(layers[1]["size"], m.len());
    assert_eq!(layers[1]["digest"], sha256_digest(&m));
    assert_eq!(image.layers()[1].data(), &m[..]);
    let config: Value = serde_json::from_slice(image.config().data()).unwrap();
    assert_eq!(config["type"], "envoy_proxy");
    assert_eq!(
        extract_module(image.manifest_bytes(), blob_lookup(&image)).unwrap(),
        (Format::WasmArtifact, m)
    );
}

#[test]
fn compat_image_has_plugin_wasm_in_its_last_tar_gzip_layer() {
    let m = module(5);
    let image = compat_image(&m);
    let doc = manifest(&image);
    assert_eq!(doc["mediaType"], OCI_MANIFEST);
    assert_eq!(doc["config"]["mediaType"], OCI_CONFIG);
    let layers = doc["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["mediaType"], OCI_LAYER_TAR_GZIP);
    let layer = image.layers()[0].data();
    assert_eq!(&layer[..2], b"\x1f\x8b", "gzip magic");
    assert_eq!(&layer[4..8], b"\0\0\0\0", "no mtime in the gzip header");
    assert_eq!(layer[3] & 0x08, 0, "no file name in the gzip header");
    assert_eq!(plugin_from_tar_gz(layer).unwrap(), m);
    let config: Value = serde_json::from_slice(image.config().data()).unwrap();
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
    assert_eq!(
        extract_module(image.manifest_bytes(), blob_lookup(&image)).unwrap(),
        (Format::OciCompat, m)
    );
}

#[test]
fn tar_entry_metadata_is_fixed() {
    use std::io::Read;
    let image = compat_image(&module(7));
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(image.layers()[0].data())
        .read_to_end(&mut tar)
        .unwrap();
    let mut archive = tar::Archive::new(&tar[..]);
    let entries: Vec<_> = archive.entries().unwrap().collect();
    assert_eq!(entries.len(), 1);
    let entry = entries.into_iter().next().unwrap().unwrap();
    let header = entry.header();
    assert_eq!(header.path().unwrap().to_str(), Some("plugin.wasm"));
    assert_eq!(header.mtime().unwrap(), 0);
    assert_eq!(header.uid().unwrap(), 0);
    assert_eq!(header.gid().unwrap(), 0);
    assert_eq!(header.mode().unwrap(), 0o644);
}

#[test]
fn same_module_same_digests_other_module_other_digests() {
    let (a, b) = (module(3), module(11));
    for build in [wasm_artifact, compat_image] {
        let first = build(&a);
        assert_eq!(first, build(&a.clone()));
        assert_eq!(first.manifest_digest(), build(&a).manifest_digest());
        assert_ne!(first.manifest_digest(), build(&b).manifest_digest());
        assert_eq!(
            first.manifest_digest(),
            sha256_digest(first.manifest_bytes())
        );
        assert_eq!(
            first.manifest_digest(),
            format!("sha256:{}", first.manifest_sha256_hex())
        );
    }
}

/// Pinned digests of a fixed module: a change here changes every published
/// image digest (and the manifests' `sha256`), so it must be deliberate.
#[test]
fn digests_are_stable_across_machines() {
    let m = b"\0asm\x01\0\0\0".to_vec();
    assert_eq!(
        wasm_artifact(&m).manifest_digest(),
        "sha256:f18d59284475ecfa83603b924f26e51f85e316e60dd461122ed23c2d4a50f327"
    );
    assert_eq!(
        compat_image(&m).manifest_digest(),
        "sha256:4bf6742f079291c23344769422d7e3f6989763f0e898566ff2181d81dcab849a"
    );
}

#[test]
fn istio_rejects_what_it_should() {
    // An uncompressed tar layer is not a compat image and not an artifact.
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": "sha256:00", "size": 0},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:00", "size": 0}]
    });
    let err = extract_module(&serde_json::to_vec(&manifest).unwrap(), |_| Ok(vec![])).unwrap_err();
    assert!(
        err.contains("number of layers must be 2 but got 1"),
        "{err}"
    );
}
