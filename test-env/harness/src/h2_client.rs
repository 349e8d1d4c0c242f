//! An HTTP/2 client for Envoy's listener: cleartext with prior knowledge
//! (h2c) or TLS with ALPN `h2`, as a sidecar receives mesh traffic. Built on
//! the `h2` crate so a test controls each stream: many at once on one
//! connection, trailers read, a stream reset (RST_STREAM) mid-way.

use crate::{HarnessError, Result};
use h2::client::{ResponseFuture, SendRequest};
use h2::{RecvStream, SendStream};
use hyper::body::Bytes;
use std::sync::Arc;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(15);

fn h2_err(what: &str) -> impl Fn(h2::Error) -> HarnessError + '_ {
    move |e| HarnessError(format!("HTTP/2 {what}: {e}"))
}

/// One HTTP/2 request to send.
#[derive(Debug, Clone)]
pub struct H2Request {
    /// Method.
    pub method: String,
    /// Path with query.
    pub path: String,
    /// Headers besides the pseudo-headers.
    pub headers: Vec<(String, String)>,
    /// Request body (sent in one DATA frame, or none when empty).
    pub body: Vec<u8>,
    /// The `x-test-id` it carries, to find its access-log line and span.
    pub test_id: String,
}

impl H2Request {
    /// A request without body.
    pub fn new(method: &str, path: &str) -> Self {
        H2Request {
            method: method.to_string(),
            path: path.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            test_id: crate::client::next_test_id(),
        }
    }
    /// A gRPC call: `POST path`, `content-type: application/grpc`,
    /// `te: trailers`, one request message.
    pub fn grpc(path: &str) -> Self {
        H2Request::new("POST", path)
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(crate::grpc_upstream::grpc_frame(b"request"))
    }
    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

/// A response as the client saw it.
#[derive(Debug, Clone, Default)]
pub struct H2Response {
    /// Status code.
    pub status: u16,
    /// Response headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Trailers, names lower-case (empty when none came).
    pub trailers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// The request's `x-test-id`.
    pub test_id: String,
}

impl H2Response {
    /// First value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }
    /// First value of a trailer.
    pub fn trailer(&self, name: &str) -> Option<&str> {
        find(&self.trailers, name)
    }
    /// `grpc-status` from the trailers, else from the headers
    /// (trailers-only).
    pub fn grpc_status(&self) -> Option<&str> {
        self.trailer("grpc-status")
            .or_else(|| self.header("grpc-status"))
    }
}

fn find<'a>(list: &'a [(String, String)], name: &str) -> Option<&'a str> {
    list.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn pairs(map: &hyper::HeaderMap) -> Vec<(String, String)> {
    map.iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// One HTTP/2 connection to Envoy's listener; closed when dropped.
pub struct H2Client {
    runtime: tokio::runtime::Runtime,
    sender: SendRequest<Bytes>,
    alpn: Option<Vec<u8>>,
    port: u16,
}

impl H2Client {
    /// Cleartext HTTP/2 with prior knowledge (h2c).
    pub fn h2c(port: u16) -> Result<Self> {
        let runtime = runtime()?;
        let sender = runtime.block_on(async {
            let tcp = connect(port).await?;
            handshake(tcp).await
        })?;
        Ok(H2Client {
            runtime,
            sender,
            alpn: None,
            port,
        })
    }

    /// TLS offering only ALPN `h2`, trusting `pki`'s CA, SNI
    /// [`crate::tls::SERVER_NAME`].
    pub fn tls(port: u16, pki: &crate::tls::TestPki) -> Result<Self> {
        let config = pki.client_config(&[b"h2"])?;
        let runtime = runtime()?;
        let (sender, alpn) = runtime.block_on(async {
            let tcp = connect(port).await?;
            let name = rustls::pki_types::ServerName::try_from(crate::tls::SERVER_NAME)
                .map_err(|e| HarnessError(format!("server name: {e}")))?;
            let tls = tokio_rustls::TlsConnector::from(Arc::clone(&config))
                .connect(name, tcp)
                .await
                .map_err(|e| HarnessError(format!("TLS handshake: {e}")))?;
            let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
            Ok::<_, HarnessError>((handshake(tls).await?, alpn))
        })?;
        Ok(H2Client {
            runtime,
            sender,
            alpn,
            port,
        })
    }

    /// The ALPN protocol the TLS handshake agreed on (`None` for h2c).
    pub fn alpn(&self) -> Option<&[u8]> {
        self.alpn.as_deref()
    }

    /// The listener port it is connected to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Sends one request and reads the whole response with its trailers.
    pub fn send(&self, req: H2Request) -> Result<H2Response> {
        let sender = self.sender.clone();
        self.runtime
            .block_on(async { tokio::time::timeout(TIMEOUT, exchange(sender, req)).await })
            .map_err(|_| HarnessError("HTTP/2 request timed out".into()))?
    }

    /// Sends every request at once, each on its own stream of this
    /// connection, and waits for all responses (in the requests' order).
    pub fn send_concurrently(&self, reqs: Vec<H2Request>) -> Vec<Result<H2Response>> {
        self.runtime.block_on(async {
            let tasks: Vec<_> = reqs
                .into_iter()
                .map(|r| {
                    let sender = self.sender.clone();
                    tokio::spawn(async move {
                        tokio::time::timeout(TIMEOUT, exchange(sender, r))
                            .await
                            .map_err(|_| HarnessError("HTTP/2 request timed out".into()))?
                    })
                })
                .collect();
            let mut out = Vec::with_capacity(tasks.len());
            for t in tasks {
                out.push(
                    t.await
                        .map_err(|e| HarnessError(format!("task: {e}")))
                        .and_then(|r| r),
                );
            }
            out
        })
    }

    /// Sends a request and returns at once, the stream open: read its
    /// response bit by bit, or reset it.
    pub fn open(&self, req: H2Request) -> Result<H2Stream<'_>> {
        let sender = self.sender.clone();
        let test_id = req.test_id.clone();
        let (response, send) = self.runtime.block_on(start(sender, req))?;
        Ok(H2Stream {
            client: self,
            send,
            state: StreamState::Pending(response),
            response: H2Response {
                test_id,
                ..H2Response::default()
            },
        })
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("harness-h2-client")
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| HarnessError(format!("runtime: {e}")))
}

