//! The native-histogram side file's text (`WINDOW-SHARD.hist.om.gz`): one `SERIES VALUE TIMESTAMP`
//! line per histogram sample, VALUE OpenMetrics 2.0's composite value plus prom2om's fields.
//!
//! The series text and the timestamp are the shards' ([`openmetrics::write_series_prefix`],
//! [`openmetrics::write_timestamp`]), so a series hashes to the same shard. The value is
//!
//! ```text
//! {count:C,sum:S,schema:I,zero_threshold:R,zero_count:Z,negative_spans:[o:l,...],
//!  negative_buckets:[n,...],positive_spans:[o:l,...],positive_buckets:[n,...],
//!  custom_values:[v,...],counter_reset_hint:H,kind:K}
//! ```
//!
//! on one line with no whitespace: every field present, in this order. `kind:int` holds integer
//! counts and absolute integer buckets (the model's deltas summed, wrapping as Go's int64 does);
//! `kind:float` float counts and buckets. `H` is `unknown`, `reset`, `not_reset` or `gauge`.
//! Floats are Go's shortest `%g` ([`gofloat`]), `+Inf`, `-Inf`, `NaN` for Prometheus's NormalNaN,
//! `StaleNaN` for the staleness marker's bits and `NaN:0x` with 16 lower-case hex digits for any
//! other NaN, so every bit of the model comes back. The reader is strict: each value has exactly
//! one spelling, the one [`write_value`] writes.

use std::ops::Range;

use anyhow::Result;

use crate::bad_input;
use crate::format::gofloat;
use crate::format::histogram::{CounterResetHint, FloatHistogram, Histogram, HistogramValue, Span};
use crate::format::openmetrics::{self, parse_series, timestamp_reads_back, EOF_LINE};
use crate::format::value::{NORMAL_NAN_BITS, STALE_NAN_BITS};
use crate::labels::Labels;

/// Appends the value text of `h` (the composite value, braces included).
pub fn write_value(h: &HistogramValue, out: &mut Vec<u8>) {
    match h {
        HistogramValue::Int(h) => {
            out.extend_from_slice(b"{count:");
            write_u64(h.count, out);
            common_head(h.sum, h.schema, h.zero_threshold, out);
            write_u64(h.zero_count, out);
            let abs = |deltas: &[i64], out: &mut Vec<u8>| {
                let mut acc = 0i64;
                list(deltas, out, |d, out| {
                    acc = acc.wrapping_add(*d);
                    write_i64(acc, out);
                });
            };
            common_buckets(&h.negative_spans, &h.positive_spans, out, |neg, out| {
                abs(
                    if neg {
                        &h.negative_buckets
                    } else {
                        &h.positive_buckets
                    },
                    out,
                )
            });
            common_tail(&h.custom_values, h.hint, b"int", out);
        }
        HistogramValue::Float(h) => {
            out.extend_from_slice(b"{count:");
            write_float(h.count, out);
            common_head(h.sum, h.schema, h.zero_threshold, out);
            write_float(h.zero_count, out);
            common_buckets(&h.negative_spans, &h.positive_spans, out, |neg, out| {
                let b = if neg {
                    &h.negative_buckets
                } else {
                    &h.positive_buckets
                };
                list(b, out, |v, out| write_float(*v, out));
            });
            common_tail(&h.custom_values, h.hint, b"float", out);
        }
    }
}

/// Appends one line: `prefix` (from [`openmetrics::write_series_prefix`], trailing space
/// included), `value` (from [`write_value`]), the timestamp as the shards write it, a newline.
pub fn write_line(prefix: &[u8], value: &[u8], ts_ms: i64, out: &mut Vec<u8>) {
    out.extend_from_slice(prefix);
    out.extend_from_slice(value);
    out.push(b' ');
    openmetrics::write_timestamp(ts_ms, out);
    out.push(b'\n');
}

/// [`write_line`] of a histogram not rendered yet.
pub fn write_sample(prefix: &[u8], h: &HistogramValue, ts_ms: i64, out: &mut Vec<u8>) {
    out.extend_from_slice(prefix);
    write_value(h, out);
    out.push(b' ');
    openmetrics::write_timestamp(ts_ms, out);
    out.push(b'\n');
}

/// Whether a value text (as [`write_value`] writes it) is a staleness marker's: its sum is
/// `StaleNaN`.
pub fn is_stale_text(value: &[u8]) -> bool {
    // `{count:C,sum:` then the sum: C never holds a comma.
    let Some(c) = memchr::memchr(b',', value) else {
        return false;
    };
    value[c + 1..].starts_with(b"sum:StaleNaN,")
}

