//! filter-bench: the filters and their native alternatives side by side in a
//! real Envoy (method: `performance.md` of the project's reference notes).
//!
//! Envoy runs one worker pinned to CPU 0, the load generator is pinned to
//! CPU 1, every variant uses the same bootstrap plus what it measures, the
//! variants are interleaved over several rounds with the order rotated, and
//! the report gives medians and deltas over the floor paired within a round.
//! Run it through `scripts/bench.sh` (builds the modules, installs wrk and
//! h2load, then runs this).

mod configs;
mod instructions;
mod measure;
mod report;
mod variants;

use std::path::PathBuf;
use std::time::Duration;

/// Everything from this line on in the output file is kept when the
/// benchmark rewrites it (hand-written notes on a run).
const NOTES_MARKER: &str = "<!-- notes: kept when scripts/bench.sh rewrites this file -->";

/// Settings from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Rounds (each runs every variant once).
    pub rounds: usize,
    /// Saturation run length.
    pub load: Duration,
    /// Warm-up before it.
    pub warmup: Duration,
    /// Fixed-rate latency run length.
    pub latency: Duration,
    /// Requests/s of the fixed-rate run.
    pub rate: u32,
    /// wrk connections.
    pub connections: u32,
    /// Variant ids to run (empty: all).
    pub only: Vec<String>,
    /// Markdown output.
    pub out: Option<PathBuf>,
    /// `--quick`.
    pub quick: bool,
    /// `--before DIR`: each Wasm variant run also with DIR's modules.
    pub before: Option<PathBuf>,
    /// `--instructions`: count instructions under callgrind instead of timing.
    pub instructions: bool,
    /// Measured requests per variant with `--instructions`.
    pub requests: usize,
    /// The command line, for the report.
    pub command: String,
}

fn usage() -> ! {
    eprintln!(
        "usage: filter-bench [--quick] [--rounds N] [--load SECS] [--latency SECS] [--rate RPS]\n\
         \x20                   [--only id,id] [--out FILE] [--list] [--hold id] [--calls id,id]\n\
         \x20                   [--workers id,id] [--mesh-headers] [--before DIR]\n\
         \x20                   [--instructions [--requests N]]\n\
         --hold id: start that variant's Envoy, print its ports and directory, stop on Enter\n\
         --calls ids: host calls per request of those variants (wasm:trace log of 20 requests)\n\
         --workers ids: RSS of those variants and the floor with 1, 2 and 4 workers (per extra worker)\n\
         --mesh-headers: every request also carries 18 headers an Istio sidecar typically sees\n\
         --before DIR: every Wasm variant also runs as <id>-before with DIR's modules (a before/after in one run)\n\
         --instructions: instead of timing, count the instructions per request of the selected variants under\n\
         \x20 valgrind's callgrind (load-independent; --requests N measured requests each, default 1000)\n\
         --quick: 1 round, 1 s per figure (smoke test); default: 5 rounds, 5 s load, 3 s latency"
    );
    std::process::exit(2)
}

/// The command as a user types it: `scripts/bench.sh` and the options,
/// without the `--out` that script adds (no machine paths in the report).
fn command_line(args: &[String]) -> String {
    let mut shown = vec!["scripts/bench.sh".to_string()];
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--out" {
            if let Some(path) = it.next() {
                if !path.ends_with("scripts/bench/RESULTS.md") {
                    shown.push(format!("--out {path}"));
                }
            }
            continue;
        }
        shown.push(a.clone());
    }
    shown.join(" ")
}

