//! Running one variant once: start, first 200, saturation (CPU per request,
//! requests/s), fixed-rate latency, memory.

use crate::variants::{self, Variant, PATH};
use crate::Settings;
use envoy_harness::Envoy;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

/// CPU the load generators run on (Envoy is on CPU 0).
const LOAD_CPU: &str = "1";

/// One measurement of one variant.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Round it was taken in (deltas are paired within a round).
    pub round: usize,
    /// Envoy CPU time (all threads) per request served, µs.
    pub cpu_us: f64,
    /// Worker-thread CPU per request, µs.
    pub worker_us: f64,
    /// Requests/s at saturation (wrk).
    pub rps: f64,
    /// Latency at the fixed rate, µs.
    pub p50_us: f64,
    /// Latency at the fixed rate, µs.
    pub p99_us: f64,
    /// Requests/s the fixed-rate run achieved.
    pub rate_achieved: f64,
    /// VmRSS after the runs, KiB.
    pub rss_kib: u64,
    /// Each Wasm VM's linear memory: (committed KiB, resident KiB).
    pub vm_memory: Vec<(u64, u64)>,
    /// Spawn to first 200, ms.
    pub first_200_ms: f64,
    /// Non-2xx answers or errors seen by the load generators.
    pub errors: u64,
    /// Stats worth showing (wasm memory, errors, the variant's counters).
    pub stats: BTreeMap<String, u64>,
}

/// All samples: `[variant][round]`.
pub type Results = Vec<Vec<Sample>>;

/// Runs every variant `rounds` times, rotating the order each round.
pub fn run_all(all: &[Variant], s: &Settings) -> Results {
    let mut results: Results = vec![Vec::new(); all.len()];
    for round in 0..s.rounds {
        let n = all.len();
        for k in 0..n {
            let i = (k + round) % n;
            let Some(v) = all.get(i) else { continue };
            let t = Instant::now();
            match run_one(v, s) {
                Ok(mut sample) => {
                    sample.round = round;
                    eprintln!(
                        "round {}/{} {:<20} cpu {:>7.2} us/req  {:>8.0} req/s  p50 {:>5.0} us  p99 {:>6.0} us  rss {:>4} MiB  first-200 {:>5.0} ms  ({:.1}s)",
                        round + 1,
                        s.rounds,
                        v.id,
                        sample.cpu_us,
                        sample.rps,
                        sample.p50_us,
                        sample.p99_us,
                        sample.rss_kib / 1024,
                        sample.first_200_ms,
                        t.elapsed().as_secs_f64()
                    );
                    if let Some(r) = results.get_mut(i) {
                        r.push(sample);
                    }
                }
                Err(e) => eprintln!("round {} {}: FAILED: {e}", round + 1, v.id),
            }
        }
    }
    results
}

fn run_one(v: &Variant, s: &Settings) -> Result<Sample, String> {
    let builder = v.bootstrap();
    let envoy = builder.start().map_err(|e| e.to_string())?;
    let mut sample = Sample::default();
    // first 200: Envoy is LIVE; the first request may still wait for the
    // worker's VMs
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match envoy.get(PATH) {
            Ok(r) if r.status == 200 => break,
            _ if Instant::now() > deadline => return Err("no 200 within 30 s".into()),
            _ => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    sample.first_200_ms = envoy.started_at().elapsed().as_secs_f64() * 1000.0;
    let url = format!("http://127.0.0.1:{}{PATH}", envoy.port());
    wrk(&url, s.connections, s.warmup)?;
    let rq0 = requests(&envoy)?;
    let (cpu0, w0) = cpu_ns(envoy.pid());
    let load = wrk(&url, s.connections, s.load)?;
    let (cpu1, w1) = cpu_ns(envoy.pid());
    let rq1 = requests(&envoy)?;
    let served = rq1.saturating_sub(rq0).max(1) as f64;
    sample.cpu_us = cpu1.saturating_sub(cpu0) as f64 / served / 1000.0;
    sample.worker_us = w1.saturating_sub(w0) as f64 / served / 1000.0;
    sample.rps = load.rps;
    sample.errors = load.errors;
    let lat = h2load(&url, s.rate, s.latency)?;
    sample.p50_us = lat.p50_us;
    sample.p99_us = lat.p99_us;
    sample.rate_achieved = lat.achieved;
    sample.errors += lat.errors;
    sample.rss_kib = rss_kib(envoy.pid());
    sample.vm_memory = wasm_linear_memory(envoy.pid());
    sample.stats = interesting_stats(&envoy);
    envoy.stop();
    Ok(sample)
}

fn requests(envoy: &Envoy) -> Result<u64, String> {
    envoy
        .stat("http.ingress.downstream_rq_total")
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "no http.ingress.downstream_rq_total".to_string())
}