fn common_head(sum: u64, schema: i32, zero_threshold: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(b",sum:");
    write_float(sum, out);
    out.extend_from_slice(b",schema:");
    write_i64(schema.into(), out);
    out.extend_from_slice(b",zero_threshold:");
    write_float(zero_threshold, out);
    out.extend_from_slice(b",zero_count:");
}

fn common_buckets(
    negative: &[Span],
    positive: &[Span],
    out: &mut Vec<u8>,
    mut buckets: impl FnMut(bool, &mut Vec<u8>),
) {
    out.extend_from_slice(b",negative_spans:");
    spans(negative, out);
    out.extend_from_slice(b",negative_buckets:");
    buckets(true, out);
    out.extend_from_slice(b",positive_spans:");
    spans(positive, out);
    out.extend_from_slice(b",positive_buckets:");
    buckets(false, out);
}

fn common_tail(custom: &[u64], hint: CounterResetHint, kind: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b",custom_values:");
    list(custom, out, |v, out| write_float(*v, out));
    out.extend_from_slice(b",counter_reset_hint:");
    out.extend_from_slice(hint_name(hint));
    out.extend_from_slice(b",kind:");
    out.extend_from_slice(kind);
    out.push(b'}');
}

fn spans(s: &[Span], out: &mut Vec<u8>) {
    list(s, out, |s, out| {
        write_i64(s.offset.into(), out);
        out.push(b':');
        write_u64(s.length.into(), out);
    });
}

fn list<T>(items: &[T], out: &mut Vec<u8>, mut item: impl FnMut(&T, &mut Vec<u8>)) {
    out.push(b'[');
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        item(x, out);
    }
    out.push(b']');
}

fn hint_name(h: CounterResetHint) -> &'static [u8] {
    match h {
        CounterResetHint::Unknown => b"unknown",
        CounterResetHint::CounterReset => b"reset",
        CounterResetHint::NotCounterReset => b"not_reset",
        CounterResetHint::Gauge => b"gauge",
    }
}

fn write_u64(v: u64, out: &mut Vec<u8>) {
    let nd = v.checked_ilog10().unwrap_or(0) as usize + 1;
    let at = out.len();
    out.resize(at + nd, 0);
    gofloat::write_digits(v, &mut out[at..]);
}

fn write_i64(v: i64, out: &mut Vec<u8>) {
    if v < 0 {
        out.push(b'-');
    }
    write_u64(v.unsigned_abs(), out);
}

/// A float by its bits: Go's `%g`, or one of the NaN spellings.
fn write_float(bits: u64, out: &mut Vec<u8>) {
    let v = f64::from_bits(bits);
    if !v.is_nan() {
        return gofloat::format_g(v, out);
    }
    match bits {
        NORMAL_NAN_BITS => out.extend_from_slice(b"NaN"),
        STALE_NAN_BITS => out.extend_from_slice(b"StaleNaN"),
        _ => {
            use std::io::Write;
            // A Vec write cannot fail.
            let _ = write!(out, "NaN:0x{bits:016x}");
        }
    }
}

/// Parses a value text (as [`write_value`] writes it, nothing around it) into `into`, reusing
/// its buffers. Errors say what is wrong and at which byte of the value.
pub fn parse_value(text: &[u8], into: &mut HistogramValue) -> Result<(), String> {
    let float = if text.ends_with(b",kind:float}") {
        true
    } else if text.ends_with(b",kind:int}") {
        false
    } else {
        return Err("the value does not end with \",kind:int}\" or \",kind:float}\"".into());
    };
    let mut p = Cursor { s: text, i: 0 };
    p.lit(b"{count:")?;
    let v = if float {
        parse_float_value(&mut p, into)
    } else {
        parse_int_value(&mut p, into)
    };
    v.map_err(|e| format!("{e} (at byte {} of the value)", p.i + 1))
}

/// The literals that open a side's spans and buckets, and the side's name for messages.
const NEGATIVE: [&str; 3] = [",negative_spans:", ",negative_buckets:", "negative"];
const POSITIVE: [&str; 3] = [",positive_spans:", ",positive_buckets:", "positive"];

