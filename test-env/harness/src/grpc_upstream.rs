//! A gRPC-shaped upstream speaking HTTP/2 over cleartext (h2c, prior
//! knowledge), as an application behind a sidecar does. Each request chooses
//! the response's wire shape with headers, so a test controls exactly what
//! Envoy and the filters see:
//!
//! | header | effect |
//! |---|---|
//! | [`GRPC_STATUS_HEADER`] | the `grpc-status` to answer (default 0) |
//! | [`GRPC_SHAPE_HEADER`] | `trailers` (default: headers, messages, status in trailers) or `trailers-only` (status in the one HEADERS frame, END_STREAM) |
//! | [`GRPC_MESSAGES_HEADER`] | how many response messages (default 1) |
//! | [`GRPC_HOLD_HEADER`] | `after-first`: send the first message, then wait for [`GrpcUpstream::release`]; `before-headers`: wait before answering at all |
//!
//! Requests without `content-type: application/grpc` are answered like
//! [`crate::Upstream`]'s: the status in `x-upstream-status`, body `ok`.
//!
//! The gRPC framing (a 5-byte prefix per message) is written here on purpose:
//! a gRPC library chooses the wire shape itself (trailers-only or not), and
//! these tests need each shape on demand.

use crate::upstream::STATUS_HEADER;
use crate::{HarnessError, Result};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Bytes, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::sync::{mpsc, watch};

/// Header choosing the `grpc-status` of the answer.
pub const GRPC_STATUS_HEADER: &str = "x-grpc-status";
/// Header choosing the wire shape: `trailers` or `trailers-only`.
pub const GRPC_SHAPE_HEADER: &str = "x-grpc-shape";
/// Header choosing the number of response messages.
pub const GRPC_MESSAGES_HEADER: &str = "x-grpc-messages";
/// Header holding the response until [`GrpcUpstream::release`].
pub const GRPC_HOLD_HEADER: &str = "x-grpc-hold";

/// One gRPC message frame: uncompressed flag, big-endian length, payload.
pub fn grpc_frame(payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(payload.len() + 5);
    out.push(0);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// One request as the upstream received it.
#[derive(Debug, Clone)]
pub struct GrpcRequest {
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// HTTP version Envoy used towards the upstream (`HTTP/2.0`).
    pub version: String,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<GrpcRequest>>,
    cancelled: AtomicU64,
    completed: AtomicU64,
}

/// The server; stopped when dropped.
pub struct GrpcUpstream {
    port: u16,
    runtime: Option<tokio::runtime::Runtime>,
    release: watch::Sender<bool>,
    shared: Arc<Shared>,
}

type ResponseBody = BoxBody<Bytes, Infallible>;

/// A response body fed frame by frame from a channel.
struct ChannelBody(mpsc::Receiver<Frame<Bytes>>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|f| f.map(Ok))
    }
}

/// Counts a response as cancelled when dropped before it was disarmed (the
/// client, or Envoy on its behalf, reset the stream).
struct CancelGuard {
    shared: Arc<Shared>,
    done: bool,
}

