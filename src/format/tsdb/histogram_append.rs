//! When Prometheus's `HistogramAppender` cuts a new chunk and how it widens one
//! (`AppendHistogram`, `appendable`, `appendableGauge`, `recode`): a new chunk on a counter reset,
//! a schema, zero threshold or custom bounds change, a staleness marker followed by a sample, or
//! a counter histogram after a gauge chunk; new buckets recode the chunk to the wider layout.

use super::histogram::{Decoder, Encoder};
use super::histogram_meta::{
    adjust_for_inserts, expand_spans_and_buckets, expand_spans_both_ways, insert_deltas,
    CounterResetHeader, Insert,
};
use crate::format::histogram::{
    bucket_count, is_custom_buckets, CounterResetHint, Histogram, Span,
};
use crate::format::value::is_stale;

/// What [`Encoder::append`] did with a sample.
#[derive(Debug)]
pub enum Appended<E> {
    /// Appended to this chunk (possibly recoded to a wider layout in place).
    Appended,
    /// The sample does not fit this chunk, which is complete: it begins the returned one.
    Cut(E),
}

/// What `appendable` found: the inserts that widen the chunk (forward) and the sample
/// (backward), whether it fits, and the counter-reset header a chunk cut for it gets.
pub(super) struct Fit {
    pub forward: [Vec<Insert>; 2],
    pub backward: [Vec<Insert>; 2],
    pub ok: bool,
    pub header: CounterResetHeader,
}

impl Fit {
    pub(super) fn no(header: CounterResetHeader) -> Fit {
        Fit {
            forward: Default::default(),
            backward: Default::default(),
            ok: false,
            header,
        }
    }
}

/// Prometheus's `CustomBucketBoundsMatch`: the same bounds, compared as floats.
pub(super) fn bounds_match(a: &[u64], b: &[u64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| f64::from_bits(*x) == f64::from_bits(*y))
}

impl Encoder {
    /// `appendable`: whether counter histogram `h` fits this chunk.
    pub(super) fn appendable(&self, h: &Histogram) -> Fit {
        use CounterResetHeader as C;
        if self.n > 0 && self.header == C::Gauge {
            return Fit::no(C::NotCounterReset);
        }
        if h.hint == CounterResetHint::CounterReset {
            return Fit::no(C::CounterReset);
        }
        if h.is_stale() {
            return Fit {
                ok: true,
                ..Fit::no(C::NotCounterReset)
            };
        }
        if is_stale(self.sum) {
            return Fit::no(C::Unknown);
        }
        if h.count < self.cnt {
            return Fit::no(C::CounterReset);
        }
        if h.schema != self.schema
            || f64::from_bits(h.zero_threshold) != f64::from_bits(self.zero_threshold)
        {
            return Fit::no(C::Unknown);
        }
        if is_custom_buckets(h.schema) && !bounds_match(&h.custom_values, &self.custom) {
            return Fit::no(C::CounterReset);
        }
        if h.zero_count < self.zcnt {
            return Fit::no(C::CounterReset);
        }
        let sides = [
            (
                &self.p_spans,
                &h.positive_spans,
                &self.p_buckets,
                &h.positive_buckets,
            ),
            (
                &self.n_spans,
                &h.negative_spans,
                &self.n_buckets,
                &h.negative_buckets,
            ),
        ];
        let mut fit = Fit {
            ok: true,
            ..Fit::no(C::NotCounterReset)
        };
        for (i, (a, b, ab, bb)) in sides.into_iter().enumerate() {
            let (ac, bc) = (Histogram::absolute(ab), Histogram::absolute(bb));
            match expand_spans_and_buckets(a, b, &ac, &bc) {
                Some((f, bw)) => (fit.forward[i], fit.backward[i]) = (f, bw),
                None => return Fit::no(C::CounterReset),
            }
        }
        fit
    }

    /// `appendableGauge`: whether gauge histogram `h` fits, with the merged spans.
    fn appendable_gauge(&self, h: &Histogram) -> (Fit, [Vec<Span>; 2]) {
        let no = || (Fit::no(CounterResetHeader::Gauge), Default::default());
        if self.n > 0 && self.header != CounterResetHeader::Gauge {
            return no();
        }
        if h.is_stale() {
            let fit = Fit {
                ok: true,
                ..Fit::no(CounterResetHeader::Gauge)
            };
            return (fit, Default::default());
        }
        if is_stale(self.sum)
            || h.schema != self.schema
            || f64::from_bits(h.zero_threshold) != f64::from_bits(self.zero_threshold)
            || (is_custom_buckets(h.schema) && !bounds_match(&h.custom_values, &self.custom))
        {
            return no();
        }
        let (pf, pb, pm) = expand_spans_both_ways(&self.p_spans, &h.positive_spans);
        let (nf, nb, nm) = expand_spans_both_ways(&self.n_spans, &h.negative_spans);
        let fit = Fit {
            forward: [pf, nf],
            backward: [pb, nb],
            ok: true,
            header: CounterResetHeader::Gauge,
        };
        (fit, [pm, nm])
    }

