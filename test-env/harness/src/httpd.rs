//! A small HTTP/1.1 server for the harness's own peers (the upstream, the
//! span collector): hyper on a tokio runtime of its own, one task per
//! connection, keep-alive, the whole body read before the handler runs.

use crate::{HarnessError, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::sync::Arc;

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct ServerRequest {
    /// Method.
    pub method: String,
    /// Path with query.
    pub path: String,
    /// Headers (names lower-case), values as sent (not necessarily UTF-8).
    pub headers: Vec<(String, Vec<u8>)>,
    /// Body.
    pub body: Vec<u8>,
}

impl ServerRequest {
    /// First value of a header, as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

/// What the handler answers.
#[derive(Debug, Clone)]
pub struct ServerResponse {
    /// Status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl ServerResponse {
    /// A response with a status and a body.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        ServerResponse {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }
    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

type Handler = Arc<dyn Fn(ServerRequest) -> ServerResponse + Send + Sync>;

/// A running server; stopped when dropped.
pub struct HttpServer {
    port: u16,
    runtime: Option<tokio::runtime::Runtime>,
}

impl HttpServer {
    /// Serves `handler` on a free port of 127.0.0.1.
    pub fn start(
        handler: impl Fn(ServerRequest) -> ServerResponse + Send + Sync + 'static,
    ) -> Result<Self> {
        Self::start_on("127.0.0.1:0", handler)
    }

    /// Serves `handler` on `addr` (e.g. `0.0.0.0:8080` in a container).
    pub fn start_on(
        addr: &str,
        handler: impl Fn(ServerRequest) -> ServerResponse + Send + Sync + 'static,
    ) -> Result<Self> {
        let err = |e: std::io::Error| HarnessError(format!("http server on {addr}: {e}"));
        let listener = std::net::TcpListener::bind(addr).map_err(err)?;
        listener.set_nonblocking(true).map_err(err)?;
        let port = listener.local_addr().map_err(err)?.port();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("harness-httpd")
            .enable_io()
            .build()
            .map_err(err)?;
        let handler: Handler = Arc::new(handler);
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(listener).map_err(err)?
        };
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let handler = handler.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<Incoming>| {
                        let handler = handler.clone();
                        async move { Ok::<_, hyper::Error>(respond(&handler, req).await) }
                    });
                    let _ = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(HttpServer {
            port,
            runtime: Some(runtime),
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }
}

async fn respond(handler: &Handler, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let request = ServerRequest {
        method: parts.method.as_str().to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_string(), |p| p.as_str().to_string()),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.as_bytes().to_vec()))
            .collect(),
        body,
    };
    let answer = handler(request);
    let mut builder = hyper::Response::builder().status(answer.status);
    for (k, v) in &answer.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder
        .body(Full::new(Bytes::from(answer.body)))
        .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new())))
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
