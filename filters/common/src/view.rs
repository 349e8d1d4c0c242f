//! One per-request view of the request: each value read from Envoy at most
//! once per phase and shared by every job that needs it.

use crate::host::Host;
use std::cell::OnceCell;

/// Lazily read, cached request facts. Host reads cost ≈ 0.6 µs each, so a
/// job asks the view, and the view asks Envoy once.
pub struct RequestView<'h, H: Host> {
    host: &'h H,
    method: OnceCell<Option<String>>,
    url_path: OnceCell<Option<String>>,
}

impl<'h, H: Host> RequestView<'h, H> {
    /// A view over the current stream of `host`.
    pub fn new(host: &'h H) -> Self {
        RequestView {
            host,
            method: OnceCell::new(),
            url_path: OnceCell::new(),
        }
    }

    /// The host behind the view.
    pub fn host(&self) -> &'h H {
        self.host
    }

    /// The request method (`:method`).
    pub fn method(&self) -> Option<&str> {
        self.method
            .get_or_init(|| {
                let method = header_or_property(self.host, ":method", "method")?;
                Some(String::from_utf8_lossy(&method).into_owned())
            })
            .as_deref()
    }

    /// The request path without query string or fragment, as CEL's
    /// `request.url_path` (from `:path`, cut at `?` or `#`).
    pub fn url_path(&self) -> Option<&str> {
        self.url_path
            .get_or_init(|| {
                let path = header_or_property(self.host, ":path", "path")?;
                Some(String::from_utf8_lossy(without_query(&path)).into_owned())
            })
            .as_deref()
    }
}

/// A request header, falling back to the attribute `request.<property>` when
/// the header map is not available in this phase (as CEL's request
/// attributes read it).
pub(crate) fn header_or_property<H: Host + ?Sized>(
    host: &H,
    header: &str,
    property: &str,
) -> Option<Vec<u8>> {
    match host.request_header(header) {
        Ok(Some(v)) => Some(v),
        _ => host.property(&["request", property]).ok().flatten(),
    }
}

/// A request path without its query string or fragment (`request.url_path`).
pub(crate) fn without_query(path: &[u8]) -> &[u8] {
    let end = path
        .iter()
        .position(|b| *b == b'?' || *b == b'#')
        .unwrap_or(path.len());
    path.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeHost;

    #[test]
    fn url_path_drops_query_and_fragment() {
        let host = FakeHost::new();
        host.set_header(":path", b"/books?x=1#top");
        host.set_header(":method", b"GET");
        let view = RequestView::new(&host);
        assert_eq!(view.url_path(), Some("/books"));
        assert_eq!(view.method(), Some("GET"));
    }

    #[test]
    fn falls_back_to_attributes() {
        let host = FakeHost::new();
        host.set_property("request.path", b"/a#b");
        host.set_property("request.method", b"POST");
        let view = RequestView::new(&host);
        assert_eq!(view.url_path(), Some("/a"));
        assert_eq!(view.method(), Some("POST"));
    }

    #[test]
    fn missing_is_none() {
        let host = FakeHost::new();
        let view = RequestView::new(&host);
        assert_eq!(view.url_path(), None);
        assert_eq!(view.method(), None);
    }
}
