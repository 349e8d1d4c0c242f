//! The upstream service behind Envoy: answers with the status the request
//! asks for in `x-upstream-status` (default 200) and records what it got.

use crate::{HarnessError, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Header that chooses the upstream's response code.
pub const STATUS_HEADER: &str = "x-upstream-status";

/// One request as the upstream received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Method.
    pub method: String,
    /// Path with query.
    pub path: String,
    /// Headers, names lower-cased.
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

/// A small HTTP/1.1 server on a free port, served by a few threads.
pub struct Upstream {
    port: u16,
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    received: Arc<Mutex<Vec<RecordedRequest>>>,
}

impl Upstream {
    /// Starts the server.
    pub fn start() -> Result<Self> {
        let server = tiny_http::Server::http("127.0.0.1:0")
            .map_err(|e| HarnessError(format!("upstream: {e}")))?;
        let port = server
            .server_addr()
            .to_ip()
            .map(|a| a.port())
            .ok_or_else(|| HarnessError("upstream: no port".into()))?;
        let server = Arc::new(server);
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..4)
            .map(|_| {
                let (server, stop, received) = (server.clone(), stop.clone(), received.clone());
                std::thread::spawn(move || serve(&server, &stop, &received))
            })
            .collect();
        Ok(Upstream {
            port,
            server,
            stop,
            threads,
            received,
        })
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<RecordedRequest> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

fn serve(server: &tiny_http::Server, stop: &AtomicBool, received: &Mutex<Vec<RecordedRequest>>) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(request) = server.recv() else { break };
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .map(|h| {
                (
                    h.field.as_str().as_str().to_ascii_lowercase(),
                    h.value.as_str().to_string(),
                )
            })
            .collect();
        let status = headers
            .iter()
            .find(|(n, _)| n == STATUS_HEADER)
            .and_then(|(_, v)| v.parse::<u16>().ok())
            .unwrap_or(200);
        if let Ok(mut r) = received.lock() {
            if r.len() < 100_000 {
                r.push(RecordedRequest {
                    method: request.method().as_str().to_string(),
                    path: request.url().to_string(),
                    headers,
                });
            }
        }
        // 204 and 304 carry no body.
        let body = if status == 204 || status == 304 {
            ""
        } else {
            "ok"
        };
        let _ = request.respond(tiny_http::Response::from_string(body).with_status_code(status));
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for _ in 0..self.threads.len() {
            self.server.unblock();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
