//! The upstream service behind Envoy: answers with the status the request
//! asks for in `x-upstream-status` (default 200) and records what it got.

use crate::httpd::{HttpServer, ServerResponse};
use crate::Result;
use std::sync::{Arc, Mutex};

/// Header that chooses the upstream's response code.
pub const STATUS_HEADER: &str = "x-upstream-status";

/// One request as the upstream received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Method.
    pub method: String,
    /// Path with query.
    pub path: String,
    /// Headers, names lower-cased (values decoded as UTF-8, lossily).
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    /// First value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The upstream: an HTTP/1.1 server on a free port (see [`crate::httpd`]).
pub struct Upstream {
    server: HttpServer,
    received: Arc<Mutex<Vec<RecordedRequest>>>,
}

impl Upstream {
    /// Starts the server.
    pub fn start() -> Result<Self> {
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        let server = HttpServer::start(move |req| {
            let status = req
                .header(STATUS_HEADER)
                .and_then(|v| v.parse::<u16>().ok())
                .unwrap_or(200);
            if let Ok(mut r) = sink.lock() {
                if r.len() < 100_000 {
                    r.push(RecordedRequest {
                        method: req.method.clone(),
                        path: req.path.clone(),
                        headers: req
                            .headers
                            .iter()
                            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
                            .collect(),
                    });
                }
            }
            // 1xx, 204 and 304 carry no body.
            let body = if status < 200 || status == 204 || status == 304 {
                ""
            } else {
                "ok"
            };
            ServerResponse::new(status, body)
        })?;
        Ok(Upstream { server, received })
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<RecordedRequest> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }
}
