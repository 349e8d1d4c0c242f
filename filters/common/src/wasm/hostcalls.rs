//! proxy-wasm host calls that never panic.
//!
//! The imports are declared here with a plain `u32` status (no enum
//! conversion, so an unexpected value is not undefined behaviour) and every
//! status maps to a [`HostError`]. Memory the host returns was allocated by
//! the SDK's exported `proxy_on_memory_allocate` and is taken back here.
#![allow(unsafe_code, clashing_extern_declarations)]

use crate::host::{HostError, LogLevel, MetricKind};

/// proxy-wasm header map type: HTTP request headers.
const REQUEST_HEADERS: u32 = 0;
/// proxy-wasm buffer type: plugin configuration.
const PLUGIN_CONFIGURATION: u32 = 7;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_call_foreign_function(
        function_name_data: *const u8,
        function_name_size: usize,
        arguments_data: *const u8,
        arguments_size: usize,
        results_data: *mut *mut u8,
        results_size: *mut usize,
    ) -> u32;
}

/// Takes ownership of a buffer the host filled (allocated by the module).
fn take(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    if data.is_null() {
        return None;
    }
    // SAFETY: the host got `data` from `proxy_on_memory_allocate(size)`, which
    // leaks a boxed slice of exactly `size` bytes.
    Some(unsafe { Vec::from_raw_parts(data, size, size) })
}

