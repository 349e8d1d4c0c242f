//! Starts, feeds, shows and stops the observability stack as local
//! processes on loopback (what `scripts/stack.sh` runs after installing and
//! building): Envoy with the three filters, the book-store upstream, the span
//! collector, the gRPC collector and Prometheus.
//!
//! `stack [up|traffic|status|down] [--rounds N] [--runtime wasm|dynamic-module]`:
//! `--runtime dynamic-module` runs the same filters and JSON in the dynamic
//! module `target/filters/libtelemetry_filters.so`. Environment: `ENVOY_BIN`,
//! `PROMETHEUS_BIN` (default `prometheus`), `STACK_DIR` (default
//! `target/stack`), `STACK_PORTS=free` or the `STACK_*_PORT` variables.

use envoy_harness::paths::workspace_root;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;
use telemetry_stack::local_config::{self, Ports, Runtime};
use telemetry_stack::supervise::{http_ok, tcp_open, Supervisor};

const USAGE: &str =
    "usage: scripts/stack.sh [up|traffic|status|down] [--rounds N] [--runtime wasm|dynamic-module]";
/// Start order; `down` stops them (and a running traffic) in `STOP_ORDER`.
const SERVICES: [&str; 5] = [
    "bookstore",
    "collector",
    "grpc-collector",
    "envoy",
    "prometheus",
];
const STOP_ORDER: [&str; 6] = [
    "envoy",
    "prometheus",
    "collector",
    "grpc-collector",
    "bookstore",
    "traffic",
];

fn say(msg: &str) {
    eprintln!("\x1b[1m==> {msg}\x1b[0m");
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let cmd = args.next().unwrap_or_else(|| "up".to_string());
    let mut rounds = 30u32;
    let mut runtime = Runtime::Wasm;
    while let Some(a) = args.next() {
        let value = args.next().unwrap_or_default();
        match (a.as_str(), value.parse::<u32>(), Runtime::parse(&value)) {
            ("--rounds", Ok(n), _) => rounds = n,
            ("--runtime", _, Some(r)) => runtime = r,
            _ => return usage(),
        }
    }
    let root = workspace_root();
    let state = std::env::var_os("STACK_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/stack"));
    let sup = Supervisor::new(state);
    let result = match cmd.as_str() {
        "down" => {
            sup.stop_all(&STOP_ORDER);
            Ok(())
        }
        "status" => status(&sup),
        "traffic" => traffic(&sup, &root, rounds),
        "up" => up(&sup, &root, rounds, runtime),
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("{msg}");
            }
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}

fn ports_file(sup: &Supervisor) -> PathBuf {
    sup.state().join("ports.env")
}

fn save_ports(sup: &Supervisor, p: Ports) -> Result<(), String> {
    let text = format!(
        "LISTEN={}\nADMIN={}\nPROM={}\nCOLL={}\nBOOK={}\nGRPC={}\n",
        p.listen, p.admin, p.prometheus, p.collector, p.bookstore, p.grpc
    );
    std::fs::write(ports_file(sup), text).map_err(|e| format!("ports.env: {e}"))
}

fn load_ports(sup: &Supervisor) -> Result<Ports, String> {
    let text = std::fs::read_to_string(ports_file(sup))
        .map_err(|_| format!("no stack state in {}", sup.state().display()))?;
    let get = |key: &str| -> Result<u16, String> {
        text.lines()
            .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| format!("{}: no {key}", ports_file(sup).display()))
    };
    Ok(Ports {
        listen: get("LISTEN")?,
        admin: get("ADMIN")?,
        prometheus: get("PROM")?,
        collector: get("COLL")?,
        bookstore: get("BOOK")?,
        grpc: get("GRPC")?,
    })
}

/// Fixed ports (`STACK_*_PORT`, compose's defaults), or free ones with
/// `STACK_PORTS=free`.
fn choose_ports() -> Result<Ports, String> {
    let free = std::env::var("STACK_PORTS").is_ok_and(|v| v == "free");
    let pick = |var: &str, default: u16| -> Result<u16, String> {
        if free {
            return envoy_harness::free_port().map_err(|e| e.to_string());
        }
        match std::env::var(var) {
            Ok(v) if !v.is_empty() => v.parse().map_err(|_| format!("{var}={v}: not a port")),
            _ => Ok(default),
        }
    };
    Ok(Ports {
        listen: pick("STACK_LISTEN_PORT", 10000)?,
        admin: pick("STACK_ADMIN_PORT", 9901)?,
        prometheus: pick("STACK_PROMETHEUS_PORT", 9090)?,
        collector: pick("STACK_COLLECTOR_PORT", 4318)?,
        bookstore: pick("STACK_BOOKSTORE_PORT", 8080)?,
        grpc: pick("STACK_GRPC_COLLECTOR_PORT", 18000)?,
    })
}

