//! What to keep and how to relabel it: series selectors, an inclusive time range, and the
//! `--drop-label` / `--add-label` edits that tell imported data apart from local data.

use crate::labels::{Labels, METRIC_NAME};
use crate::select::selector::{self, Selector};

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
    pub fn describe(&self, stale: &str) -> crate::pipeline::manifest::Filters {
        crate::pipeline::manifest::Filters {
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
