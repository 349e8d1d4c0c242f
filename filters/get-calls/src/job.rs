//! get-calls as a [`Job`]: its metrics are recorded in the log phase.

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
            log: !self.is_empty(),
            ..Phases::default()
        }
    }

    fn on_log(&self, request: &Request<'_, H>) {
        self.run(request);
    }
}