fn parse_int_value(p: &mut Cursor<'_>, into: &mut HistogramValue) -> Result<(), String> {
    if !matches!(into, HistogramValue::Int(_)) {
        *into = HistogramValue::Int(Histogram::default());
    }
    let HistogramValue::Int(h) = into else {
        unreachable!("set above")
    };
    h.count = p.token(b",")?.parse(parse_u64)?;
    (h.sum, h.schema, h.zero_threshold) = p.head()?;
    h.zero_count = p.token(b",")?.parse(parse_u64)?;
    p.buckets(
        NEGATIVE,
        &mut h.negative_spans,
        &mut h.negative_buckets,
        parse_i64,
    )?;
    p.buckets(
        POSITIVE,
        &mut h.positive_spans,
        &mut h.positive_buckets,
        parse_i64,
    )?;
    to_deltas(&mut h.negative_buckets);
    to_deltas(&mut h.positive_buckets);
    (h.custom_values, h.hint) = p.tail(std::mem::take(&mut h.custom_values), b"int")?;
    Ok(())
}

fn parse_float_value(p: &mut Cursor<'_>, into: &mut HistogramValue) -> Result<(), String> {
    if !matches!(into, HistogramValue::Float(_)) {
        *into = HistogramValue::Float(FloatHistogram::default());
    }
    let HistogramValue::Float(h) = into else {
        unreachable!("set above")
    };
    h.count = p.token(b",")?.parse(parse_float)?;
    (h.sum, h.schema, h.zero_threshold) = p.head()?;
    h.zero_count = p.token(b",")?.parse(parse_float)?;
    p.buckets(
        NEGATIVE,
        &mut h.negative_spans,
        &mut h.negative_buckets,
        parse_float,
    )?;
    p.buckets(
        POSITIVE,
        &mut h.positive_spans,
        &mut h.positive_buckets,
        parse_float,
    )?;
    (h.custom_values, h.hint) = p.tail(std::mem::take(&mut h.custom_values), b"float")?;
    Ok(())
}

/// Whether the spans lay out as many buckets as there are: `None` when they do, else what is
/// wrong (for the sink, which refuses such a histogram before writing it).
pub fn layout_problem(h: &HistogramValue) -> Option<String> {
    let (neg, nb, pos, pb) = match h {
        HistogramValue::Int(h) => (
            &h.negative_spans,
            h.negative_buckets.len(),
            &h.positive_spans,
            h.positive_buckets.len(),
        ),
        HistogramValue::Float(h) => (
            &h.negative_spans,
            h.negative_buckets.len(),
            &h.positive_spans,
            h.positive_buckets.len(),
        ),
    };
    check_layout(neg, nb, "negative")
        .and_then(|()| check_layout(pos, pb, "positive"))
        .err()
}

fn check_layout(spans: &[Span], buckets: usize, side: &str) -> Result<(), String> {
    let laid: u64 = spans.iter().map(|s| u64::from(s.length)).sum();
    if laid != buckets as u64 {
        return Err(format!(
            "the {side} spans lay out {laid} buckets, but there are {buckets}"
        ));
    }
    Ok(())
}

/// Absolute integer counts back to the model's deltas (wrapping, as Go's int64).
fn to_deltas(v: &mut [i64]) {
    let mut prev = 0i64;
    for x in v.iter_mut() {
        let abs = *x;
        *x = abs.wrapping_sub(prev);
        prev = abs;
    }
}

/// The bytes of one value, read left to right.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

/// A token and what to make of it.
struct Token<'a>(&'a [u8]);

impl Token<'_> {
    fn parse<T>(self, f: impl Fn(&[u8]) -> Option<T>) -> Result<T, String> {
        f(self.0).ok_or_else(|| format!("invalid number {:?}", bstr::BStr::new(self.0)))
    }
}

impl<'a> Cursor<'a> {
    /// One side's `,NAME_spans:[...],NAME_buckets:[...]`, its spans laid out as its buckets.
    fn buckets<T>(
        &mut self,
        [spans_lit, buckets_lit, side]: [&str; 3],
        spans: &mut Vec<Span>,
        buckets: &mut Vec<T>,
        parse: impl Fn(&[u8]) -> Option<T>,
    ) -> Result<(), String> {
        self.lit(spans_lit.as_bytes())?;
        self.spans(spans)?;
        self.lit(buckets_lit.as_bytes())?;
        self.list(buckets, parse)?;
        check_layout(spans, buckets.len(), side)
    }

    fn lit(&mut self, l: &[u8]) -> Result<(), String> {
        if self.s[self.i..].starts_with(l) {
            self.i += l.len();
            return Ok(());
        }
        Err(format!("expected {:?}", bstr::BStr::new(l)))
    }

