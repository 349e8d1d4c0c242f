//! Lookups in a header map as proxy-wasm serializes it
//! (`proxy_get_header_map_pairs`), without copying or allocating.
//!
//! Layout: the number of pairs `n` (u32, little-endian), then `n` pairs of
//! sizes (key size, value size: u32 each), then each key and value in that
//! order, each followed by a NUL byte. Every access is bounds-checked: a
//! truncated or inconsistent buffer finds nothing.

/// Bytes of one size field.
const SIZE: usize = 4;

/// The value of header `name` (ASCII case ignored) in the serialized map
/// `map`, borrowed from it; `None` when absent or when `map` is malformed.
/// With repeated headers, the first one.
pub fn find<'m>(map: &'m [u8], name: &str) -> Option<&'m [u8]> {
    let count = read_u32(map, 0)?;
    let mut sizes = SIZE;
    let mut data = SIZE.checked_add(count.checked_mul(2 * SIZE)?)?;
    for _ in 0..count {
        let key_len = read_u32(map, sizes)?;
        let value_len = read_u32(map, sizes + SIZE)?;
        sizes += 2 * SIZE;
        let key = map.get(data..data.checked_add(key_len)?)?;
        let value_at = data + key_len + 1;
        let value = map.get(value_at..value_at.checked_add(value_len)?)?;
        if key.eq_ignore_ascii_case(name.as_bytes()) {
            return Some(value);
        }
        data = value_at + value_len + 1;
    }
    None
}

fn read_u32(map: &[u8], at: usize) -> Option<usize> {
    let bytes: [u8; SIZE] = map.get(at..at.checked_add(SIZE)?)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(bytes)).ok()
}

/// `pairs` serialized as proxy-wasm does (tests and fake hosts).
pub fn serialize(pairs: &[(&str, &[u8])]) -> Vec<u8> {
    let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    let mut out = Vec::new();
    out.extend_from_slice(&len(pairs.len()));
    for (k, v) in pairs {
        out.extend_from_slice(&len(k.len()));
        out.extend_from_slice(&len(v.len()));
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_header_and_nothing_else() {
        let map = serialize(&[
            (":path", b"/reviews/0?x=1"),
            (":method", b"GET"),
            ("x-tenant", b"acme"),
            ("x-empty", b""),
        ]);
        assert_eq!(find(&map, ":path"), Some(&b"/reviews/0?x=1"[..]));
        assert_eq!(find(&map, ":method"), Some(&b"GET"[..]));
        assert_eq!(find(&map, "X-Tenant"), Some(&b"acme"[..]));
        assert_eq!(find(&map, "x-empty"), Some(&b""[..]));
        assert_eq!(find(&map, "x-missing"), None);
        assert_eq!(find(&map, ":pat"), None);
    }

    #[test]
    fn first_of_repeated_headers() {
        let map = serialize(&[("cookie", b"a=1"), ("cookie", b"b=2")]);
        assert_eq!(find(&map, "cookie"), Some(&b"a=1"[..]));
    }

    #[test]
    fn malformed_maps_find_nothing() {
        let map = serialize(&[(":path", b"/a"), ("x-tenant", b"acme")]);
        assert_eq!(find(&[], ":path"), None);
        assert_eq!(find(&map[..3], ":path"), None);
        // cut anywhere in the data: nothing past the cut is found, no panic
        for end in 0..map.len() {
            let _ = find(&map[..end], "x-tenant");
        }
        assert_eq!(find(&map[..map.len() - 2], "x-tenant"), None);
        // a count far beyond the buffer
        let mut huge = map.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(find(&huge, "x-tenant"), None);
        // a key size past the end
        let mut long = map;
        long[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(find(&long, ":path"), None);
    }
}
