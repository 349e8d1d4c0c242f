//! `demo`: the README's first command. Starts a real Envoy with the filters
//! on the built-in example configuration (`test-env/configs/`), sends sample
//! requests and shows what the filters produced, as Envoy itself reports it.
//! `--keep` leaves Envoy running until Ctrl-C so you can send your own.

use envoy_harness::{paths, Envoy, Wasm};
use std::process::ExitCode;

const SAMPLES: &[(&str, &str, u16)] = &[
    ("GET", "/books", 200),
    ("GET", "/books?page=2", 200),
    ("POST", "/books", 201),
    ("GET", "/books/b42", 200),
    ("GET", "/books/missing", 404),
    ("DELETE", "/books/b42", 204),
    ("GET", "/shelves/s1/books", 200),
    ("GET", "/books/b7", 503),
    ("PATCH", "/books/b7", 405),
    ("GET", "/healthz", 200),
];

fn main() -> ExitCode {
    let keep = std::env::args().any(|a| a == "--keep");
    match run(keep) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(keep: bool) -> Result<(), Box<dyn std::error::Error>> {
    let config_path = paths::workspace_root().join("test-env/configs/attributegen.json");
    let config = std::fs::read_to_string(&config_path)?;
    let envoy = Envoy::builder()
        .concurrency(2)
        .filter(Wasm::new("attributegen").config(config))
        .log_attribute("istio_operationId")
        .log_attribute("istio_responseClass")
        .component_log_level("wasm:info")
        .start()?;
    println!(
        "Envoy {} is up in {} ms: listener http://127.0.0.1:{}, admin http://127.0.0.1:{}",
        envoy_version(),
        envoy.ready_after().as_millis(),
        envoy.port(),
        envoy.admin_port()
    );
    println!("attributegen config: {}\n", rel(&config_path));
    println!(
        "{:<7} {:<20} {:>4}  {:<18} {:<10}  (from Envoy's access log: %FILTER_STATE(wasm.*:PLAIN)%)",
        "METHOD", "PATH", "CODE", "istio_operationId", "class"
    );
    for (method, path, code) in SAMPLES {
        let resp = envoy.request(method, path).upstream_status(*code).send()?;
        let entry = envoy.access_log_entry(&resp)?;
        let show = |k: &str| entry[k].as_str().unwrap_or("-").to_string();
        println!(
            "{:<7} {:<20} {:>4}  {:<18} {:<10}",
            method,
            path,
            entry["code"],
            show("attr.istio_operationId"),
            show("attr.istio_responseClass")
        );
    }
    println!("\nFilter counters (admin /stats):");
    for name in [
        "wasmcustom.wasm_filter.attributegen.type.config.error_count",
        "wasmcustom.wasm_filter.attributegen.type.runtime.error_count",
    ] {
        println!("  {name}: {}", envoy.stat(name)?.unwrap_or(0));
    }
    if keep {
        println!(
            "\nEnvoy keeps running. Try: curl -s localhost:{}/books -o /dev/null; tail -f {}\nCtrl-C to stop.",
            envoy.port(),
            envoy.dir().join("access.log").display()
        );
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
    Ok(())
}

fn envoy_version() -> String {
    std::process::Command::new(paths::envoy_bin())
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            let s = String::from_utf8_lossy(&o.stdout).into_owned();
            let (_, v) = s.split_once("version: ")?;
            v.split('/').nth(1).map(str::to_string)
        })
        .unwrap_or_else(|| "?".into())
}

fn rel(p: &std::path::Path) -> String {
    p.strip_prefix(paths::workspace_root())
        .map(|r| r.display().to_string())
        .unwrap_or_else(|_| p.display().to_string())
}
