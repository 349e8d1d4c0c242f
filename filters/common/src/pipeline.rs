//! The one place phases are dispatched: a list of [`Job`]s in chain order,
//! the per-request read cache they share, and each phase calling only the
//! jobs that declared it. Every runtime adapter drives this.

use crate::host::Host;
use crate::job::{Job, Phase};
use crate::shared_reads::{CachingHost, RequestCache};

/// The jobs of one configured module, in the order they run.
pub struct Pipeline<H: Host> {
    jobs: Vec<Box<dyn Job<H>>>,
    request_headers: Vec<usize>,
    response_headers: Vec<usize>,
    log: Vec<usize>,
}

impl<H: Host> Pipeline<H> {
    /// A pipeline running `jobs` in this order; their phases are read once.
    pub fn new(jobs: Vec<Box<dyn Job<H>>>) -> Self {
        let of = |phase: Phase| -> Vec<usize> {
            jobs.iter()
                .enumerate()
                .filter(|(_, j)| j.phases().contains(phase))
                .map(|(i, _)| i)
                .collect()
        };
        Pipeline {
            request_headers: of(Phase::RequestHeaders),
            response_headers: of(Phase::ResponseHeaders),
            log: of(Phase::Log),
            jobs,
        }
    }

    /// A pipeline of one job (a separate filter).
    pub fn single(job: impl Job<H> + 'static) -> Self {
        Self::new(vec![Box::new(job)])
    }

    /// Names of the jobs, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.jobs.iter().map(|j| j.name()).collect()
    }

    /// Whether any job runs in `phase`.
    pub fn runs_in(&self, phase: Phase) -> bool {
        !self.in_phase(phase).is_empty()
    }

    fn in_phase(&self, phase: Phase) -> &[usize] {
        match phase {
            Phase::RequestHeaders => &self.request_headers,
            Phase::ResponseHeaders => &self.response_headers,
            Phase::Log => &self.log,
        }
    }

    /// Runs `phase` of the request `cache` belongs to: the jobs that
    /// declared it, in order, sharing the cache. Values still absent are
    /// read again in a later phase (`response.*` appears only then).
    pub fn run(&self, phase: Phase, host: &H, cache: &RequestCache) {
        let jobs = self.in_phase(phase);
        if jobs.is_empty() {
            return;
        }
        cache.next_phase();
        let request = CachingHost::new(host, cache);
        for job in jobs.iter().filter_map(|i| self.jobs.get(*i)) {
            match phase {
                Phase::RequestHeaders => job.on_request_headers(&request),
                Phase::ResponseHeaders => job.on_response_headers(&request),
                Phase::Log => job.on_log(&request),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeHost;
    use crate::job::{Phases, Request};
    use std::cell::RefCell;
    use std::rc::Rc;

    type Calls = Rc<RefCell<Vec<String>>>;

    struct Probe {
        name: &'static str,
        phases: Phases,
        calls: Calls,
    }

    impl Probe {
        fn note(&self, phase: &str, request: &Request<'_, FakeHost>) {
            let seen = request
                .property(&["shared"])
                .ok()
                .flatten()
                .map(|v| String::from_utf8_lossy(&v).into_owned())
                .unwrap_or_default();
            self.calls
                .borrow_mut()
                .push(format!("{}:{phase}:{seen}", self.name));
            let _ = request.set_attribute("shared", self.name.as_bytes());
        }
    }

    impl Job<FakeHost> for Probe {
        fn name(&self) -> &'static str {
            self.name
        }
        fn phases(&self) -> Phases {
            self.phases
        }
        fn on_request_headers(&self, request: &Request<'_, FakeHost>) {
            self.note("req", request);
        }
        fn on_response_headers(&self, request: &Request<'_, FakeHost>) {
            self.note("resp", request);
        }
        fn on_log(&self, request: &Request<'_, FakeHost>) {
            self.note("log", request);
        }
    }

    fn probe(name: &'static str, phases: Phases, calls: &Calls) -> Box<dyn Job<FakeHost>> {
        Box::new(Probe {
            name,
            phases,
            calls: Rc::clone(calls),
        })
    }

    #[test]
    fn jobs_run_in_order_only_in_their_phases_sharing_writes() {
        let calls = Calls::default();
        let all = Phases {
            request_headers: true,
            response_headers: true,
            log: true,
        };
        let pipeline = Pipeline::new(vec![
            probe(
                "a",
                Phases {
                    request_headers: true,
                    log: true,
                    ..Phases::default()
                },
                &calls,
            ),
            probe(
                "b",
                Phases {
                    response_headers: true,
                    ..Phases::default()
                },
                &calls,
            ),
            probe("c", all, &calls),
        ]);
        assert_eq!(pipeline.names(), vec!["a", "b", "c"]);
        let host = FakeHost::new();
        let cache = RequestCache::default();
        for phase in [Phase::RequestHeaders, Phase::ResponseHeaders, Phase::Log] {
            pipeline.run(phase, &host, &cache);
        }
        assert_eq!(
            *calls.borrow(),
            vec!["a:req:", "c:req:a", "b:resp:c", "c:resp:b", "a:log:c", "c:log:a"]
        );
        assert_eq!(cache.host_reads(), 1, "one read; later ones see the writes");
    }

    #[test]
    fn a_phase_nobody_needs_costs_nothing() {
        let calls = Calls::default();
        let pipeline = Pipeline::new(vec![probe(
            "a",
            Phases {
                log: true,
                ..Phases::default()
            },
            &calls,
        )]);
        assert!(!pipeline.runs_in(Phase::RequestHeaders));
        let host = FakeHost::new();
        let cache = RequestCache::default();
        pipeline.run(Phase::RequestHeaders, &host, &cache);
        pipeline.run(Phase::ResponseHeaders, &host, &cache);
        assert!(calls.borrow().is_empty());
        assert_eq!(cache.host_reads(), 0);
    }
}
