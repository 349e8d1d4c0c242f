//! Where the collector writes: JSON lines appended to a file, or stdout.

use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

/// A JSON-lines writer shared by the streams; each line is written and
/// flushed whole, so readers never see half a line.
pub struct Sink {
    out: Mutex<Box<dyn Write + Send>>,
}

impl Sink {
    /// Appends to `path` (created if missing; kept across restarts).
    pub fn file(path: &Path) -> std::io::Result<Sink> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Sink {
            out: Mutex::new(Box::new(f)),
        })
    }

    /// Writes to stdout.
    pub fn stdout() -> Sink {
        Sink {
            out: Mutex::new(Box::new(std::io::stdout())),
        }
    }

    /// Any writer (tests).
    pub fn writer(w: impl Write + Send + 'static) -> Sink {
        Sink {
            out: Mutex::new(Box::new(w)),
        }
    }

    /// Writes the values, one line each, then flushes.
    pub fn write_lines(&self, values: &[Value]) -> std::io::Result<()> {
        let mut text = String::new();
        for v in values {
            text.push_str(&v.to_string());
            text.push('\n');
        }
        let mut out = self
            .out
            .lock()
            .map_err(|_| std::io::Error::other("sink lock poisoned"))?;
        out.write_all(text.as_bytes())?;
        out.flush()
    }
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sink")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn file_sink_appends_lines() {
        let dir = std::env::temp_dir().join(format!("grpc-collector-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.jsonl");
        let _ = std::fs::remove_file(&path);
        Sink::file(&path)
            .unwrap()
            .write_lines(&[json!({"a": 1}), json!("b")])
            .unwrap();
        Sink::file(&path).unwrap().write_lines(&[json!(2)]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n\"b\"\n2\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
