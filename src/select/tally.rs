//! Series and samples counted per group of selectors (one group per dashboard), for summaries
//! that say what each dashboard brought into the export.

use crate::labels::Labels;
use crate::select::selector::{any_matches, Selector};

/// Counts per group; series are numbered in the order they are first seen.
#[derive(Debug, Default)]
pub struct Tally {
    groups: Vec<Vec<Selector>>,
    /// The groups each series belongs to, by series number.
    of_series: Vec<Box<[u32]>>,
    /// (series, samples) per group.
    pub counts: Vec<(u64, u64)>,
}

impl Tally {
    pub fn new(groups: Vec<Vec<Selector>>) -> Tally {
        Tally {
            counts: vec![(0, 0); groups.len()],
            groups,
            of_series: Vec::new(),
        }
    }

    /// Records the next series (number `n`, counting from 0) and the groups that select it.
    pub fn series(&mut self, labels: &Labels) {
        let of: Box<[u32]> = (0..self.groups.len() as u32)
            .filter(|&g| {
                let sels = &self.groups[g as usize];
                !sels.is_empty() && any_matches(sels, labels)
            })
            .collect();
        for &g in of.iter() {
            self.counts[g as usize].0 += 1;
        }
        self.of_series.push(of);
    }

    /// Counts one sample of series `n`.
    pub fn sample(&mut self, n: u32) {
        if let Some(of) = self.of_series.get(n as usize) {
            for &g in of.iter() {
                self.counts[g as usize].1 += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_group() {
        let sel = |s: &str| Selector::parse(s).unwrap();
        let mut t = Tally::new(vec![vec![sel("a")], vec![sel("a"), sel("b")], vec![]]);
        t.series(&Labels::from_pairs([("__name__", "a")]));
        t.series(&Labels::from_pairs([("__name__", "b")]));
        t.series(&Labels::from_pairs([("__name__", "c")]));
        for n in [0, 0, 1, 2, 7] {
            t.sample(n);
        }
        assert_eq!(t.counts, [(1, 2), (2, 3), (0, 0)]);
    }
}