impl CancelGuard {
    /// The response went out whole: counted as completed when dropped.
    fn complete(&mut self) {
        self.done = true;
    }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        let counter = if self.done {
            &self.shared.completed
        } else {
            &self.shared.cancelled
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

impl GrpcUpstream {
    /// Starts the server on a free port of 127.0.0.1.
    pub fn start() -> Result<Self> {
        let err = |e: std::io::Error| HarnessError(format!("gRPC upstream: {e}"));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(err)?;
        listener.set_nonblocking(true).map_err(err)?;
        let port = listener.local_addr().map_err(err)?.port();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("harness-grpc-upstream")
            .enable_io()
            .enable_time()
            .build()
            .map_err(err)?;
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(listener).map_err(err)?
        };
        let (release, released) = watch::channel(false);
        let shared = Arc::new(Shared::default());
        let state = shared.clone();
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let (state, released) = (state.clone(), released.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<Incoming>| {
                        let (state, released) = (state.clone(), released.clone());
                        async move { Ok::<_, Infallible>(respond(req, state, released).await) }
                    });
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .max_concurrent_streams(10_000)
                        // Envoy's limits (96 KiB of request headers in the
                        // harness) must be what tests hit, not hyper's 16 KiB.
                        .max_header_list_size(1024 * 1024)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(GrpcUpstream {
            port,
            runtime: Some(runtime),
            release,
            shared,
        })
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Lets every held response (and every one held later) go on.
    pub fn release(&self) {
        self.release.send_replace(true);
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<GrpcRequest> {
        self.shared
            .received
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// gRPC responses dropped before their trailers were sent (reset by the
    /// peer).
    pub fn cancelled(&self) -> u64 {
        self.shared.cancelled.load(Ordering::SeqCst)
    }

    /// gRPC responses sent to the end.
    pub fn completed(&self) -> u64 {
        self.shared.completed.load(Ordering::SeqCst)
    }
}

impl Drop for GrpcUpstream {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn header(req: &hyper::Request<Incoming>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

async fn wait_released(mut released: watch::Receiver<bool>) {
    let _ = released.wait_for(|r| *r).await;
}

/// Waits until the test releases held responses (true) or the receiving
/// side is gone, the stream reset (false).
async fn released_or_closed(
    released: &watch::Receiver<bool>,
    tx: &mpsc::Sender<Frame<Bytes>>,
) -> bool {
    use std::future::Future;
    let mut wait = std::pin::pin!(wait_released(released.clone()));
    let mut closed = std::pin::pin!(tx.closed());
    std::future::poll_fn(|cx| {
        if closed.as_mut().poll(cx).is_ready() {
            return Poll::Ready(false);
        }
        wait.as_mut().poll(cx).map(|()| true)
    })
    .await
}

async fn respond(
    req: hyper::Request<Incoming>,
    shared: Arc<Shared>,
    released: watch::Receiver<bool>,
) -> hyper::Response<ResponseBody> {
    if let Ok(mut r) = shared.received.lock() {
        if r.len() < 100_000 {
            r.push(GrpcRequest {
                method: req.method().as_str().to_string(),
                path: req.uri().path().to_string(),
                version: format!("{:?}", req.version()),
                headers: req
                    .headers()
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_string(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
            });
        }
    }
    let is_grpc = header(&req, "content-type").is_some_and(|c| c.starts_with("application/grpc"));
    if !is_grpc {
        let status = header(&req, STATUS_HEADER)
            .and_then(|v| v.parse::<u16>().ok())
            .unwrap_or(200);
        let _ = req.into_body().collect().await;
        let body = if status < 200 || status == 204 || status == 304 {
            Full::new(Bytes::new()).boxed()
        } else {
            Full::new(Bytes::from_static(b"ok")).boxed()
        };
        return build(hyper::Response::builder().status(status), body);
    }
    let status = header(&req, GRPC_STATUS_HEADER).unwrap_or_else(|| "0".to_string());
    let trailers_only = header(&req, GRPC_SHAPE_HEADER).as_deref() == Some("trailers-only");
    let messages = header(&req, GRPC_MESSAGES_HEADER)
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1);
    let hold = header(&req, GRPC_HOLD_HEADER).unwrap_or_default();
    let mut guard = CancelGuard {
        shared,
        done: false,
    };
    // The request's messages, all read (unary and server-streaming calls).
    let _ = req.into_body().collect().await;
    if hold == "before-headers" {
        wait_released(released.clone()).await;
    }
    let head = hyper::Response::builder()
        .status(200)
        .header("content-type", "application/grpc");
    if trailers_only {
        guard.complete();
        return build(
            head.header("grpc-status", status.as_str())
                .header("grpc-message", "trailers-only"),
            Empty::new().boxed(),
        );
    }
    let (tx, rx) = mpsc::channel::<Frame<Bytes>>(4);
    tokio::spawn(async move {
        for i in 0..messages {
            if i == 1 && hold == "after-first" && !released_or_closed(&released, &tx).await {
                return;
            }
            let msg = Bytes::from(grpc_frame(format!("message {i}").as_bytes()));
            if tx.send(Frame::data(msg)).await.is_err() {
                return;
            }
        }
        let mut trailers = hyper::HeaderMap::new();
        if let Ok(v) = hyper::header::HeaderValue::from_str(&status) {
            trailers.insert("grpc-status", v);
        }
        if tx.send(Frame::trailers(trailers)).await.is_ok() {
            // Sent to hyper; the stream ends when hyper has written it.
            tx.closed().await;
            guard.complete();
        }
    });
    build(head, BodyExt::boxed(ChannelBody(rx)))
}

fn build(
    builder: hyper::http::response::Builder,
    body: ResponseBody,
) -> hyper::Response<ResponseBody> {
    builder
        .body(body)
        .unwrap_or_else(|_| hyper::Response::new(Empty::new().boxed()))
}
