//! Instructions per request: each variant's Envoy under valgrind's callgrind,
//! which counts every instruction Envoy executes, the code V8 and LuaJIT
//! generate included.
//!
//! Unlike CPU time, the count does not move with the machine's load, so the
//! ratios between variants hold on a shared machine where the timed run's
//! medians move by microseconds. It does not weigh cache misses or branch
//! mispredictions, which time does: it is a companion to the timed benchmark,
//! not a replacement.
//!
//! Per variant: Envoy starts with callgrind's instrumentation off (start-up
//! at near full speed), instrumentation is switched on, 300 requests warm
//! the JIT compilers and caches, the counters are zeroed, the measured
//! requests are sent one after another on one connection, and the counters
//! are dumped. Zipkin flushes by span count only and stats flush every 299 s,
//! so no timer's work lands in the window by chance (valgrind runs Envoy 50
//! times slower). Two variants run at a time, one per CPU.

use crate::measure::send_request;
use crate::variants::Variant;
use envoy_harness::EnvoyBuilder;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

/// Requests before the counters are zeroed.
const WARMUP: usize = 300;

/// Variants measured at the same time (one per CPU).
const LANES: usize = 2;

/// Where valgrind maps a position-independent executable on x86_64 (its
/// fixed load address for PIE main programs): file addresses + this are the
/// addresses callgrind reports.
const VALGRIND_PIE_BASE: u64 = 0x10_8000;

/// One variant's count.
#[derive(Debug, Clone, Copy)]
struct Count {
    /// All of Envoy's threads, per request.
    total: f64,
    /// The busiest thread (the worker), per request.
    worker: f64,
    /// The worker's instructions by where they ran, per request.
    split: Split,
}

/// A thread's instructions by the code that ran them.
#[derive(Debug, Clone, Copy, Default)]
struct Split {
    /// tcmalloc (Envoy's allocator, its `google_malloc` section).
    malloc: f64,
    /// The rest of Envoy's binary: Envoy, V8's runtime and builtins, the
    /// proxy-wasm host, LuaJIT's interpreter.
    envoy: f64,
    /// Code generated at run time (anonymous memory): the Wasm modules as
    /// V8 compiled them, LuaJIT's traces.
    generated: f64,
    /// libc and anything else.
    other: f64,
}

