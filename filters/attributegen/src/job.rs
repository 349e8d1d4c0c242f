//! attributegen as a [`Job`]: its generators run on request headers or in
//! the log phase, as each one's `phase` says.

use crate::config::Phase as GeneratorPhase;
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
            request_headers: self.runs_in(GeneratorPhase::OnRequest),
            response_headers: false,
            log: self.runs_in(GeneratorPhase::AfterResponse),
        }
    }

    fn on_request_headers(&self, request: &Request<'_, H>) {
        self.run(GeneratorPhase::OnRequest, request);
    }

    fn on_log(&self, request: &Request<'_, H>) {
        self.run(GeneratorPhase::AfterResponse, request);
    }
}