/// A read's answer: the buffer the host filled, `None` when the host found
/// nothing, or the error its status names.
fn read_result(status: u32, data: *mut u8, size: usize) -> Result<Option<Vec<u8>>, HostError> {
    match HostError::check(status) {
        Ok(()) => Ok(take(data, size)),
        Err(HostError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Logs one line; a failing log call is ignored (nothing else can be done).
pub fn log(level: LogLevel, message: &str) {
    // SAFETY: pointer and length come from a live &str.
    let _ = unsafe { proxy_log(level as u32, message.as_ptr(), message.len()) };
}

/// Reads an attribute; `Ok(None)` when Envoy has no value for the path.
pub fn get_property(path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
    // The ABI wants the segments joined by NULs: on the stack when they fit
    // (every attribute path does), no allocation on the request path.
    let mut buf = [0u8; PATH_BUFFER];
    let heap;
    let joined: &[u8] = match join_path(path, &mut buf) {
        Some(j) => j,
        None => {
            heap = path.join("\0");
            heap.as_bytes()
        }
    };
    let mut data = std::ptr::null_mut();
    let mut size = 0;
    // SAFETY: valid input slice and out-pointers.
    let status = unsafe { proxy_get_property(joined.as_ptr(), joined.len(), &mut data, &mut size) };
    read_result(status, data, size)
}

/// Room for a property path on the stack (`xds.cluster_metadata.…` paths
/// are well under it).
const PATH_BUFFER: usize = 256;

/// `path` joined by NULs into `buf`; `None` when it does not fit.
fn join_path<'b>(path: &[&str], buf: &'b mut [u8; PATH_BUFFER]) -> Option<&'b [u8]> {
    let mut end = 0;
    for (i, segment) in path.iter().enumerate() {
        if i > 0 {
            *buf.get_mut(end)? = 0;
            end += 1;
        }
        buf.get_mut(end..end + segment.len())?
            .copy_from_slice(segment.as_bytes());
        end += segment.len();
    }
    buf.get(..end)
}

/// Writes filter state `wasm.<name>`. `name` must be one segment (no NUL):
/// a multi-segment path would create a key with a literal NUL in it.
pub fn set_attribute(name: &str, value: &[u8]) -> Result<(), HostError> {
    if name.is_empty() || name.contains('\0') {
        return Err(HostError::BadArgument);
    }
    // SAFETY: valid slices.
    let status =
        unsafe { proxy_set_property(name.as_ptr(), name.len(), value.as_ptr(), value.len()) };
    HostError::check(status)
}

/// Reads one request header as bytes (values need not be UTF-8).
pub fn get_request_header(name: &str) -> Result<Option<Vec<u8>>, HostError> {
    let mut data = std::ptr::null_mut();
    let mut size = 0;
    // SAFETY: valid input slice and out-pointers.
    let status = unsafe {
        proxy_get_header_map_value(
            REQUEST_HEADERS,
            name.as_ptr(),
            name.len(),
            &mut data,
            &mut size,
        )
    };
    read_result(status, data, size)
}

/// Reads all request headers at once, serialized (see
/// [`crate::header_map`]); `Ok(None)` when Envoy has no header map here.
pub fn get_request_header_map() -> Result<Option<Vec<u8>>, HostError> {
    let mut data = std::ptr::null_mut();
    let mut size = 0;
    // SAFETY: valid out-pointers.
    let status = unsafe { proxy_get_header_map_pairs(REQUEST_HEADERS, &mut data, &mut size) };
    read_result(status, data, size)
}

/// Sets (replaces) a request header.
pub fn set_request_header(name: &str, value: &[u8]) -> Result<(), HostError> {
    // SAFETY: valid slices.
    let status = unsafe {
        proxy_replace_header_map_value(
            REQUEST_HEADERS,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    };
    HostError::check(status)
}

/// Removes a request header (absent is fine).
pub fn remove_request_header(name: &str) -> Result<(), HostError> {
    // SAFETY: valid slice.
    let status =
        unsafe { proxy_remove_header_map_value(REQUEST_HEADERS, name.as_ptr(), name.len()) };
    match HostError::check(status) {
        Err(HostError::NotFound) => Ok(()),
        other => other,
    }
}

/// The plugin configuration bytes, `None` when Envoy sent none.
pub fn plugin_configuration() -> Result<Option<Vec<u8>>, HostError> {
    let mut data = std::ptr::null_mut();
    let mut size = 0;
    // SAFETY: valid out-pointers.
    let status = unsafe {
        proxy_get_buffer_bytes(PLUGIN_CONFIGURATION, 0, usize::MAX, &mut data, &mut size)
    };
    match HostError::check(status) {
        Ok(()) => Ok(take(data, size)),
        Err(HostError::NotFound) | Err(HostError::Empty) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Defines a metric by full name; returns its id.
pub fn define_metric(kind: MetricKind, name: &str) -> Result<u32, HostError> {
    let mut id = 0;
    // SAFETY: valid slice and out-pointer.
    let status = unsafe { proxy_define_metric(kind as u32, name.as_ptr(), name.len(), &mut id) };
    HostError::check(status).map(|()| id)
}

/// Adds `by` to a counter (must be > 0) or gauge.
pub fn increment_metric(id: u32, by: i64) -> Result<(), HostError> {
    // SAFETY: plain values.
    HostError::check(unsafe { proxy_increment_metric(id, by) })
}

/// Records a histogram sample or sets a gauge.
pub fn record_metric(id: u32, value: u64) -> Result<(), HostError> {
    // SAFETY: plain values.
    HostError::check(unsafe { proxy_record_metric(id, value) })
}

/// Calls a host foreign function (`expr_create`, `expr_evaluate`, …).
pub fn call_foreign_function(name: &str, args: &[u8]) -> Result<Option<Vec<u8>>, HostError> {
    let mut data = std::ptr::null_mut();
    let mut size = 0;
    // SAFETY: valid slices and out-pointers.
    let status = unsafe {
        proxy_call_foreign_function(
            name.as_ptr(),
            name.len(),
            args.as_ptr(),
            args.len(),
            &mut data,
            &mut size,
        )
    };
    HostError::check(status).map(|()| take(data, size))
}

/// Reads shared data: value (if any) and compare-and-swap token.
pub fn get_shared_data(key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
    let mut data = std::ptr::null_mut();
    let mut size = 0;
    let mut cas = 0;
    // SAFETY: valid input slice and out-pointers.
    let status =
        unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) };
    match HostError::check(status) {
        Ok(()) => Ok((take(data, size), cas)),
        Err(HostError::NotFound) => Ok((None, 0)),
        Err(e) => Err(e),
    }
}

/// Writes shared data; `cas` 0 is unconditional, else `CasMismatch` on a race.
pub fn set_shared_data(key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
    // SAFETY: valid slices.
    let status =
        unsafe { proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas) };
    HostError::check(status)
}

/// Asks for `on_tick` every `ms` milliseconds in this root context.
pub fn set_tick_period_ms(ms: u32) -> Result<(), HostError> {
    // SAFETY: plain value.
    HostError::check(unsafe { proxy_set_tick_period_milliseconds(ms) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_on_the_stack_or_not_at_all() {
        let mut buf = [0u8; PATH_BUFFER];
        assert_eq!(
            join_path(&["xds", "cluster_name"], &mut buf),
            Some(&b"xds\0cluster_name"[..])
        );
        assert_eq!(join_path(&[], &mut buf), Some(&b""[..]));
        let long = "x".repeat(PATH_BUFFER);
        assert_eq!(join_path(&["a", &long], &mut buf), None);
        assert_eq!(
            join_path(&[&long], &mut buf).map(<[u8]>::len),
            Some(PATH_BUFFER)
        );
    }
}
