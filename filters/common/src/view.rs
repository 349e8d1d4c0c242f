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
            .get_or_init(|| self.read_text(":method", &["request", "method"]))
            .as_deref()
    }

    /// The request path without query string or fragment, as CEL's
    /// `request.url_path` (from `:path`, cut at `?` or `#`).
    pub fn url_path(&self) -> Option<&str> {
        self.url_path
            .get_or_init(|| {
                let path = self.read_text(":path", &["request", "path"])?;
                let end = path.find(['?', '#']).unwrap_or(path.len());
                Some(path.get(..end).unwrap_or_default().to_string())
            })
            .as_deref()
    }

    /// A request header, falling back to the attribute when the header map
    /// is not available in this phase; invalid UTF-8 is replaced.
    fn read_text(&self, header: &str, property: &[&str]) -> Option<String> {
        let bytes = match self.host.request_header(header) {
            Ok(Some(v)) => Some(v),
            _ => self.host.property(property).ok().flatten(),
        }?;
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }
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
