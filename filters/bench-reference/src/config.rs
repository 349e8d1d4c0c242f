//! The configuration of the reference filter.

use serde::Deserialize;

/// The whole document; empty means the trivial reference job.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    /// The empty filter: no host call at all (the fixed cost of a filter).
    pub empty: bool,
    /// Attributes of the straightforward host-CEL job (attributegen's shape).
    pub host_cel: Vec<Attribute>,
    /// Request-header reads only (what reading several headers costs).
    pub reads: Option<Reads>,
}

/// Request headers read on request headers, one call each or from one read
/// of the whole map.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Reads {
    /// Header names.
    pub headers: Vec<String>,
    /// Read the whole map once instead of one read per name.
    pub map: bool,
}

/// One generated attribute.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Attribute {
    /// Filter-state name (`wasm.<output_attribute>`).
    pub output_attribute: String,
    /// Conditions tried in order.
    #[serde(rename = "match")]
    pub matches: Vec<Match>,
}

/// One condition and the value written when it is true.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Match {
    /// Written when `condition` is true.
    pub value: String,
    /// CEL, evaluated by Envoy.
    pub condition: String,
}

/// Parses the configuration; no bytes means the default.
pub fn parse(raw: Option<&[u8]>) -> Result<Config, String> {
    match raw {
        None => Ok(Config::default()),
        Some(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(Config::default()),
        Some(b) => serde_json::from_slice(b).map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_reference_job() {
        assert!(parse(None).unwrap().host_cel.is_empty());
        assert!(parse(Some(b" ")).unwrap().host_cel.is_empty());
        assert!(parse(Some(b"{}")).unwrap().host_cel.is_empty());
        assert!(parse(Some(br#"{"empty":true}"#)).unwrap().empty);
        let reads = parse(Some(br#"{"reads":{"headers":[":path"],"map":true}}"#))
            .unwrap()
            .reads
            .unwrap();
        assert!(reads.map && reads.headers == [":path"]);
    }

    #[test]
    fn host_cel() {
        let c = parse(Some(
            br#"{"host_cel":[{"output_attribute":"op","match":[{"value":"A","condition":"true"}]}]}"#,
        ))
        .unwrap();
        assert_eq!(c.host_cel[0].matches[0].value, "A");
        assert!(parse(Some(b"[")).is_err());
    }
}
