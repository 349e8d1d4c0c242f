//! trace-tags as a [`Job`]: tags are written on request and response headers
//! (the span is finished before the log phase). The response phase also runs
//! for local replies: if an earlier filter answered before the request
//! headers reached this one, only the response-phase tags are set.

use crate::plan::Plan;
use crate::FILTER_NAME;
use filter_common::host::Host;
use filter_common::job::{Job, Phases, Request};

impl<H: Host> Job<H> for Plan {
    fn name(&self) -> &'static str {
        FILTER_NAME
    }

    fn phases(&self) -> Phases {
        Phases {
            request_headers: !self.is_empty(),
            response_headers: !self.is_empty(),
            log: false,
        }
    }

    fn on_request_headers(&self, request: &Request<'_, H>) {
        self.on_request(request);
    }

    fn on_response_headers(&self, request: &Request<'_, H>) {
        self.on_response(request);
    }
}
