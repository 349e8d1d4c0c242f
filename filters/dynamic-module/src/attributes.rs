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

/// The id and kind of the attribute at `path`, if the ABI has it.
pub fn lookup(path: &[&str]) -> Option<(u32, Kind)> {
    let joined = path.join(".");
    ATTRIBUTES
        .iter()
        .find(|(name, _, _)| *name == joined)
        .map(|&(_, id, kind)| (id, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_paths_map_to_ids() {
        assert_eq!(lookup(&["request", "url_path"]), Some((1, Kind::Str)));
        assert_eq!(lookup(&["response", "code"]), Some((15, Kind::Int)));
        assert_eq!(lookup(&["xds", "cluster_name"]), Some((57, Kind::Str)));
        assert_eq!(lookup(&["node", "id"]), None);
    }
}
