//! proxy-wasm's shared data, in process memory: one map for every worker
//! thread, behind a lock, with compare-and-swap tokens.

use filter_common::host::HostError;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Each key's value and compare-and-swap token.
type Entries = HashMap<String, (Vec<u8>, u32)>;

/// The map, created on first write.
static DATA: Mutex<Option<Entries>> = Mutex::new(None);

/// The value of `key` and its token (0 when absent).
pub fn get(key: &str) -> (Option<Vec<u8>>, u32) {
    let guard = DATA.lock().unwrap_or_else(PoisonError::into_inner);
    match guard.as_ref().and_then(|m| m.get(key)) {
        Some((value, cas)) => (Some(value.clone()), *cas),
        None => (None, 0),
    }
}

/// Writes `key`; a non-zero `cas` must match the current token.
pub fn set(key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
    let mut guard = DATA.lock().unwrap_or_else(PoisonError::into_inner);
    let map = guard.get_or_insert_with(HashMap::new);
    let current = map.get(key).map_or(0, |(_, c)| *c);
    if cas != 0 && cas != current {
        return Err(HostError::CasMismatch);
    }
    let next = current.wrapping_add(1).max(1);
    map.insert(key.to_owned(), (value.to_vec(), next));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_and_swap_from_many_threads_loses_no_update() {
        let key = "cas-test";
        assert!(set(key, b"0", 0).is_ok());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    for _ in 0..250 {
                        loop {
                            let (value, cas) = get(key);
                            let n = value
                                .and_then(|v| String::from_utf8(v).ok())
                                .and_then(|s| s.parse::<u32>().ok())
                                .unwrap_or(0);
                            if set(key, (n + 1).to_string().as_bytes(), cas).is_ok() {
                                break;
                            }
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            assert!(t.join().is_ok());
        }
        assert_eq!(get(key).0.as_deref(), Some(&b"1000"[..]));
    }
}
