//! The sink's series table: each distinct (edited) label set interned once, with the OpenMetrics
//! prefix the writer needs, and the check that label edits do not make two source series one.

use std::collections::HashMap;

use anyhow::Result;

use crate::format::openmetrics;
use crate::labels::Labels;
use crate::pipeline::feed::SeriesId;
use crate::select::filter::LabelEdits;

/// Interned series: labels and what the writer needs of them.
#[derive(Default)]
pub(crate) struct SeriesTable {
    pub labels: Vec<Labels>,
    pub prefixes: Vec<Box<[u8]>>,
    /// Bytes the table holds, roughly, for the sink's memory budget.
    pub mem: u64,
    index: HashMap<Labels, SeriesId>,
    /// Per series, what the label edits erased from its source ([`LabelEdits::apply_traced`]);
    /// kept only while merges are refused.
    origins: Vec<Box<[u8]>>,
    /// The edits whose merges of two source series into one are refused; `None`: allowed.
    merge_check: Option<LabelEdits>,
    /// Series the writer quotes a name of (see [`openmetrics::quoted_name`]).
    pub quoted: Vec<SeriesId>,
}

impl SeriesTable {
    /// Refuses merges by `edits` from now on; call it before the first series.
    pub fn refuse_merges(&mut self, edits: &LabelEdits) {
        debug_assert!(self.labels.is_empty());
        if !edits.is_empty() {
            self.merge_check = Some(edits.clone());
        }
    }

    /// The id of `labels`, interned on first sight.
    pub fn intern(&mut self, labels: Labels) -> SeriesId {
        if let Some(&id) = self.index.get(&labels) {
            return id;
        }
        let id = self.labels.len() as SeriesId;
        let mut prefix = Vec::new();
        openmetrics::write_series_prefix(&labels, &mut prefix);
        if openmetrics::quoted_name(&labels).is_some() {
            self.quoted.push(id);
        }
        let label_bytes: usize = labels.iter().map(|(n, v)| n.len() + v.len() + 48).sum();
        self.mem += (2 * label_bytes + prefix.len() + 96) as u64;
        self.prefixes.push(prefix.into_boxed_slice());
        self.index.insert(labels.clone(), id);
        self.labels.push(labels);
        id
    }

    /// [`intern`](Self::intern) for labels edited from a source series told apart by `origin`;
    /// while merges are refused, a second source with the same edited labels is bad input
    /// naming both. Costs a comparison per call, and memory per new series only.
    pub fn intern_traced(&mut self, labels: Labels, origin: &[u8]) -> Result<SeriesId> {
        let Some(edits) = &self.merge_check else {
            return Ok(self.intern(labels));
        };
        if let Some(&id) = self.index.get(&labels) {
            let earlier = &self.origins[id as usize];
            if **earlier != *origin {
                return Err(crate::bad_input!(
                    "--drop-label/--add-label make two series one: {} and {} both become {}, and \
                     their samples would interleave (two counters would make one that jumps back); \
                     keep the label that tells them apart, or pass --allow-merge",
                    edits.restore(&labels, earlier),
                    edits.restore(&labels, origin),
                    labels
                ));
            }
            return Ok(id);
        }
        self.mem += origin.len() as u64 + 16;
        self.origins.push(origin.into());
        Ok(self.intern(labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit_codes::ExitCode;

    #[test]
    fn merges_are_refused_only_between_different_sources() {
        let edits = LabelEdits::parse(&["job".into()], &[]).unwrap();
        let mut t = SeriesTable::default();
        t.refuse_merges(&edits);
        let trace = |job: &str| {
            let mut l = Labels::from_pairs([("__name__", "up"), ("job", job)]);
            let tr = edits.apply_traced(&mut l);
            (l, tr.origin)
        };
        let (l, o) = trace("a");
        let id = t.intern_traced(l, &o).unwrap();
        let (l, o) = trace("a");
        assert_eq!(t.intern_traced(l, &o).unwrap(), id, "the same source again");
        let (l, o) = trace("b");
        let e = t.intern_traced(l, &o).unwrap_err();
        assert_eq!(ExitCode::of(&e), ExitCode::BadInput);
        assert!(e.to_string().contains(r#"job="a""#) && e.to_string().contains(r#"job="b""#));
        let mut allowed = SeriesTable::default();
        let (l, o) = trace("a");
        let id = allowed.intern_traced(l, &o).unwrap();
        let (l, o) = trace("b");
        assert_eq!(allowed.intern_traced(l, &o).unwrap(), id, "merges allowed");
    }
}
