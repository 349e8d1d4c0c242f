//! get-calls: any bytes as the plugin configuration (parse, per-metric
//! parse, names, labels, caps), then one stream recorded with what the input
//! says the expressions evaluate to. Never panics; every stat name it defines
//! is well formed and reads back through Envoy's tag extractors.
#![no_main]

use filter_common::metrics::MAX_VALUE_LENGTH_LIMIT;
use libfuzzer_sys::fuzz_target;
use telemetry_fuzz::{check_stat_name, host_for, json_strings, split};

fuzz_target!(|data: &[u8]| {
    let input = split(data);
    let mut sources = json_strings(input.config);
    for m in get_calls::config::default_metrics() {
        sources.push(m.condition);
        sources.extend(m.dimensions.into_values());
    }
    let host = host_for(&input, &sources);
    let plan = get_calls::plan::configure(Some(input.config), &host);
    // Twice: the second stream finds its series already defined.
    plan.run(&host);
    plan.run(&host);
    for name in host.metric_names() {
        check_stat_name(&name, MAX_VALUE_LENGTH_LIMIT);
    }
});
