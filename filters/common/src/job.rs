//! What every filter's logic is to a runtime: a [`Job`], configured once,
//! declaring the phases it needs, called per request with the host port
//! behind the request's read cache. The runtime adapters (proxy-wasm here,
//! others beside it) drive a list of jobs through one
//! [`Pipeline`](crate::pipeline::Pipeline).

use crate::host::Host;
use crate::shared_reads::CachingHost;

/// The phases a job runs in, declared at configure time: the pipeline calls
/// a job only in these.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Phases {
    /// Request headers.
    pub request_headers: bool,
    /// Response headers (the last chance for span tags).
    pub response_headers: bool,
    /// The log phase, after the response.
    pub log: bool,
}

/// One phase of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Request headers.
    RequestHeaders,
    /// Response headers.
    ResponseHeaders,
    /// The log phase.
    Log,
}

impl Phases {
    /// Whether `phase` is one of these.
    pub fn contains(self, phase: Phase) -> bool {
        match phase {
            Phase::RequestHeaders => self.request_headers,
            Phase::ResponseHeaders => self.response_headers,
            Phase::Log => self.log,
        }
    }
}

/// The host as a job sees it during one request: reads answered from the
/// request's cache when they can be, attributes written by earlier jobs
/// handed over in memory.
pub type Request<'a, H> = CachingHost<'a, H>;

/// A filter's logic, generic over the [`Host`] port it runs on. Each phase
/// method defaults to doing nothing; [`Job::phases`] says which are called.
pub trait Job<H: Host> {
    /// The job's name (logs; in the bundle, its configuration section).
    fn name(&self) -> &'static str;
    /// The phases this configuration needs.
    fn phases(&self) -> Phases;
    /// Request headers.
    fn on_request_headers(&self, _request: &Request<'_, H>) {}
    /// Response headers (also for local replies).
    fn on_response_headers(&self, _request: &Request<'_, H>) {}
    /// The log phase.
    fn on_log(&self, _request: &Request<'_, H>) {}
}
