//! The `promtool tsdb dump` line format, `{name="value", ...} VALUE TIMESTAMP`: a zero-copy parser
//! (label block located without decoding, so the caller can spot "same series as the last line"
//! cheaply), the label decoder, and a writer that prints lines exactly as promtool does.

use std::fmt;
use std::ops::Range;

use memchr::{memchr2, memrchr};

use crate::format::gofloat::format_g;
use crate::labels::{is_classic_label_name, Labels};

pub mod goquote;
mod number;
use number::parse_ts;
pub use number::{parse_go_float, GO_NAN_BITS};

/// One dump line, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Line<'a> {
    /// The raw label block, braces included; decode it with [`decode_labels`].
    pub labels: &'a [u8],
    pub value: Value<'a>,
    /// Milliseconds since the epoch.
    pub ts: i64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Float(f64),
    /// A native histogram as promtool 2.48+ prints it (`{count:5, sum:12.5, [-4,-2):1}`),
    /// unparsed: OpenMetrics backfill cannot import it, so callers skip it.
    Histogram(&'a [u8]),
}

/// What is wrong with a line and where: `offset` is a byte offset into the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub offset: usize,
    pub message: String,
}

impl LineError {
    #[cold]
    #[inline(never)]
    fn new(offset: usize, message: impl Into<String>) -> LineError {
        LineError {
            offset,
            message: message.into(),
        }
    }
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (column {})", self.message, self.offset + 1)
    }
}

impl std::error::Error for LineError {}

/// Parses one line (without its `'\n'`; a trailing `'\r'` is accepted). Allocates nothing unless
/// the line is bad. The label block is only checked for structure here, not decoded.
pub fn parse_line(line: &[u8]) -> Result<Line<'_>, LineError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let n = labels_len(line)?;
    parse_after_labels(line, n)
}

/// [`parse_line`] for a line whose label block is known to be its first `n` bytes (the caller saw
/// the same block on the line before), so the labels are not scanned again.
pub fn parse_after_labels(line: &[u8], n: usize) -> Result<Line<'_>, LineError> {
    let rest = &line[n..];
    match rest.first() {
        Some(b' ') => {}
        Some(_) => return Err(LineError::new(n, "expected a space after the labels")),
        None => {
            return Err(LineError::new(
                n,
                "missing value and timestamp after the labels",
            ))
        }
    }
    // The timestamp is the last field: a histogram value holds spaces, a timestamp never does.
    // Walking back over its digits finds the space before it without a search in the common case.
    let mut sp = rest.len();
    while sp > 0 && matches!(rest[sp - 1], b'0'..=b'9' | b'-') {
        sp -= 1;
    }
    let sp = match sp.checked_sub(1) {
        Some(s) if rest[s] == b' ' => s,
        _ => memrchr(b' ', rest).unwrap_or(0),
    };
    if sp == 0 {
        return Err(LineError::new(
            line.len(),
            "missing timestamp after the value",
        ));
    }
    let ts_at = n + sp + 1;
    let ts = parse_ts(&rest[sp + 1..]).map_err(|m| LineError::new(ts_at, m))?;
    let value = parse_value(&rest[1..sp], n + 1)?;
    Ok(Line {
        labels: &line[..n],
        value,
        ts,
    })
}

/// Length of the `{...}` label block at the start of `line`, found by structure alone (quoted
/// strings skipped, escapes not decoded): equal blocks mean the same series.
pub fn labels_len(line: &[u8]) -> Result<usize, LineError> {
    walk_labels(line, |_| Ok(()))
}

/// Decodes a raw label block (as in [`Line::labels`]) into [`Labels`]. Error offsets are into
/// `raw`, hence into the line. Empty values are dropped, as Prometheus treats them as absent.
pub fn decode_labels(raw: &[u8]) -> Result<Labels, LineError> {
    let mut pairs: Vec<(String, String, usize)> = Vec::new();
    let n = walk_labels(raw, |p| {
        let name = decode_string(raw, p.name.clone(), p.name_quoted, "label name")?;
        if name.is_empty() {
            return Err(LineError::new(p.name.start, "empty label name"));
        }
        let value = decode_string(raw, p.value, true, "label value")?;
        pairs.push((name, value, p.name.start));
        Ok(())
    })?;
    if n != raw.len() {
        return Err(LineError::new(n, "unexpected bytes after the label set"));
    }
    if let Some(at) = duplicate_name(&pairs) {
        let message = format!("duplicate label name {}", goquote::quoted(&pairs[at].0));
        return Err(LineError::new(pairs[at].2, message));
    }
    Ok(Labels::from_pairs(
        pairs.into_iter().map(|(n, v, _)| (n, v)),
    ))
}

