//! Metrics of one VM as proxy-wasm sees them: proxy-wasm has no labels, so a
//! labelled metric becomes one stat per series, its labels encoded into the
//! name ([`crate::metrics::encode`]) for Envoy's tag extractors.

use super::hostcalls;
use crate::host::{HostError, MetricId, MetricKind};
use crate::metrics::{TAG_SEPARATOR, VALUE_SEPARATOR};
use std::cell::RefCell;
use std::collections::HashMap;

/// One metric defined by the filter: a plain stat, or a labelled family.
struct Family {
    kind: MetricKind,
    name: String,
    labels: Vec<String>,
    /// Envoy's id of a plain metric.
    plain: Option<u32>,
    /// Envoy's ids of the family's series, by encoded stat name.
    series: HashMap<String, u32>,
    /// The last series used: its label values and id (most records repeat
    /// it; found without encoding or hashing the name).
    last: Option<(Vec<String>, u32)>,
}

#[derive(Default)]
struct Table {
    families: Vec<Family>,
    /// Scratch buffer for encoded names (no allocation on a known series).
    scratch: String,
}

thread_local! {
    /// Per VM: Envoy hands out a new id (and map entry) on every
    /// `define_metric`, so each stat name is defined once.
    static TABLE: RefCell<Table> = RefCell::new(Table::default());
}

/// Defines (or finds) a metric; the id indexes this VM's table.
pub fn define(kind: MetricKind, name: &str, labels: &[&str]) -> Result<MetricId, HostError> {
    TABLE.with(|t| {
        let mut t = t.try_borrow_mut().map_err(|_| HostError::InternalFailure)?;
        if let Some(i) = t.families.iter().position(|f| f.name == name) {
            let same = t
                .families
                .get(i)
                .is_some_and(|f| f.kind == kind && f.labels.iter().eq(labels.iter()));
            return if same {
                u32::try_from(i)
                    .map(MetricId)
                    .map_err(|_| HostError::InternalFailure)
            } else {
                Err(HostError::BadArgument)
            };
        }
        let plain = if labels.is_empty() {
            Some(hostcalls::define_metric(kind, name)?)
        } else {
            None
        };
        let id = u32::try_from(t.families.len()).map_err(|_| HostError::InternalFailure)?;
        t.families.push(Family {
            kind,
            name: name.to_string(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            plain,
            series: HashMap::new(),
            last: None,
        });
        Ok(MetricId(id))
    })
}

/// Envoy's id of the series of `values` in metric `id`, defining it on first
/// use.
pub fn series(id: MetricId, values: &[&str]) -> Result<u32, HostError> {
    TABLE.with(|t| {
        let mut t = t.try_borrow_mut().map_err(|_| HostError::InternalFailure)?;
        let Table { families, scratch } = &mut *t;
        let family = families
            .get_mut(id.0 as usize)
            .ok_or(HostError::BadArgument)?;
        if let Some(plain) = family.plain {
            return if values.is_empty() {
                Ok(plain)
            } else {
                Err(HostError::BadArgument)
            };
        }
        if values.len() != family.labels.len() {
            return Err(HostError::BadArgument);
        }
        if let Some((last, id)) = &family.last {
            if last.iter().zip(values).all(|(a, b)| a == b) {
                return Ok(*id);
            }
        }
        scratch.clear();
        for (label, value) in family.labels.iter().zip(values) {
            scratch.push_str(label);
            scratch.push_str(VALUE_SEPARATOR);
            scratch.push_str(value);
            scratch.push_str(TAG_SEPARATOR);
        }
        scratch.push_str(&family.name);
        let id = match family.series.get(scratch.as_str()) {
            Some(known) => *known,
            None => {
                let defined = hostcalls::define_metric(family.kind, scratch)?;
                family.series.insert(scratch.clone(), defined);
                defined
            }
        };
        let (last, last_id) = family.last.get_or_insert_with(|| (Vec::new(), id));
        last.resize_with(values.len(), String::new);
        for (kept, value) in last.iter_mut().zip(values) {
            kept.clear();
            kept.push_str(value);
        }
        *last_id = id;
        Ok(id)
    })
}
