//! Requests through Envoy's listener.

use crate::upstream::STATUS_HEADER;
use crate::{HarnessError, Result};
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh `x-test-id` value (unique in this process).
pub(crate) fn next_test_id() -> String {
    format!("t{}", NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

/// A response as the client saw it.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body as text.
    pub body: String,
    /// The `x-test-id` the request carried, to find its access-log line.
    pub test_id: String,
}

impl Response {
    /// First value of a response header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A request being built; see [`crate::Envoy::request`].
pub struct RequestBuilder {
    agent: ureq::Agent,
    url: String,
    method: String,
    headers: Vec<(String, String)>,
    test_id: String,
}

impl RequestBuilder {
    pub(crate) fn new(agent: ureq::Agent, method: &str, url: String) -> Self {
        let test_id = next_test_id();
        RequestBuilder {
            agent,
            url,
            method: method.to_string(),
            headers: Vec::new(),
            test_id,
        }
    }
    /// Adds a request header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
    /// Asks the upstream to answer with this status.
    pub fn upstream_status(self, code: u16) -> Self {
        self.header(STATUS_HEADER, &code.to_string())
    }
    /// Sends it and reads the whole response.
    pub fn send(self) -> Result<Response> {
        let mut req = ureq::http::Request::builder()
            .method(self.method.as_str())
            .uri(&self.url)
            .header("x-test-id", &self.test_id);
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        let req = req
            .body(())
            .map_err(|e| HarnessError(format!("bad request {} {}: {e}", self.method, self.url)))?;
        let mut resp = self
            .agent
            .run(req)
            .map_err(|e| HarnessError(format!("{} {}: {e}", self.method, self.url)))?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        Ok(Response {
            status,
            headers,
            body,
            test_id: self.test_id,
        })
    }
}

/// An HTTP agent that reports every status as a response, not an error.
pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .allow_non_standard_methods(true)
        .max_redirects(0)
        .timeout_global(Some(std::time::Duration::from_secs(15)))
        .build()
        .into()
}
