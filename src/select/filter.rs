//! What to keep and how to relabel it: series selectors, an inclusive time range, and the
//! `--drop-label` / `--add-label` edits that tell imported data apart from local data.

use crate::labels::{Labels, METRIC_NAME};
use crate::select::selector::{self, Selector};

/// Separates the values in [`Traced::origin`]; label values are UTF-8, which never holds it.
const ORIGIN_SEP: u8 = 0xff;

/// What [`LabelEdits::apply_traced`] erased from one series.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Traced {
    /// Tells apart the source series that the edits make equal; empty without edits.
    pub origin: Box<[u8]>,
    /// An `--add-label` replaced a different value the series had.
    pub overrides: bool,
}

/// Label edits applied to every kept series, after selection.
#[derive(Clone, Debug, Default)]
pub struct LabelEdits {
    pub drop: Vec<String>,
    pub add: Vec<(String, String)>,
}

impl LabelEdits {
    pub fn is_empty(&self) -> bool {
        self.drop.is_empty() && self.add.is_empty()
    }

    pub fn apply(&self, labels: &mut Labels) {
        for name in &self.drop {
            labels.remove(name);
        }
        for (name, value) in &self.add {
            labels.set(name, value);
        }
    }

    /// [`apply`](Self::apply), also saying what the edits erased: `origin` holds, for each step
    /// (drops, then adds), the value the label had just before it (empty: absent), so two source
    /// series that the edits make equal differ in their origins, and [`restore`](Self::restore)
    /// gives a source back. `overrides` is set when an add replaced a different existing value.
    pub fn apply_traced(&self, labels: &mut Labels) -> Traced {
        let mut origin = Vec::new();
        let mut overrides = false;
        for name in &self.drop {
            origin.extend_from_slice(labels.get(name).unwrap_or("").as_bytes());
            origin.push(ORIGIN_SEP);
            labels.remove(name);
        }
        for (name, value) in &self.add {
            let old = labels.get(name).unwrap_or("");
            overrides |= !old.is_empty() && old != value;
            origin.extend_from_slice(old.as_bytes());
            origin.push(ORIGIN_SEP);
            labels.set(name, value);
        }
        Traced {
            origin: origin.into_boxed_slice(),
            overrides,
        }
    }

    /// The source labels of a series edited into `edited` with this `origin`: the edits undone
    /// in reverse order.
    pub fn restore(&self, edited: &Labels, origin: &[u8]) -> Labels {
        let mut values = origin
            .split(|&b| b == ORIGIN_SEP)
            .map(|v| String::from_utf8_lossy(v).into_owned());
        let steps: Vec<&str> = self
            .drop
            .iter()
            .map(String::as_str)
            .chain(self.add.iter().map(|(n, _)| n.as_str()))
            .collect();
        let before: Vec<(&str, String)> = steps
            .iter()
            .map(|&n| (n, values.next().unwrap_or_default()))
            .collect();
        let mut labels = edited.clone();
        for (name, value) in before.iter().rev() {
            labels.set(name, value);
        }
        labels
    }

    /// Parses `NAME=VALUE` edits and `NAME` drops; `__name__` cannot be edited.
    pub fn parse(drop: &[String], add: &[String]) -> anyhow::Result<LabelEdits> {
        let mut edits = LabelEdits::default();
        for name in drop {
            if name == METRIC_NAME || name.is_empty() {
                return Err(crate::bad_input!(
                    "--drop-label {name:?}: cannot drop the metric name or an empty name"
                ));
            }
            edits.drop.push(name.clone());
        }
        for kv in add {
            let Some((n, v)) = kv.split_once('=') else {
                return Err(crate::bad_input!("--add-label {kv:?}: expected NAME=VALUE"));
            };
            if n == METRIC_NAME || n.is_empty() || v.is_empty() {
                return Err(crate::bad_input!(
                    "--add-label {kv:?}: need a label name other than __name__ and a non-empty value"
                ));
            }
            edits.add.push((n.to_string(), v.to_string()));
        }
        Ok(edits)
    }
}

/// Series selectors (any may match; none means all), time range (inclusive, ms) and edits.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub selectors: Vec<Selector>,
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub edits: LabelEdits,
}

impl Filter {
    pub fn keeps_series(&self, labels: &Labels) -> bool {
        selector::any_matches(&self.selectors, labels)
    }

    pub fn keeps_time(&self, ts: i64) -> bool {
        self.start.is_none_or(|s| ts >= s) && self.end.is_none_or(|e| ts <= e)
    }

    /// The filters as the manifest records them.
    pub fn describe(&self, stale: &str) -> crate::format::shard_dir::Filters {
        crate::format::shard_dir::Filters {
            matchers: self.selectors.iter().map(|s| s.text.clone()).collect(),
            start_ms: self.start,
            end_ms: self.end,
            drop_labels: self.edits.drop.clone(),
            add_labels: self
                .edits
                .add
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect(),
            stale: stale.to_string(),
            dashboards: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_drop_then_add() {
        let e = LabelEdits::parse(&["instance".into()], &["source=customer".into()]).unwrap();
        let mut l = Labels::from_pairs([("__name__", "up"), ("instance", "a:1"), ("job", "j")]);
        e.apply(&mut l);
        assert_eq!(
            l.to_string(),
            r#"{__name__="up", job="j", source="customer"}"#
        );
        assert!(LabelEdits::parse(&["__name__".into()], &[]).is_err());
        assert!(LabelEdits::parse(&[], &["novalue".into()]).is_err());
    }

    #[test]
    fn traced_edits_tell_merged_sources_apart_and_restore_them() {
        let e = LabelEdits::parse(&["pod".into(), "job".into()], &["job=x".into()]).unwrap();
        let a = Labels::from_pairs([("__name__", "up"), ("pod", "p1"), ("job", "a")]);
        let b = Labels::from_pairs([("__name__", "up"), ("job", "x")]);
        let (mut ea, mut eb) = (a.clone(), b.clone());
        let (ta, tb) = (e.apply_traced(&mut ea), e.apply_traced(&mut eb));
        assert_eq!(ea, eb);
        assert_ne!(ta.origin, tb.origin);
        assert_eq!(e.restore(&ea, &ta.origin), a);
        assert_eq!(e.restore(&eb, &tb.origin), b);
        // The drop runs first: the add then overrides nothing.
        assert!(!ta.overrides && !tb.overrides);
        let o = LabelEdits::parse(&[], &["job=x".into()]).unwrap();
        assert!(o.apply_traced(&mut a.clone()).overrides);
        assert!(!o.apply_traced(&mut b.clone()).overrides);
        assert!(LabelEdits::default()
            .apply_traced(&mut a.clone())
            .origin
            .is_empty());
    }

    #[test]
    fn time_range_is_inclusive() {
        let f = Filter {
            start: Some(10),
            end: Some(20),
            ..Default::default()
        };
        assert!(f.keeps_time(10) && f.keeps_time(20));
        assert!(!f.keeps_time(9) && !f.keeps_time(21));
    }
}
