//! attributegen: any bytes as the plugin configuration (parse, compile, route
//! templates), then one request through every phase with what the input says
//! the expressions evaluate to. Never panics; only values of the
//! configuration are written, to output attributes of the configuration.
#![no_main]

use attributegen::config::Phase;
use libfuzzer_sys::fuzz_target;
use telemetry_fuzz::{host_for, json_strings, split, MAX_SOURCES};

fuzz_target!(|data: &[u8]| {
    let input = split(data);
    let strings = json_strings(input.config);
    let host = host_for(&input, &strings);
    let plan = attributegen::plan::configure(Some(input.config), &host);
    let mut written = 0;
    for phase in [Phase::OnRequest, Phase::AfterResponse] {
        if plan.runs_in(phase) {
            written += plan.run(phase, &host);
        }
    }
    let writes = host.attribute_writes();
    assert_eq!(writes.len(), written);
    if strings.len() >= MAX_SOURCES {
        return; // not every string of the configuration was collected
    }
    for (name, value) in writes {
        let value = String::from_utf8(value).expect("values are configured strings");
        assert!(strings.contains(&name), "output {name:?} not configured");
        assert!(
            strings.contains(&value) || value.is_empty(),
            "value {value:?} not configured"
        );
    }
});
