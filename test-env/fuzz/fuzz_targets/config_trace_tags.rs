//! trace-tags: any bytes as the plugin configuration (parse, per-tag parse,
//! sources, types, header prefix), then one request with what the input says
//! headers, attributes, the environment and expressions hold. Never panics;
//! every value written is free of control characters and within the
//! largest accepted cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telemetry_fuzz::{host_for, json_strings, split};
use trace_tags::config::MAX_VALUE_LENGTH_LIMIT;

fuzz_target!(|data: &[u8]| {
    let input = split(data);
    let sources = json_strings(input.config);
    let host = host_for(&input, &sources);
    let plan = trace_tags::plan::configure(Some(input.config), &host);
    plan.on_request(&host);
    plan.on_response(&host);
    for (name, value) in host.attribute_writes() {
        let value = String::from_utf8(value).expect("tag values are text");
        assert!(
            value.len() <= MAX_VALUE_LENGTH_LIMIT,
            "{name}: {} bytes",
            value.len()
        );
        assert!(
            !value.chars().any(char::is_control) || sources.contains(&value),
            "{name}: control character in {value:?}"
        );
    }
});
