//! The subset CEL parser of native evaluation on any text: it never panics,
//! and every tree it gives is the one the full-grammar `cel-parser` crate
//! reads from the same text (`filter_common::native_cel::oracle`).
#![no_main]

use filter_common::native_cel::oracle::agrees;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(source) = std::str::from_utf8(data) {
        agrees(source);
    }
});
