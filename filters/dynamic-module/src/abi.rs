//! Envoy 1.40's dynamic-module ABI (`v0.2.0`): the types and the callbacks
//! this module imports. Declarations only; every signature was checked
//! against Envoy 1.40.0's exported symbols and its ABI header.

use std::ffi::c_void;

/// The ABI version this module is built against.
pub const ABI_VERSION: &[u8] = b"v0.2.0\0";

/// Envoy's per-configuration object.
pub type ConfigEnvoyPtr = *mut c_void;
/// Envoy's per-stream filter object.
pub type FilterEnvoyPtr = *mut c_void;
/// A tracing span owned by Envoy.
pub type SpanEnvoyPtr = *mut c_void;

/// A buffer owned by Envoy (valid for the callback's documented lifetime).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct EnvoyBuffer {
    /// Start of the bytes (may be null when empty).
    pub ptr: *const u8,
    /// Number of bytes.
    pub length: usize,
}

impl EnvoyBuffer {
    /// An empty buffer for Envoy to fill.
    pub const fn empty() -> Self {
        EnvoyBuffer {
            ptr: std::ptr::null(),
            length: 0,
        }
    }

    /// The bytes, copied.
    ///
    /// # Safety
    /// `ptr` must be null or point to `length` readable bytes.
    pub unsafe fn to_vec(self) -> Vec<u8> {
        // SAFETY: forwarded.
        unsafe { self.as_slice() }.to_vec()
    }

    /// The bytes, borrowed from Envoy.
    ///
    /// # Safety
    /// `ptr` must be null or point to `length` bytes readable for `'a`
    /// (Envoy's buffers: during the hook that filled them).
    pub unsafe fn as_slice<'a>(self) -> &'a [u8] {
        if self.ptr.is_null() || self.length == 0 {
            return &[];
        }
        // SAFETY: the caller guarantees `ptr` points to `length` bytes.
        unsafe { std::slice::from_raw_parts(self.ptr, self.length) }
    }
}

/// A buffer owned by the module, lent to Envoy for one call.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ModuleBuffer {
    /// Start of the bytes.
    pub ptr: *const u8,
    /// Number of bytes.
    pub length: usize,
}

impl ModuleBuffer {
    /// The null buffer (`set_header` removes the header).
    pub const fn null() -> Self {
        ModuleBuffer {
            ptr: std::ptr::null(),
            length: 0,
        }
    }

    /// Lends `bytes` for the duration of one call.
    pub fn of(bytes: &[u8]) -> Self {
        ModuleBuffer {
            ptr: bytes.as_ptr(),
            length: bytes.len(),
        }
    }
}

/// `envoy_dynamic_module_type_http_header_type`.
pub const REQUEST_HEADER: u32 = 0;
/// `envoy_dynamic_module_type_http_header_type` of response headers.
pub const RESPONSE_HEADER: u32 = 2;

/// `envoy_dynamic_module_type_metrics_result_Success`.
pub const METRICS_SUCCESS: u32 = 0;

/// `envoy_dynamic_module_type_on_http_filter_*_status` Continue.
pub const CONTINUE: u32 = 0;

extern "C" {
    /// Logs under Envoy's `dynamic_modules` logger.
    pub fn envoy_dynamic_module_callback_log(level: u32, message: ModuleBuffer);
    /// Whether a log level is enabled.
    pub fn envoy_dynamic_module_callback_log_enabled(level: u32) -> bool;
    /// Reads a string attribute by id.
    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_string(
        filter: FilterEnvoyPtr,
        attribute_id: u32,
        result: *mut EnvoyBuffer,
    ) -> bool;
    /// Reads an integer attribute by id.
    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_int(
        filter: FilterEnvoyPtr,
        attribute_id: u32,
        result: *mut u64,
    ) -> bool;
    /// Reads a boolean attribute by id.
    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_bool(
        filter: FilterEnvoyPtr,
        attribute_id: u32,
        result: *mut bool,
    ) -> bool;
    /// Reads the `index`th value of a header.
    pub fn envoy_dynamic_module_callback_http_get_header(
        filter: FilterEnvoyPtr,
        header_type: u32,
        key: ModuleBuffer,
        result: *mut EnvoyBuffer,
        index: usize,
        optional_size: *mut usize,
    ) -> bool;
    /// Writes filter state bytes (readable as `%FILTER_STATE(key:PLAIN)%`).
    pub fn envoy_dynamic_module_callback_http_set_filter_state_bytes(
        filter: FilterEnvoyPtr,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;
    /// Reads filter state bytes.
    pub fn envoy_dynamic_module_callback_http_get_filter_state_bytes(
        filter: FilterEnvoyPtr,
        key: ModuleBuffer,
        result: *mut EnvoyBuffer,
    ) -> bool;
    /// Defines a counter (configuration time only).
    pub fn envoy_dynamic_module_callback_http_filter_config_define_counter(
        config: ConfigEnvoyPtr,
        name: ModuleBuffer,
        label_names: *const ModuleBuffer,
        label_names_length: usize,
        counter_id: *mut usize,
    ) -> u32;
    /// Increments a counter from configuration time.
    pub fn envoy_dynamic_module_callback_http_filter_config_increment_counter(
        config: ConfigEnvoyPtr,
        id: usize,
        label_values: *const ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;
    /// Increments a counter on a stream.
    pub fn envoy_dynamic_module_callback_http_filter_increment_counter(
        filter: FilterEnvoyPtr,
        id: usize,
        label_values: *const ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;
    /// Defines a histogram (configuration time only).
    pub fn envoy_dynamic_module_callback_http_filter_config_define_histogram(
        config: ConfigEnvoyPtr,
        name: ModuleBuffer,
        label_names: *const ModuleBuffer,
        label_names_length: usize,
        histogram_id: *mut usize,
    ) -> u32;
    /// Records a histogram sample on a stream.
    pub fn envoy_dynamic_module_callback_http_filter_record_histogram_value(
        filter: FilterEnvoyPtr,
        id: usize,
        label_values: *const ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;
    /// Sets (replaces) a header; a null `value.ptr` removes it.
    pub fn envoy_dynamic_module_callback_http_set_header(
        filter: FilterEnvoyPtr,
        header_type: u32,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;
    /// The stream's active span; null when tracing is off.
    pub fn envoy_dynamic_module_callback_http_get_active_span(
        filter: FilterEnvoyPtr,
    ) -> SpanEnvoyPtr;
    /// Sets a tag on a span.
    pub fn envoy_dynamic_module_callback_http_span_set_tag(
        span: SpanEnvoyPtr,
        key: ModuleBuffer,
        value: ModuleBuffer,
    );
}

/// Stand-ins for Envoy's callbacks in native unit tests (the test binary has
/// no Envoy to resolve them against).
#[cfg(test)]
mod test_stubs {
    use super::*;

    #[no_mangle]
    extern "C" fn envoy_dynamic_module_callback_log(_level: u32, _message: ModuleBuffer) {}
    #[no_mangle]
    extern "C" fn envoy_dynamic_module_callback_log_enabled(_level: u32) -> bool {
        false
    }
}