/// Sum of the run time (ns) of every thread of `pid`
/// (`/proc/PID/task/*/schedstat`), and that of the worker thread alone.
fn cpu_ns(pid: u32) -> (u64, u64) {
    let mut total = 0;
    let mut worker = 0;
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return (0, 0);
    };
    for t in tasks.flatten() {
        let ns = std::fs::read_to_string(t.path().join("schedstat"))
            .ok()
            .and_then(|s| {
                s.split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .unwrap_or(0);
        total += ns;
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() == "wrk:worker_0" {
            worker += ns;
        }
    }
    (total, worker)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// Linear memory of each Wasm VM, from `/proc/PID/smaps` (Envoy 1.40 has no
/// stat for it): V8 reserves 8 GiB of address space per memory (guard
/// regions, `---p`) and makes the pages in use readable and writable just
/// below it, so each reservation preceded by an adjacent `rw-p` mapping is
/// one VM's memory: its size is what the module committed, its Rss what is
/// resident.
fn wasm_linear_memory(pid: u32) -> Vec<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    // (start, end, perms, size KiB, rss KiB)
    let mut maps: Vec<(u64, u64, String, u64, u64)> = Vec::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or_default();
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) {
                maps.push((a, b, f.next().unwrap_or_default().to_string(), 0, 0));
                continue;
            }
        }
        let kib = || {
            f.clone()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        if let Some(m) = maps.last_mut() {
            match first {
                "Size:" => m.3 = kib(),
                "Rss:" => m.4 = kib(),
                _ => {}
            }
        }
    }
    maps.windows(2)
        .filter_map(|w| match w {
            [prev, big]
                if big.2 == "---p"
                    && big.3 >= 4 * 1024 * 1024
                    && prev.1 == big.0
                    && prev.2 == "rw-p" =>
            {
                Some((prev.3, prev.4))
            }
            _ => None,
        })
        .collect()
}

/// Counters and gauges that tell whether a variant did its job and what its
/// VMs hold: anything Wasm-, Lua- or error-related, and the native counter.
fn interesting_stats(envoy: &Envoy) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let Ok(body) = envoy.admin_get("/stats?format=json") else {
        return out;
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) else {
        return out;
    };
    for s in v["stats"].as_array().into_iter().flatten() {
        let (Some(name), Some(value)) = (s["name"].as_str(), s["value"].as_u64()) else {
            continue;
        };
        let keep = name.starts_with("wasm")
            || name.contains("lua")
            || name.starts_with("native")
            || name.contains("bench_reference")
            || name.contains("istio_get_calls")
            || name.starts_with("tracing.zipkin");
        if keep {
            out.insert(name.to_string(), value);
        }
    }
    out
}

struct Load {
    rps: f64,
    errors: u64,
}

/// One benchmark request (`GET PATH` with the benchmark's headers); the
/// answer is not looked at.
/// Sends the benchmark's request once; its status, if it got an answer.
pub(crate) fn send_request(envoy: &Envoy) -> Option<u16> {
    variants::request_headers()
        .into_iter()
        .fold(envoy.request("GET", PATH), |r, (k, v)| r.header(k, v))
        .send()
        .ok()
        .map(|r| r.status)
}

/// `-H name: value` for each of the benchmark's request headers.
fn header_args() -> Vec<String> {
    variants::request_headers()
        .into_iter()
        .flat_map(|(k, v)| ["-H".to_string(), format!("{k}: {v}")])
        .collect()
}

