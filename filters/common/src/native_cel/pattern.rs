//! `matches()` patterns: RE2 syntax (Envoy's CEL) run by `regex-lite`.
//!
//! Only patterns and subjects on which the two agree are taken: the pattern
//! has no escapes, no flags other than `(?i)`, no class set operations
//! (`&&`, `--`, `~~`, literal in RE2) and no repetition count above RE2's
//! limit of 1,000; the subject is ASCII (regex-lite has no Unicode classes or
//! case folding; on ASCII text RE2's `[[:alnum:]]`, `.`, `(?i)` mean the
//! same). Anything else is left to Envoy. Like RE2's `PartialMatch`, a
//! pattern matches anywhere unless anchored.

/// A compiled `matches()` pattern.
#[derive(Debug)]
pub struct Pattern(regex_lite::Regex);

impl Pattern {
    /// Compiles `source` if it is in the shared subset.
    pub fn new(source: &str) -> Option<Pattern> {
        let bad_flag = source.match_indices("(?").any(|(at, _)| {
            let rest = source.get(at..).unwrap_or_default();
            !(rest.starts_with("(?:") || rest.starts_with("(?i)"))
        });
        let set_ops = ["&&", "--", "~~"].iter().any(|op| source.contains(op));
        if source.contains('\\') || bad_flag || set_ops || !counts_within_limit(source) {
            return None;
        }
        regex_lite::Regex::new(source).ok().map(Pattern)
    }

    /// Whether the pattern matches somewhere in `subject`; `None` when the
    /// subject is not ASCII.
    pub fn is_match(&self, subject: &[u8]) -> Option<bool> {
        if !subject.is_ascii() {
            return None;
        }
        std::str::from_utf8(subject)
            .ok()
            .map(|s| self.0.is_match(s))
    }
}

/// Every number inside `{…}` is at most 1,000 (RE2's repetition limit).
fn counts_within_limit(source: &str) -> bool {
    source
        .split('{')
        .skip(1)
        .all(|rest| match rest.split('}').next() {
            Some(inner) => inner
                .split(',')
                .all(|n| n.trim().parse::<u32>().map_or(true, |n| n <= 1000)),
            None => true,
        })
}