    /// The bytes up to (not including) the next structural byte (`,` `[` `]` `{` `}`, and `:`
    /// unless `colon` may be inside, as in `NaN:0x...`), which must be one of `stops`.
    fn token(&mut self, stops: &[u8]) -> Result<Token<'a>, String> {
        let colon = stops.contains(&b':');
        let rest = &self.s[self.i..];
        let n = rest
            .iter()
            .position(|&c| matches!(c, b',' | b'[' | b']' | b'{' | b'}') || (colon && c == b':'))
            .ok_or("the value ends early")?;
        if n == 0 {
            return Err("a number is missing".into());
        }
        if !stops.contains(&rest[n]) {
            return Err(format!(
                "unexpected {:?} after {:?}",
                rest[n] as char,
                bstr::BStr::new(&rest[..n])
            ));
        }
        self.i += n;
        Ok(Token(&rest[..n]))
    }

    /// `,sum:S,schema:I,zero_threshold:R,zero_count:` after the count.
    fn head(&mut self) -> Result<(u64, i32, u64), String> {
        self.lit(b",sum:")?;
        let sum = self.token(b",")?.parse(parse_float)?;
        self.lit(b",schema:")?;
        let schema = self.token(b",")?.parse(parse_i64)?;
        let schema =
            i32::try_from(schema).map_err(|_| format!("schema {schema} is out of range"))?;
        self.lit(b",zero_threshold:")?;
        let zt = self.token(b",")?.parse(parse_float)?;
        self.lit(b",zero_count:")?;
        Ok((sum, schema, zt))
    }

    /// `,custom_values:[...],counter_reset_hint:H,kind:K}` to the end.
    fn tail(
        &mut self,
        mut custom: Vec<u64>,
        kind: &[u8],
    ) -> Result<(Vec<u64>, CounterResetHint), String> {
        self.lit(b",custom_values:")?;
        self.list(&mut custom, parse_float)?;
        self.lit(b",counter_reset_hint:")?;
        let name = self.token(b",")?.0;
        let hint = [
            CounterResetHint::Unknown,
            CounterResetHint::CounterReset,
            CounterResetHint::NotCounterReset,
            CounterResetHint::Gauge,
        ]
        .into_iter()
        .find(|h| hint_name(*h) == name)
        .ok_or_else(|| format!("unknown counter_reset_hint {:?}", bstr::BStr::new(name)))?;
        self.lit(b",kind:")?;
        self.lit(kind)?;
        self.lit(b"}")?;
        if self.i != self.s.len() {
            return Err("text after the closing brace".into());
        }
        Ok((custom, hint))
    }

    /// `[x,y,...]`, each item by `parse`, into `out` (cleared first).
    fn list<T>(
        &mut self,
        out: &mut Vec<T>,
        parse: impl Fn(&[u8]) -> Option<T>,
    ) -> Result<(), String> {
        out.clear();
        self.lit(b"[")?;
        if self.s.get(self.i) == Some(&b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            out.push(self.token(b",]")?.parse(&parse)?);
            let c = self.s[self.i];
            self.i += 1;
            if c == b']' {
                return Ok(());
            }
        }
    }

    /// `[o:l,...]` into `out` (cleared first).
    fn spans(&mut self, out: &mut Vec<Span>) -> Result<(), String> {
        out.clear();
        self.lit(b"[")?;
        if self.s.get(self.i) == Some(&b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            let offset = self.token(b":")?.parse(parse_i64)?;
            let offset = i32::try_from(offset).map_err(|_| "a span offset is out of range")?;
            self.i += 1;
            let length = self.token(b",]")?.parse(parse_u64)?;
            let length = u32::try_from(length).map_err(|_| "a span length is out of range")?;
            out.push(Span { offset, length });
            let c = self.s[self.i];
            self.i += 1;
            if c == b']' {
                return Ok(());
            }
        }
    }
}

/// A decimal integer as [`write_u64`] writes it: digits, no sign, no leading zero.
fn parse_u64(t: &[u8]) -> Option<u64> {
    let canonical =
        !t.is_empty() && t.iter().all(u8::is_ascii_digit) && (t[0] != b'0' || t.len() == 1);
    canonical.then(|| std::str::from_utf8(t).ok()?.parse().ok())?
}