async fn connect(port: u16) -> Result<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| HarnessError(format!("connect 127.0.0.1:{port}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

async fn handshake<T>(io: T) -> Result<SendRequest<Bytes>>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = h2::client::Builder::new()
        .max_header_list_size(1024 * 1024)
        // h2 guards against floods of small DATA frames; a test reading
        // 1,000 concurrent gRPC answers (one small message each) is not one.
        .data_frame_budget(64 * 1024 * 1024)
        .handshake::<_, Bytes>(io)
        .await
        .map_err(h2_err("handshake"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// Sends the request (headers, and the body if any, ending the stream).
async fn start(
    sender: SendRequest<Bytes>,
    req: H2Request,
) -> Result<(ResponseFuture, SendStream<Bytes>)> {
    let mut builder = hyper::Request::builder()
        .method(req.method.as_str())
        .uri(format!("http://{}{}", crate::tls::SERVER_NAME, req.path))
        .header("x-test-id", req.test_id.as_str());
    for (k, v) in &req.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let request = builder
        .body(())
        .map_err(|e| HarnessError(format!("bad request {} {}: {e}", req.method, req.path)))?;
    let mut sender = sender.ready().await.map_err(h2_err("connection"))?;
    let end = req.body.is_empty();
    let (response, mut send) = sender.send_request(request, end).map_err(h2_err("send"))?;
    if !end {
        send.send_data(Bytes::from(req.body), true)
            .map_err(h2_err("send body"))?;
    }
    Ok((response, send))
}

async fn exchange(sender: SendRequest<Bytes>, req: H2Request) -> Result<H2Response> {
    let test_id = req.test_id.clone();
    let (response, _send) = start(sender, req).await?;
    let response = response.await.map_err(h2_err("response"))?;
    let mut out = H2Response {
        status: response.status().as_u16(),
        headers: pairs(response.headers()),
        test_id,
        ..H2Response::default()
    };
    let mut body = response.into_body();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(h2_err("body"))?;
        let _ = body.flow_control().release_capacity(chunk.len());
        out.body.extend_from_slice(&chunk);
    }
    if let Some(t) = body.trailers().await.map_err(h2_err("trailers"))? {
        out.trailers = pairs(&t);
    }
    Ok(out)
}

enum StreamState {
    Pending(ResponseFuture),
    Open(RecvStream),
    Done,
}

/// An open HTTP/2 stream (see [`H2Client::open`]).
pub struct H2Stream<'a> {
    client: &'a H2Client,
    send: SendStream<Bytes>,
    state: StreamState,
    response: H2Response,
}

impl H2Stream<'_> {
    /// Waits for the response headers.
    pub fn headers(&mut self) -> Result<&H2Response> {
        if let StreamState::Pending(_) = self.state {
            let StreamState::Pending(fut) = std::mem::replace(&mut self.state, StreamState::Done)
            else {
                return Err(HarnessError("stream state".into()));
            };
            let response = self
                .client
                .runtime
                .block_on(async { tokio::time::timeout(TIMEOUT, fut).await })
                .map_err(|_| HarnessError("HTTP/2 response headers timed out".into()))?
                .map_err(h2_err("response"))?;
            self.response.status = response.status().as_u16();
            self.response.headers = pairs(response.headers());
            self.state = StreamState::Open(response.into_body());
        }
        Ok(&self.response)
    }

    /// The next DATA frame's bytes, `None` at the end of the body.
    pub fn next_data(&mut self) -> Result<Option<Vec<u8>>> {
        self.headers()?;
        let StreamState::Open(body) = &mut self.state else {
            return Ok(None);
        };
        let chunk = self
            .client
            .runtime
            .block_on(async { tokio::time::timeout(TIMEOUT, body.data()).await })
            .map_err(|_| HarnessError("HTTP/2 body timed out".into()))?;
        match chunk {
            None => Ok(None),
            Some(Ok(c)) => {
                let _ = body.flow_control().release_capacity(c.len());
                self.response.body.extend_from_slice(&c);
                Ok(Some(c.to_vec()))
            }
            Some(Err(e)) => Err(h2_err("body")(e)),
        }
    }

    /// Reads the rest of the body and the trailers.
    pub fn finish(mut self) -> Result<H2Response> {
        while self.next_data()?.is_some() {}
        if let StreamState::Open(body) = &mut self.state {
            let trailers = self
                .client
                .runtime
                .block_on(async { tokio::time::timeout(TIMEOUT, body.trailers()).await })
                .map_err(|_| HarnessError("HTTP/2 trailers timed out".into()))?
                .map_err(h2_err("trailers"))?;
            if let Some(t) = trailers {
                self.response.trailers = pairs(&t);
            }
        }
        Ok(self.response.clone())
    }

    /// Resets the stream with RST_STREAM(CANCEL), as a client abandoning
    /// a call does; returns what had arrived so far.
    pub fn cancel(mut self) -> H2Response {
        self.send.send_reset(h2::Reason::CANCEL);
        // Let the connection task write the frame.
        self.client
            .runtime
            .block_on(async { tokio::time::sleep(Duration::from_millis(20)).await });
        std::mem::take(&mut self.response)
    }
}
