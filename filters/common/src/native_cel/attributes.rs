//! The Envoy attributes native CEL reads, their CEL types, and how each is
//! read from the host.

use crate::host::Host;
use crate::view;

/// CEL type of an attribute's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// string
    Str,
    /// int (int64)
    Int,
    /// bytes
    Bytes,
}

/// Where an attribute comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A request pseudo-header as CEL's request attributes read it, with the
    /// property as the fallback; `cut_query` drops `?…` and `#…` (`url_path`).
    Header {
        name: &'static str,
        property: &'static str,
        cut_query: bool,
    },
    /// `get_property` of this path (at most [`MAX_SEGMENTS`] long), which
    /// resolves it exactly as CEL does.
    Property(Vec<String>),
}

/// A typed attribute read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Its CEL type.
    pub kind: Kind,
    /// Where it is read.
    pub source: Source,
}

/// Longest property path read: `request.headers.<name>`.
const MAX_SEGMENTS: usize = 3;

/// String attributes read with `get_property`.
const STRINGS: [&str; 13] = [
    "request.scheme",
    "request.protocol",
    "request.id",
    "request.referer",
    "request.useragent",
    "request.query",
    "response.code_details",
    "source.address",
    "destination.address",
    "upstream.address",
    "connection.requested_server_name",
    "xds.cluster_name",
    "xds.route_name",
];

/// int64 attributes read with `get_property` (8 bytes little-endian).
const INTS: [&str; 8] = [
    "response.code",
    "response.grpc_status",
    "request.size",
    "request.total_size",
    "response.size",
    "response.total_size",
    "source.port",
    "destination.port",
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

/// The attribute a dotted path names, if native CEL knows it.
pub fn lookup(path: &[&str]) -> Option<Attribute> {
    let header = |name, property, cut_query| Attribute {
        kind: Kind::Str,
        source: Source::Header {
            name,
            property,
            cut_query,
        },
    };
    let dotted = path.join(".");
    match dotted.as_str() {
        "request.method" => return Some(header(":method", "method", false)),
        "request.url_path" => return Some(header(":path", "path", true)),
        "request.path" => return Some(header(":path", "path", false)),
        "request.host" => return Some(header(":authority", "host", false)),
        _ => {}
    }
    let owned = || path.iter().map(|s| s.to_string()).collect();
    if STRINGS.contains(&dotted.as_str()) {
        return Some(Attribute {
            kind: Kind::Str,
            source: Source::Property(owned()),
        });
    }
    if INTS.contains(&dotted.as_str()) {
        return Some(Attribute {
            kind: Kind::Int,
            source: Source::Property(owned()),
        });
    }
    None
}

/// A header of `request.headers` / `response.headers` by name.
pub fn header_map(map: &str, key: &str) -> Option<Attribute> {
    matches!(map, "request" | "response").then(|| Attribute {
        kind: Kind::Str,
        source: Source::Property(vec![
            map.to_string(),
            "headers".to_string(),
            key.to_string(),
        ]),
    })
}

/// Filter state `wasm.<name>`, as a bare name reads it.
pub fn filter_state(name: &str) -> Option<Attribute> {
    (!ROOTS.contains(&name)).then(|| Attribute {
        kind: Kind::Bytes,
        source: Source::Property(vec![name.to_string()]),
    })
}

/// Reads the raw value; `None` when absent (a CEL error).
pub fn read<H: Host + ?Sized>(source: &Source, host: &H) -> Option<Vec<u8>> {
    match source {
        Source::Header {
            name,
            property,
            cut_query,
        } => {
            let mut raw = view::header_or_property(host, name, property)?;
            if *cut_query {
                raw.truncate(view::without_query(&raw).len());
            }
            Some(raw)
        }
        Source::Property(path) => {
            // The path as `&[&str]` on the stack: no allocation per read.
            let mut segments = [""; MAX_SEGMENTS];
            for (segment, s) in segments.iter_mut().zip(path) {
                *segment = s.as_str();
            }
            host.property(segments.get(..path.len())?).ok().flatten()
        }
    }
}
