//! Envoy's attribute vocabulary with the CEL type Envoy gives each attribute
//! (Envoy 1.40 "Attributes" reference). Only attributes listed here compile:
//! an unknown one could be a typo Envoy answers differently (or not at all).
//!
//! `filter_common::native_cel` keeps a smaller private list (strings and
//! ints it reads for the Wasm filters); this one adds the other types
//! (uint, bool, timestamp, duration, header maps) the module must type.

use crate::value::Type;

/// Every attribute path the module evaluates, with its CEL type.
pub const ATTRIBUTES: &[(&str, Type)] = &[
    ("request.path", Type::String),
    ("request.url_path", Type::String),
    ("request.host", Type::String),
    ("request.scheme", Type::String),
    ("request.method", Type::String),
    ("request.headers", Type::HeaderMap),
    ("request.referer", Type::String),
    ("request.useragent", Type::String),
    ("request.time", Type::Timestamp),
    ("request.id", Type::String),
    ("request.protocol", Type::String),
    ("request.query", Type::String),
    ("request.duration", Type::Duration),
    ("request.size", Type::Int),
    ("request.total_size", Type::Int),
    ("response.code", Type::Int),
    ("response.code_details", Type::String),
    ("response.flags", Type::Int),
    ("response.grpc_status", Type::Int),
    ("response.headers", Type::HeaderMap),
    ("response.trailers", Type::HeaderMap),
    ("response.size", Type::Int),
    ("response.total_size", Type::Int),
    ("response.backend_latency", Type::Duration),
    ("source.address", Type::String),
    ("source.port", Type::Int),
    ("destination.address", Type::String),
    ("destination.port", Type::Int),
    ("connection.id", Type::Uint),
    ("connection.mtls", Type::Bool),
    ("connection.requested_server_name", Type::String),
    ("connection.tls_version", Type::String),
    ("connection.subject_local_certificate", Type::String),
    ("connection.subject_peer_certificate", Type::String),
    ("connection.dns_san_local_certificate", Type::String),
    ("connection.dns_san_peer_certificate", Type::String),
    ("connection.uri_san_local_certificate", Type::String),
    ("connection.uri_san_peer_certificate", Type::String),
    ("connection.sha256_peer_certificate_digest", Type::String),
    ("connection.transport_failure_reason", Type::String),
    ("connection.termination_details", Type::String),
    ("upstream.address", Type::String),
    ("upstream.port", Type::Int),
    ("upstream.tls_version", Type::String),
    ("upstream.subject_local_certificate", Type::String),
    ("upstream.subject_peer_certificate", Type::String),
    ("upstream.dns_san_local_certificate", Type::String),
    ("upstream.dns_san_peer_certificate", Type::String),
    ("upstream.uri_san_local_certificate", Type::String),
    ("upstream.uri_san_peer_certificate", Type::String),
    ("upstream.sha256_peer_certificate_digest", Type::String),
    ("upstream.local_address", Type::String),
    ("upstream.transport_failure_reason", Type::String),
    ("xds.cluster_name", Type::String),
    ("xds.route_name", Type::String),
    ("xds.filter_chain_name", Type::String),
];

/// Top-level names of Envoy's activation (a bare identifier that is one of
/// these is not filter state and, unless catalogued, does not compile), and
/// the test for a bare filter-state name: the filters' shared catalog's.
pub use filter_common::attributes::{is_filter_state_name, ROOTS};

/// The CEL type of the attribute at this dotted path, if catalogued.
pub fn lookup(dotted: &str) -> Option<Type> {
    ATTRIBUTES
        .iter()
        .find(|(path, _)| *path == dotted)
        .map(|(_, ty)| *ty)
}