/// `wrk -t1 -cN -dD` on the load CPU; requests/s and errors.
fn wrk(url: &str, connections: u32, d: Duration) -> Result<Load, String> {
    let out = Command::new("taskset")
        .args(["-c", LOAD_CPU, "wrk", "-t1"])
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", d.as_secs().max(1)))
        .args(header_args())
        .arg(url)
        .output()
        .map_err(|e| format!("wrk: {e} (run through scripts/bench.sh, which installs it)"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "wrk failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("wrk output without Requests/sec: {text}"))?;
    let errors = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .filter_map(|v| v.trim().parse::<u64>().ok())
        .sum::<u64>()
        + text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Socket errors:"))
            .map_or(0, |_| 1);
    Ok(Load { rps, errors })
}

struct Latency {
    p50_us: f64,
    p99_us: f64,
    achieved: f64,
    errors: u64,
}

/// `h2load --h1` at a fixed total rate on the load CPU; percentiles from its
/// per-request log.
fn h2load(url: &str, rate: u32, d: Duration) -> Result<Latency, String> {
    let clients: u32 = 4;
    let dir = std::env::temp_dir().join(format!("filter-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let log = dir.join("h2load.log");
    let secs = d.as_secs().max(1);
    let out = Command::new("taskset")
        .args(["-c", LOAD_CPU, "h2load", "--h1"])
        .arg(format!("-c{clients}"))
        .arg(format!("--rps={}", (rate / clients).max(1)))
        .arg(format!("-D{secs}"))
        .args(header_args())
        .arg(format!("--log-file={}", log.display()))
        .arg(url)
        .output()
        .map_err(|e| format!("h2load: {e} (run through scripts/bench.sh, which installs it)"))?;
    if !out.status.success() {
        return Err(format!(
            "h2load failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    let mut lat = Vec::new();
    let mut errors = 0;
    for l in text.lines() {
        let cols: Vec<&str> = l.split('\t').collect();
        if let (Some(status), Some(us)) = (cols.get(1), cols.get(2)) {
            if *status != "200" {
                errors += 1;
            }
            if let Ok(us) = us.trim().parse::<f64>() {
                lat.push(us);
            }
        }
    }
    if lat.is_empty() {
        return Err(format!(
            "h2load logged no requests: {}",
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
        lat.get(i).copied().unwrap_or(0.0)
    };
    Ok(Latency {
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        achieved: lat.len() as f64 / secs as f64,
        errors,
    })
}

/// Starts one variant's Envoy and keeps it until Enter (debugging a variant).
pub fn hold(id: &str) {
    let Some(v) = variants::all(true).into_iter().find(|v| v.id == id) else {
        eprintln!("no variant {id} (see --list)");
        return;
    };
    match v.bootstrap().start() {
        Ok(envoy) => {
            eprintln!(
                "{id}: pid {} listener http://127.0.0.1:{}{PATH} admin http://127.0.0.1:{} dir {}\npress Enter to stop",
                envoy.pid(),
                envoy.port(),
                envoy.admin_port(),
                envoy.dir().display()
            );
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
            envoy.stop();
        }
        Err(e) => eprintln!("{id}: {e}"),
    }
}

/// Host calls per request of one variant: runs it with `wasm:trace`, sends
/// 20 requests, and counts the trace lines by call (after warm-up requests,
/// so configure-time calls are left out).
pub fn calls(id: &str) {
    let Some(v) = variants::all(true).into_iter().find(|v| v.id == id) else {
        eprintln!("no variant {id} (see --list)");
        return;
    };
    let envoy = match v.bootstrap().component_log_level("wasm:trace").start() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{id}: {e}");
            return;
        }
    };
    let send = |n: usize| {
        for _ in 0..n {
            send_request(&envoy);
        }
    };
    send(5);
    std::thread::sleep(Duration::from_millis(300));
    let skip = envoy.log().lines().count();
    let n = 20;
    send(n);
    std::thread::sleep(Duration::from_millis(300));
    let log = envoy.log();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for line in log.lines().skip(skip) {
        let Some((_, msg)) = line.split_once("[trace][wasm]") else {
            continue;
        };
        // "… [host->vm] proxy_on_log(2)", "… [vm->host] env.proxy_get_property(…)";
        // the "return:" lines are not counted
        let msg = msg.rsplit_once("] ").map_or(msg, |(_, m)| m).trim();
        if msg.contains("return:") {
            continue;
        }
        let dir = if line.contains("[host->vm]") {
            "host→vm"
        } else {
            "vm→host"
        };
        let call = msg.split(['(', ' ']).next().unwrap_or(msg);
        let key = format!("{dir} {call}");
        *counts.entry(key).or_default() += 1;
    }
    println!("{id}: trace lines per request ({n} requests):");
    let mut rows: Vec<_> = counts.into_iter().collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    for (k, c) in rows {
        println!("  {:>6.1}  {k}", c as f64 / n as f64);
    }
    envoy.stop();
}

/// RSS per worker: each variant (and the floor) with 1, 2 and 4 workers,
/// after requests over several connections have reached every worker.
/// Prints RSS, VMs and the variant's RSS over the floor at each count; the
/// growth of that excess from one worker count to the next is what each
/// extra worker costs.
pub fn workers(ids: &[String]) {
    let counts = [1u32, 2, 4];
    let mut ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    ids.retain(|id| *id != "floor");
    ids.insert(0, "floor");
    let mut floor: Vec<f64> = Vec::new();
    println!(
        "| variant | workers | RSS MiB | Wasm VMs | over the floor MiB | per extra worker MiB |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for id in ids {
        let Some(v) = variants::all(true).into_iter().find(|v| v.id == id) else {
            eprintln!("no variant {id} (see --list)");
            continue;
        };
        let mut prev: Option<(u32, f64)> = None;
        for (i, &n) in counts.iter().enumerate() {
            let envoy = match v.bootstrap().concurrency(n).cpu_affinity(&[0, 1]).start() {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("{id} x{n}: {e}");
                    continue;
                }
            };
            // Many short connections: the kernel spreads them over the
            // workers' listeners.
            for _ in 0..400 {
                send_request(&envoy);
            }
            std::thread::sleep(Duration::from_millis(500));
            let rss = rss_kib(envoy.pid()) as f64 / 1024.0;
            let vms = envoy
                .stat("wasm.wasm_vm_count")
                .ok()
                .flatten()
                .map_or("–".to_string(), |c| c.to_string());
            envoy.stop();
            if id == "floor" {
                floor.push(rss);
                println!("| `{id}` | {n} | {rss:.1} | {vms} | – | – |");
                continue;
            }
            let over = rss - floor.get(i).copied().unwrap_or(f64::NAN);
            let per = prev.map_or("–".to_string(), |(pn, po)| {
                format!("{:+.1}", (over - po) / f64::from(n - pn))
            });
            println!("| `{id}` | {n} | {rss:.1} | {vms} | {over:+.1} | {per} |");
            prev = Some((n, over));
        }
    }
}
