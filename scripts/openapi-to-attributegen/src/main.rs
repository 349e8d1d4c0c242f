//! `openapi-to-attributegen [--output-attribute NAME] [--base-path /p] [--on-request] api.yaml`
//! Prints an attributegen configuration (JSON) with one route template per
//! OpenAPI operation; warnings go to stderr. Exit 1 on an unusable document.

use openapi_to_attributegen::{convert, Options};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut options = Options::default();
    let mut file = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--output-attribute" => options.output_attribute = args.next().unwrap_or_default(),
            "--base-path" => options.base_path = args.next(),
            "--on-request" => options.phase = "ON_REQUEST".into(),
            "-h" | "--help" => {
                println!("usage: openapi-to-attributegen [--output-attribute NAME] [--base-path /prefix] [--on-request] OPENAPI.{{yaml,json}}");
                return ExitCode::SUCCESS;
            }
            _ => file = Some(a),
        }
    }
    let Some(file) = file else {
        eprintln!("usage: openapi-to-attributegen [--output-attribute NAME] [--base-path /prefix] [--on-request] OPENAPI.{{yaml,json}}");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{file}: {e}");
            return ExitCode::from(2);
        }
    };
    match convert(&text, &options) {
        Ok(c) => {
            for w in &c.warnings {
                eprintln!("warning: {w}");
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&c.config).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{file}: {e}");
            ExitCode::from(1)
        }
    }
}
