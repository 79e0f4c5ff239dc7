//! Prometheus's merge of overlapping blocks, step for step: Go's `container/heap` and the
//! querier's `chainSampleIterator` (storage/merge.go, 2.42). When overlapping blocks hold
//! different values at one timestamp, the value kept is the one Prometheus's queries and
//! `promtool tsdb dump` return, not an arbitrary one.

/// A binary heap that moves elements exactly as Go's `container/heap` does (ties included).
pub struct GoHeap<T> {
    pub items: Vec<T>,
}

impl<T> GoHeap<T> {
    pub fn new() -> Self {
        GoHeap { items: Vec::new() }
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn push(&mut self, x: T, less: &impl Fn(&T, &T) -> bool) {
        self.items.push(x);
        self.up(self.items.len() - 1, less);
    }

    pub fn pop(&mut self, less: &impl Fn(&T, &T) -> bool) -> Option<T> {
        let n = self.items.len().checked_sub(1)?;
        self.items.swap(0, n);
        self.down(0, n, less);
        self.items.pop()
    }

    fn up(&mut self, mut j: usize, less: &impl Fn(&T, &T) -> bool) {
        while j > 0 {
            let i = (j - 1) / 2;
            if !less(&self.items[j], &self.items[i]) {
                break;
            }
            self.items.swap(i, j);
            j = i;
        }
    }

    fn down(&mut self, mut i: usize, n: usize, less: &impl Fn(&T, &T) -> bool) {
        loop {
            let j1 = 2 * i + 1;
            if j1 >= n {
                break;
            }
            let mut j = j1;
            let j2 = j1 + 1;
            if j2 < n && less(&self.items[j2], &self.items[j1]) {
                j = j2;
            }
            if !less(&self.items[j], &self.items[i]) {
                break;
            }
            self.items.swap(i, j);
            i = j;
        }
    }
}

/// One input of the chain: samples of one block, in that block's order.
struct It<'a, T> {
    s: &'a [(i64, T)],
    /// Index of the current sample; `usize::MAX` before the first `next`.
    pos: usize,
}

impl<T> It<'_, T> {
    fn next(&mut self) -> bool {
        self.pos = self.pos.wrapping_add(1);
        self.pos < self.s.len()
    }

    fn t(&self) -> i64 {
        self.s[self.pos].0
    }
}

/// The samples Prometheus's `chainSampleIterator` yields over `inputs` (in querier order):
/// float bits, or floats and histograms of a series holding both (it picks among samples of
/// one timestamp whatever their kind).
pub fn chain<T: Copy>(inputs: &[Vec<(i64, T)>]) -> Vec<(i64, T)> {
    match inputs {
        [] => return Vec::new(),
        [one] => return one.clone(),
        _ => {}
    }
    let mut its: Vec<It<T>> = inputs.iter().map(|s| It { s, pos: usize::MAX }).collect();
    let less = |a: &usize, b: &usize, its: &[It<T>]| its[*a].t() < its[*b].t();
    let mut h: GoHeap<usize> = GoHeap::new();
    for i in 1..its.len() {
        if its[i].next() {
            h.push(i, &|a, b| less(a, b, &its));
        }
    }
    let mut out = Vec::with_capacity(inputs.iter().map(Vec::len).max().unwrap_or(0));
    let mut curr = Some(0usize);
    let mut last_t = i64::MIN;
    while let Some(mut c) = curr {
        let mut t = last_t;
        loop {
            if its[c].next() {
                t = its[c].t();
                if t == last_t {
                    continue;
                }
                if h.is_empty() || t < its[h.items[0]].t() {
                    break;
                }
                h.push(c, &|a, b| less(a, b, &its));
            } else if h.is_empty() {
                curr = None;
                break;
            }
            c = h.pop(&|a, b| less(a, b, &its)).expect("not empty");
            t = its[c].t();
            if t != last_t {
                break;
            }
        }
        if curr.is_none() {
            break;
        }
        curr = Some(c);
        last_t = t;
        out.push(its[c].s[its[c].pos]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_heap_pops_in_order() {
        let less = |a: &i32, b: &i32| a < b;
        let mut h = GoHeap::new();
        for x in [5, 1, 4, 1, 3, 9, 2] {
            h.push(x, &less);
        }
        let mut out = Vec::new();
        while let Some(x) = h.pop(&less) {
            out.push(x);
        }
        assert_eq!(out, [1, 1, 2, 3, 4, 5, 9]);
    }

    #[test]
    fn ties_follow_the_go_iterator() {
        // Two blocks with conflicting values at the same timestamps: Go's heap hands the tie to
        // the iterator that was not current, which here is the second one every time.
        let a = vec![(1, 10), (2, 20), (3, 30)];
        let b = vec![(1, 11), (2, 21), (3, 31)];
        assert_eq!(chain(&[a.clone(), b.clone()]), [(1, 11), (2, 21), (3, 31)]);
        // Disjoint and interleaved inputs merge in time order.
        let c = vec![(0, 1), (5, 5)];
        assert_eq!(chain(&[a, c]), [(0, 1), (1, 10), (2, 20), (3, 30), (5, 5)]);
        assert_eq!(chain(&[vec![], b.clone()]), b);
        assert_eq!(chain(&[b.clone(), vec![]]), b);
    }
}