fn status(sup: &Supervisor) -> Result<(), String> {
    let p = load_ports(sup)?;
    for s in SERVICES {
        let pid = sup.live_pid(s).map(|p| p.to_string()).unwrap_or_default();
        println!("{s:<11} {pid}");
    }
    show(sup, p);
    Ok(())
}

fn traffic(sup: &Supervisor, root: &Path, rounds: u32) -> Result<(), String> {
    let p = load_ports(sup)?;
    say(&format!(
        "traffic: {rounds} rounds through Envoy (http://127.0.0.1:{})",
        p.listen
    ));
    let status = Command::new(root.join("target/debug/traffic"))
        .args(["--target", &format!("http://127.0.0.1:{}", p.listen)])
        .args(["--rounds", &rounds.to_string()])
        .args(["--duration", "120", "--concurrency", "2"])
        .arg("--tally")
        .arg(sup.state().join("tally.json"))
        .status()
        .map_err(|e| format!("cannot run target/debug/traffic: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(String::new())
    }
}

fn up(sup: &Supervisor, root: &Path, rounds: u32, runtime: Runtime) -> Result<(), String> {
    let state = sup.state().to_path_buf();
    std::fs::create_dir_all(&state).map_err(|e| format!("{}: {e}", state.display()))?;
    for s in SERVICES {
        if let Some(pid) = sup.live_pid(s) {
            return Err(format!(
                "the stack is already running ({s}, pid {pid}); scripts/stack.sh down first"
            ));
        }
    }
    let p = choose_ports()?;
    save_ports(sup, p)?;
    for stale in ["access.log", "tally.json"] {
        let _ = std::fs::remove_file(state.join(stale));
    }
    let _ = std::fs::remove_dir_all(state.join("grpc-collector"));

    let compose = root.join("test-env/compose");
    let read =
        |rel: &str| std::fs::read_to_string(compose.join(rel)).map_err(|e| format!("{rel}: {e}"));
    let envoy_yaml = local_config::envoy_yaml(
        &read("envoy/envoy.yaml")?,
        p,
        &state,
        &root.join("target/filters"),
    );
    let prom_yml = local_config::prometheus_yml(&read("prometheus/prometheus.yml")?, p);
    let left = local_config::leftovers(&envoy_yaml, &prom_yml);
    if !left.is_empty() {
        return Err(format!(
            "{}\nstack.sh: a line of the compose configs was not rewritten for local processes (above)",
            left.join("\n")
        ));
    }
    let write = |name: &str, text: &str| {
        std::fs::write(state.join(name), text).map_err(|e| format!("{name}: {e}"))
    };
    let envoy_env = match runtime {
        Runtime::Wasm => {
            write("envoy.yaml", &envoy_yaml)?;
            Vec::new()
        }
        Runtime::DynamicModule => {
            let module = root.join("target/filters/libtelemetry_filters.so");
            let dm = local_config::dynamic_module_config(&envoy_yaml, &module)?;
            for line in &dm.left_out {
                say(&format!("dynamic module: left out {line}"));
            }
            write("envoy.yaml", &dm.envoy)?;
            dm.env
        }
    };
    write("prometheus.yml", &prom_yml)?;

    say(&format!(
        "filters: {} runtime; starting bookstore :{}, collector :{}, grpc-collector :{}, Envoy :{} (admin :{}), Prometheus :{}",
        runtime.name(),
        p.bookstore,
        p.collector,
        p.grpc,
        p.listen,
        p.admin,
        p.prometheus
    ));
    if let Err(msg) = start_services(sup, root, p, &envoy_env) {
        eprintln!("{msg}");
        eprintln!("start-up failed; stopping what started");
        sup.stop_all(&STOP_ORDER);
        return Err(String::new());
    }
    traffic(sup, root, rounds)?;
    show(sup, p);
    Ok(())
}

fn env_path(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

fn start_services(
    sup: &Supervisor,
    root: &Path,
    p: Ports,
    envoy_env: &[(String, String)],
) -> Result<(), String> {
    let state = sup.state();
    let bin = |name: &str| root.join("target/debug").join(name);
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let lo = |port: u16| format!("127.0.0.1:{port}");
    sup.start(
        "bookstore",
        &bin("bookstore"),
        &s(&["--listen", &lo(p.bookstore)]),
    )?;
    sup.start(
        "collector",
        &bin("collector"),
        &s(&["--listen", &lo(p.collector), "--quiet"]),
    )?;
    let grpc_out = state.join("grpc-collector").to_string_lossy().into_owned();
    sup.start(
        "grpc-collector",
        &bin("grpc-collector"),
        &s(&[
            "--listen",
            &lo(p.grpc),
            "--out",
            &grpc_out,
            "--metric-prefix",
            "wasmcustom.,access_logs.",
        ]),
    )?;
    let envoy_cfg = state.join("envoy.yaml").to_string_lossy().into_owned();
    sup.start_with_env(
        "envoy",
        &env_path("ENVOY_BIN", "envoy"),
        &s(&[
            "-c",
            &envoy_cfg,
            "--concurrency",
            "2",
            "--disable-hot-restart",
            "--file-flush-interval-msec",
            "200",
            "--log-level",
            "warn",
            "--component-log-level",
            "wasm:info",
        ]),
        envoy_env,
    )?;
    sup.start(
        "prometheus",
        &env_path("PROMETHEUS_BIN", "prometheus"),
        &[
            format!("--config.file={}", state.join("prometheus.yml").display()),
            format!(
                "--storage.tsdb.path={}",
                state.join("prometheus-data").display()
            ),
            format!("--web.listen-address=127.0.0.1:{}", p.prometheus),
            "--log.level=warn".to_string(),
        ],
    )?;
    let agent = telemetry_stack::agent(Duration::from_secs(2));
    let http = |name: &str, url: String, secs: u64| {
        sup.wait_until(name, &format!("ready at {url}"), secs, || {
            http_ok(&agent, &url)
        })
    };
    http(
        "bookstore",
        format!("http://{}/healthz", lo(p.bookstore)),
        30,
    )?;
    http(
        "collector",
        format!("http://{}/healthz", lo(p.collector)),
        30,
    )?;
    sup.wait_until(
        "grpc-collector",
        &format!("listening on :{}", p.grpc),
        30,
        || tcp_open(p.grpc),
    )?;
    http("envoy", format!("http://{}/ready", lo(p.admin)), 30)?;
    http(
        "prometheus",
        format!("http://{}/-/ready", lo(p.prometheus)),
        60,
    )?;
    Ok(())
}

fn show(sup: &Supervisor, p: Ports) {
    let st = sup.state().display();
    let Ports {
        listen,
        admin,
        prometheus: prom,
        collector: coll,
        bookstore: book,
        grpc,
    } = p;
    println!(
        "
The stack is up (local processes; state, logs and PIDs in {st}):
  Envoy listener     http://127.0.0.1:{listen}/books
  Envoy admin        http://127.0.0.1:{admin}/stats/prometheus   (istio_get_calls, stack_requests_total, ...)
  Envoy access log   {st}/access.log   (JSON; \"operation\" = attributegen's istio_operationId)
  Prometheus         http://127.0.0.1:{prom}/graph
  gRPC collector     {st}/grpc-collector/access-logs.jsonl  metrics.jsonl   (Envoy's AccessLogService/MetricsService, :{grpc})
  spans (collector)  http://127.0.0.1:{coll}/api/summary   http://127.0.0.1:{coll}/api/spans?tag=request_operation=GetBook&limit=5
  bookstore          http://127.0.0.1:{book}/books (direct, not through Envoy)

Try:
  curl -s 'http://127.0.0.1:{prom}/api/v1/query?query=sum%20by%20(request_operation,response_code)(istio_get_calls)'
  tail -n 3 {st}/access.log
  scripts/stack.sh traffic --rounds 100    # more traffic
  scripts/stack.sh down                    # stop everything"
    );
}
