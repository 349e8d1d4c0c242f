//! The metrics one configuration defined in `config_new` (Envoy freezes
//! metric creation afterwards), so each worker's copy of the jobs finds the
//! same ids. A [`MetricId`] carries Envoy's id and the metric's kind, so a
//! stream needs no table to update it.

use filter_common::host::{HostError, MetricId, MetricKind};

/// One defined metric.
#[derive(Debug)]
struct Entry {
    kind: MetricKind,
    name: String,
    labels: Vec<String>,
    id: MetricId,
}

/// The metrics of one configuration; read-only once `config_new` returns.
#[derive(Debug, Default)]
pub struct MetricTable {
    entries: Vec<Entry>,
}

/// Bits of a [`MetricId`] holding the kind.
const KIND_BITS: u32 = 2;

fn kind_code(kind: MetricKind) -> u32 {
    kind as u32
}

/// The kind and Envoy's id a [`MetricId`] stands for.
pub fn decode(id: MetricId) -> (MetricKind, usize) {
    let kind = match id.0 & ((1 << KIND_BITS) - 1) {
        0 => MetricKind::Counter,
        1 => MetricKind::Gauge,
        _ => MetricKind::Histogram,
    };
    (kind, (id.0 >> KIND_BITS) as usize)
}

/// The [`MetricId`] of Envoy's metric `envoy_id` of `kind`.
pub fn encode(kind: MetricKind, envoy_id: usize) -> Result<MetricId, HostError> {
    u32::try_from(envoy_id)
        .ok()
        .and_then(|id| id.checked_mul(1 << KIND_BITS))
        .map(|shifted| MetricId(shifted | kind_code(kind)))
        .ok_or(HostError::InternalFailure)
}

impl MetricTable {
    /// The id of a metric defined with this kind, name and labels.
    /// A name defined with another kind or labels is a `BadArgument`; an
    /// unknown one `Unimplemented` (defining is `config_new`'s only).
    pub fn find(
        &self,
        kind: MetricKind,
        name: &str,
        labels: &[&str],
    ) -> Result<MetricId, HostError> {
        match self.entries.iter().find(|e| e.name == name) {
            Some(e) if e.kind == kind && e.labels.iter().eq(labels.iter()) => Ok(e.id),
            Some(_) => Err(HostError::BadArgument),
            None => Err(HostError::Unimplemented),
        }
    }

    /// Records a metric Envoy defined as `envoy_id`.
    pub fn insert(
        &mut self,
        kind: MetricKind,
        name: &str,
        labels: &[&str],
        envoy_id: usize,
    ) -> Result<MetricId, HostError> {
        let id = encode(kind, envoy_id)?;
        self.entries.push(Entry {
            kind,
            name: name.to_owned(),
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
            id,
        });
        Ok(id)
    }

    /// Number of metrics defined.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none was defined.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_kind_and_envoy_id() {
        for kind in [
            MetricKind::Counter,
            MetricKind::Gauge,
            MetricKind::Histogram,
        ] {
            let id = encode(kind, 12345).ok();
            assert_eq!(id.map(decode), Some((kind, 12345)));
        }
        assert!(encode(MetricKind::Counter, usize::MAX).is_err());
    }

    #[test]
    fn workers_find_what_config_defined() {
        let mut t = MetricTable::default();
        let id = t.insert(MetricKind::Counter, "m", &["a", "b"], 3).ok();
        assert_eq!(t.find(MetricKind::Counter, "m", &["a", "b"]).ok(), id);
        assert_eq!(
            t.find(MetricKind::Counter, "m", &["a"]),
            Err(HostError::BadArgument)
        );
        assert_eq!(
            t.find(MetricKind::Histogram, "other", &[]),
            Err(HostError::Unimplemented)
        );
    }
}
