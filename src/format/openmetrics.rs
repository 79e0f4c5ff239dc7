//! OpenMetrics text as `promtool tsdb create-blocks-from openmetrics` reads it: a writer whose
//! bytes backfill imports bit-exact (labels, values and millisecond timestamps), and a strict
//! reader with the Prometheus parser's semantics, used by `verify`, `inspect` and the tests.

mod reader;
pub(crate) use reader::parse_series;
pub use reader::{read, ReadStats, Sample};

use crate::format::gofloat::{format_g_into, write_digits};
use crate::labels::{is_classic_label_name, is_classic_metric_name, Labels, METRIC_NAME};

/// The last line of every OpenMetrics file.
pub const EOF_LINE: &[u8] = b"# EOF\n";

/// The largest `|ms|` that [`write_timestamp`] writes so that backfill reads it back exactly.
///
/// Backfill reads a timestamp `s` (seconds) as `int64(ParseFloat(s) * 1000)`. Above 1000·2^43 ms
/// (year 280,000) neighbouring float64 seconds lie more than 1 ms apart, so some milliseconds
/// have no spelling at all. Below it one always exists; see [`write_timestamp`].
pub const MAX_ABS_TIMESTAMP_MS: i64 = 1000 * (1 << 43) - 1;

/// Go's `math.NaN()`, the bits Prometheus' parser produces for the text `NaN`.
const GO_NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

/// Appends the series part of a sample line, trailing space included: `name{a="1",b="2"} `.
///
/// Labels come in `labels` order (byte-wise by name), `__name__` left out, and no `{}` when no
/// other label is left. A name that is not classic is quoted (`{"my.metric",a="b"}`,
/// `x{"label.name"="v"}`), a syntax promtool reads from 2.51 on, not before. The caller must see
/// that the series has a metric name: OpenMetrics cannot express a series without one.
pub fn write_series_prefix(labels: &Labels, out: &mut Vec<u8>) {
    let name = labels.metric_name();
    let mut in_braces = false;
    if is_classic_metric_name(name) {
        out.extend_from_slice(name.as_bytes());
    } else {
        out.push(b'{');
        write_quoted(name.as_bytes(), out);
        in_braces = true;
    }
    for (n, v) in labels.iter() {
        if n == METRIC_NAME {
            continue;
        }
        out.push(if in_braces { b',' } else { b'{' });
        in_braces = true;
        if is_classic_label_name(n) {
            out.extend_from_slice(n.as_bytes());
        } else {
            write_quoted(n.as_bytes(), out);
        }
        out.push(b'=');
        write_quoted(v.as_bytes(), out);
    }
    if in_braces {
        out.push(b'}');
    }
    out.push(b' ');
}

/// The first name of the series that [`write_series_prefix`] writes quoted, if any: such a line
/// only parses in promtool 2.51 and newer ([`QUOTED_NAMES_SINCE`]).
pub fn quoted_name(labels: &Labels) -> Option<&str> {
    let name = labels.metric_name();
    if !is_classic_metric_name(name) {
        return Some(name);
    }
    labels
        .iter()
        .map(|(n, _)| n)
        .find(|&n| n != METRIC_NAME && !is_classic_label_name(n))
}

/// The first promtool whose `create-blocks-from openmetrics` reads quoted names: the lexer
/// learnt `{"name", ...}` in Prometheus 2.51.0 (model/textparse, a28d7865ad).
pub const QUOTED_NAMES_SINCE: (u32, u32) = (2, 51);

