//! Configuration parsing with errors that name the field and the reason.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};

/// One problem in a filter's configuration: where (a JSON path such as
/// `attributes[0].match[1].condition`, or `$` for the whole document) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// JSON path of the offending field.
    pub path: String,
    /// Human-readable reason.
    pub reason: String,
}

impl ConfigError {
    /// A new error at `path`.
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// Parses a JSON plugin configuration. `None` or blank input yields the
/// default value (Istio sends no bytes for an empty `pluginConfig`). A
/// syntax error gives serde's reason with line and column; a field of the
/// wrong shape its JSON path and the reason ([`from_value`]: the document
/// is parsed once into a `serde_json::Value`, so every configuration type
/// is deserialized one way, which keeps the modules small).
pub fn parse_json<T: DeserializeOwned + Default>(raw: Option<&[u8]>) -> Result<T, ConfigError> {
    let raw = match raw {
        Some(bytes) if !bytes.iter().all(u8::is_ascii_whitespace) => bytes,
        _ => return Ok(T::default()),
    };
    let value: serde_json::Value = serde_json::from_slice(raw).map_err(|e| {
        ConfigError::new(
            "$",
            format!("invalid JSON: {e} (the configuration must be JSON; YAML is not accepted)"),
        )
    })?;
    from_value(&value)
}

/// A filter's configuration as its runtime hands it over: the raw bytes of
/// a separate filter, or the filter's section of a document already parsed
/// (the bundle's), deserialized from there without being written out and
/// parsed again.
#[derive(Debug, Clone, Copy)]
pub enum ConfigSource<'a> {
    /// Raw JSON (`None` or blank: the default configuration).
    Raw(Option<&'a [u8]>),
    /// A parsed section (`null`: the default configuration).
    Section(&'a serde_json::Value),
}

impl ConfigSource<'_> {
    /// Deserializes the configuration: errors name the field's path and
    /// the reason (raw JSON also gives line and column).
    pub fn parse<T: DeserializeOwned + Default>(self) -> Result<T, ConfigError> {
        match self {
            ConfigSource::Raw(raw) => parse_json(raw),
            ConfigSource::Section(value) => from_value(value),
        }
    }
}

/// Deserializes a parsed JSON value (`null` yields the default value);
/// errors carry the path of the field and serde's reason.
pub fn from_value<T: DeserializeOwned + Default>(
    value: &serde_json::Value,
) -> Result<T, ConfigError> {
    if value.is_null() {
        return Ok(T::default());
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." || path.is_empty() {
            "$".to_string()
        } else {
            path
        };
        ConfigError::new(path, e.into_inner().to_string())
    })
}

/// Deserializes a field that protobuf JSON would accept as `null` (meaning
/// "default"): use with `#[serde(deserialize_with = "nullable")]`.
pub fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A bool that may also be written as the string `"true"` or `"false"`, or
/// `null` (false), as Istio's protobuf JSON parser accepts.
pub fn flexible_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flex {
        Bool(bool),
        Text(String),
    }
    match Option::<Flex>::deserialize(d)? {
        None => Ok(false),
        Some(Flex::Bool(b)) => Ok(b),
        Some(Flex::Text(s)) => match s.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(D::Error::custom(format!(
                "expected true or false, got \"{other}\""
            ))),
        },
    }
}

/// A protobuf enum field: its name, or its number as a JSON integer or as a
/// whole double (Istio's `pluginConfig` is a `Struct`, whose numbers are
/// doubles). Returns the name or the number for the caller to map.
#[derive(Debug, Clone, PartialEq)]
pub enum EnumValue {
    /// Written as a string.
    Name(String),
    /// Written as a number.
    Number(i64),
}

impl<'de> Deserialize<'de> for EnumValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        match v {
            serde_json::Value::String(s) => Ok(EnumValue::Name(s)),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Ok(EnumValue::Number(i))
                } else {
                    match n.as_f64() {
                        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => {
                            Ok(EnumValue::Number(f as i64))
                        }
                        _ => Err(D::Error::custom(format!(
                            "expected an enum name or number, got {n}"
                        ))),
                    }
                }
            }
            other => Err(D::Error::custom(format!(
                "expected an enum name or number, got {other}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Default, Debug)]
    #[serde(default)]
    struct Sample {
        #[serde(deserialize_with = "flexible_bool")]
        debug: bool,
        #[serde(deserialize_with = "nullable")]
        items: Vec<Item>,
    }
    #[derive(Deserialize, Default, Debug)]
    #[serde(default)]
    struct Item {
        #[serde(deserialize_with = "nullable")]
        name: String,
    }

    #[test]
    fn empty_means_default() {
        let s: Sample = parse_json(None).unwrap();
        assert!(!s.debug && s.items.is_empty());
        let s: Sample = parse_json(Some(b"  \n")).unwrap();
        assert!(s.items.is_empty());
    }

    #[test]
    fn debug_accepts_bool_string_and_null() {
        for (raw, want) in [
            (r#"{"debug":true}"#, true),
            (r#"{"debug":"true"}"#, true),
            (r#"{"debug":"false"}"#, false),
            (r#"{"debug":null}"#, false),
        ] {
            let s: Sample = parse_json(Some(raw.as_bytes())).unwrap();
            assert_eq!(s.debug, want, "{raw}");
        }
        let e = parse_json::<Sample>(Some(br#"{"debug":"yes"}"#)).unwrap_err();
        assert_eq!(e.path, "debug");
        assert!(e.reason.contains("expected true or false"), "{e}");
    }

    #[test]
    fn errors_name_the_path() {
        let e = parse_json::<Sample>(Some(br#"{"items":[{"name":"a"},{"name":7}]}"#)).unwrap_err();
        assert_eq!(e.path, "items[1].name");
        assert!(e.reason.contains("invalid type"), "{e}");
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let e = parse_json::<Sample>(Some(b"attributes = [ output_attribute ];")).unwrap_err();
        assert_eq!(e.path, "$");
        assert!(e.reason.contains("line 1 column"), "{e}");
        assert!(e.reason.contains("YAML is not accepted"), "{e}");
        let e = parse_json::<Sample>(Some(b"{} {}")).unwrap_err();
        assert!(e.reason.contains("trailing"), "{e}");
    }

    #[test]
    fn enum_values_accept_names_and_whole_numbers() {
        let v: EnumValue = serde_json::from_str("1.0").unwrap();
        assert_eq!(v, EnumValue::Number(1));
        let v: EnumValue = serde_json::from_str("\"ON_REQUEST\"").unwrap();
        assert_eq!(v, EnumValue::Name("ON_REQUEST".into()));
        assert!(serde_json::from_str::<EnumValue>("1.5").is_err());
        assert!(serde_json::from_str::<EnumValue>("true").is_err());
    }
}
