//! Series and samples counted per group of selectors (one group per dashboard), for summaries
//! that say what each dashboard brought into the export.

use crate::labels::Labels;
use crate::select::selector::{any_matches, Selector};

/// (series, samples) per group, over series given with their sample counts. An empty group
/// counts nothing (it is not "every series" here).
pub fn per_group<'a>(
    groups: &[Vec<Selector>],
    series: impl IntoIterator<Item = (&'a Labels, u64)>,
) -> Vec<(u64, u64)> {
    let mut counts = vec![(0, 0); groups.len()];
    for (labels, samples) in series {
        for (g, sels) in groups.iter().enumerate() {
            if !sels.is_empty() && any_matches(sels, labels) {
                counts[g].0 += 1;
                counts[g].1 += samples;
            }
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_group() {
        let sel = |s: &str| Selector::parse(s).unwrap();
        let groups = vec![vec![sel("a")], vec![sel("a"), sel("b")], vec![]];
        let l = |n: &str| Labels::from_pairs([("__name__", n)]);
        let (a, b, c) = (l("a"), l("b"), l("c"));
        let counts = per_group(&groups, [(&a, 2), (&b, 1), (&c, 5)]);
        assert_eq!(counts, [(1, 2), (2, 3), (0, 0)]);
    }
}
