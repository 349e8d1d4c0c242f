//! `oci-image`: builds the filter modules' OCI images (Wasm artifact and
//! compat image, see the library) and pushes them to a registry, without
//! Docker; checks images pulled back by another client against Istio's rules.
//!
//! ```text
//! oci-image digest target/filters/*.wasm
//! oci-image push --registry localhost:5000 --repo telemetry --tag 0.1.0 target/filters/*.wasm
//! oci-image check --layout DIR --module target/filters/get_calls.wasm --format artifact
//! ```

mod check;
mod push;

use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(about = "OCI images of the filter modules for Istio's WasmPlugin, without Docker")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the manifest digests of each module's two images.
    Digest {
        /// Module files (`target/filters/<name>.wasm`).
        #[arg(required = true)]
        modules: Vec<PathBuf>,
    },
    /// Push each module's Wasm artifact (`<repo>/<name>:<tag>`) and compat
    /// image (`<repo>/<name>:<tag>-compat`) and print their references.
    Push(push::Args),
    /// Check an image pulled into an OCI layout directory (`skopeo copy …
    /// oci:DIR`) against Istio's acceptance rules, the module and the digest.
    Check(check::Args),
}

/// Reads a module and names its images after the file stem.
fn read_module(path: &Path) -> Result<(String, Vec<u8>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| format!("{}: no file name", path.display()))?;
    Ok((oci_image::repository_name(stem), bytes))
}

fn digest(modules: &[PathBuf]) -> Result<(), String> {
    for path in modules {
        let (name, module) = read_module(path)?;
        let artifact = oci_image::wasm_artifact(&module);
        let compat = oci_image::compat_image(&module);
        println!("{name}\tartifact\t{}", artifact.manifest_digest());
        println!("{name}\tcompat\t{}", compat.manifest_digest());
    }
    Ok(())
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Digest { modules } => digest(&modules),
        Command::Push(args) => push::run(&args),
        Command::Check(args) => check::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oci-image: {e}");
            ExitCode::FAILURE
        }
    }
}