/// Appends one sample line: `prefix` (from [`write_series_prefix`]), the value as Go's `%g`
/// prints it (shortest round-trip digits, so the parser gets the same bits back), the timestamp.
pub fn write_sample(prefix: &[u8], value: f64, ts_ms: i64, out: &mut Vec<u8>) {
    out.extend_from_slice(prefix);
    // Value and timestamp are formatted in place, not in a buffer then copied: a wide copy of
    // bytes just stored one by one stalls on store forwarding, and this runs once per sample.
    let at = out.len();
    out.resize(at + LINE_TAIL, 0);
    let tail: &mut [u8; LINE_TAIL] = (&mut out[at..]).try_into().expect("LINE_TAIL bytes");
    let n = format_g_into(value, (&mut tail[..32]).try_into().expect("32 bytes"));
    tail[n] = b' ';
    let ts_part = (&mut tail[n + 1..n + 1 + TS_LEN])
        .try_into()
        .expect("TS_LEN bytes");
    match exact_timestamp_into(ts_ms, ts_part) {
        Some(k) => {
            tail[n + 1 + k] = b'\n';
            out.truncate(at + n + k + 2);
        }
        None => {
            out.truncate(at + n + 1);
            write_timestamp(ts_ms, out);
            out.push(b'\n');
        }
    }
}

/// Room for a value, a space, an exact timestamp and the newline.
const LINE_TAIL: usize = 64;
/// Room for an exact timestamp: a sign, 16 digits of seconds, a point and 3 digits.
const TS_LEN: usize = 24;

/// Appends `"s"` with the only escapes the parser decodes: `\\`, `\"`, `\n`. Every other byte
/// goes out raw, since the parser would keep any other escape as two characters.
fn write_quoted(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    let mut rest = s;
    while let Some(i) = memchr::memchr3(b'\\', b'"', b'\n', rest) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(match rest[i] {
            b'\\' => b"\\\\",
            b'"' => b"\\\"",
            _ => b"\\n",
        });
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

/// Whether [`write_timestamp`] writes `ms` so that backfill reads back exactly `ms`.
pub fn timestamp_supported(ms: i64) -> bool {
    ms.unsigned_abs() <= MAX_ABS_TIMESTAMP_MS as u64
}

/// Appends `ms` as seconds, spelled so that Go's `int64(ParseFloat(s) * 1000)` gives `ms` back.
///
/// First choice is the exact decimal (`1700000015.5`, `-0.001`). When the float64 nearest to it
/// times 1000 truncates to `ms - 1` (`1.001` reads as 1000 ms), we write instead the shortest
/// spelling of the next float64 away from zero (`1.0010000000000001`), which reads as `ms`.
/// Beyond [`MAX_ABS_TIMESTAMP_MS`] (see [`timestamp_supported`]) the exact decimal is written
/// with no such promise: callers must refuse those timestamps.
///
/// Why the next float64 always works, for `0 < ms <= MAX_ABS_TIMESTAMP_MS` (negative values
/// mirror it: negation, rounding and truncation toward zero are symmetric). Let `x0` be the
/// float64 nearest `ms/1000`, `x1` the next one up, `s` the float spacing just below `ms`
/// (at most 1, as ms < 2^53). Below 2^43 s a float's ulp is at most 2^-10, so the real products
/// `1000·x0` and `1000·x1` differ by at most 0.977, and `1000·x0` is within 0.489 of `ms`.
/// - If `x0 >= ms/1000`, `1000·x0` is in `[ms, ms + 0.489]`, which rounds into `[ms, ms+1)`:
///   the exact decimal works.
/// - Else it failed, so `1000·x0` rounds below `ms`: it is at most `ms - s/2`. Then `1000·x1`
///   is in `(ms, ms - s/2 + 0.977]`; with the spacing below `ms + 1` also `s`, that rounds into
///   `[ms, ms+1)`. The spacing differs (is `2s`) only when `ms` is a power of two; up to 2^51
///   the bound there is `0.489 - s/2 < 1 - s`, fine again, and 2^52 is checked by a test.
pub fn write_timestamp(ms: i64, out: &mut Vec<u8>) {
    let mut buf = [0u8; TS_LEN];
    if let Some(n) = exact_timestamp_into(ms, &mut buf) {
        out.extend_from_slice(&buf[..n]);
        return;
    }
    let abs = ms.unsigned_abs();
    let x1 = f64::from_bits((abs as f64 / 1000.0).to_bits() + 1);
    if ms < 0 {
        out.push(b'-');
    }
    // `Display` of f64 is the shortest decimal that parses back to `x1`, never in exponent form;
    // Go's ParseFloat is correctly rounded too, so it gets `x1` back. A Vec write cannot fail.
    use std::io::Write;
    let _ = write!(out, "{x1}");
}

/// Writes the exact decimal of `ms` in seconds into `out` and returns its length, unless Go
/// would read it back as another millisecond and the next float64 does read back as `ms` (see
/// [`write_timestamp`]): then `None`, and the caller writes that float instead.
fn exact_timestamp_into(ms: i64, out: &mut [u8; TS_LEN]) -> Option<usize> {
    let abs = ms.unsigned_abs();
    // A float64 exactly holds |ms| <= 2^53, so `abs as f64 / 1000.0` is one correctly rounded
    // operation on the exact value ms/1000: the same float ParseFloat makes of the exact decimal.
    // The check below is therefore Go's reading of that decimal, without formatting and parsing
    // (a division: measured, it is not worth skipping even where a proof would allow it).
    let x0 = abs as f64 / 1000.0;
    if timestamp_supported(ms) && seconds_read_as(x0) != abs as i64 {
        let x1 = f64::from_bits(x0.to_bits() + 1);
        // Never false by the proof above; written so that no input can loop or panic here.
        if seconds_read_as(x1) == abs as i64 {
            return None;
        }
    }
    out[0] = b'-';
    let neg = usize::from(ms < 0);
    let exact = (&mut out[neg..neg + 20]).try_into().expect("20 bytes");
    Some(neg + write_exact_seconds(abs, exact))
}

/// What Prometheus makes of a float64 number of seconds: `int64(s * 1000)`, truncating.
fn seconds_read_as(s: f64) -> i64 {
    (s * 1000.0) as i64
}

/// Writes `ms / 1000` as an exact decimal without trailing zeros (`1700000030.001`, `1.5`, `0`)
/// into `out` and returns its length.
fn write_exact_seconds(ms: u64, out: &mut [u8; 20]) -> usize {
    let secs = ms / 1000;
    let nd = secs.checked_ilog10().unwrap_or(0) as usize + 1;
    write_digits(secs, &mut out[..nd]);
    let frac = (ms % 1000) as u32;
    let digits = [
        b'.',
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ];
    out[nd..nd + 4].copy_from_slice(&digits);
    nd + if frac == 0 {
        0
    } else if frac % 100 == 0 {
        2
    } else if frac % 10 == 0 {
        3
    } else {
        4
    }
}

/// The milliseconds Prometheus' OpenMetrics parser reads from a timestamp token: Go's
/// `int64(ParseFloat(s) * 1000)`. `None` where the parser fails: not a float, NaN or infinite;
/// also when the product does not fit an i64 (Go's conversion result is undefined there).
pub fn timestamp_reads_back(text: &[u8]) -> Option<i64> {
    let s = parse_go_float(text)?;
    if !s.is_finite() {
        return None;
    }
    let ms = s * 1000.0;
    // 2^63 is a float64, so this is exactly the range of i64.
    if !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&ms) {
        return None;
    }
    Some(ms as i64)
}

