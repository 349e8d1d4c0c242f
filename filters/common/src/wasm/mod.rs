//! The real [`Host`](crate::host::Host): proxy-wasm calls into Envoy that
//! never panic, Envoy's CEL, and the VM-wide set-up every filter does.
//!
//! proxy-wasm 0.2.5 panics (trapping the VM) on any unexpected host status in
//! `set_property`, `define_metric`, `log`, `get_property` and others, and on
//! non-UTF-8 header values. [`hostcalls`] declares the imports itself with a
//! plain `u32` status and maps every value to a `Result`.

mod adapter;
mod host;
pub mod hostcalls;
mod metric_table;
mod runtime;

pub use adapter::{serve, Module};
pub use host::WasmHost;
pub use runtime::{init, log_start, Heartbeat, MemoryGauge};

/// Declares a crate's proxy-wasm module: its name and the function that
/// builds its jobs from the plugin configuration
/// (`fn(Option<&[u8]>, &WasmHost) -> Pipeline<WasmHost>`); the crate's
/// version is the module's. Everything else is [`serve`]'s.
#[macro_export]
macro_rules! proxy_wasm_module {
    ($name:expr, $jobs:expr) => {
        proxy_wasm::main! {{
            $crate::wasm::serve::<WasmModule>();
        }}

        struct WasmModule;

        impl $crate::wasm::Module for WasmModule {
            const NAME: &'static str = $name;
            const VERSION: &'static str = env!("CARGO_PKG_VERSION");

            fn configure(
                raw: Option<&[u8]>,
                host: &$crate::wasm::WasmHost,
            ) -> $crate::pipeline::Pipeline<$crate::wasm::WasmHost> {
                ($jobs)(raw, host)
            }
        }
    };
}