fn parse_args() -> Settings {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut s = Settings {
        rounds: 5,
        load: Duration::from_secs(5),
        warmup: Duration::from_secs(2),
        latency: Duration::from_secs(3),
        rate: 1000,
        connections: 16,
        only: Vec::new(),
        out: None,
        quick: false,
        before: None,
        instructions: false,
        requests: 1000,
        command: command_line(&args),
    };
    let mut it = args.into_iter();
    let secs = |v: Option<String>| {
        v.and_then(|v| v.parse::<f64>().ok())
            .map(Duration::from_secs_f64)
            .unwrap_or_else(|| usage())
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => {
                s.quick = true;
                s.rounds = 1;
                s.load = Duration::from_secs(1);
                s.warmup = Duration::from_secs(1);
                s.latency = Duration::from_secs(1);
            }
            "--mesh-headers" => variants::use_mesh_headers(),
            "--instructions" => s.instructions = true,
            "--requests" => {
                s.requests = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--before" => s.before = Some(PathBuf::from(it.next().unwrap_or_else(|| usage()))),
            "--rounds" => {
                s.rounds = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--load" => s.load = secs(it.next()),
            "--latency" => s.latency = secs(it.next()),
            "--rate" => {
                s.rate = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--only" => {
                s.only = it
                    .next()
                    .unwrap_or_else(|| usage())
                    .split(',')
                    .map(str::to_string)
                    .collect()
            }
            "--out" => s.out = Some(PathBuf::from(it.next().unwrap_or_else(|| usage()))),
            "--calls" => {
                let ids = it.next().unwrap_or_else(|| usage());
                for id in ids.split(',') {
                    measure::calls(id);
                }
                std::process::exit(0)
            }
            "--workers" => {
                let ids: Vec<String> = it
                    .next()
                    .unwrap_or_else(|| usage())
                    .split(',')
                    .map(str::to_string)
                    .collect();
                measure::workers(&ids);
                std::process::exit(0)
            }
            "--hold" => {
                let id = it.next().unwrap_or_else(|| usage());
                measure::hold(&id);
                std::process::exit(0)
            }
            "--list" => {
                for v in variants::all(true) {
                    println!("{:<22} {}", v.id, v.label);
                }
                std::process::exit(0)
            }
            _ => usage(),
        }
    }
    s
}

fn main() {
    let settings = parse_args();
    let bundle = envoy_harness::paths::module("telemetry_bundle").is_file();
    let mut all = variants::all(bundle);
    if !settings.only.is_empty() {
        // the floor is always measured: every delta is paired with it
        all.retain(|v| v.id == "floor" || settings.only.iter().any(|o| o == v.id));
    }
    if let Some(dir) = &settings.before {
        let before: Vec<_> = all
            .iter()
            .filter(|v| !v.modules.is_empty())
            .map(|v| v.with_modules_of(dir))
            .collect();
        all.extend(before);
    }
    for v in &all {
        for m in &v.modules {
            let path = v.module_path(m);
            if !path.is_file() {
                eprintln!("missing module {} (run scripts/build.sh)", path.display());
                std::process::exit(2);
            }
        }
    }
    if !bundle {
        eprintln!("note: no telemetry_bundle.wasm yet; the bundle variant is skipped");
    }
    if settings.instructions {
        instructions::run(&all, settings.requests);
        return;
    }
    let machine = report::Machine::describe();
    eprintln!(
        "filter-bench: {} variants x {} rounds; load at start: {}",
        all.len(),
        settings.rounds,
        machine.load_start
    );
    let results = measure::run_all(&all, &settings);
    let machine = machine.finish();
    let md = report::render(&all, &results, &settings, &machine);
    println!("{md}");
    if let Some(out) = &settings.out {
        // hand-written notes below the marker survive a re-run
        let notes = std::fs::read_to_string(out)
            .ok()
            .and_then(|old| old.find(NOTES_MARKER).map(|i| old[i..].to_string()))
            .unwrap_or_default();
        let md = if notes.is_empty() {
            md
        } else {
            format!("{md}\n{notes}")
        };
        if let Err(e) = std::fs::write(out, &md) {
            eprintln!("cannot write {}: {e}", out.display());
            std::process::exit(1);
        }
        eprintln!("wrote {}", out.display());
    }
}
