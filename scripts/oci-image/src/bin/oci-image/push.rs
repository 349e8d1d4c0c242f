//! `oci-image push`: uploads the blobs and the manifest bytes exactly as the
//! library built them, so the registry's digest is the computed one.

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use oci_image::Image;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Registry host and port, e.g. `localhost:5000` or `ghcr.io`.
    #[arg(long)]
    registry: String,
    /// Repository prefix, e.g. `wasm-telemetry-filters`.
    #[arg(long)]
    repo: String,
    /// Tag of the Wasm artifact; the compat image gets `<tag>-compat`.
    #[arg(long)]
    tag: String,
    /// Plain HTTP (default for `localhost` and `127.0.0.1`).
    #[arg(long)]
    plain_http: bool,
    /// Module files (`target/filters/<name>.wasm`).
    #[arg(required = true)]
    modules: Vec<PathBuf>,
}

/// Anonymous unless `OCI_USERNAME` and `OCI_PASSWORD` are set.
fn auth() -> RegistryAuth {
    match (std::env::var("OCI_USERNAME"), std::env::var("OCI_PASSWORD")) {
        (Ok(user), Ok(password)) if !user.is_empty() => RegistryAuth::Basic(user, password),
        _ => RegistryAuth::Anonymous,
    }
}

fn is_local(registry: &str) -> bool {
    let host = registry.split(':').next().unwrap_or(registry);
    host == "localhost" || host == "127.0.0.1"
}

async fn push_image(client: &Client, reference: &Reference, image: &Image) -> Result<(), String> {
    let err = |e: oci_client::errors::OciDistributionError| format!("{reference}: {e}");
    for blob in image.blobs() {
        if !client
            .blob_exists(reference, blob.digest())
            .await
            .map_err(err)?
        {
            client
                .push_blob(reference, blob.data().to_vec(), blob.digest())
                .await
                .map_err(err)?;
        }
    }
    let content_type = image
        .manifest_media_type()
        .parse()
        .map_err(|e| format!("{e}"))?;
    client
        .push_manifest_raw(reference, image.manifest_bytes().to_vec(), content_type)
        .await
        .map_err(err)?;
    Ok(())
}

async fn push_all(args: &Args) -> Result<(), String> {
    let protocol = if args.plain_http || is_local(&args.registry) {
        ClientProtocol::Http
    } else {
        ClientProtocol::Https
    };
    let client = Client::new(ClientConfig {
        protocol,
        ..Default::default()
    });
    client.store_auth_if_needed(&args.registry, &auth()).await;
    for path in &args.modules {
        let (name, module) = crate::read_module(path)?;
        let repository = format!("{}/{name}", args.repo.trim_matches('/'));
        for (tag, image) in [
            (args.tag.clone(), oci_image::wasm_artifact(&module)),
            (
                oci_image::compat_tag(&args.tag),
                oci_image::compat_image(&module),
            ),
        ] {
            let reference = Reference::with_tag(args.registry.clone(), repository.clone(), tag);
            push_image(&client, &reference, &image).await?;
            println!("{reference}@{}", image.manifest_digest());
        }
    }
    Ok(())
}

/// Pushes both images of every module.
pub fn run(args: &Args) -> Result<(), String> {
    // One crypto provider for TLS registries (ring, no C toolchain beyond cc).
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?
        .block_on(push_all(args))
}
