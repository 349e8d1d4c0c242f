//! The Envoy attributes native CEL reads: those of the one catalog
//! ([`crate::attributes`]) with a type native CEL has, request and response
//! headers by name, and filter state by bare name.

use crate::attributes::{self as catalog, Read};
use crate::host::Host;
use crate::shared_reads::{self, SharedPrefix};

/// CEL type of an attribute's value, as native CEL evaluates it.
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
    /// `get_property` of a catalog path.
    Path(&'static [&'static str]),
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

/// The attribute a dotted path names, if native CEL knows it (uint
/// attributes stay with Envoy: native CEL has no uint).
pub fn lookup(path: &[&str]) -> Option<Attribute> {
    let a = catalog::lookup(path)?;
    let kind = match a.kind {
        catalog::Kind::Str => Kind::Str,
        catalog::Kind::Int => Kind::Int,
        catalog::Kind::Bytes => Kind::Bytes,
        catalog::Kind::Uint => return None,
    };
    let source = match a.read {
        Read::Header {
            name,
            property,
            cut_query,
        } => Source::Header {
            name,
            property,
            cut_query,
        },
        Read::Property => Source::Path(a.path),
    };
    Some(Attribute { kind, source })
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
    catalog::is_filter_state_name(name).then(|| Attribute {
        kind: Kind::Bytes,
        source: Source::Property(vec![name.to_string()]),
    })
}

/// Reads the raw value; `None` when absent (a CEL error).
pub fn read<H: Host + ?Sized>(source: &Source, host: &H) -> Option<SharedPrefix> {
    match source {
        Source::Header {
            name,
            property,
            cut_query,
        } => {
            let raw = shared_reads::header_or_property(host, name, property)?;
            Some(if *cut_query {
                SharedPrefix::without_query(raw)
            } else {
                SharedPrefix::whole(raw)
            })
        }
        Source::Path(path) => host
            .property_shared(path)
            .ok()
            .flatten()
            .map(SharedPrefix::whole),
        Source::Property(path) => {
            // The path as `&[&str]` on the stack: no allocation per read.
            let mut segments = [""; MAX_SEGMENTS];
            for (segment, s) in segments.iter_mut().zip(path) {
                *segment = s.as_str();
            }
            host.property_shared(segments.get(..path.len())?)
                .ok()
                .flatten()
                .map(SharedPrefix::whole)
        }
    }
}
