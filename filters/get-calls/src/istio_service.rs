//! The default `destination_service` dimension without a CEL evaluation.
//!
//! Its expression ([`crate::config::ISTIO_DESTINATION_SERVICE`]: the first
//! service host of the cluster's `istio` metadata, else the cluster's name)
//! needs `has()`, `size()` and list indexing, which Envoy's CEL evaluates
//! for several µs per request. The same answer comes from `get_property`,
//! which walks metadata maps and lists by path
//! (`xds.cluster_metadata.filter_metadata.istio.services.0.host`). Where the
//! raw bytes could be read two ways (a value of 0, 1 or 8 bytes may be a
//! number or bool rather than a string) or the metadata has an unexpected
//! shape, the expression goes to Envoy, so the label is Envoy's in every case.

use filter_common::attributes::XDS_CLUSTER_NAME;
use filter_common::host::{Bytes, Host};

/// `…istio.services.0.host`: Istio's first service host.
const SERVICE_HOST: [&str; 7] = [
    "xds",
    "cluster_metadata",
    "filter_metadata",
    "istio",
    "services",
    "0",
    "host",
];
/// `…istio.services`.
const SERVICES: [&str; 5] = [
    "xds",
    "cluster_metadata",
    "filter_metadata",
    "istio",
    "services",
];

/// What the reads gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// The label's value.
    Value(Bytes),
    /// The expression is a CEL error here (no cluster: a direct response).
    Error,
    /// Not decided from the reads: evaluate the expression with Envoy.
    Fallback,
}

/// Whether `source` is the default expression (whitespace aside).
pub fn is_default_expression(source: &str) -> bool {
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().concat();
    words(source) == words(crate::config::ISTIO_DESTINATION_SERVICE)
}

/// Reads the destination service as the default expression defines it:
/// one read for a cluster with Istio metadata, two without a cluster (a
/// direct response), three for a cluster without Istio metadata.
pub fn read(host: &impl Host) -> Read {
    match host.property_shared(&SERVICE_HOST) {
        Ok(Some(v)) if !matches!(v.len(), 0 | 1 | 8) && std::str::from_utf8(&v).is_ok() => {
            return Read::Value(v)
        }
        Ok(None) => {}
        _ => return Read::Fallback,
    }
    // Envoy takes the cluster's name and metadata from the same upstream
    // cluster: without a name there is no metadata, and the expression's
    // `has(xds.cluster_metadata.…)` is an error.
    let name = match host.property_shared(XDS_CLUSTER_NAME) {
        Ok(Some(name)) => name,
        Ok(None) => return Read::Error,
        Err(_) => return Read::Fallback,
    };
    // No first host: only when there are no services at all is the answer
    // the cluster's name (a list without a host, or a non-list, is Envoy's
    // to judge).
    match host.property_shared(&SERVICES) {
        Ok(None) => Read::Value(name),
        _ => Read::Fallback,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use filter_common::fake::FakeHost;

    const HOST: &str = "xds.cluster_metadata.filter_metadata.istio.services.0.host";
    const SERVICES_PATH: &str = "xds.cluster_metadata.filter_metadata.istio.services";

    #[test]
    fn recognises_the_default_expression_only() {
        assert!(is_default_expression(
            crate::config::ISTIO_DESTINATION_SERVICE
        ));
        let spaced = crate::config::ISTIO_DESTINATION_SERVICE.replace(" && ", "\n&&\t");
        assert!(is_default_expression(&spaced));
        assert!(!is_default_expression("xds.cluster_name"));
        let other = crate::config::ISTIO_DESTINATION_SERVICE.replace("services[0]", "services[1]");
        assert!(!is_default_expression(&other));
    }

    #[test]
    fn istio_cluster_gives_its_service_host() {
        let host = FakeHost::new();
        host.set_property(HOST, b"reviews.default.svc.cluster.local")
            .set_property("xds.cluster_name", b"outbound|9080||reviews");
        assert_eq!(
            read(&host),
            Read::Value(Bytes::from(&b"reviews.default.svc.cluster.local"[..]))
        );
    }

    #[test]
    fn cluster_without_services_gives_its_name() {
        let host = FakeHost::new();
        host.set_property("xds.cluster_name", b"upstream");
        assert_eq!(read(&host), Read::Value(Bytes::from(&b"upstream"[..])));
    }

    #[test]
    fn no_cluster_is_an_error() {
        assert_eq!(read(&FakeHost::new()), Read::Error);
    }

    #[test]
    fn ambiguous_or_unexpected_shapes_go_to_envoy() {
        for value in [
            &b""[..],
            b"x",
            b"8-bytes!",
            &1.5f64.to_le_bytes(),
            b"\xff\xfe\xfd",
        ] {
            let host = FakeHost::new();
            host.set_property(HOST, value);
            assert_eq!(read(&host), Read::Fallback, "{value:?}");
        }
        let host = FakeHost::new();
        host.set_property(SERVICES_PATH, b"\x01\x00\x00\x00")
            .set_property("xds.cluster_name", b"c");
        assert_eq!(read(&host), Read::Fallback);
    }
}