/// A float as Prometheus' parser reads one: Go's `strconv.ParseFloat(s, 64)`, refusing `p`, `P`
/// and `_` as Prometheus does. Rust's parser is correctly rounded like Go's; the differences
/// handled here are Go's spellings of the special values, and out-of-range input (Go: an error,
/// Rust: infinity). NaN comes back with Go's `math.NaN()` bits.
pub fn parse_go_float(text: &[u8]) -> Option<f64> {
    if text.is_empty() || text.iter().any(|&c| matches!(c, b'p' | b'P' | b'_')) {
        return None;
    }
    let s = std::str::from_utf8(text).ok()?;
    let (negative, body) = match text[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.eq_ignore_ascii_case("nan") {
        // Go takes no sign before NaN.
        return (body.len() == s.len()).then_some(f64::from_bits(GO_NAN_BITS));
    }
    if body.eq_ignore_ascii_case("inf") || body.eq_ignore_ascii_case("infinity") {
        return Some(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    // Go reads hex floats only with a `p` exponent (refused above); a decimal is made of these.
    if !body
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    v.is_finite().then_some(v)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn prefix(pairs: &[(&str, &str)]) -> String {
        let mut out = Vec::new();
        write_series_prefix(&Labels::from_pairs(pairs.iter().copied()), &mut out);
        String::from_utf8(out).unwrap()
    }

    fn ts(ms: i64) -> String {
        let mut out = Vec::new();
        write_timestamp(ms, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn series_prefix_layout() {
        assert_eq!(prefix(&[("__name__", "up")]), "up ");
        assert_eq!(
            prefix(&[("job", "a"), ("__name__", "up"), ("Zone", "z")]),
            r#"up{Zone="z",job="a"} "#
        );
        assert_eq!(prefix(&[("__name__", "my.metric")]), r#"{"my.metric"} "#);
        assert_eq!(
            prefix(&[("__name__", "my.metric"), ("a", "b")]),
            r#"{"my.metric",a="b"} "#
        );
        assert_eq!(
            prefix(&[("__name__", "x"), ("label.name", "v"), ("a", "1")]),
            r#"x{a="1","label.name"="v"} "#
        );
        assert_eq!(
            prefix(&[("__name__", "x"), ("a:b", "v")]),
            r#"x{"a:b"="v"} "#,
            "a colon is classic in metric names only"
        );
    }

    #[test]
    fn escapes_only_backslash_quote_newline() {
        assert_eq!(
            prefix(&[("__name__", "m"), ("a", "q\"b\\s\nn\tt\r\u{1}é")]),
            "m{a=\"q\\\"b\\\\s\\nn\tt\r\u{1}é\"} "
        );
        assert_eq!(
            prefix(&[("__name__", "we\"ird\\\n")]),
            "{\"we\\\"ird\\\\\\n\"} "
        );
    }

    #[test]
    fn sample_line() {
        let mut out = Vec::new();
        write_sample(b"m ", 1e6, 1_700_000_015_500, &mut out);
        write_sample(b"m ", f64::NAN, 1_700_000_030_001, &mut out);
        write_sample(b"m ", -0.0, 0, &mut out);
        assert_eq!(
            out,
            b"m 1e+06 1700000015.5\nm NaN 1700000030.001\nm -0 0\n".to_vec()
        );
    }

    #[test]
    fn timestamps_exact_when_they_survive() {
        for (ms, want) in [
            (0, "0"),
            (1, "0.001"),
            (10, "0.01"),
            (100, "0.1"),
            (1000, "1"),
            (1_700_000_000_000, "1700000000"),
            (1_700_000_015_500, "1700000015.5"),
            (1_700_000_030_001, "1700000030.001"),
            (1_700_000_012_345, "1700000012.345"),
            (-1, "-0.001"),
            (-1500, "-1.5"),
            (999, "0.999"),
        ] {
            assert_eq!(ts(ms), want, "ms {ms}");
            assert_eq!(timestamp_reads_back(want.as_bytes()), Some(ms));
        }
    }

    #[test]
    fn timestamps_that_need_the_next_float() {
        // Go reads 1.001 as 1000 ms: the exact decimal must not be written.
        assert_eq!(timestamp_reads_back(b"1.001"), Some(1000));
        for (ms, want) in [(1001, "1.0010000000000001"), (-1001, "-1.0010000000000001")] {
            assert_eq!(ts(ms), want);
            assert_eq!(timestamp_reads_back(want.as_bytes()), Some(ms));
        }
        for ms in [1002, 2003, 4097, 1 << 52, (1 << 52) - 1, (1 << 52) + 1] {
            for ms in [ms, -ms] {
                assert_eq!(timestamp_reads_back(ts(ms).as_bytes()), Some(ms), "{ms}");
            }
        }
    }

    #[test]
    fn timestamp_range_limits() {
        for ms in [MAX_ABS_TIMESTAMP_MS, -MAX_ABS_TIMESTAMP_MS] {
            assert!(timestamp_supported(ms));
            assert_eq!(timestamp_reads_back(ts(ms).as_bytes()), Some(ms));
        }
        // Just past the limit some milliseconds have no spelling at all: no float64 x gives
        // int64(x * 1000) == ms. The writer falls back to the exact decimal, without panicking.
        let ms = MAX_ABS_TIMESTAMP_MS + 2;
        assert!(!timestamp_supported(ms));
        let x0 = ms as f64 / 1000.0;
        let around = [-1i64, 0, 1].map(|d| f64::from_bits((x0.to_bits() as i64 + d) as u64));
        assert!(around.iter().all(|&x| seconds_read_as(x) != ms));
        assert_eq!(ts(ms), "8796093022208.001");
        assert_eq!(ts(i64::MIN), "-9223372036854775.808");
        assert_eq!(ts(i64::MAX), "9223372036854775.807");
        assert_eq!(timestamp_reads_back(b"9223372036854775.807"), None);
    }

    /// The previous writer, kept as the reference: the exact decimal, unless Go reads it back as
    /// another millisecond and the next float64 away from zero reads back right.
    fn reference_ts(ms: i64) -> String {
        let abs = ms.unsigned_abs();
        let sign = if ms < 0 { "-" } else { "" };
        let exact = format!("{}.{:03}", abs / 1000, abs % 1000);
        let exact = format!(
            "{sign}{}",
            exact.trim_end_matches('0').trim_end_matches('.')
        );
        let x0 = abs as f64 / 1000.0;
        if !timestamp_supported(ms) || seconds_read_as(x0) == abs as i64 {
            return exact;
        }
        let x1 = f64::from_bits(x0.to_bits() + 1);
        if seconds_read_as(x1) != abs as i64 {
            return exact;
        }
        format!("{sign}{x1}")
    }

    fn arb_ts() -> impl Strategy<Value = i64> {
        prop_oneof![
            any::<i64>(),
            -MAX_ABS_TIMESTAMP_MS..=MAX_ABS_TIMESTAMP_MS,
            -100_000i64..100_000,
            1_600_000_000_000i64..1_900_000_000_000,
            (0u32..64, any::<i64>()).prop_map(|(k, v)| v >> k),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn timestamps_as_the_reference_writes_them(ms in arb_ts()) {
            let got = ts(ms);
            prop_assert_eq!(&got, &reference_ts(ms));
            if timestamp_supported(ms) {
                prop_assert_eq!(timestamp_reads_back(got.as_bytes()), Some(ms));
            }
        }

        #[test]
        fn sample_line_is_prefix_value_timestamp(
            bits in any::<u64>(),
            ms in arb_ts(),
            prefix in "[a-z_]{1,8}(\\{[a-z]=\"[ -~]{0,120}\"\\})? ",
        ) {
            let v = f64::from_bits(bits);
            let mut out = b"previous line\n".to_vec();
            write_sample(prefix.as_bytes(), v, ms, &mut out);
            let mut value = Vec::new();
            crate::format::gofloat::format_g(v, &mut value);
            let want = format!(
                "previous line\n{prefix}{} {}\n",
                String::from_utf8(value).unwrap(),
                reference_ts(ms)
            );
            prop_assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }

    #[test]
    fn go_float_spellings() {
        assert_eq!(parse_go_float(b"+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_go_float(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_go_float(b"Infinity"), Some(f64::INFINITY));
        assert_eq!(parse_go_float(b"NaN").map(f64::to_bits), Some(GO_NAN_BITS));
        assert_eq!(parse_go_float(b"1e+06"), Some(1e6));
        assert_eq!(parse_go_float(b".5"), Some(0.5));
        assert_eq!(parse_go_float(b"1."), Some(1.0));
        assert_eq!(parse_go_float(b"1e-400"), Some(0.0));
        for bad in [
            &b""[..],
            b"+nan",
            b"-NaN",
            b"1e400",
            b"0x1p3",
            b"1_0",
            b"0x10",
            b" 1",
            b"1 ",
            b".",
            b"e5",
            b"1e",
            b"inf1",
        ] {
            assert_eq!(parse_go_float(bad), None, "{:?}", bstr::BStr::new(bad));
        }
        assert_eq!(timestamp_reads_back(b"NaN"), None);
        assert_eq!(timestamp_reads_back(b"+Inf"), None);
        assert_eq!(timestamp_reads_back(b"1.5"), Some(1500));
        assert_eq!(timestamp_reads_back(b"-0.0015"), Some(-1));
    }
}
