//! The stack's traffic generator: sends rounds of book-store requests
//! (every route, see `telemetry_stack::ROUND`) to one target URL, bounded in
//! count and in time, then prints what it got as a JSON tally per
//! operation, method and code (stdout, or `--tally FILE`).
//!
//! It talks to the given target only (normally Envoy's listener); before
//! the first round it waits until `GET /healthz` answers (each answer is
//! counted in the tally: Envoy saw it too).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use telemetry_stack::{agent, flag, parse_flags, Tally, ROUND};

const USAGE: &str = "traffic [--target http://127.0.0.1:10000] [--rounds 20] [--duration 120] \
[--rate 0] [--concurrency 2] [--wait 60] [--tally FILE] [--quiet]
  --rounds N       rounds to send (each round: every route once; at most 1000000)
  --duration S     stop starting rounds after S seconds (at most 86400)
  --rate R         rounds per second over all threads (0: as fast as the stack answers)
  --wait S         wait at most S seconds for GET /healthz to answer 200";

const TENANTS: [&str; 3] = ["acme", "globex", "initech"];

fn main() {
    let flags = parse_flags(USAGE);
    let target = flags
        .get("target")
        .cloned()
        .unwrap_or_else(|| "http://127.0.0.1:10000".to_string());
    let target = target.trim_end_matches('/').to_string();
    if target
        .strip_prefix("http://")
        .is_none_or(|host| host.is_empty() || host.contains('/'))
    {
        eprintln!("--target must be http://host:port, got {target:?}");
        std::process::exit(2);
    }
    let rounds: u64 = flag(&flags, "rounds", 20, USAGE).min(1_000_000);
    let duration =
        Duration::from_secs_f64(flag(&flags, "duration", 120.0f64, USAGE).clamp(0.0, 86_400.0));
    let rate: f64 = flag(&flags, "rate", 0.0, USAGE);
    let threads: u64 = flag(&flags, "concurrency", 2u64, USAGE).clamp(1, 64);
    let wait = Duration::from_secs_f64(flag(&flags, "wait", 60.0f64, USAGE).clamp(0.0, 3600.0));
    let quiet = flags.contains_key("quiet");

    let tally = Arc::new(Mutex::new(Tally::default()));
    let http = agent(Duration::from_secs(10));
    if let Err(e) = wait_ready(&http, &target, wait, &tally) {
        eprintln!("traffic: {e}");
        std::process::exit(1);
    }
    let start = Instant::now();
    let next_round = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    eprintln!(
        "traffic: {rounds} rounds of {} requests to {target} ({threads} threads, rate {}, at most {duration:?})",
        ROUND.len(),
        if rate > 0.0 { format!("{rate}/s") } else { "unpaced".to_string() }
    );
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let (next_round, tally, failed, target) = (&next_round, &tally, &failed, &target);
            scope.spawn(move || {
                let http = agent(Duration::from_secs(10));
                loop {
                    let i = next_round.fetch_add(1, Ordering::Relaxed);
                    if i >= rounds || start.elapsed() >= duration {
                        break;
                    }
                    if rate > 0.0 {
                        let due = start + Duration::from_secs_f64(i as f64 / rate);
                        if let Some(d) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(d);
                        }
                    }
                    match round(&http, target, i) {
                        Ok(t) => {
                            if let Ok(mut all) = tally.lock() {
                                all.merge(&t);
                            }
                        }
                        Err(e) => {
                            eprintln!("traffic: round {i}: {e}");
                            failed.store(true, Ordering::Relaxed);
                            break;
                        }
                    }
                    if !quiet && (i + 1) % 50 == 0 {
                        eprintln!("traffic: {} rounds sent", i + 1);
                    }
                }
            });
        }
    });
    let tally = tally.lock().map(|t| t.clone()).unwrap_or_default();
    let secs = start.elapsed().as_secs_f64();
    if !quiet {
        eprintln!("traffic: {} requests in {secs:.1} s", tally.total());
        eprintln!(
            "  {:<16} {:<7} {:>4} {:>6}",
            "OPERATION", "METHOD", "CODE", "COUNT"
        );
        for ((op, m, c), n) in &tally.0 {
            eprintln!("  {op:<16} {m:<7} {c:>4} {n:>6}");
        }
    }
    let mut out = tally.to_json();
    out["target"] = target.clone().into();
    out["seconds"] = secs.into();
    let text = format!("{out:#}\n");
    match flags.get("tally") {
        Some(path) => {
            if let Err(e) = std::fs::write(path, text) {
                eprintln!("traffic: writing {path}: {e}");
                std::process::exit(1);
            }
        }
        None => print!("{text}"),
    }
    if failed.load(Ordering::Relaxed) {
        std::process::exit(1);
    }
}

fn wait_ready(
    http: &ureq::Agent,
    target: &str,
    wait: Duration,
    tally: &Mutex<Tally>,
) -> Result<(), String> {
    let deadline = Instant::now() + wait;
    let url = format!("{target}/healthz");
    loop {
        let last = match http.get(&url).call() {
            Ok(r) => {
                let code = r.status().as_u16();
                if let Ok(mut t) = tally.lock() {
                    t.add("unknown", "GET", code);
                }
                if code == 200 {
                    return Ok(());
                }
                format!("HTTP {code}")
            }
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(format!("{url} not ready after {wait:?}: {last}"));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// One round: every step once; `{new}` is the book the round created.
fn round(http: &ureq::Agent, target: &str, i: u64) -> Result<Tally, String> {
    let mut t = Tally::default();
    let tenant = TENANTS[(i % TENANTS.len() as u64) as usize];
    let mut created = String::from("none");
    for s in ROUND {
        let path = s.path.replace("{new}", &created);
        let url = format!("{target}{path}");
        let mut resp = match (s.method, s.body) {
            ("POST", Some(body)) => http
                .post(&url)
                .header("x-tenant", tenant)
                .header("content-type", "application/json")
                .send(body),
            ("DELETE", _) => http.delete(&url).header("x-tenant", tenant).call(),
            _ => http.get(&url).header("x-tenant", tenant).call(),
        }
        .map_err(|e| format!("{} {path}: {e}", s.method))?;
        let code = resp.status().as_u16();
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        if s.method == "POST" && code == 201 {
            if let Some(id) = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["id"].as_str().map(str::to_string))
            {
                created = id;
            }
        }
        t.add(s.operation, s.method, code);
    }
    Ok(t)
}
