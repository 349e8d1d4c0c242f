//! The proxy-wasm adapter.

use crate::config::parse;
use crate::FILTER_NAME;
use filter_common::host::{Host, HostExpression, LogLevel, MetricId, MetricKind};
use filter_common::wasm::{self, hostcalls, WasmHost};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use std::rc::Rc;

proxy_wasm::main! {{
    wasm::init(FILTER_NAME);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Root { job: Rc::new(Job::Reference(None)) })
    });
}}

/// One compiled attribute of the host-CEL job.
struct Attribute {
    output: String,
    arms: Vec<(HostExpression, String)>,
}

enum Job {
    /// No host call at all.
    Empty,
    /// The trivial reference filter, with its counter.
    Reference(Option<MetricId>),
    /// The straightforward host-CEL attributegen.
    HostCel(Vec<Attribute>),
    /// Request-header reads only.
    Reads(crate::config::Reads),
}

struct Root {
    job: Rc<Job>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _: usize) -> bool {
        let raw = hostcalls::plugin_configuration().ok().flatten();
        let config = match parse(raw.as_deref()) {
            Ok(c) => c,
            Err(e) => {
                WasmHost.log(LogLevel::Warn, &format!("{FILTER_NAME}: bad config: {e}"));
                return false;
            }
        };
        if config.empty {
            self.job = Rc::new(Job::Empty);
            return true;
        }
        if let Some(reads) = config.reads {
            self.job = Rc::new(Job::Reads(reads));
            return true;
        }
        if config.host_cel.is_empty() {
            let counter = WasmHost
                .define_metric(MetricKind::Counter, "bench_reference_requests", &[])
                .ok();
            self.job = Rc::new(Job::Reference(counter));
            return true;
        }
        let mut attributes = Vec::new();
        for a in config.host_cel {
            let mut arms = Vec::new();
            for m in a.matches {
                match WasmHost.compile(&m.condition) {
                    Ok(e) => arms.push((e, m.value)),
                    Err(e) => {
                        WasmHost.log(
                            LogLevel::Warn,
                            &format!("{FILTER_NAME}: {:?}: {e}", m.condition),
                        );
                        return false;
                    }
                }
            }
            attributes.push(Attribute {
                output: a.output_attribute,
                arms,
            });
        }
        self.job = Rc::new(Job::HostCel(attributes));
        true
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream {
            job: Rc::clone(&self.job),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream {
    job: Rc<Job>,
}

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        if let Job::Reads(reads) = &*self.job {
            let found = if reads.map {
                let map = self.get_http_request_headers_bytes();
                reads
                    .headers
                    .iter()
                    .filter(|n| map.iter().any(|(k, _)| k == *n))
                    .count()
            } else {
                reads
                    .headers
                    .iter()
                    .filter(|n| self.get_http_request_header_bytes(n).is_some())
                    .count()
            };
            std::hint::black_box(found);
        }
        if let Job::Reference(counter) = &*self.job {
            let path = WasmHost.property(&["request", "url_path"]).ok().flatten();
            let method = WasmHost.property(&["request", "method"]).ok().flatten();
            let value = if path.is_some() {
                method.unwrap_or_default()
            } else {
                Vec::new()
            };
            let _ = WasmHost.set_attribute(FILTER_NAME, &value);
            if let Some(id) = counter {
                let _ = WasmHost.increment(*id, &[], 1);
            }
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        if let Job::HostCel(attributes) = &*self.job {
            for a in attributes {
                for (expr, value) in &a.arms {
                    match WasmHost.evaluate(expr).map(|r| r.as_bool()) {
                        Ok(Ok(true)) => {
                            let _ = WasmHost.set_attribute(&a.output, value.as_bytes());
                            break;
                        }
                        Ok(Ok(false)) => continue,
                        _ => break,
                    }
                }
            }
        }
    }
}
