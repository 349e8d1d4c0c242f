//! The one place phases are dispatched: a list of [`Job`]s in chain order,
//! the per-request read cache they share, and each phase calling only the
//! jobs that declared it. Every runtime adapter drives this.

use crate::host::Host;
use crate::job::{Job, Phase};
use crate::shared_reads::{CachingHost, RequestCache};
use std::cell::Cell;

/// From how many request headers per phase on, a phase reads the whole
/// request-header map once instead of each header alone. Measured
/// in Envoy 1.40 (`scripts/bench.sh --instructions`, the bundle's three
/// header reads against one map read): one single read costs about 9,000
/// instructions in Envoy and V8, one map read about 11,000 with the
/// benchmark's request and 13,000 with a sidecar's usual 20 headers, so two
/// is where it pays. A request with very large headers makes the map read
/// dearer; it stays one copy per request.
pub const HEADER_MAP_FROM: u32 = 2;

/// The jobs of one configured module, in the order they run.
pub struct Pipeline<H: Host> {
    jobs: Vec<Box<dyn Job<H>>>,
    request_headers: Vec<usize>,
    response_headers: Vec<usize>,
    log: Vec<usize>,
    /// Request headers each phase of the last request looked up beyond the
    /// cache (the next request reads the map whole from [`HEADER_MAP_FROM`]
    /// on), by [`phase_index`].
    request_header_reads: [Cell<u32>; 3],
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
            request_header_reads: Default::default(),
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
        let header_reads = self.request_header_reads.get(phase_index(phase));
        if header_reads.is_some_and(|n| n.get() >= HEADER_MAP_FROM) {
            cache.read_header_map(host);
        }
        let request = CachingHost::new(host, cache);
        for job in jobs.iter().filter_map(|i| self.jobs.get(*i)) {
            match phase {
                Phase::RequestHeaders => job.on_request_headers(&request),
                Phase::ResponseHeaders => job.on_response_headers(&request),
                Phase::Log => job.on_log(&request),
            }
        }
        if let Some(n) = header_reads {
            n.set(cache.header_misses());
        }
    }
}

/// A phase's slot in per-phase arrays.
fn phase_index(phase: Phase) -> usize {
    match phase {
        Phase::RequestHeaders => 0,
        Phase::ResponseHeaders => 1,
        Phase::Log => 2,
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

    /// Reads these request headers on request headers and notes what it saw.
    struct HeaderReader {
        names: &'static [&'static str],
        seen: Calls,
    }

    impl Job<FakeHost> for HeaderReader {
        fn name(&self) -> &'static str {
            "headers"
        }
        fn phases(&self) -> Phases {
            Phases {
                request_headers: true,
                ..Phases::default()
            }
        }
        fn on_request_headers(&self, request: &Request<'_, FakeHost>) {
            for name in self.names {
                let v = request.request_header_shared(name).ok().flatten();
                let v = v.map_or("-".into(), |v| String::from_utf8_lossy(&v).into_owned());
                self.seen.borrow_mut().push(format!("{name}={v}"));
            }
        }
    }

    fn requests(names: &'static [&'static str], host: &FakeHost, n: usize) -> (Vec<u32>, Calls) {
        let seen = Calls::default();
        let pipeline = Pipeline::single(HeaderReader {
            names,
            seen: Rc::clone(&seen),
        });
        let reads = (0..n)
            .map(|_| {
                let cache = RequestCache::default();
                pipeline.run(Phase::RequestHeaders, host, &cache);
                cache.host_reads()
            })
            .collect();
        (reads, seen)
    }

    #[test]
    fn several_headers_a_request_are_read_as_one_map_from_the_second_request_on() {
        let host = FakeHost::new();
        host.offer_header_map()
            .set_header(":path", b"/a")
            .set_header(":method", b"GET")
            .set_header("x-tenant", b"acme");
        let (reads, seen) = requests(&[":path", ":method", "x-tenant", "x-absent"], &host, 3);
        assert_eq!(reads, vec![4, 1, 1]);
        let seen = seen.borrow();
        assert_eq!(seen[..4], seen[4..8], "the map answers as single reads do");
        assert_eq!(
            seen[..4],
            [":path=/a", ":method=GET", "x-tenant=acme", "x-absent=-"]
        );
    }

    #[test]
    fn one_header_or_no_map_keep_single_reads() {
        let host = FakeHost::new();
        host.offer_header_map().set_header(":path", b"/a");
        assert_eq!(requests(&[":path"], &host, 3).0, vec![1, 1, 1]);
        assert_eq!(requests(&[":path", ":method"], &host, 3).0, vec![2, 1, 1]);
        let no_map = FakeHost::new();
        assert_eq!(
            requests(&[":path", ":method", "x-tenant"], &no_map, 3).0,
            vec![3, 3, 3]
        );
    }
}
