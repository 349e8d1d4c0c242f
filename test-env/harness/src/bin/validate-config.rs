//! `validate-config`: runs a filter configuration through a real Envoy with
//! the filter loaded and reports every error the filter (and Envoy's CEL
//! parser) logs, with its position. Exit code 0 when valid, 1 when not, 2 on
//! usage or start-up problems. Used by `scripts/validate-config.sh`.

use envoy_harness::{Envoy, Wasm};
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str =
    "usage: validate-config --filter <attributegen|get_calls|trace_tags> <config.json | ->";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut filter, mut file) = (None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--filter" => filter = it.next().cloned(),
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => file = Some(other.to_string()),
        }
    }
    let (Some(filter), Some(file)) = (filter, file) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let filter = filter.replace('-', "_");
    let config = if file == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(&file)
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("validate-config: cannot read {file}: {e}");
            return ExitCode::from(2);
        }
    };
    let envoy = match Envoy::builder()
        .filter(Wasm::new(&filter).config(config))
        .component_log_level("wasm:info")
        .start()
    {
        Ok(e) => e,
        Err(e) => {
            eprintln!("validate-config: Envoy did not start with this configuration:\n{e}");
            return ExitCode::from(2);
        }
    };
    // Every VM has run on_configure once Envoy is ready; one request makes
    // sure the worker's VM is live too.
    let _ = envoy.get("/");
    std::thread::sleep(Duration::from_millis(100));
    let log = envoy.stop();
    let errors = report(&log);
    if errors.is_empty() {
        println!("{file}: valid {filter} configuration");
        ExitCode::SUCCESS
    } else {
        for e in &errors {
            println!("{file}: {e}");
        }
        println!(
            "{file}: INVALID ({} problem{})",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        );
        ExitCode::from(1)
    }
}

/// The filter's `Config Error` lines, each with the CEL parser's message
/// Envoy logged just before it; deduplicated across VMs.
fn report(log: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut parse_error: Option<String> = None;
    let mut in_parse_error = false;
    for line in log.lines() {
        let Some((_, rest)) = line.split_once("wasm log ") else {
            if let Some((_, msg)) = line.split_once("expr_create parse error: ") {
                parse_error = Some(msg.trim().to_string());
                in_parse_error = true;
            } else if in_parse_error && !line.starts_with('[') {
                // The parser's message continues on lines of its own.
                if let Some(p) = parse_error.as_mut() {
                    p.push('\n');
                    p.push_str(line.trim_end());
                }
            } else {
                in_parse_error = false;
            }
            continue;
        };
        in_parse_error = false;
        let msg = rest.split_once(": ").map_or(rest, |(_, m)| m);
        let Some((_, err)) = msg.split_once("Config Error: ") else {
            continue;
        };
        if err.starts_with("configuration rejected") {
            continue;
        }
        let mut entry = err.to_string();
        if err.contains("does not compile") {
            if let Some(p) = parse_error.take() {
                entry.push_str(&format!("\n    CEL parser: {}", p.replace('\n', "\n    ")));
            }
        }
        if !out.contains(&entry) {
            out.push(entry);
        }
    }
    out
}