/// A decimal integer as [`write_i64`] writes it: no `+`, no `-0`, no leading zero.
fn parse_i64(t: &[u8]) -> Option<i64> {
    match t.strip_prefix(b"-") {
        Some(abs) => {
            let abs = parse_u64(abs).filter(|&a| a != 0)?;
            0i64.checked_sub_unsigned(abs)
        }
        None => parse_u64(t).and_then(|v| i64::try_from(v).ok()),
    }
}

/// A float's bits from the one spelling [`write_float`] gives them.
fn parse_float(t: &[u8]) -> Option<u64> {
    let bits = match t {
        b"NaN" => NORMAL_NAN_BITS,
        b"StaleNaN" => STALE_NAN_BITS,
        b"+Inf" => f64::INFINITY.to_bits(),
        b"-Inf" => f64::NEG_INFINITY.to_bits(),
        _ => {
            if let Some(hex) = t.strip_prefix(b"NaN:0x") {
                let lower = hex.len() == 16
                    && hex
                        .iter()
                        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c));
                let bits = u64::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                let other = f64::from_bits(bits).is_nan()
                    && bits != NORMAL_NAN_BITS
                    && bits != STALE_NAN_BITS;
                return (lower && other).then_some(bits);
            }
            let decimal = t
                .iter()
                .all(|&c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'+' | b'-'));
            let v: f64 = std::str::from_utf8(t)
                .ok()
                .filter(|_| decimal)?
                .parse()
                .ok()?;
            v.to_bits()
        }
    };
    // One spelling per value: what the writer makes of these bits.
    let mut again = Vec::with_capacity(t.len());
    write_float(bits, &mut again);
    (again == t).then_some(bits)
}

/// One histogram sample as [`read`] hands it out.
#[derive(Debug)]
pub struct HistSample<'a> {
    /// Decoded once per series.
    pub labels: &'a Labels,
    pub ts_ms: i64,
    pub value: &'a HistogramValue,
    /// Where the value's text lies in the data ([`parse_value`] reads it again).
    pub text: Range<usize>,
    /// 1-based line number.
    pub line: u64,
    /// The first sample of its series.
    pub new_series: bool,
}

/// What a successful [`read`] saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistStats {
    pub series: u64,
    /// Histogram samples, staleness markers included.
    pub samples: u64,
    /// Of them, staleness markers (sum `StaleNaN`).
    pub stale_markers: u64,
    pub min_ts_ms: Option<i64>,
    pub max_ts_ms: Option<i64>,
    /// Lines, `# EOF` included.
    pub lines: u64,
}

