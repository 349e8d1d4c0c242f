//! The compose stack's Envoy and Prometheus configurations rewritten for
//! local processes on loopback: only the lines marked `# stack.sh: <what>`
//! change (addresses, ports, paths), and the result is checked for any
//! compose-only host or path left behind.

use regex::Regex;
use std::path::Path;

/// The loopback ports of one local stack.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// Envoy's listener.
    pub listen: u16,
    /// Envoy's admin endpoint.
    pub admin: u16,
    /// Prometheus.
    pub prometheus: u16,
    /// The span collector (OTLP/HTTP).
    pub collector: u16,
    /// The book-store upstream.
    pub bookstore: u16,
    /// The gRPC access-log and metrics collector.
    pub grpc: u16,
}

fn re(pattern: &str) -> Regex {
    // The patterns are constants of this file, tested below.
    Regex::new(pattern).unwrap_or_else(|e| unreachable!("{pattern}: {e}"))
}

/// Replaces the first match of `pattern` on every line that contains
/// `marker` (and, with `at_end`, ends with it).
fn rewrite(text: &str, marker: &str, at_end: bool, pattern: &str, with: &str) -> String {
    let re = re(pattern);
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let marked = if at_end {
            body.ends_with(marker)
        } else {
            body.contains(marker)
        };
        if marked {
            out.push_str(&re.replacen(line, 1, regex::NoExpand(with)));
        } else {
            out.push_str(line);
        }
    }
    out
}

const HOSTPORT: &str = r"\{ address: [^,]*, port_value: [0-9]* \}";

fn loopback(port: u16) -> String {
    format!("{{ address: 127.0.0.1, port_value: {port} }}")
}

/// Envoy's configuration (`test-env/compose/envoy/envoy.yaml`) for local
/// processes: ports, the access log in `state`, the modules in `filters`.
pub fn envoy_yaml(compose: &str, p: Ports, state: &Path, filters: &Path) -> String {
    let mut t = compose.to_string();
    for (marker, port) in [
        ("# stack.sh: admin", p.admin),
        ("# stack.sh: listener", p.listen),
        ("# stack.sh: bookstore", p.bookstore),
        ("# stack.sh: grpc-collector", p.grpc),
    ] {
        t = rewrite(&t, marker, false, HOSTPORT, &loopback(port));
    }
    t = rewrite(
        &t,
        "# stack.sh: collector",
        true,
        HOSTPORT,
        &loopback(p.collector),
    );
    t = rewrite(
        &t,
        "# stack.sh: collector uri",
        false,
        r"http://[^ ]*",
        &format!("http://127.0.0.1:{}/v1/traces", p.collector),
    );
    t = rewrite(
        &t,
        "# stack.sh: access log",
        false,
        r"path: [^ ]*",
        &format!("path: \"{}\"", state.join("access.log").display()),
    );
    rewrite(
        &t,
        "# stack.sh: module",
        false,
        "/etc/envoy/filters/",
        &format!("{}/", filters.display()),
    )
}

/// Prometheus's configuration, scraping the local Envoy's admin endpoint.
pub fn prometheus_yml(compose: &str, p: Ports) -> String {
    rewrite(
        compose,
        "# stack.sh: envoy admin",
        false,
        r"'[^']*'",
        &format!("'127.0.0.1:{}'", p.admin),
    )
}

/// The lines (`N:line`) of the rewritten configurations that still name a
/// compose host or path: a marked line the rewrite missed.
pub fn leftovers(envoy: &str, prometheus: &str) -> Vec<String> {
    let bad = re(
        r"address: (bookstore|jaeger|grpc-collector|0\.0\.0\.0)|//jaeger|/etc/envoy|/dev/stdout",
    );
    let numbered = |text: &str, test: &dyn Fn(&str) -> bool| -> Vec<String> {
        text.lines()
            .enumerate()
            .filter(|(_, l)| test(l))
            .map(|(i, l)| format!("{}:{l}", i + 1))
            .collect()
    };
    let mut out = numbered(envoy, &|l| bad.is_match(l));
    out.extend(numbered(prometheus, &|l| l.contains("envoy:9901")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORTS: Ports = Ports {
        listen: 1,
        admin: 2,
        prometheus: 3,
        collector: 4,
        bookstore: 5,
        grpc: 6,
    };

    #[test]
    fn the_compose_configs_rewrite_completely() {
        let root = envoy_harness::paths::workspace_root().join("test-env/compose");
        let envoy = std::fs::read_to_string(root.join("envoy/envoy.yaml")).unwrap();
        let prom = std::fs::read_to_string(root.join("prometheus/prometheus.yml")).unwrap();
        let e = envoy_yaml(&envoy, PORTS, Path::new("/state"), Path::new("/m"));
        let p = prometheus_yml(&prom, PORTS);
        assert!(leftovers(&e, &p).is_empty(), "{:?}", leftovers(&e, &p));
        assert!(e.contains("{ address: 127.0.0.1, port_value: 2 }  # stack.sh: admin"));
        assert!(e.contains("{ address: 127.0.0.1, port_value: 4 }  # stack.sh: collector\n"));
        assert!(e.contains("{ address: 127.0.0.1, port_value: 6 }  # stack.sh: grpc-collector"));
        assert!(e.contains("uri: http://127.0.0.1:4/v1/traces  # stack.sh: collector uri"));
        assert!(e.contains("path: \"/state/access.log\"  # stack.sh: access log"));
        assert!(e.contains("filename: /m/attributegen.wasm"));
        assert!(p.contains("'127.0.0.1:2'"));
        assert_eq!(e.lines().count(), envoy.lines().count());
    }

    #[test]
    fn an_unmarked_line_is_reported() {
        let left = leftovers("a\n  address: jaeger\n", "x: ['envoy:9901']");
        assert_eq!(left, vec!["2:  address: jaeger", "1:x: ['envoy:9901']"]);
    }
}
