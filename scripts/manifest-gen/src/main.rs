//! `manifest-gen [--check] [--root DIR]`: writes `envoyfilter-manifests/`
//! from the filters' schemas, examples and built modules; with `--check`,
//! writes nothing and exits 1 naming every committed file that differs.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut check = false;
    let mut root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--check" => check = true,
            "--root" => match args.next() {
                Some(r) => root = PathBuf::from(r),
                None => return usage("--root needs a directory"),
            },
            "-h" | "--help" => {
                println!("usage: manifest-gen [--check] [--root WORKSPACE]");
                return ExitCode::SUCCESS;
            }
            other => return usage(&format!("unknown argument {other:?}")),
        }
    }
    let files = match manifest_gen::generate(&root) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("manifest-gen: {e}");
            return ExitCode::from(2);
        }
    };
    if check {
        let problems = manifest_gen::check(&root, &files);
        if problems.is_empty() {
            println!("manifest-gen: {} manifests up to date", files.len());
            return ExitCode::SUCCESS;
        }
        for p in &problems {
            eprintln!("manifest-gen: {p}");
        }
        eprintln!(
            "manifest-gen: {} of {} generated manifests differ from what is committed; \
             run scripts/gen-manifests.sh (after scripts/build.sh) and commit the result",
            problems.len(),
            files.len()
        );
        return ExitCode::from(1);
    }
    if let Err(e) = manifest_gen::write(&root, &files) {
        eprintln!("manifest-gen: {e}");
        return ExitCode::from(2);
    }
    for (path, _) in &files {
        println!("{}", path.display());
    }
    ExitCode::SUCCESS
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("manifest-gen: {msg}\nusage: manifest-gen [--check] [--root WORKSPACE]");
    ExitCode::from(2)
}
