//! Fault injection for failure-policy tests. Compiled only with the cargo
//! feature `fault-injection`, which no shipped module enables
//! (`scripts/build.sh` builds the test variants into `target/filters/test/`).

use crate::host::Host;

/// Request header that asks a test build to fail.
pub const FAULT_HEADER: &str = "x-fault-inject";

/// Panics (trapping the VM) when the request carries `x-fault-inject: panic`.
#[allow(clippy::panic)]
pub fn check(host: &impl Host) {
    if let Ok(Some(v)) = host.request_header(FAULT_HEADER) {
        if v == b"panic" {
            panic!("fault injected by the {FAULT_HEADER} request header (test build)");
        }
    }
}
