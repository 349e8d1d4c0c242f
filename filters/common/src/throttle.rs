//! Rate limit for per-request log lines.

use std::cell::Cell;

/// Lets through the 1st, 2nd, 4th, 8th… occurrence of an event, so a
/// condition that fails on every request logs O(log n) lines, each saying how
/// many times it happened. A VM is single-threaded, hence the `Cell`.
#[derive(Debug, Default)]
pub struct LogThrottle {
    seen: Cell<u64>,
}

impl LogThrottle {
    /// Records one occurrence; `Some(total so far)` when it should be logged.
    pub fn hit(&self) -> Option<u64> {
        let n = self.seen.get().saturating_add(1);
        self.seen.set(n);
        n.is_power_of_two().then_some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_powers_of_two_only() {
        let t = LogThrottle::default();
        let logged: Vec<u64> = (0..20).filter_map(|_| t.hit()).collect();
        assert_eq!(logged, vec![1, 2, 4, 8, 16]);
    }
}