/// [`decode_labels`] for the series of a sample line: Prometheus stores no series without a
/// metric name, and OpenMetrics cannot write one, so a block without a non-empty `__name__` is
/// refused here.
pub fn decode_series(raw: &[u8]) -> Result<Labels, LineError> {
    let labels = decode_labels(raw)?;
    if labels.metric_name().is_empty() {
        return Err(LineError::new(
            0,
            "no metric name: a series needs a non-empty __name__",
        ));
    }
    Ok(labels)
}

/// Prints one line exactly as promtool 2.42+ does (`fmt.Printf("%s %g %d\n", lbs, val, ts)`).
pub fn write_line(labels: &Labels, value: f64, ts: i64, out: &mut Vec<u8>) {
    write_labels(labels, out);
    out.push(b' ');
    format_g(value, out);
    out.push(b' ');
    write_i64(ts, out);
    out.push(b'\n');
}

/// Prints a label block as Prometheus' `Labels.String()` does: `{a="1", b="2"}`, values Go-quoted,
/// names bare when classic and Go-quoted otherwise (the 3.1+ rule).
pub fn write_labels(labels: &Labels, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        if is_classic_label_name(name) {
            out.extend_from_slice(name.as_bytes());
        } else {
            goquote::quote(name, out);
        }
        out.push(b'=');
        goquote::quote(value, out);
    }
    out.push(b'}');
}