/// Measures `all` (the floor among them) with `requests` measured requests
/// each and prints a Markdown table and the ratios.
pub fn run(all: &[Variant], requests: usize) {
    if Command::new("callgrind_control")
        .arg("-h")
        .output()
        .is_err()
    {
        eprintln!("callgrind_control not found: install valgrind (scripts/bench.sh does)");
        std::process::exit(2);
    }
    let jobs: Vec<(usize, &'static str, EnvoyBuilder)> = all
        .iter()
        .enumerate()
        .map(|(i, v)| (i, v.id, v.bootstrap()))
        .collect();
    eprintln!(
        "filter-bench --instructions: {} variants under callgrind, {WARMUP} warm-up and {requests} measured requests each, {LANES} at a time (a few minutes per variant)",
        jobs.len()
    );
    let queue = Mutex::new(jobs);
    let counts: Mutex<Vec<Option<Count>>> = Mutex::new(vec![None; all.len()]);
    std::thread::scope(|s| {
        for lane in 0..LANES {
            let (queue, counts) = (&queue, &counts);
            s.spawn(move || loop {
                let Some((i, id, builder)) = queue.lock().ok().and_then(|mut q| q.pop()) else {
                    return;
                };
                match measure(id, builder, lane, requests) {
                    Ok(c) => {
                        eprintln!(
                            "{id:<22} {:>10.0} instructions/request ({:.0} in the worker)",
                            c.total, c.worker
                        );
                        if let Some(slot) = counts.lock().ok().as_mut().and_then(|v| v.get_mut(i)) {
                            *slot = Some(c);
                        }
                    }
                    Err(e) => eprintln!("{id}: FAILED: {e}"),
                }
            });
        }
    });
    let counts = counts.into_inner().unwrap_or_default();
    print!("{}", render(all, &counts, requests));
}

/// One variant under callgrind.
fn measure(id: &str, builder: EnvoyBuilder, lane: usize, requests: usize) -> Result<Count, String> {
    let dir = std::env::temp_dir().join(format!(
        "filter-bench-callgrind-{}-{id}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let out_file = format!("--callgrind-out-file={}/callgrind.%p", dir.display());
    let envoy = builder
        .cpu_affinity(&[lane % LANES])
        .runtime("tracing.zipkin.flush_interval_ms", json!(3_600_000))
        .bootstrap_field("stats_flush_interval", json!("299s"))
        .run_under(&[
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            "--separate-threads=yes",
            "--smc-check=all-non-file",
            &out_file,
        ])
        .ready_timeout(Duration::from_secs(900))
        .start()
        .map_err(|e| e.to_string())?;
    let pid = envoy.pid().to_string();
    let result = (|| {
        callgrind_control(&["-i", "on", &pid])?;
        for _ in 0..WARMUP {
            send_request(&envoy);
        }
        std::thread::sleep(Duration::from_secs(1));
        callgrind_control(&["-z", &pid])?;
        let ok = (0..requests)
            .filter(|_| send_request(&envoy) == Some(200))
            .count();
        callgrind_control(&["-d", &pid])?;
        if ok != requests {
            return Err(format!(
                "{} of {requests} requests were not 200",
                requests - ok
            ));
        }
        let threads = dumped_totals(&dir, &pid)?;
        let n = requests as f64;
        let worker = threads.iter().max_by_key(|t| t.1);
        let split = worker.map(|(f, _)| split(f, n)).unwrap_or_default();
        Ok(Count {
            total: threads.iter().map(|t| t.1).sum::<u64>() as f64 / n,
            worker: worker.map_or(0, |t| t.1) as f64 / n,
            split,
        })
    })();
    envoy.stop();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn callgrind_control(args: &[&str]) -> Result<(), String> {
    let out = Command::new("callgrind_control")
        .args(args)
        .output()
        .map_err(|e| format!("callgrind_control: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "callgrind_control {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Each thread's file and instruction total in the first dump of `pid`
/// (`callgrind.<pid>.1-<thread>`), waiting for the files to be complete.
fn dumped_totals(dir: &Path, pid: &str) -> Result<Vec<(PathBuf, u64)>, String> {
    let prefix = format!("callgrind.{pid}.1-");
    for _ in 0..100 {
        let files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix))
            })
            .collect();
        let totals: Vec<Option<u64>> = files.iter().map(|p| file_total(p)).collect();
        if !totals.is_empty() && totals.iter().all(Option::is_some) {
            return Ok(files
                .into_iter()
                .zip(totals.into_iter().flatten())
                .collect());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!("no complete callgrind dump in {}", dir.display()))
}

/// A callgrind file's `totals:` (or `summary:`) line: its instruction count.
fn file_total(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        l.strip_prefix("totals:")
            .or_else(|| l.strip_prefix("summary:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    })
}

/// `file`'s instructions per request (`n` requests) by the code that ran
/// them, from `callgrind_annotate`'s per-function lines.
fn split(file: &Path, n: f64) -> Split {
    let Ok(out) = Command::new("callgrind_annotate")
        .args(["--threshold=100", "--auto=no"])
        .arg(file)
        .output()
    else {
        return Split::default();
    };
    let malloc = malloc_range();
    let mut s = Split::default();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // "  31,393,987 (12.60%)  ???:0x000000000628d840 [???]"
        let line = line.trim_start();
        let Some((count, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(count) = count.replace(',', "").parse::<u64>() else {
            continue;
        };
        if rest.contains("PROGRAM TOTALS") {
            continue;
        }
        let count = count as f64 / n;
        let address = rest
            .split_once("???:0x")
            .and_then(|(_, a)| a.split(|c: char| !c.is_ascii_hexdigit()).next())
            .and_then(|a| u64::from_str_radix(a, 16).ok());
        let slot = match address {
            Some(a) if malloc.as_ref().is_some_and(|r| r.contains(&a)) => &mut s.malloc,
            _ if rest.ends_with("[???]") => &mut s.generated,
            _ if rest.contains("/envoy]") => &mut s.envoy,
            _ => &mut s.other,
        };
        *slot += count;
    }
    s
}

/// Where Envoy's tcmalloc runs under valgrind: its `google_malloc` and
/// `malloc_hook` sections (`readelf -S`), at valgrind's load address.
fn malloc_range() -> Option<std::ops::Range<u64>> {
    let out = Command::new("readelf")
        .args(["-S", "-W"])
        .arg(envoy_harness::paths::envoy_bin())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let section = |name: &str| -> Option<(u64, u64)> {
        let line = text.lines().find(|l| l.contains(&format!(" {name} ")))?;
        let f: Vec<&str> = line.split_whitespace().collect();
        let i = f.iter().position(|w| *w == name)?;
        let addr = u64::from_str_radix(f.get(i + 2)?, 16).ok()?;
        let size = u64::from_str_radix(f.get(i + 4)?, 16).ok()?;
        Some((addr, size))
    };
    let (start, _) = section("google_malloc")?;
    let (hook, hook_size) = section("malloc_hook").unwrap_or((start, 0));
    Some(start + VALGRIND_PIE_BASE..hook + hook_size + VALGRIND_PIE_BASE)
}

/// The table, then the ratios of issue 16 where both sides were measured.
fn render(all: &[Variant], counts: &[Option<Count>], requests: usize) -> String {
    let find = |id: &str| {
        all.iter()
            .position(|v| v.id == id)
            .and_then(|i| counts.get(i).copied().flatten())
    };
    let floor = find("floor");
    let mut md = format!(
        "Instructions per request under callgrind ({requests} measured requests after {WARMUP}; all of Envoy's threads; Δ over the floor):\n\n\
         | variant | instructions / request | Δ over floor | worker thread | of which tcmalloc | Envoy's binary | generated code | libc, other |\n|---|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for (v, c) in all.iter().zip(counts) {
        let Some(c) = c else {
            md.push_str(&format!("| `{}` | failed | | | | | | |\n", v.id));
            continue;
        };
        let delta = floor.map_or("–".to_string(), |f| format!("{:+.0}", c.total - f.total));
        let p = &c.split;
        md.push_str(&format!(
            "| `{}` | {:.0} | {delta} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |\n",
            v.id, c.total, c.worker, p.malloc, p.envoy, p.generated, p.other
        ));
    }
    let ratio = |a: &str, b: &str| -> Option<(f64, f64, f64)> {
        let f = floor?.total;
        let (a, b) = (find(a)?.total - f, find(b)?.total - f);
        Some((a / b, a, b))
    };
    md.push('\n');
    for (a, b, limit) in [
        ("bundle", "native-all", 1.3),
        ("bundle-before", "native-all", 1.3),
        ("ag-templates", "native-lua", 0.9),
        ("ag-templates-before", "native-lua", 0.9),
    ] {
        if let Some((r, da, db)) = ratio(a, b) {
            md.push_str(&format!(
                "- `{a}` ÷ `{b}` (Δ instructions): **{r:.2}×** ({da:+.0} / {db:+.0}; issue 16's limit {limit}×)\n"
            ));
        }
    }
    md
}
