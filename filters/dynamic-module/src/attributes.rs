//! Envoy attribute paths (as the filters name them) → the dynamic-module ABI's
//! attribute ids and value types (`envoy_dynamic_module_type_attribute_id`).

/// How an attribute's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `get_attribute_string`.
    Str,
    /// `get_attribute_int`; handed to the filters as 8 bytes little-endian,
    /// as proxy-wasm's `get_property` does.
    Int,
    /// `get_attribute_bool`; one byte, as proxy-wasm does.
    Bool,
}

/// Attribute paths and their ids, in the ABI's enum order.
const ATTRIBUTES: &[(&str, u32, Kind)] = &[
    ("request.path", 0, Kind::Str),
    ("request.url_path", 1, Kind::Str),
    ("request.host", 2, Kind::Str),
    ("request.scheme", 3, Kind::Str),
    ("request.method", 4, Kind::Str),
    ("request.referer", 6, Kind::Str),
    ("request.useragent", 7, Kind::Str),
    ("request.id", 9, Kind::Str),
    ("request.protocol", 10, Kind::Str),
    ("request.query", 11, Kind::Str),
    ("request.size", 13, Kind::Int),
    ("request.total_size", 14, Kind::Int),
    ("response.code", 15, Kind::Int),
    ("response.code_details", 16, Kind::Str),
    ("response.flags", 17, Kind::Int),
    ("response.grpc_status", 18, Kind::Int),
    ("response.size", 21, Kind::Int),
    ("response.total_size", 22, Kind::Int),
    ("source.address", 24, Kind::Str),
    ("source.port", 25, Kind::Int),
    ("destination.address", 26, Kind::Str),
    ("destination.port", 27, Kind::Int),
    ("connection.id", 28, Kind::Int),
    ("connection.mtls", 29, Kind::Bool),
    ("connection.requested_server_name", 30, Kind::Str),
    ("connection.tls_version", 31, Kind::Str),
    ("upstream.address", 41, Kind::Str),
    ("upstream.port", 42, Kind::Int),
    ("xds.cluster_name", 57, Kind::Str),
    ("xds.route_name", 61, Kind::Str),
    ("xds.virtual_host_name", 63, Kind::Str),
];

/// Metadata the ABI's attribute and metadata calls cannot walk (Istio's
/// `istio.services` is a list of maps): read as absent, so the default
/// `destination_service` is the cluster's name (see the README's
/// dynamic-module section).
const ABSENT_PREFIXES: &[&str] = &["xds.cluster_metadata."];

/// How the module reads an attribute path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// By the ABI's attribute id.
    Attribute(u32, Kind),
    /// Not readable through the ABI; treated as absent.
    Absent,
    /// Not readable through the ABI: an error.
    Unsupported,
}

/// Where the module reads a property path from: the one place that maps
/// the filters' paths to the ABI (the host reads through it; configuration
/// refuses CEL whose reads are [`Source::Unsupported`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source<'p> {
    /// Filter state `wasm.<name>` (a bare name: attributegen's output).
    WasmFilterState(&'p str),
    /// Filter state by its full key (`filter_state['key']`).
    FilterState(&'p str),
    /// The first value of a header (`abi` header type, name).
    Header(u32, &'p str),
    /// An attribute by the ABI's id.
    Attribute(u32, Kind),
    /// Not readable through the ABI; treated as absent.
    Absent,
    /// Not readable through the ABI: an error.
    Unsupported,
}

/// Where to read the property at `path`.
pub fn source<'p>(path: &[&'p str]) -> Source<'p> {
    match *path {
        [name] => Source::WasmFilterState(name),
        ["filter_state", key] => Source::FilterState(key),
        ["request", "headers", name] => Source::Header(crate::abi::REQUEST_HEADER, name),
        ["response", "headers", name] => Source::Header(crate::abi::RESPONSE_HEADER, name),
        _ => match lookup(path) {
            Lookup::Attribute(id, kind) => Source::Attribute(id, kind),
            Lookup::Absent => Source::Absent,
            Lookup::Unsupported => Source::Unsupported,
        },
    }
}

/// How to read the attribute at `path`.
pub fn lookup(path: &[&str]) -> Lookup {
    let joined = path.join(".");
    if let Some(&(_, id, kind)) = ATTRIBUTES.iter().find(|(name, _, _)| *name == joined) {
        return Lookup::Attribute(id, kind);
    }
    if ABSENT_PREFIXES.iter().any(|p| joined.starts_with(p)) {
        return Lookup::Absent;
    }
    Lookup::Unsupported
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_paths_map_to_ids() {
        assert_eq!(
            lookup(&["request", "url_path"]),
            Lookup::Attribute(1, Kind::Str)
        );
        assert_eq!(
            lookup(&["response", "code"]),
            Lookup::Attribute(15, Kind::Int)
        );
        assert_eq!(
            lookup(&["xds", "cluster_name"]),
            Lookup::Attribute(57, Kind::Str)
        );
        assert_eq!(
            lookup(&["xds", "cluster_metadata", "filter_metadata", "istio"]),
            Lookup::Absent
        );
        assert_eq!(lookup(&["node", "id"]), Lookup::Unsupported);
    }
}