    /// Appends `h` at `t` as Prometheus's `AppendHistogram` does (never append-only): into this
    /// chunk, widened and recoded when `h` brings new buckets, or into a new chunk when it does
    /// not fit, which the result returns (this one is then complete). `prev` is the chunk before
    /// this one when this one is empty and was cut for its size or time: its last sample decides
    /// this chunk's counter-reset header, as in Prometheus's head.
    pub fn append(
        &mut self,
        prev: Option<&Encoder>,
        st: i64,
        t: i64,
        h: &Histogram,
    ) -> anyhow::Result<Appended<Encoder>> {
        if self.n == 0 {
            self.push(st, t, h)?;
            self.header = match (h.hint, prev) {
                (CounterResetHint::Gauge, _) => CounterResetHeader::Gauge,
                (CounterResetHint::CounterReset, _) => CounterResetHeader::CounterReset,
                (_, Some(p)) => p.appendable(h).header,
                (_, None) => self.header,
            };
            return Ok(Appended::Appended);
        }
        let gauge = h.hint == CounterResetHint::Gauge;
        let (fit, merged) = if gauge {
            self.appendable_gauge(h)
        } else {
            (self.appendable(h), Default::default())
        };
        if !fit.ok || (!gauge && fit.header != CounterResetHeader::NotCounterReset) {
            let mut next = self.empty_like();
            next.header = fit.header;
            next.push(st, t, h)?;
            return Ok(Appended::Cut(next));
        }
        let mut h = h.clone();
        let [pb, nb] = &fit.backward;
        let [pf, nf] = &fit.forward;
        if !pb.is_empty() || !nb.is_empty() {
            if gauge {
                [h.positive_spans, h.negative_spans] = merged;
            } else if pf.is_empty() && nf.is_empty() {
                h.positive_spans = self.p_spans.clone();
                h.negative_spans = self.n_spans.clone();
            } else {
                h.positive_spans = adjust_for_inserts(&h.positive_spans, pb);
                h.negative_spans = adjust_for_inserts(&h.negative_spans, nb);
            }
            widen(&mut h, pb, nb);
        }
        if !pf.is_empty() || !nf.is_empty() {
            *self = self.recode(pf, nf, &h.positive_spans, &h.negative_spans)?;
        }
        self.push(st, t, &h)?;
        Ok(Appended::Appended)
    }

    /// `recode`: this chunk's samples written again into a chunk of the wider layout.
    fn recode(
        &self,
        pf: &[Insert],
        nf: &[Insert],
        p_spans: &[Span],
        n_spans: &[Span],
    ) -> anyhow::Result<Encoder> {
        let bytes = self.bytes();
        let mut d = match self.st {
            Some(_) => Decoder::with_start_times(&bytes)?,
            None => Decoder::new(&bytes)?,
        };
        let mut out = self.empty_like();
        let (np, nn) = (bucket_count(p_spans), bucket_count(n_spans));
        while let Some(s) = d.next() {
            let s = s?;
            let mut h = s.h.clone();
            h.positive_spans = p_spans.to_vec();
            h.negative_spans = n_spans.to_vec();
            if !pf.is_empty() {
                h.positive_buckets = insert_deltas(&h.positive_buckets, np, pf);
            }
            if !nf.is_empty() {
                h.negative_buckets = insert_deltas(&h.negative_buckets, nn, nf);
            }
            out.push(s.st, s.t, &h)?;
        }
        out.header = self.header;
        Ok(out)
    }
}

/// `recodeHistogram`: the sample's buckets widened by the backward inserts.
fn widen(h: &mut Histogram, pb: &[Insert], nb: &[Insert]) {
    if !pb.is_empty() {
        let n = bucket_count(&h.positive_spans);
        h.positive_buckets = insert_deltas(&h.positive_buckets, n, pb);
    }
    if !nb.is_empty() {
        let n = bucket_count(&h.negative_spans);
        h.negative_buckets = insert_deltas(&h.negative_buckets, n, nb);
    }
}
