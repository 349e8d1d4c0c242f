//! Unit tests link the module without Envoy: the callbacks a test can reach
//! only through code it never runs against a stream (module-cel's attribute
//! reads) need a definition. Each answers "absent".

use crate::abi::{EnvoyBuffer, FilterEnvoyPtr, ModuleBuffer};

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_get_attribute_string(
    _: FilterEnvoyPtr,
    _: u32,
    _: *mut EnvoyBuffer,
) -> bool {
    false
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_get_attribute_int(
    _: FilterEnvoyPtr,
    _: u32,
    _: *mut u64,
) -> bool {
    false
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_get_attribute_bool(
    _: FilterEnvoyPtr,
    _: u32,
    _: *mut bool,
) -> bool {
    false
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_get_header(
    _: FilterEnvoyPtr,
    _: u32,
    _: ModuleBuffer,
    _: *mut EnvoyBuffer,
    _: usize,
    _: *mut usize,
) -> bool {
    false
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_get_filter_state_bytes(
    _: FilterEnvoyPtr,
    _: ModuleBuffer,
    _: *mut EnvoyBuffer,
) -> bool {
    false
}
