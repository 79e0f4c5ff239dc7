//! When Prometheus's `FloatHistogramAppender` cuts a new chunk and how it widens one
//! (`AppendFloatHistogram`, `appendable`, `appendableGauge`, `recode`): the integer appender's
//! rules on float counts, with its own headers (a chunk cut for anything but a counter reset
//! keeps the unknown header; one after a size or time cut is "reset" or "no reset").

use super::float_histogram::{Decoder, Encoder};
use super::histogram_append::{bounds_match, Appended, Fit};
use super::histogram_meta::{
    adjust_for_inserts, expand_spans_and_buckets, expand_spans_both_ways, insert_absolute,
    CounterResetHeader, Insert,
};
use crate::format::histogram::{
    bucket_count, is_custom_buckets, CounterResetHint, FloatHistogram, Span,
};
use crate::format::value::is_stale;

/// Float counts compare as floats: a NaN compares false, as in Go.
fn f(bits: u64) -> f64 {
    f64::from_bits(bits)
}

impl Encoder {
    /// `appendable`: whether counter histogram `h` fits this chunk; `header` is
    /// `CounterReset` when it does not for a counter reset, `Unknown` otherwise.
    fn appendable(&self, h: &FloatHistogram) -> Fit {
        use CounterResetHeader as C;
        let no = Fit::no_float;
        if self.n > 0 && self.header == C::Gauge {
            return no(false);
        }
        if h.hint == CounterResetHint::CounterReset {
            return no(true);
        }
        if h.is_stale() {
            return Fit {
                ok: true,
                ..no(false)
            };
        }
        if is_stale(self.sum.value) {
            return no(false);
        }
        if f(h.count) < f(self.cnt.value) {
            return no(true);
        }
        if h.schema != self.schema || f(h.zero_threshold) != f(self.zero_threshold) {
            return no(false);
        }
        if is_custom_buckets(h.schema) && !bounds_match(&h.custom_values, &self.custom) {
            return no(true);
        }
        if f(h.zero_count) < f(self.zcnt.value) {
            return no(true);
        }
        let mut fit = Fit {
            ok: true,
            ..no(false)
        };
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
        for (i, (a, b, ab, bb)) in sides.into_iter().enumerate() {
            let ac: Vec<f64> = ab.iter().map(|x| f(x.value)).collect();
            let bc: Vec<f64> = bb.iter().map(|x| f(*x)).collect();
            match expand_spans_and_buckets(a, b, &ac, &bc) {
                Some((fw, bw)) => (fit.forward[i], fit.backward[i]) = (fw, bw),
                None => return no(true),
            }
        }
        fit
    }

    /// `appendableGauge`.
    fn appendable_gauge(&self, h: &FloatHistogram) -> (Fit, [Vec<Span>; 2]) {
        let no = || (Fit::no_float(false), Default::default());
        if self.n > 0 && self.header != CounterResetHeader::Gauge {
            return no();
        }
        if h.is_stale() {
            let fit = Fit {
                ok: true,
                ..Fit::no_float(false)
            };
            return (fit, Default::default());
        }
        if is_stale(self.sum.value)
            || h.schema != self.schema
            || f(h.zero_threshold) != f(self.zero_threshold)
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
            header: CounterResetHeader::Unknown,
        };
        (fit, [pm, nm])
    }

    /// Appends `h` at `t` as Prometheus's `AppendFloatHistogram` does (never append-only); see
    /// [`super::histogram::Encoder::append`].
    pub fn append(
        &mut self,
        prev: Option<&Encoder>,
        st: i64,
        t: i64,
        h: &FloatHistogram,
    ) -> anyhow::Result<Appended<Encoder>> {
        use CounterResetHeader as C;
        if self.n == 0 {
            self.push(st, t, h)?;
            self.header = match (h.hint, prev) {
                (CounterResetHint::Gauge, _) => C::Gauge,
                (CounterResetHint::CounterReset, _) => C::CounterReset,
                (_, Some(p)) if p.appendable(h).header == C::CounterReset => C::CounterReset,
                (_, Some(_)) => C::NotCounterReset,
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
        if !fit.ok || fit.header == C::CounterReset {
            let mut next = self.empty_like();
            next.header = if gauge { C::Gauge } else { fit.header };
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
                h.positive_buckets = insert_absolute(&h.positive_buckets, np, pf);
            }
            if !nf.is_empty() {
                h.negative_buckets = insert_absolute(&h.negative_buckets, nn, nf);
            }
            out.push(s.st, s.t, &h)?;
        }
        out.header = self.header;
        Ok(out)
    }
}

impl Fit {
    /// The float appender's "no": its header says only whether it was a counter reset.
    fn no_float(counter_reset: bool) -> Fit {
        Fit::no(if counter_reset {
            CounterResetHeader::CounterReset
        } else {
            CounterResetHeader::Unknown
        })
    }
}

/// `recodeHistogram`: the sample's buckets widened by the backward inserts.
fn widen(h: &mut FloatHistogram, pb: &[Insert], nb: &[Insert]) {
    if !pb.is_empty() {
        let n = bucket_count(&h.positive_spans);
        h.positive_buckets = insert_absolute(&h.positive_buckets, n, pb);
    }
    if !nb.is_empty() {
        let n = bucket_count(&h.negative_spans);
        h.negative_buckets = insert_absolute(&h.negative_buckets, n, nb);
    }
}