fn write_i64(v: i64, out: &mut Vec<u8>) {
    if v < 0 {
        out.push(b'-');
    }
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut u = v.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// One `name="value"` pair of a raw label block, as byte ranges into it. `value` excludes the
/// quotes; so does `name` when quoted.
struct RawPair {
    name: Range<usize>,
    name_quoted: bool,
    value: Range<usize>,
}

/// Walks the label block at the start of `line`, handing each pair to `on_pair`; returns the
/// block's length. Separators are `", "` (what promtool prints) or `","`.
#[inline(always)]
fn walk_labels<F>(line: &[u8], mut on_pair: F) -> Result<usize, LineError>
where
    F: FnMut(RawPair) -> Result<(), LineError>,
{
    if line.first() != Some(&b'{') {
        return Err(LineError::new(0, "expected '{' to start the labels"));
    }
    if line.get(1) == Some(&b'}') {
        return Ok(2);
    }
    let mut i = 1;
    loop {
        let (name, name_quoted) = if line.get(i) == Some(&b'"') {
            let end = skip_quoted(line, i, "unterminated quoted label name")?;
            let name = i + 1..end - 1;
            i = end;
            (name, true)
        } else {
            let start = i;
            while i < line.len() && BARE_NAME[line[i] as usize] {
                i += 1;
            }
            if i == start {
                return Err(LineError::new(i, "expected a label name"));
            }
            (start..i, false)
        };
        if line.get(i) != Some(&b'=') {
            return Err(LineError::new(i, "expected '=' after label name"));
        }
        i += 1;
        if line.get(i) != Some(&b'"') {
            return Err(LineError::new(i, "expected '\"' to start the label value"));
        }
        let end = skip_quoted(line, i, "unterminated quoted value")?;
        on_pair(RawPair {
            name,
            name_quoted,
            value: i + 1..end - 1,
        })?;
        i = end;
        match line.get(i) {
            Some(b'}') => return Ok(i + 1),
            Some(b',') => {
                i += 1;
                if line.get(i) == Some(&b' ') {
                    i += 1;
                }
            }
            Some(_) => return Err(LineError::new(i, "expected ', ' or '}' after label value")),
            None => return Err(LineError::new(i, "missing '}' at the end of the labels")),
        }
    }
}

/// Bytes allowed in an unquoted label name. Wider than the classic `[a-zA-Z0-9_]` on purpose:
/// Prometheus 3.0 printed UTF-8 names bare (quoting came in 3.1), so accept any name byte that
/// cannot be taken for the surrounding syntax.
const BARE_NAME: [bool; 256] = {
    let mut t = [true; 256];
    let mut c = 0;
    while c < 0x21 {
        t[c] = false;
        c += 1;
    }
    t[0x7f] = false;
    t[b'=' as usize] = false;
    t[b'"' as usize] = false;
    t[b',' as usize] = false;
    t[b'{' as usize] = false;
    t[b'}' as usize] = false;
    t
};

/// Given the offset of an opening `"`, returns the offset just past the closing one. Only `"`
/// and `\` matter inside; an escape's second byte is skipped unseen.
#[inline(always)]
fn skip_quoted(line: &[u8], open: usize, unterminated: &str) -> Result<usize, LineError> {
    let mut i = open + 1;
    while let Some(k) = find_quote_or_backslash(&line[i..]) {
        let p = i + k;
        if line[p] == b'"' {
            return Ok(p + 1);
        }
        i = p + 2;
        if i > line.len() {
            break;
        }
    }
    Err(LineError::new(open, unterminated))
}

/// The first `"` or `\` in `h`. Label values are mostly short, where a call into memchr's
/// dispatched SIMD code costs more than the search, so the first 32 bytes are scanned inline,
/// 8 at a time with the classic "has zero byte" trick.
#[inline(always)]
fn find_quote_or_backslash(h: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while let Some(chunk) = h.get(i..i + 8) {
        if i == 32 {
            return memchr2(b'"', b'\\', &h[i..]).map(|k| i + k);
        }
        let w = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let q = w ^ (LO * u64::from(b'"'));
        let b = w ^ (LO * u64::from(b'\\'));
        // The lowest flagged byte is always a true match (false flags only sit above one).
        let m = (q.wrapping_sub(LO) & !q | b.wrapping_sub(LO) & !b) & HI;
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    h[i..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\')
        .map(|k| i + k)
}

/// Decodes a name or value at `range` of `raw` (unquoting when `quoted`) into a UTF-8 string.
fn decode_string(
    raw: &[u8],
    range: Range<usize>,
    quoted: bool,
    what: &str,
) -> Result<String, LineError> {
    let start = range.start;
    let inner = &raw[range];
    let mut out = Vec::with_capacity(inner.len());
    if quoted {
        goquote::unquote_at(inner, &mut out)
            .map_err(|e| LineError::new(start + e.pos, escape_message(&inner[e.pos..], e.msg)))?;
    } else {
        out.extend_from_slice(inner);
    }
    String::from_utf8(out).map_err(|e| {
        // Without escapes the bad byte's offset is known exactly; otherwise point at the string.
        let at = if inner.len() == e.as_bytes().len() {
            start + e.utf8_error().valid_up_to()
        } else {
            start
        };
        LineError::new(at, format!("invalid UTF-8 in {what}"))
    })
}

/// `msg` followed by the escape it is about (`esc` starts at its backslash), shown safely.
fn escape_message(esc: &[u8], msg: &str) -> String {
    let take = if msg == goquote::INVALID_ESCAPE {
        // The backslash and the whole (possibly multi-byte) character after it.
        let ch_len = esc.get(1).map_or(0, |&b| match b {
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => 1,
        });
        1 + ch_len
    } else {
        10
    };
    let shown = String::from_utf8_lossy(&esc[..take.min(esc.len())]);
    let shown: String = shown
        .chars()
        .map(|c| match c.is_control() {
            true => c.escape_default().to_string(),
            false => c.to_string(),
        })
        .collect();
    if msg == goquote::INVALID_ESCAPE {
        format!("{msg} {shown}")
    } else {
        format!("{msg} (at \"{shown}\")")
    }
}

/// The index of the later of two pairs with the same name, if any.
fn duplicate_name(pairs: &[(String, String, usize)]) -> Option<usize> {
    if pairs.windows(2).all(|w| w[0].0 < w[1].0) {
        return None; // promtool prints sorted names: the common case costs one pass.
    }
    let mut idx: Vec<usize> = (0..pairs.len()).collect();
    idx.sort_by(|&a, &b| pairs[a].0.cmp(&pairs[b].0).then(a.cmp(&b)));
    idx.windows(2)
        .find(|w| pairs[w[0]].0 == pairs[w[1]].0)
        .map(|w| w[1])
}

/// The value field (`at` is its offset in the line).
fn parse_value(v: &[u8], at: usize) -> Result<Value<'_>, LineError> {
    if v.first() == Some(&b'{') {
        if v.last() != Some(&b'}') {
            return Err(LineError::new(
                at,
                "unterminated histogram value (missing '}')",
            ));
        }
        return Ok(Value::Histogram(v));
    }
    if let Some(f) = parse_go_float(v) {
        return Ok(Value::Float(f));
    }
    Err(match memchr::memchr(b' ', v) {
        Some(0) => LineError::new(at, "expected exactly one space between labels and value"),
        Some(k) if k + 1 == v.len() => LineError::new(
            at + k,
            "expected exactly one space between value and timestamp",
        ),
        Some(k) => LineError::new(at + k, "too many fields: expected LABELS VALUE TIMESTAMP"),
        None if v.is_empty() => LineError::new(at, "missing value"),
        None => LineError::new(
            at,
            format!(
                "value {:?} is not a number as Go's %g prints it",
                String::from_utf8_lossy(v)
            ),
        ),
    })
}

/// Runs every parser entry point over arbitrary bytes and checks the invariants that must hold;
/// panics on a violation. This is the body of the `parse_line` fuzz target (fuzz/), kept here so
/// that ordinary tests exercise the exact same code.
#[doc(hidden)]
pub fn fuzz_check(data: &[u8]) {
    let _ = labels_len(data);
    let _ = decode_labels(data);
    if let Ok(l) = decode_series(data) {
        assert!(!l.metric_name().is_empty());
    }
    let Ok(line) = parse_line(data) else {
        return;
    };
    assert_eq!(labels_len(data).ok(), Some(line.labels.len()));
    let (Ok(labels), Value::Float(v)) = (decode_labels(line.labels), line.value) else {
        return;
    };
    // A line that parses must survive write -> parse unchanged, and writing is a fixed point.
    let mut out = Vec::new();
    write_line(&labels, v, line.ts, &mut out);
    let again = parse_line(&out[..out.len() - 1]).expect("written line parses");
    assert_eq!(again.ts, line.ts);
    match again.value {
        Value::Float(w) => assert!(w.to_bits() == v.to_bits() || (w.is_nan() && v.is_nan())),
        Value::Histogram(_) => panic!("float written, histogram read"),
    }
    let labels2 = decode_labels(again.labels).expect("written labels decode");
    assert_eq!(labels2, labels);
    let mut out2 = Vec::new();
    write_line(&labels2, v, line.ts, &mut out2);
    assert_eq!(out2, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Line<'_> {
        parse_line(line.as_bytes()).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    fn labels(raw: &str) -> Labels {
        decode_labels(raw.as_bytes()).unwrap_or_else(|e| panic!("{raw:?}: {e}"))
    }

    fn written(l: &Labels, v: f64, ts: i64) -> String {
        let mut out = Vec::new();
        write_line(l, v, ts, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_series_needs_a_metric_name() {
        for raw in [r#"{a="1"}"#, "{}", r#"{__name__="", a="1"}"#] {
            let e = decode_series(raw.as_bytes()).unwrap_err();
            assert!(e.message.contains("no metric name"), "{raw}: {e}");
        }
        assert_eq!(
            decode_series(br#"{__name__="up"}"#).unwrap().metric_name(),
            "up"
        );
    }

    #[test]
    fn parses_a_typical_line() {
        let line =
            r#"{__name__="up", instance="localhost:9090", job="prometheus"} 1 1700000000000"#;
        let l = ok(line);
        assert_eq!(l.labels, &line.as_bytes()[..60]);
        assert_eq!(l.value, Value::Float(1.0));
        assert_eq!(l.ts, 1_700_000_000_000);
        assert_eq!(labels_len(line.as_bytes()), Ok(60));
        let lb = labels(std::str::from_utf8(l.labels).unwrap());
        assert_eq!(lb.metric_name(), "up");
        assert_eq!(lb.get("job"), Some("prometheus"));
    }

    #[test]
    fn minimal_label_sets_comma_separator_and_crlf() {
        let l = ok(r#"{__name__="up"} 0 5"#);
        assert_eq!(labels(r#"{__name__="up"}"#).len(), 1);
        assert_eq!(l.ts, 5);
        let l = ok("{} 1 2");
        assert_eq!(l.labels, b"{}");
        assert!(labels("{}").is_empty());
        let l = ok(r#"{a="1",b="2"} 3 4"#);
        assert_eq!(
            labels(std::str::from_utf8(l.labels).unwrap()),
            labels(r#"{a="1", b="2"}"#)
        );
        let l = ok("{a=\"1\"} 3 4\r");
        assert_eq!((l.labels.len(), l.value, l.ts), (7, Value::Float(3.0), 4));
        // A '\r' inside a value is data, not a line ending.
        assert_eq!(labels("{a=\"x\\r\"}").get("a"), Some("x\r"));
    }

    #[test]
    fn quoted_and_bare_utf8_names() {
        let l = labels(r#"{"service.name"="api", __name__="m", "é\u00e9"="x"}"#);
        assert_eq!(l.get("service.name"), Some("api"));
        assert_eq!(l.get("éé"), Some("x"));
        // Prometheus 3.0 printed such names bare.
        assert_eq!(
            labels(r#"{service.name="api"}"#).get("service.name"),
            Some("api")
        );
        // A quoted name may hold anything, '=' and '}' included.
        assert_eq!(labels(r#"{"a=}\"b"="v"}"#).get("a=}\"b"), Some("v"));
    }

    #[test]
    fn decodes_every_escape() {
        let l = labels(r#"{a="\a\b\f\n\r\t\v\\\"\x41\101\u00e9\U0001F600 ok"}"#);
        assert_eq!(l.get("a"), Some("\x07\x08\x0c\n\r\t\x0b\\\"AAé😀 ok"));
        assert_eq!(labels(r#"{a="}, b=\"x\""}"#).get("a"), Some("}, b=\"x\""));
        // Empty values mean "absent", as in Prometheus.
        assert!(labels(r#"{a=""}"#).is_empty());
    }

    #[test]
    fn writes_like_promtool() {
        let l = Labels::from_pairs([
            ("alpha", "2"),
            ("__name__", "m"),
            ("Zeta", "tab\there \"q\" \\ é 😀 \u{200b}\x01"),
            ("service.name", "x"),
        ]);
        assert_eq!(
            written(&l, 1e6, -5),
            "{Zeta=\"tab\\there \\\"q\\\" \\\\ é 😀 \\u200b\\x01\", __name__=\"m\", alpha=\"2\", \
             \"service.name\"=\"x\"} 1e+06 -5\n"
        );
        assert_eq!(written(&Labels::default(), -0.0, 0), "{} -0 0\n");
        let line = written(&l, f64::MIN_POSITIVE, i64::MIN);
        let p = ok(line.trim_end_matches('\n'));
        assert_eq!(decode_labels(p.labels), Ok(l));
        assert_eq!((p.value, p.ts), (Value::Float(f64::MIN_POSITIVE), i64::MIN));
        assert_eq!(ok("{} -0 -1").value, Value::Float(-0.0));
        assert!(matches!(ok("{} NaN 1").value, Value::Float(f) if f.to_bits() == GO_NAN_BITS));
    }

    #[test]
    fn histograms_are_recognised() {
        let h = "{count:5, sum:12.5, [-4,-2):1, [-2,-1):2}";
        let line = format!(r#"{{__name__="h"}} {h} -1000"#);
        let l = ok(&line);
        assert_eq!(l.value, Value::Histogram(h.as_bytes()));
        assert_eq!(l.ts, -1000);
        let e = parse_line(br#"{__name__="h"} {count:5, sum:1 7"#).unwrap_err();
        assert_eq!(
            (e.offset, e.message.as_str()),
            (15, "unterminated histogram value (missing '}')")
        );
    }

    #[test]
    fn line_errors_say_what_and_where() {
        let cases: &[(&str, usize, &str)] = &[
            ("up 1 2", 0, "expected '{' to start the labels"),
            ("", 0, "expected '{' to start the labels"),
            (r#"{a="b""#, 6, "missing '}' at the end of the labels"),
            (r#"{a="b} 1 2"#, 3, "unterminated quoted value"),
            (r#"{a="b\"} 1 2"#, 3, "unterminated quoted value"),
            (r#"{a="b\"#, 3, "unterminated quoted value"),
            (r#"{"a="b"} 1 2"#, 5, "expected '=' after label name"),
            (r#"{"a} 1 2"#, 1, "unterminated quoted label name"),
            (r#"{a "b"} 1 2"#, 2, "expected '=' after label name"),
            (r#"{a=b} 1 2"#, 3, "expected '\"' to start the label value"),
            (
                r#"{a="b" c="d"} 1 2"#,
                6,
                "expected ', ' or '}' after label value",
            ),
            (r#"{a="b",} 1 2"#, 7, "expected a label name"),
            (r#"{a="b",  c="d"} 1 2"#, 8, "expected a label name"),
            (r#"{ } 1 2"#, 1, "expected a label name"),
            (r#"{a="b"}1 2"#, 7, "expected a space after the labels"),
            (
                r#"{a="b"}"#,
                7,
                "missing value and timestamp after the labels",
            ),
            (r#"{a="b"} 1"#, 9, "missing timestamp after the value"),
            (r#"{a="b"} 1 "#, 10, "missing timestamp after the value"),
            (
                r#"{a="b"}  1 2"#,
                8,
                "expected exactly one space between labels and value",
            ),
            (
                r#"{a="b"} 1  2"#,
                9,
                "expected exactly one space between value and timestamp",
            ),
            (
                r#"{a="b"} 1 2 3"#,
                9,
                "too many fields: expected LABELS VALUE TIMESTAMP",
            ),
            (r#"{a="b"}  2"#, 8, "missing value"),
            (r#"{a="b"} 1 2.5"#, 10, "timestamp is not an integer"),
            (
                r#"{a="b"} 1 -9223372036854775809"#,
                10,
                "timestamp out of range for int64",
            ),
        ];
        for &(line, offset, msg) in cases {
            let e = parse_line(line.as_bytes()).unwrap_err();
            assert_eq!((e.offset, e.message.as_str()), (offset, msg), "{line:?}");
        }
        let e = parse_line(br#"{a="b"} 1.2.3 2"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "value \"1.2.3\" is not a number as Go's %g prints it (column 9)"
        );
    }

    #[test]
    fn label_decoding_errors() {
        let cases: &[(&[u8], usize, &str)] = &[
            (br#"{a="x\q"}"#, 5, r"invalid escape \q"),
            (br#"{a="\'"}"#, 4, r"invalid escape \'"),
            ("{a=\"\\é\"}".as_bytes(), 4, r"invalid escape \é"),
            (
                br#"{a="\u12"}"#,
                4,
                r#"\u escape needs 4 hex digits (at "\u12")"#,
            ),
            (
                br#"{a="\ud800"}"#,
                4,
                r#"escape is a surrogate or above U+10FFFF (at "\ud800")"#,
            ),
            (br#"{a="\xff"}"#, 4, "invalid UTF-8 in label value"),
            (b"{a=\"ok\xff\"}", 6, "invalid UTF-8 in label value"),
            (b"{a\xff=\"v\"}", 2, "invalid UTF-8 in label name"),
            (br#"{"\xc3"="v"}"#, 2, "invalid UTF-8 in label name"),
            (br#"{a="1", a="2"}"#, 8, "duplicate label name \"a\""),
            (
                br#"{b="1", a="2", b="3"}"#,
                15,
                "duplicate label name \"b\"",
            ),
            (br#"{""="v"}"#, 2, "empty label name"),
            (br#"{a="b"}x"#, 7, "unexpected bytes after the label set"),
        ];
        for &(raw, offset, msg) in cases {
            let e = decode_labels(raw).unwrap_err();
            assert_eq!((e.offset, e.message.as_str()), (offset, msg), "{raw:?}");
        }
        // Structure alone is fine: labels_len leaves escapes and UTF-8 to decode_labels.
        assert_eq!(labels_len(br#"{a="\q"} 1 2"#), Ok(8));
    }

    #[test]
    fn inline_search_finds_the_first_quote_or_backslash() {
        let fillers = [
            b'a', 0x00, 0x01, 0x21, 0x23, 0x5b, 0x5d, 0x80, 0xa2, 0xdc, 0xff,
        ];
        for len in 0..80 {
            for f in fillers {
                let mut h = vec![f; len];
                assert_eq!(find_quote_or_backslash(&h), None);
                for at in 0..len {
                    for c in [b'"', b'\\'] {
                        h[at] = c;
                        if at + 1 < len {
                            h[len - 1] = b'"'; // a later match must not win
                        }
                        assert_eq!(find_quote_or_backslash(&h), Some(at), "{len} {f} {at}");
                        h.iter_mut().for_each(|b| *b = f);
                    }
                }
            }
        }
    }

    /// The fuzz target's function on valid lines; tests/dump_prop.rs runs it on random and
    /// mutated bytes, as the fuzzer would.
    #[test]
    fn fuzz_target_on_seeds() {
        for s in [
            r#"{__name__="up", job="a\"b\\c\x01\u00e9"} 1e+06 1700000000000"#,
            r#"{"service.name"="x",b="y"} -0 -5"#,
            "{} NaN 0\r",
            r#"{a="1"} {count:5, sum:12.5, [-4,-2):1} 7"#,
        ] {
            fuzz_check(s.as_bytes());
            assert!(parse_line(s.as_bytes()).is_ok(), "{s}");
        }
    }
}
