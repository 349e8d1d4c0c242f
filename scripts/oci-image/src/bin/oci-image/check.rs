//! `oci-image check`: reads an image that another client (skopeo) pulled
//! into an OCI layout and checks it as Istio would load it.

use oci_image::accept::{extract_module, Format};
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Expect {
    /// The Wasm artifact (two layers, raw module).
    Artifact,
    /// The compat image (`plugin.wasm` in a tar+gzip layer).
    Compat,
}

#[derive(clap::Args)]
pub struct Args {
    /// OCI layout directory holding one image (`skopeo copy … oci:DIR`).
    #[arg(long)]
    layout: PathBuf,
    /// The module the image must carry, byte for byte.
    #[arg(long)]
    module: PathBuf,
    /// Which image it must be.
    #[arg(long, value_enum)]
    format: Expect,
    /// A digest the manifest must also have (e.g. from `skopeo inspect`).
    #[arg(long)]
    digest: Option<String>,
}

#[derive(Deserialize)]
struct Index {
    manifests: Vec<IndexEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IndexEntry {
    media_type: String,
    digest: String,
}

/// Checks one pulled image.
pub fn run(args: &Args) -> Result<(), String> {
    let blob = |digest: &str| -> Result<Vec<u8>, String> {
        let hex = digest
            .strip_prefix("sha256:")
            .ok_or_else(|| format!("not a sha256 digest: {digest}"))?;
        let path = args.layout.join("blobs/sha256").join(hex);
        std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
    };
    let index_path = args.layout.join("index.json");
    let index = std::fs::read(&index_path).map_err(|e| format!("{}: {e}", index_path.display()))?;
    let index: Index =
        serde_json::from_slice(&index).map_err(|e| format!("{}: {e}", index_path.display()))?;
    let [entry] = index.manifests.as_slice() else {
        return Err(format!(
            "{}: {} manifests, want 1",
            index_path.display(),
            index.manifests.len()
        ));
    };
    let manifest = blob(&entry.digest)?;
    if oci_image::sha256_digest(&manifest) != entry.digest {
        return Err(format!("manifest blob does not match {}", entry.digest));
    }
    let (_, module) = crate::read_module(&args.module)?;
    let (expected, format) = match args.format {
        Expect::Artifact => (oci_image::wasm_artifact(&module), Format::WasmArtifact),
        Expect::Compat => (oci_image::compat_image(&module), Format::OciCompat),
    };
    if entry.media_type != expected.manifest_media_type() {
        return Err(format!("manifest media type {}", entry.media_type));
    }
    if entry.digest != expected.manifest_digest() {
        return Err(format!(
            "pulled manifest {} differs from the computed {}",
            entry.digest,
            expected.manifest_digest()
        ));
    }
    if let Some(digest) = &args.digest {
        if *digest != entry.digest {
            return Err(format!("pulled manifest {} is not {digest}", entry.digest));
        }
    }
    let (read_as, loaded) = extract_module(&manifest, blob)?;
    if read_as != format {
        return Err(format!("Istio reads it as {read_as:?}, want {format:?}"));
    }
    if loaded != module {
        return Err(format!(
            "the module Istio would load ({} bytes) differs from {}",
            loaded.len(),
            args.module.display()
        ));
    }
    println!(
        "ok {} {:?} {} ({} bytes of module)",
        args.module.display(),
        format,
        entry.digest,
        loaded.len()
    );
    Ok(())
}