/// Reads a side file's text strictly, calling `f` for every sample in order: each line
/// `SERIES VALUE TIMESTAMP` with the series text exactly as the shards write it, series in the
/// shards' order (by metric name, then labels), timestamps increasing within a series, `# EOF`
/// last. Errors are bad input naming the line with an excerpt; errors from `f` pass through.
pub fn read(data: &[u8], mut f: impl FnMut(HistSample<'_>) -> Result<()>) -> Result<HistStats> {
    let mut r = Reader::new();
    let mut pos = 0;
    let mut line_no = 0u64;
    loop {
        line_no += 1;
        if pos >= data.len() {
            return Err(bad_input!(
                "line {line_no}: the data ends without the \"# EOF\" line"
            ));
        }
        let (end, next) = match memchr::memchr(b'\n', &data[pos..]) {
            Some(i) => (pos + i, pos + i + 1),
            None => (data.len(), data.len()),
        };
        let line = &data[pos..end];
        let fail = |msg: String| bad_input!("line {line_no}: {msg}: {}", excerpt(line));
        if end == next {
            return Err(fail("the last line has no newline".into()));
        }
        if data[pos..next] == *EOF_LINE {
            if next != data.len() {
                return Err(fail("data after \"# EOF\"".into()));
            }
            r.stats.lines = line_no;
            return Ok(r.stats);
        }
        r.line(data, pos..end, line_no, &mut f, fail)?;
        pos = next;
    }
}

/// Up to 60 bytes of a line, escaped for an error message.
fn excerpt(line: &[u8]) -> String {
    let end = line.len().min(60);
    let more = if end < line.len() { "..." } else { "" };
    format!("{:?}{more}", bstr::BStr::new(&line[..end]))
}

struct Reader {
    stats: HistStats,
    /// The series text (trailing space included) of the previous line.
    prefix: Vec<u8>,
    labels: Labels,
    in_series: bool,
    last_ts: i64,
    value: HistogramValue,
    rendered: Vec<u8>,
}

impl Reader {
    fn new() -> Reader {
        Reader {
            stats: HistStats::default(),
            prefix: Vec::new(),
            labels: Labels::default(),
            in_series: false,
            last_ts: 0,
            value: HistogramValue::Int(Histogram::default()),
            rendered: Vec::new(),
        }
    }

    fn line(
        &mut self,
        data: &[u8],
        at: Range<usize>,
        line_no: u64,
        f: &mut impl FnMut(HistSample<'_>) -> Result<()>,
        fail: impl Fn(String) -> anyhow::Error,
    ) -> Result<()> {
        let line = &data[at.clone()];
        if line.first() == Some(&b'#') {
            return Err(fail(
                "a comment line: the side file has samples and \"# EOF\" only".into(),
            ));
        }
        if line.is_empty() {
            return Err(fail("blank line".into()));
        }
        let new_series = !(self.in_series && line.starts_with(&self.prefix));
        if new_series {
            self.start_series(line).map_err(&fail)?;
        }
        let rest = &line[self.prefix.len()..];
        let sp = memchr::memchr(b' ', rest).ok_or_else(|| fail("no timestamp".into()))?;
        let (value, ts) = (&rest[..sp], &rest[sp + 1..]);
        parse_value(value, &mut self.value).map_err(&fail)?;
        let ts = timestamp_reads_back(ts)
            .filter(|_| !ts.contains(&b' '))
            .ok_or_else(|| fail("invalid timestamp".into()))?;
        if !new_series && ts <= self.last_ts {
            return Err(fail(format!(
                "timestamp {ts} ms is not after {} ms, the previous sample of {}",
                self.last_ts, self.labels
            )));
        }
        self.last_ts = ts;
        let st = &mut self.stats;
        st.samples += 1;
        st.stale_markers += u64::from(self.value.is_stale());
        st.min_ts_ms = Some(st.min_ts_ms.map_or(ts, |m| m.min(ts)));
        st.max_ts_ms = Some(st.max_ts_ms.map_or(ts, |m| m.max(ts)));
        let start = at.start + self.prefix.len();
        f(HistSample {
            labels: &self.labels,
            ts_ms: ts,
            value: &self.value,
            text: start..start + value.len(),
            line: line_no,
            new_series,
        })
    }

    /// A line of another series: its text exactly as the shards write it, after the previous
    /// series in their order.
    fn start_series(&mut self, line: &[u8]) -> Result<(), String> {
        let (labels, len) = parse_series(line)?;
        self.rendered.clear();
        openmetrics::write_series_prefix(&labels, &mut self.rendered);
        if self.rendered[..] != line[..len] {
            return Err(format!(
                "the series is not written as the shards write it ({:?})",
                bstr::BStr::new(&self.rendered)
            ));
        }
        if self.in_series && rank_key(&labels) <= rank_key(&self.labels) {
            return Err(format!(
                "series {labels} comes after {}: series must be in the shards' order (by name, then labels), each once",
                self.labels
            ));
        }
        self.prefix.clear();
        self.prefix.extend_from_slice(&line[..len]);
        self.labels = labels;
        self.in_series = true;
        self.stats.series += 1;
        Ok(())
    }
}

/// The shards' series order: by metric name, then all labels.
fn rank_key(l: &Labels) -> (&str, &Labels) {
    (l.metric_name(), l)
}

/// Fuzz logic: arbitrary bytes as a side file; never panics, and every sample read writes back
/// to the text it was read from, and reads back from it as it was.
pub fn fuzz_histtext(data: &[u8]) {
    let mut prefix = Vec::new();
    let mut text = Vec::new();
    let _ = read(data, |s| {
        text.clear();
        write_value(s.value, &mut text);
        assert_eq!(
            text[..],
            data[s.text.clone()],
            "a value writes back to its text"
        );
        prefix.clear();
        openmetrics::write_series_prefix(s.labels, &mut prefix);
        text.clear();
        write_sample(&prefix, s.value, s.ts_ms, &mut text);
        text.extend_from_slice(EOF_LINE);
        let mut n = 0;
        read(&text, |t| {
            assert_eq!((t.labels, t.ts_ms, t.value), (s.labels, s.ts_ms, s.value));
            n += 1;
            Ok(())
        })
        .expect("a written line reads back");
        assert_eq!(n, 1);
        Ok(())
    });
}

#[cfg(test)]
#[path = "histtext_tests.rs"]
mod tests;
