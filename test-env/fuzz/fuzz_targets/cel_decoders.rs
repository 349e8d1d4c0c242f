//! The CEL result decoders on any bytes: each accepts exactly its documented
//! shape and decodes it exactly; `as_pairs` never panics, never reads past
//! the input, and round-trips through the proxy-wasm pairs encoding. Also the
//! other way: pairs cut from the input, encoded, decode to themselves.
#![no_main]

use filter_common::cel::{as_bool, as_double, as_int, as_pairs, as_text, Pair};
use libfuzzer_sys::fuzz_target;

/// The proxy-wasm pairs encoding: `u32 n`, n × (`u32 key_len`,
/// `u32 value_len`), then each `key\0value\0`.
fn encode(pairs: &[Pair<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k);
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    match as_bool(data) {
        Ok(b) => assert!(data.len() == 1 && b == (data[0] != 0)),
        Err(e) => assert!(data.len() != 1 && e.len == data.len()),
    }
    let eight = <[u8; 8]>::try_from(data).ok();
    match (as_int(data), eight) {
        (Ok(v), Some(b)) => assert_eq!(v, i64::from_le_bytes(b)),
        (Err(e), None) => assert_eq!(e.len, data.len()),
        (r, b) => panic!("as_int {r:?} for {b:?}"),
    }
    match (as_double(data), eight) {
        (Ok(v), Some(b)) => assert_eq!(v.to_bits(), u64::from_le_bytes(b)),
        (Err(e), None) => assert_eq!(e.len, data.len()),
        (r, b) => panic!("as_double {r:?} for {b:?}"),
    }
    let text = as_text(data);
    assert_eq!(text, String::from_utf8_lossy(data));
    if let Ok(s) = std::str::from_utf8(data) {
        assert_eq!(text, s);
    }

    if let Ok(pairs) = as_pairs(data) {
        let n = u32::from_le_bytes(data[..4].try_into().unwrap()) as usize;
        assert_eq!(pairs.len(), n);
        let payload: usize = pairs.iter().map(|(k, v)| k.len() + v.len()).sum();
        // The last NUL may be missing; everything else is inside the input.
        assert!(4 + 8 * n + payload + 2 * n <= data.len() + 1);
        for (k, v) in &pairs {
            for part in [k, v] {
                let start = part.as_ptr() as usize - data.as_ptr() as usize;
                assert!(start + part.len() <= data.len());
            }
        }
        let again = encode(&pairs);
        assert_eq!(as_pairs(&again).as_ref(), Ok(&pairs));
    }

    // Pairs cut from the input: the first byte is the count (< 16), the next
    // 2n bytes the lengths.
    if let Some((&count, rest)) = data.split_first() {
        let n = usize::from(count % 16);
        if rest.len() >= 2 * n {
            let (lens, mut body) = rest.split_at(2 * n);
            let mut pairs: Vec<Pair<'_>> = Vec::new();
            for l in lens.chunks(2) {
                let (k, tail) = body.split_at(usize::from(l[0]).min(body.len()));
                let (v, tail) = tail.split_at(usize::from(l[1]).min(tail.len()));
                pairs.push((k, v));
                body = tail;
            }
            let encoded = encode(&pairs);
            assert_eq!(as_pairs(&encoded), Ok(pairs));
        }
    }
});
