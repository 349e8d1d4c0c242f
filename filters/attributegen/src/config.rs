//! Istio's `istio.attributegen.PluginConfig`, as JSON.
//!
//! Accepts what Istio's protobuf JSON parser accepts: snake_case and
//! lowerCamel keys, unknown keys ignored, `null` as the default, `debug` as a
//! bool or `"true"`/`"false"`, `phase` as a name or number.

use filter_common::config::{flexible_bool, nullable, EnumValue};
use serde::{Deserialize, Deserializer};

/// The whole plugin configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PluginConfig {
    /// Extra debug logging (each generator added, each attribute set).
    #[serde(deserialize_with = "flexible_bool")]
    pub debug: bool,
    /// Independent generators, applied in order.
    #[serde(deserialize_with = "nullable")]
    pub attributes: Vec<AttributeGeneration>,
}

/// One generator: an output attribute and the matches that set it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AttributeGeneration {
    /// When the generator runs.
    #[serde(deserialize_with = "phase")]
    pub phase: Phase,
    /// Attribute written on a match: filter state `wasm.<output_attribute>`.
    #[serde(alias = "outputAttribute", deserialize_with = "nullable")]
    pub output_attribute: String,
    /// Tried in order until one matches.
    #[serde(rename = "match", deserialize_with = "nullable")]
    pub matches: Vec<Match>,
}

/// A condition (or a route template) and the value written when it matches.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Match {
    /// CEL expression; empty means always true.
    #[serde(deserialize_with = "nullable")]
    pub condition: String,
    /// Route template `[METHOD ]PATH` instead of a condition (an extension of
    /// Istio's schema; see [`crate::templates`]).
    #[serde(deserialize_with = "nullable")]
    pub template: String,
    /// Value written when the condition is true.
    #[serde(deserialize_with = "nullable")]
    pub value: String,
}

/// When a generator runs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// In the log phase, after the response (`AFTER_RESPONSE`,
    /// `PHASE_UNSPECIFIED`, `0`; the default).
    #[default]
    AfterResponse,
    /// On request headers (`ON_REQUEST`, `1`); response attributes never match.
    OnRequest,
}

fn phase<'de, D: Deserializer<'de>>(d: D) -> Result<Phase, D::Error> {
    use serde::de::Error;
    match Option::<EnumValue>::deserialize(d)? {
        None => Ok(Phase::AfterResponse),
        Some(EnumValue::Name(n)) => match n.as_str() {
            "AFTER_RESPONSE" | "PHASE_UNSPECIFIED" => Ok(Phase::AfterResponse),
            "ON_REQUEST" => Ok(Phase::OnRequest),
            other => Err(D::Error::custom(format!(
                "unknown phase \"{other}\", expected AFTER_RESPONSE, ON_REQUEST, PHASE_UNSPECIFIED, 0 or 1"
            ))),
        },
        Some(EnumValue::Number(0)) => Ok(Phase::AfterResponse),
        Some(EnumValue::Number(1)) => Ok(Phase::OnRequest),
        Some(EnumValue::Number(n)) => Err(D::Error::custom(format!(
            "unknown phase {n}, expected AFTER_RESPONSE, ON_REQUEST, PHASE_UNSPECIFIED, 0 or 1"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use filter_common::config::parse_json;

    fn parse(raw: &str) -> PluginConfig {
        parse_json(Some(raw.as_bytes())).unwrap()
    }

    #[test]
    fn snake_and_camel_keys_and_unknown_keys() {
        let c = parse(
            r#"{"attributes":[{"outputAttribute":"a","match":[{"value":"v"}],"x":1},
                               {"output_attribute":"b","unknown":{}}],"extra":true}"#,
        );
        assert_eq!(c.attributes[0].output_attribute, "a");
        assert_eq!(c.attributes[0].matches[0].value, "v");
        assert_eq!(c.attributes[0].matches[0].condition, "");
        assert_eq!(c.attributes[1].output_attribute, "b");
    }

    #[test]
    fn phases_by_name_and_number() {
        for (p, want) in [
            (r#""AFTER_RESPONSE""#, Phase::AfterResponse),
            (r#""PHASE_UNSPECIFIED""#, Phase::AfterResponse),
            ("0", Phase::AfterResponse),
            ("0.0", Phase::AfterResponse),
            (r#""ON_REQUEST""#, Phase::OnRequest),
            ("1", Phase::OnRequest),
            ("1.0", Phase::OnRequest),
            ("null", Phase::AfterResponse),
        ] {
            let c = parse(&format!(r#"{{"attributes":[{{"phase":{p}}}]}}"#));
            assert_eq!(c.attributes[0].phase, want, "{p}");
        }
        let e =
            parse_json::<PluginConfig>(Some(br#"{"attributes":[{"phase":"LATER"}]}"#)).unwrap_err();
        assert_eq!(e.path, "attributes[0].phase");
        assert!(e.reason.contains("unknown phase \"LATER\""), "{e}");
    }

    #[test]
    fn empty_configuration_means_no_attributes() {
        let c: PluginConfig = parse_json(None).unwrap();
        assert!(c.attributes.is_empty() && !c.debug);
        assert!(parse("{}").attributes.is_empty());
    }
}
