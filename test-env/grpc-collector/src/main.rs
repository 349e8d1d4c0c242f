//! `grpc-collector`: serves Envoy's AccessLogService and MetricsService and
//! writes what it receives as JSON lines (see the library's docs).

use envoy_types::pb::envoy::service::accesslog::v3::access_log_service_server::AccessLogServiceServer;
use envoy_types::pb::envoy::service::metrics::v3::metrics_service_server::MetricsServiceServer;
use grpc_collector::metrics::NameFilter;
use grpc_collector::sink::Sink;
use grpc_collector::Collector;
use std::net::SocketAddr;
use std::path::PathBuf;

const USAGE: &str = "grpc-collector [--listen 127.0.0.1:18000] [--out DIR] [--metric-prefix P1,P2]

Serves Envoy's gRPC AccessLogService and MetricsService on --listen (plain
HTTP/2). Writes access-log entries to DIR/access-logs.jsonl and metric
series to DIR/metrics.jsonl (appending), or both to stdout without --out.
--metric-prefix keeps only metric families whose name starts with one of
the prefixes.";

/// Command-line settings.
#[derive(Debug)]
struct Flags {
    listen: SocketAddr,
    out: Option<PathBuf>,
    metric_prefix: String,
}

fn parse(args: &[String]) -> Result<Flags, String> {
    let mut flags = Flags {
        listen: SocketAddr::from(([127, 0, 0, 1], 18000)),
        out: None,
        metric_prefix: String::new(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (arg.as_str(), None),
        };
        if key == "-h" || key == "--help" {
            return Err(String::new());
        }
        let value = inline
            .or_else(|| it.next().cloned())
            .ok_or_else(|| format!("{key} needs a value"))?;
        match key {
            "--listen" => {
                flags.listen = value
                    .parse()
                    .map_err(|e| format!("--listen {value:?}: {e} (want IP:PORT)"))?;
            }
            "--out" => flags.out = Some(PathBuf::from(value)),
            "--metric-prefix" => flags.metric_prefix = value,
            _ => return Err(format!("unknown flag {key}")),
        }
    }
    Ok(flags)
}

fn sinks(out: &Option<PathBuf>) -> std::io::Result<(Sink, Sink)> {
    match out {
        None => Ok((Sink::stdout(), Sink::stdout())),
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            Ok((
                Sink::file(&dir.join("access-logs.jsonl"))?,
                Sink::file(&dir.join("metrics.jsonl"))?,
            ))
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flags = match parse(&args) {
        Ok(f) => f,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return;
        }
        Err(e) => {
            eprintln!("grpc-collector: {e}\nusage: {USAGE}");
            std::process::exit(2);
        }
    };
    let (logs, metrics) = match sinks(&flags.out) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "grpc-collector: cannot open the output in {:?}: {e}",
                flags.out
            );
            std::process::exit(1);
        }
    };
    let collector = Collector::new(logs, metrics, NameFilter::parse(&flags.metric_prefix));
    let incoming = match tonic::transport::server::TcpIncoming::bind(flags.listen) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("grpc-collector: cannot listen on {}: {e}", flags.listen);
            std::process::exit(1);
        }
    };
    eprintln!(
        "grpc-collector listening on {} (AccessLogService, MetricsService), writing to {}",
        flags.listen,
        flags
            .out
            .as_ref()
            .map_or("stdout".to_string(), |d| d.display().to_string())
    );
    // Envoy keeps its streams open for ever: on SIGTERM or Ctrl-C stop at
    // once (every line is already written and flushed) rather than wait
    // for the streams to end.
    let stop = async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    let server = tonic::transport::Server::builder()
        .add_service(AccessLogServiceServer::new(collector.clone()))
        .add_service(MetricsServiceServer::new(collector.clone()))
        .serve_with_incoming(incoming);
    let served = tokio::select! {
        r = server => r,
        _ = stop => Ok(()),
    };
    eprintln!(
        "grpc-collector: stopped after {} access-log entries, {} metric snapshots",
        collector.entries(),
        collector.snapshots()
    );
    if let Err(e) = served {
        eprintln!("grpc-collector: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags() {
        let f = parse(&args(&["--listen", "127.0.0.1:9", "--out=out/x"])).unwrap();
        assert_eq!(f.listen.port(), 9);
        assert_eq!(f.out, Some(PathBuf::from("out/x")));
        assert!(parse(&args(&["--listen", "nope"]))
            .unwrap_err()
            .contains("--listen"));
        assert!(parse(&args(&["--bogus", "1"]))
            .unwrap_err()
            .contains("unknown flag"));
        assert!(parse(&args(&["--out"]))
            .unwrap_err()
            .contains("needs a value"));
        assert_eq!(parse(&args(&["--help"])).err(), Some(String::new()));
    }
}
