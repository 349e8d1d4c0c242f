//! The one catalog of Envoy attributes the filters read without a CEL
//! evaluation: each attribute's path, its CEL type, and how it is read.
//!
//! Native CEL ([`crate::native_cel`]) evaluates the string, int and bytes
//! attributes listed here in the module; get-calls reads plain paths and
//! `string(<int attribute>)` dimensions with `get_property`; its default
//! `destination_service` reads the cluster attributes below. Types are
//! those Envoy 1.40's Wasm host serializes each attribute with.

/// CEL type of an attribute's value as `get_property` serializes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// string
    Str,
    /// int (int64, 8 bytes little-endian)
    Int,
    /// uint (uint64, 8 bytes little-endian)
    Uint,
    /// bytes (filter state)
    Bytes,
}

/// How an attribute is read from the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// A request pseudo-header (lower-case) as CEL's request attributes read
    /// it, with `request.<property>` as the fallback; `cut_query` drops `?…`
    /// and `#…` (`url_path`).
    Header {
        /// The pseudo-header.
        name: &'static str,
        /// The `request.*` property read when the header map is unavailable.
        property: &'static str,
        /// Whether the query string and fragment are cut.
        cut_query: bool,
    },
    /// `get_property` of the path, which resolves it exactly as CEL does.
    Property,
}

/// One attribute of the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute {
    /// Its path, by segments (`["request", "url_path"]`).
    pub path: &'static [&'static str],
    /// Its CEL type.
    pub kind: Kind,
    /// How it is read.
    pub read: Read,
}

const fn header(
    path: &'static [&'static str],
    name: &'static str,
    property: &'static str,
    cut_query: bool,
) -> Attribute {
    Attribute {
        path,
        kind: Kind::Str,
        read: Read::Header {
            name,
            property,
            cut_query,
        },
    }
}

const fn property(path: &'static [&'static str], kind: Kind) -> Attribute {
    Attribute {
        path,
        kind,
        read: Read::Property,
    }
}

/// `xds.cluster_name`: the upstream cluster (absent for a direct response).
pub const XDS_CLUSTER_NAME: &[&str] = &["xds", "cluster_name"];

/// Every attribute of the catalog.
pub const CATALOG: &[Attribute] = &[
    header(&["request", "method"], ":method", "method", false),
    header(&["request", "url_path"], ":path", "path", true),
    header(&["request", "path"], ":path", "path", false),
    header(&["request", "host"], ":authority", "host", false),
    property(&["request", "scheme"], Kind::Str),
    property(&["request", "protocol"], Kind::Str),
    property(&["request", "id"], Kind::Str),
    property(&["request", "referer"], Kind::Str),
    property(&["request", "useragent"], Kind::Str),
    property(&["request", "query"], Kind::Str),
    property(&["response", "code_details"], Kind::Str),
    property(&["source", "address"], Kind::Str),
    property(&["destination", "address"], Kind::Str),
    property(&["upstream", "address"], Kind::Str),
    property(&["connection", "requested_server_name"], Kind::Str),
    property(XDS_CLUSTER_NAME, Kind::Str),
    property(&["xds", "route_name"], Kind::Str),
    property(&["response", "code"], Kind::Int),
    property(&["response", "grpc_status"], Kind::Int),
    property(&["request", "size"], Kind::Int),
    property(&["request", "total_size"], Kind::Int),
    property(&["response", "size"], Kind::Int),
    property(&["response", "total_size"], Kind::Int),
    property(&["source", "port"], Kind::Int),
    property(&["destination", "port"], Kind::Int),
    property(&["upstream", "port"], Kind::Int),
    property(&["xds", "listener_direction"], Kind::Int),
    property(&["upstream", "request_attempt_count"], Kind::Uint),
    property(&["connection", "id"], Kind::Uint),
];

/// Top-level names of Envoy's attribute vocabulary: a bare name that is one of
/// these is not filter state.
pub const ROOTS: [&str; 22] = [
    "request",
    "response",
    "connection",
    "upstream",
    "source",
    "destination",
    "metadata",
    "filter_state",
    "upstream_filter_state",
    "node",
    "xds",
    "listener_direction",
    "listener_metadata",
    "cluster_name",
    "cluster_metadata",
    "route_name",
    "route_metadata",
    "upstream_host_metadata",
    "plugin_name",
    "plugin_root_id",
    "plugin_vm_id",
    "connection_id",
];

/// The catalog's attribute at `path`, compared by segments.
pub fn lookup<S: AsRef<str>>(path: &[S]) -> Option<&'static Attribute> {
    CATALOG.iter().find(|a| {
        a.path.len() == path.len() && a.path.iter().zip(path).all(|(a, b)| *a == b.as_ref())
    })
}

/// Whether a bare name is filter state `wasm.<name>` rather than an attribute.
pub fn is_filter_state_name(name: &str) -> bool {
    !ROOTS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_by_segments() {
        let code = lookup(&["response", "code"]).unwrap();
        assert_eq!(code.kind, Kind::Int);
        assert_eq!(
            lookup(&["connection".to_string(), "id".to_string()])
                .unwrap()
                .kind,
            Kind::Uint
        );
        assert!(matches!(
            lookup(&["request", "url_path"]).unwrap().read,
            Read::Header {
                cut_query: true,
                ..
            }
        ));
        assert_eq!(lookup(&["response"]), None);
        assert_eq!(lookup(&["response", "code", "x"]), None);
    }

    #[test]
    fn paths_are_unique() {
        for (i, a) in CATALOG.iter().enumerate() {
            assert!(
                CATALOG.iter().skip(i + 1).all(|b| a.path != b.path),
                "{:?}",
                a.path
            );
        }
    }
}
