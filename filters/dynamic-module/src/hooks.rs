//! The `envoy_dynamic_module_on_*` event hooks Envoy resolves in the module.
//! Every HTTP hook the ABI lists is exported (Envoy rejects the module
//! otherwise); the ones these filters do not use do nothing.

use crate::abi::{self, ConfigEnvoyPtr, EnvoyBuffer, FilterEnvoyPtr};
use crate::host::DynHost;
use crate::runtime::{guarded, new_config, Config, Stream};
use filter_common::host::Host;
use filter_common::job::Phase;
use filter_common::shared_reads::RequestCache;
use std::ffi::{c_char, c_void};

/// Returns the ABI version the module was built for.
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const c_char {
    abi::ABI_VERSION.as_ptr().cast()
}

/// Builds a configuration; null rejects it.
///
/// # Safety
/// Envoy passes buffers valid for the call.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    envoy: ConfigEnvoyPtr,
    name: EnvoyBuffer,
    config: EnvoyBuffer,
) -> *const c_void {
    let mut out: *const c_void = std::ptr::null();
    let _ = guarded("config_new", || {
        // SAFETY: Envoy's buffers are valid during this call.
        let (name, raw) = unsafe { (name.to_vec(), config.to_vec()) };
        let name = String::from_utf8_lossy(&name);
        if let Some(c) = new_config(envoy, &name, &raw) {
            out = Box::into_raw(Box::new(c)).cast_const().cast();
        }
    });
    out
}

/// Frees a configuration (after every stream of it ended).
///
/// # Safety
/// `config` came from `config_new`.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(config: *const c_void) {
    if !config.is_null() {
        // SAFETY: the pointer is the box `config_new` leaked.
        drop(unsafe { Box::from_raw(config.cast_mut().cast::<Config>()) });
    }
}

/// Starts a stream.
///
/// # Safety
/// `config` came from `config_new`.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_new(
    config: *const c_void,
    _envoy: FilterEnvoyPtr,
) -> *const c_void {
    let config = config.cast::<Config>();
    let mut out: *const c_void = std::ptr::null();
    let _ = guarded("filter_new", || {
        // SAFETY: Envoy hands back the pointer `config_new` returned.
        if let Some(c) = unsafe { config.as_ref() } {
            let stream = Stream {
                config,
                jobs: c.worker_jobs(),
                cache: RequestCache::default(),
            };
            out = Box::into_raw(Box::new(stream)).cast_const().cast();
        }
    });
    out
}

/// Runs `f` with the stream, its configuration and a host over `envoy`;
/// a panic is caught, counted on the configuration's panic counter, and
/// the request goes on.
///
/// # Safety
/// `stream` came from `filter_new` and is not yet destroyed.
unsafe fn with_stream(
    hook: &str,
    envoy: FilterEnvoyPtr,
    stream: *const c_void,
    f: impl FnOnce(&Stream, &Config, &DynHost),
) {
    // SAFETY: Envoy hands back the pointer `filter_new` returned.
    let Some(stream) = (unsafe { stream.cast::<Stream>().as_ref() }) else {
        return;
    };
    // SAFETY: the configuration outlives its streams.
    let Some(config) = (unsafe { stream.config.as_ref() }) else {
        return;
    };
    let host = DynHost::for_stream(envoy);
    if guarded(hook, || f(stream, config, &host)) {
        config.count_panic(&host);
    }
}

/// Request headers: the heartbeat, then the jobs' request phase.
///
/// # Safety
/// Envoy's pointers for a live stream.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    envoy: FilterEnvoyPtr,
    stream: *const c_void,
    _end_of_stream: bool,
) -> u32 {
    // SAFETY: forwarded from Envoy.
    unsafe {
        with_stream("request_headers", envoy, stream, |s, c, host| {
            if let Some(id) = c.heartbeat {
                let _ = host.increment(id, &[], 1);
            }
            s.jobs.run(Phase::RequestHeaders, host, &s.cache);
        })
    };
    abi::CONTINUE
}

/// Response headers (also local replies): the jobs' response phase.
///
/// # Safety
/// Envoy's pointers for a live stream.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
    envoy: FilterEnvoyPtr,
    stream: *const c_void,
    _end_of_stream: bool,
) -> u32 {
    // SAFETY: forwarded from Envoy.
    unsafe {
        with_stream("response_headers", envoy, stream, |s, _, host| {
            s.jobs.run(Phase::ResponseHeaders, host, &s.cache)
        })
    };
    abi::CONTINUE
}

/// End of stream, before access logs are flushed: the jobs' log phase.
///
/// # Safety
/// Envoy's pointers for a live stream.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(
    envoy: FilterEnvoyPtr,
    stream: *const c_void,
) {
    // SAFETY: forwarded from Envoy.
    unsafe {
        with_stream("stream_complete", envoy, stream, |s, _, host| {
            s.jobs.run(Phase::Log, host, &s.cache)
        })
    };
}

/// Frees a stream.
///
/// # Safety
/// `stream` came from `filter_new`.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_destroy(stream: *const c_void) {
    if !stream.is_null() {
        // SAFETY: the pointer is the box `filter_new` leaked.
        drop(unsafe { Box::from_raw(stream.cast_mut().cast::<Stream>()) });
    }
}

/// Declares hooks that return a status and let the stream continue.
macro_rules! continue_hooks {
    ($($name:ident),* $(,)?) => {$(
        /// Unused by these filters: continue.
        #[no_mangle]
        pub extern "C" fn $name(_envoy: FilterEnvoyPtr, _stream: *const c_void, _end: bool) -> u32 {
            abi::CONTINUE
        }
    )*};
}

continue_hooks!(
    envoy_dynamic_module_on_http_filter_request_body,
    envoy_dynamic_module_on_http_filter_request_trailers,
    envoy_dynamic_module_on_http_filter_response_body,
    envoy_dynamic_module_on_http_filter_response_trailers,
);

/// Declares hooks that do nothing.
macro_rules! no_op_hooks {
    ($($name:ident),* $(,)?) => {$(
        /// Unused by these filters (never started or never acted upon).
        #[no_mangle]
        pub extern "C" fn $name(_envoy: *mut c_void, _stream: *const c_void) {}
    )*};
}

no_op_hooks!(
    envoy_dynamic_module_on_http_filter_http_callout_done,
    envoy_dynamic_module_on_http_filter_scheduled,
    envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark,
    envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark,
    envoy_dynamic_module_on_http_filter_http_stream_headers,
    envoy_dynamic_module_on_http_filter_http_stream_data,
    envoy_dynamic_module_on_http_filter_http_stream_trailers,
    envoy_dynamic_module_on_http_filter_http_stream_complete,
    envoy_dynamic_module_on_http_filter_http_stream_reset,
);

/// Per-route configuration is not supported: null rejects it.
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_new(
    _name: EnvoyBuffer,
    _config: EnvoyBuffer,
) -> *const c_void {
    std::ptr::null()
}

/// Nothing to free (per-route configuration is never created).
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_destroy(
    _config: *const c_void,
) {
}
