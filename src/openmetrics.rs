//! OpenMetrics text as `promtool tsdb create-blocks-from openmetrics` reads it: a writer whose
//! bytes backfill imports bit-exact (labels, values and millisecond timestamps), and a strict
//! reader with the Prometheus parser's semantics, used by `verify`, `inspect` and the tests.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use crate::bad_input;
use crate::gofloat::format_g;
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

// ---------------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------------

/// Appends the series part of a sample line, trailing space included: `name{a="1",b="2"} `.
///
/// Labels come in `labels` order (byte-wise by name), `__name__` left out, and no `{}` when no
/// other label is left. A name that is not classic is quoted (`{"my.metric",a="b"}`,
/// `x{"label.name"="v"}`), the syntax of Prometheus 3; 2.x cannot parse it. The caller must see
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

/// Appends one sample line: `prefix` (from [`write_series_prefix`]), the value as Go's `%g`
/// prints it (shortest round-trip digits, so the parser gets the same bits back), the timestamp.
pub fn write_sample(prefix: &[u8], value: f64, ts_ms: i64, out: &mut Vec<u8>) {
    out.extend_from_slice(prefix);
    format_g(value, out);
    out.push(b' ');
    write_timestamp(ts_ms, out);
    out.push(b'\n');
}

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
/// First choice is the exact decimal (`1700000015.5`, `-0.001`). When the nearest float64 to it
/// times 1000 truncates to `ms - 1` (as `1.001` -> 1000), we write the shortest spelling of the
/// next float64 away from zero instead (`1.0010000000000001`).
///
/// Why that float exists and is the next one (for `0 < ms <= MAX_ABS_TIMESTAMP_MS`; negative
/// values mirror it, since negation, truncation toward zero and rounding are symmetric): let
/// `x0` be the float64 nearest `ms/1000` and `x1` the next one up. The exact decimal only fails
/// when `x0 < ms/1000`, so `x1 > ms/1000`, and the real product `1000·x1` exceeds `ms` by less
/// than `1000·ulp(x1) <= 1000·2^-10 < 0.977` (x1 < 2^43). The products that truncate to `ms`,
/// i.e. round to a float in `[ms, ms+1)`, fill an interval of length 1 (0.75 at a power of two,
/// where the float spacing halves below; there `1000·ulp <= 0.49` up to 2^51 ms, and 2^52 ms is
/// checked by a test), so `1000·x1` lands inside. The loop below still steps until the check
/// holds; it stops after one step everywhere (measured over ±1e7 ms around each critical point).
pub fn write_timestamp(ms: i64, out: &mut Vec<u8>) {
    if ms < 0 {
        out.push(b'-');
    }
    let abs = ms.unsigned_abs();
    // A float64 exactly holds |ms| <= 2^53, so `abs as f64 / 1000.0` is one correctly rounded
    // operation on the exact value ms/1000: the same float ParseFloat makes of the exact decimal.
    // The check below is therefore Go's reading of that decimal, without formatting and parsing.
    let x0 = abs as f64 / 1000.0;
    if !timestamp_supported(ms) || seconds_read_as(x0) == abs as i64 {
        write_exact_seconds(abs, out);
        return;
    }
    let mut x = x0;
    loop {
        x = f64::from_bits(x.to_bits() + 1);
        if seconds_read_as(x) == abs as i64 {
            break;
        }
    }
    // `Display` of f64 is the shortest decimal that parses back to `x`, never in exponent form;
    // Go's ParseFloat is correctly rounded too, so it gets `x` back. Writing to a Vec cannot fail.
    use std::io::Write;
    let _ = write!(out, "{x}");
}

/// What Prometheus makes of a float64 number of seconds: `int64(s * 1000)`, truncating.
fn seconds_read_as(s: f64) -> i64 {
    (s * 1000.0) as i64
}

/// Appends `ms / 1000` as an exact decimal without trailing zeros: `1700000030.001`, `1.5`, `0`.
fn write_exact_seconds(ms: u64, out: &mut Vec<u8>) {
    write_u64(ms / 1000, out);
    let frac = (ms % 1000) as u32;
    if frac != 0 {
        let digits = [
            b'.',
            b'0' + (frac / 100) as u8,
            b'0' + (frac / 10 % 10) as u8,
            b'0' + (frac % 10) as u8,
        ];
        let len = if frac % 100 == 0 {
            2
        } else if frac % 10 == 0 {
            3
        } else {
            4
        };
        out.extend_from_slice(&digits[..len]);
    }
}

/// "00" to "99", for writing two digits per division.
const DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566\
    676869707172737475767778798081828384858687888990919293949596979899";

fn write_u64(mut n: u64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    while n >= 100 {
        let d = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[d..d + 2]);
    }
    if n >= 10 {
        let d = n as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[d..d + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + n as u8;
    }
    out.extend_from_slice(&buf[i..]);
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
    if ms >= 9_223_372_036_854_775_808.0 || ms < -9_223_372_036_854_775_808.0 {
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

// ---------------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------------

/// One sample as the reader hands it out. `labels` (with `__name__`) is decoded once per series.
#[derive(Debug)]
pub struct Sample<'a> {
    pub labels: &'a Labels,
    pub value: f64,
    pub ts_ms: i64,
    /// 1-based line number of the sample.
    pub line: u64,
    /// The first sample of its series.
    pub new_series: bool,
}

/// What a successful [`read`] saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub series: u64,
    pub samples: u64,
    /// Metric families (a metric name, or a family that a `# TYPE/HELP/UNIT` line declared).
    pub families: u64,
    pub min_ts_ms: Option<i64>,
    pub max_ts_ms: Option<i64>,
    /// Lines, `# EOF` included.
    pub lines: u64,
}

/// Reads OpenMetrics text strictly, calling `f` for every sample in order.
///
/// Accepted: sample lines with a timestamp, `# TYPE`, `# HELP`, `# UNIT` lines, and `# EOF` as
/// the last line (a final newline after it is allowed). Decoded as Prometheus does: only `\\`,
/// `\"`, `\n` are escapes (any other backslash pair stays as it is, as in Prometheus 2.42),
/// values must be UTF-8, an empty label value means an absent label, numbers as Go reads them.
/// On top, the order backfill wants: each series contiguous with strictly increasing
/// timestamps, each family contiguous. Quoted names (Prometheus 3 syntax) are accepted.
/// Errors are bad input and name the line with an excerpt; errors from `f` pass through.
pub fn read(
    data: &[u8],
    mut f: impl FnMut(Sample<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<ReadStats> {
    let mut r = Reader::default();
    let mut pos = 0;
    let mut line_no = 0u64;
    loop {
        line_no += 1;
        if pos >= data.len() {
            return Err(bad_input!(
                "line {line_no}: the data ends without the \"# EOF\" line"
            ));
        }
        let (line, next, has_newline) = match memchr::memchr(b'\n', &data[pos..]) {
            Some(i) => (&data[pos..pos + i], pos + i + 1, true),
            None => (&data[pos..], data.len(), false),
        };
        let fail = |msg: String| bad_input!("line {line_no}: {msg}: {}", excerpt(line));
        if line == b"# EOF" {
            if next != data.len() {
                return Err(bad_input!(
                    "line {}: data after \"# EOF\": {}",
                    line_no + 1,
                    excerpt(&data[next..])
                ));
            }
            r.stats.lines = line_no;
            return Ok(r.stats);
        }
        if !has_newline {
            return Err(fail(
                "the last line has no newline, and no \"# EOF\" line follows".into(),
            ));
        }
        match line.first() {
            None => return Err(fail("blank line".into())),
            Some(b'#') => r.comment(line).map_err(fail)?,
            Some(_) => r.sample(line, line_no, &mut f, fail)?,
        }
        pos = next;
    }
}

/// Up to 60 bytes of a line, escaped for an error message.
fn excerpt(line: &[u8]) -> String {
    let end = memchr::memchr(b'\n', line).unwrap_or(line.len()).min(60);
    let more = if end < line.len() { "..." } else { "" };
    format!("{:?}{more}", bstr::BStr::new(&line[..end]))
}

/// The family suffixes OpenMetrics allows after a declared family name.
const FAMILY_SUFFIXES: &[&str] = &[
    "_total", "_created", "_bucket", "_count", "_sum", "_gcount", "_gsum", "_info",
];

#[derive(Default)]
struct Reader {
    stats: ReadStats,
    /// The raw series part (trailing space included) of the previous sample line.
    prefix: Vec<u8>,
    labels: Labels,
    in_series: bool,
    last_ts: i64,
    /// 128-bit hashes of every series so far; a collision (odds ~n²/2^129) would only make a
    /// valid file fail, never let a bad one pass.
    series_seen: HashSet<u128>,
    family: Option<String>,
    /// The current family came from a `# TYPE/HELP/UNIT` line, so suffixed names belong to it.
    family_declared: bool,
    families_seen: HashSet<String>,
}

impl Reader {
    fn sample(
        &mut self,
        line: &[u8],
        line_no: u64,
        f: &mut impl FnMut(Sample<'_>) -> anyhow::Result<()>,
        fail: impl Fn(String) -> anyhow::Error,
    ) -> anyhow::Result<()> {
        // Parsing the series part depends on its bytes only, so a line that starts with the
        // previous prefix is the same series: no decoding, no allocation.
        let same_prefix = self.in_series && line.starts_with(&self.prefix);
        let (rest, new_series) = if same_prefix {
            (&line[self.prefix.len()..], false)
        } else {
            let (labels, len) = parse_series(line).map_err(&fail)?;
            self.prefix.clear();
            self.prefix.extend_from_slice(&line[..len]);
            let new_series = !self.in_series || labels != self.labels;
            if new_series {
                self.start_series(labels).map_err(&fail)?;
            }
            (&line[len..], new_series)
        };
        let (value, ts) = parse_value_and_timestamp(rest).map_err(&fail)?;
        if !new_series && ts <= self.last_ts {
            return Err(fail(format!(
                "timestamp {ts} ms is not after {} ms, the previous sample of {}",
                self.last_ts, self.labels
            )));
        }
        self.last_ts = ts;
        let st = &mut self.stats;
        st.samples += 1;
        st.min_ts_ms = Some(st.min_ts_ms.map_or(ts, |m| m.min(ts)));
        st.max_ts_ms = Some(st.max_ts_ms.map_or(ts, |m| m.max(ts)));
        f(Sample {
            labels: &self.labels,
            value,
            ts_ms: ts,
            line: line_no,
            new_series,
        })
    }

    fn start_series(&mut self, labels: Labels) -> Result<(), String> {
        let name = labels.metric_name();
        let family = match &self.family {
            Some(fam) if self.family_declared && is_family_member(fam, name) => fam.clone(),
            _ => name.to_string(),
        };
        if self.family.as_deref() != Some(family.as_str()) {
            self.start_family(family, false)?;
        }
        if !self.series_seen.insert(hash128(&labels)) {
            return Err(format!(
                "series {labels} appears again (each series must be contiguous)"
            ));
        }
        self.labels = labels;
        self.in_series = true;
        self.stats.series += 1;
        Ok(())
    }

    fn start_family(&mut self, family: String, declared: bool) -> Result<(), String> {
        if !self.families_seen.insert(family.clone()) {
            return Err(format!(
                "metric family {family:?} appears again (each family must be contiguous)"
            ));
        }
        self.family = Some(family);
        self.family_declared = declared;
        self.stats.families += 1;
        Ok(())
    }

    /// `# TYPE name type`, `# HELP name text` or `# UNIT name unit`, as Prometheus checks them.
    fn comment(&mut self, line: &[u8]) -> Result<(), String> {
        let (kind, rest) = [&b"# TYPE "[..], b"# HELP ", b"# UNIT "]
            .iter()
            .find_map(|k| line.strip_prefix(*k).map(|r| (&k[2..6], r)))
            .ok_or("not a sample, and not a # TYPE, # HELP, # UNIT or # EOF line")?;
        let name_len = rest
            .iter()
            .position(|&c| c == b' ')
            .ok_or("no text after the metric name")?;
        let name = std::str::from_utf8(&rest[..name_len])
            .ok()
            .filter(|n| is_classic_metric_name(n))
            .ok_or("expected a metric name")?;
        let text = &rest[name_len + 1..];
        match kind {
            b"TYPE" => {
                const TYPES: &[&[u8]] = &[
                    b"counter",
                    b"gauge",
                    b"histogram",
                    b"gaugehistogram",
                    b"summary",
                    b"info",
                    b"stateset",
                    b"unknown",
                ];
                if !TYPES.contains(&text) {
                    return Err("unknown metric type".into());
                }
            }
            b"HELP" => {
                std::str::from_utf8(text).map_err(|_| "help text is not UTF-8")?;
            }
            _ => {
                let ok = text.is_empty()
                    || (name.len() > text.len()
                        && name.as_bytes().ends_with(text)
                        && name.as_bytes()[name.len() - text.len() - 1] == b'_');
                if !ok {
                    return Err("the unit is not a suffix of the metric name".into());
                }
            }
        }
        if self.family.as_deref() != Some(name) {
            self.start_family(name.to_string(), true)?;
            // A series may not go on across another family's metadata.
            self.in_series = false;
        }
        self.family_declared = true;
        Ok(())
    }
}

fn is_family_member(family: &str, name: &str) -> bool {
    name == family
        || name
            .strip_prefix(family)
            .is_some_and(|s| FAMILY_SUFFIXES.contains(&s))
}

fn hash128(labels: &Labels) -> u128 {
    // DefaultHasher::new() has fixed keys, so salting the input gives two independent halves.
    let half = |salt: u8| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut h);
        labels.hash(&mut h);
        h.finish() as u128
    };
    (half(0) << 64) | half(1)
}

/// After the series part: `VALUE TIMESTAMP`, as Prometheus reads them.
fn parse_value_and_timestamp(rest: &[u8]) -> Result<(f64, i64), String> {
    let sp =
        memchr::memchr(b' ', rest).ok_or("no timestamp (backfill needs one on every sample)")?;
    let (value, ts) = (&rest[..sp], &rest[sp + 1..]);
    let value = parse_go_float(value).ok_or("invalid value")?;
    if ts.contains(&b' ') {
        return Err(if ts.windows(3).any(|w| w == b" # ") {
            "exemplars are not supported".into()
        } else {
            "unexpected text after the timestamp".into()
        });
    }
    let ts = timestamp_reads_back(ts).ok_or("invalid timestamp")?;
    Ok((value, ts))
}

/// Decodes the series part of a sample line; returns the labels and the length of the part,
/// trailing space included.
fn parse_series(line: &[u8]) -> Result<(Labels, usize), String> {
    let mut name: Option<String> = None;
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    if line[0].is_ascii_alphabetic() || line[0] == b'_' || line[0] == b':' {
        i = line
            .iter()
            .position(|&c| !(c.is_ascii_alphanumeric() || c == b'_' || c == b':'))
            .unwrap_or(line.len());
        name = Some(String::from_utf8(line[..i].to_vec()).expect("ASCII"));
    } else if line[0] != b'{' {
        return Err("expected a metric name".into());
    }
    if line.get(i) == Some(&b'{') {
        i = parse_braces(line, i + 1, &mut name, &mut pairs)?;
    }
    if line.get(i) != Some(&b' ') {
        return Err(format!(
            "expected a space after the series at byte {}",
            i + 1
        ));
    }
    let name = name.ok_or("no metric name")?;
    if name.is_empty() {
        return Err("empty metric name".into());
    }
    pairs.push((METRIC_NAME.to_string(), name));
    let mut names: Vec<&str> = pairs.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("label name {:?} is not unique", w[0]));
    }
    Ok((Labels::from_pairs(pairs), i + 1))
}

/// Parses `a="1",b="2"}` from `i` (just after `{`); returns the index after `}`. A quoted
/// string not followed by `=` is the metric name (Prometheus 3).
fn parse_braces(
    line: &[u8],
    mut i: usize,
    name: &mut Option<String>,
    pairs: &mut Vec<(String, String)>,
) -> Result<usize, String> {
    if line.get(i) == Some(&b'}') {
        return Ok(i + 1);
    }
    loop {
        let (label, quoted);
        match line.get(i) {
            Some(&c) if c.is_ascii_alphabetic() || c == b'_' => {
                let end = line[i..]
                    .iter()
                    .position(|&c| !(c.is_ascii_alphanumeric() || c == b'_'))
                    .map_or(line.len(), |n| i + n);
                label = String::from_utf8(line[i..end].to_vec()).expect("ASCII");
                quoted = false;
                i = end;
            }
            Some(b'"') => {
                let (s, end) = parse_quoted(line, i)?;
                label = utf8(s, "name")?;
                quoted = true;
                i = end;
            }
            _ => return Err(format!("expected a label name at byte {}", i + 1)),
        }
        match line.get(i) {
            Some(b'=') => {
                if label.is_empty() {
                    return Err("empty label name".into());
                }
                if line.get(i + 1) != Some(&b'"') {
                    return Err(format!("expected a quoted label value at byte {}", i + 2));
                }
                let (v, end) = parse_quoted(line, i + 1)?;
                pairs.push((label, utf8(v, "label value")?));
                i = end;
            }
            Some(b',' | b'}') if quoted => {
                if name.is_some() {
                    return Err("the metric name is given twice".into());
                }
                *name = Some(label);
            }
            _ => return Err(format!("expected '=' at byte {}", i + 1)),
        }
        match line.get(i) {
            Some(b'}') => return Ok(i + 1),
            Some(b',') if line.get(i + 1) != Some(&b'}') => i += 1,
            Some(b',') => return Err(format!("trailing comma at byte {}", i + 1)),
            _ => return Err(format!("expected ',' or '}}' at byte {}", i + 1)),
        }
    }
}

fn utf8(v: Vec<u8>, what: &str) -> Result<String, String> {
    String::from_utf8(v).map_err(|_| format!("{what} is not valid UTF-8"))
}

/// Decodes the quoted string starting at `line[start] == '"'`; returns it and the index after
/// the closing quote. Like Prometheus' replacer, `\` before anything but `\`, `"`, `n` is kept.
fn parse_quoted(line: &[u8], start: usize) -> Result<(Vec<u8>, usize), String> {
    let mut out = Vec::new();
    let mut i = start + 1;
    loop {
        let Some(n) = memchr::memchr2(b'"', b'\\', &line[i..]) else {
            return Err(format!("unterminated string from byte {}", start + 1));
        };
        out.extend_from_slice(&line[i..i + n]);
        i += n;
        if line[i] == b'"' {
            return Ok((out, i + 1));
        }
        match line.get(i + 1) {
            Some(b'\\') => out.push(b'\\'),
            Some(b'"') => out.push(b'"'),
            Some(b'n') => out.push(b'\n'),
            Some(&c) => out.extend_from_slice(&[b'\\', c]),
            None => return Err(format!("unterminated string from byte {}", start + 1)),
        }
        i += 2;
    }
}

#[cfg(test)]
mod tests {
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

    fn read_all(text: &str) -> anyhow::Result<(Vec<(Labels, u64, i64, bool)>, ReadStats)> {
        let mut v = Vec::new();
        let st = read(text.as_bytes(), |s| {
            v.push((s.labels.clone(), s.value.to_bits(), s.ts_ms, s.new_series));
            Ok(())
        })?;
        Ok((v, st))
    }

    fn read_err(text: &str) -> String {
        let e = read_all(text).expect_err(text);
        assert_eq!(crate::exit_codes::ExitCode::of(&e).code(), 2);
        e.to_string()
    }

    #[test]
    fn reads_what_it_writes() {
        let l1 = Labels::from_pairs([("__name__", "a.b"), ("x\"y", "1\\\n\t")]);
        let l2 = Labels::from_pairs([("__name__", "up"), ("job", "j")]);
        let mut out = Vec::new();
        let mut p = Vec::new();
        write_series_prefix(&l1, &mut p);
        write_sample(&p, 1.5, 1001, &mut out);
        write_sample(&p, f64::NAN, 2003, &mut out);
        p.clear();
        write_series_prefix(&l2, &mut p);
        write_sample(&p, -0.0, -1001, &mut out);
        out.extend_from_slice(EOF_LINE);
        let (v, st) = read_all(std::str::from_utf8(&out).unwrap()).unwrap();
        assert_eq!(
            v,
            [
                (l1.clone(), 1.5f64.to_bits(), 1001, true),
                (l1, GO_NAN_BITS, 2003, false),
                (l2, (-0.0f64).to_bits(), -1001, true),
            ]
        );
        let want = ReadStats {
            series: 2,
            samples: 3,
            families: 2,
            min_ts_ms: Some(-1001),
            max_ts_ms: Some(2003),
            lines: 4,
        };
        assert_eq!(st, want);
    }

    #[test]
    fn reads_prometheus_spellings() {
        let text =
            "# TYPE foo counter\n# HELP foo some \\\\ text\nfoo_total{b=\"2\",a=\"1\"} 1 1\n\
                    foo_total{a=\"1\",b=\"2\"} 2 2\nfoo_created{a=\"1\",c=\"\"} 3 3\n\
                    {\"bar\"} 1 1\nbaz{a=\"x\\ty\\q\"} 1 1\n# EOF";
        let (v, st) = read_all(text).unwrap();
        // Another label order, or an empty value, is the same series.
        assert!(!v[1].3);
        assert_eq!(v[2].0.to_string(), r#"{__name__="foo_created", a="1"}"#);
        // Unknown escapes stay as they are, as in Prometheus 2.42 (checked with promtool).
        assert_eq!(v[4].0.get("a"), Some("x\\ty\\q"));
        assert_eq!((st.series, st.families, st.samples), (4, 3, 5));
    }

    #[test]
    fn reader_errors() {
        let cases = [
            ("", "line 1: the data ends without"),
            ("a 1 1\n", "line 2: the data ends without"),
            ("a 1 1", "line 1: the last line has no newline"),
            ("a 1 1\n\n# EOF\n", "line 2: blank line"),
            ("a 1 1\n# EOF\n\n", "line 3: data after"),
            ("# EOF\na 1 1\n", "line 2: data after"),
            ("a 1\n# EOF\n", "no timestamp"),
            ("a 1 1 # {x=\"y\"} 1\n# EOF\n", "exemplars"),
            ("a 1 1 2\n# EOF\n", "unexpected text after the timestamp"),
            ("a  1 1\n# EOF\n", "invalid value"),
            ("a x 1\n# EOF\n", "invalid value"),
            ("a 1 NaN\n# EOF\n", "invalid timestamp"),
            ("a 1 1e400\n# EOF\n", "invalid timestamp"),
            ("a 1 0x1p3\n# EOF\n", "invalid timestamp"),
            (
                "a 1 1\na 2 1\n# EOF\n",
                "line 2: timestamp 1000 ms is not after 1000 ms",
            ),
            ("a 1 2\na 2 1.5\n# EOF\n", "not after"),
            (
                "a 1 1\nb 1 1\na 2 2\n# EOF\n",
                "line 3: metric family \"a\" appears again",
            ),
            (
                "a{x=\"1\"} 1 1\na{x=\"2\"} 1 1\na{x=\"1\"} 2 2\n# EOF\n",
                "appears again",
            ),
            ("a{x=\"1\",} 1 1\n# EOF\n", "trailing comma"),
            (
                "a{x=\"1\",x=\"2\"} 1 1\n# EOF\n",
                "label name \"x\" is not unique",
            ),
            ("a{__name__=\"b\"} 1 1\n# EOF\n", "not unique"),
            ("{a=\"1\"} 1 1\n# EOF\n", "no metric name"),
            ("{\"a\",\"b\"} 1 1\n# EOF\n", "given twice"),
            ("{\"\"} 1 1\n# EOF\n", "empty metric name"),
            ("a{\"\"=\"v\"} 1 1\n# EOF\n", "empty label name"),
            ("a{x=\"1} 1 1\n# EOF\n", "unterminated"),
            ("a{x=1} 1 1\n# EOF\n", "expected a quoted label value"),
            ("a{x} 1 1\n# EOF\n", "expected '='"),
            ("a{x=\"1\" y=\"2\"} 1 1\n# EOF\n", "expected ',' or '}'"),
            ("a{x=\"\0\"} 1 1\n# EOF\n", ""),
            ("1a 1 1\n# EOF\n", "expected a metric name"),
            ("a{x=\"1\"}1 1\n# EOF\n", "expected a space"),
            ("# foo\n# EOF\n", "not a sample"),
            ("#TYPE a gauge\n# EOF\n", "not a sample"),
            ("# TYPE a bogus\n# EOF\n", "unknown metric type"),
            ("# HELP a\n# EOF\n", "no text after"),
            ("# UNIT a_secs seconds\n# EOF\n", "unit is not a suffix"),
            ("# TYPE a.b gauge\n# EOF\n", "expected a metric name"),
        ];
        for (text, want) in cases {
            let text = text.to_string();
            if want.is_empty() {
                // NUL bytes are allowed raw in label values.
                read_all(&text).unwrap();
                continue;
            }
            let got = read_err(&text);
            assert!(got.contains(want), "{text:?}: got {got:?}, want {want:?}");
        }
        let bad_utf8 = b"a{x=\"\xff\"} 1 1\n# EOF\n";
        let e = read(bad_utf8, |_| Ok(())).unwrap_err().to_string();
        assert!(e.contains("line 1: label value is not valid UTF-8"), "{e}");
    }

    #[test]
    fn errors_carry_an_excerpt_and_callback_errors_pass_through() {
        let long = format!("a{{x=\"{}\"}} 1 1\na 1 1\n# EOF\n", "y".repeat(100));
        let e = read_err(&long.replace("1\na", "1 9\na"));
        assert!(
            e.contains(r#"line 1: unexpected text after the timestamp: "a{x=\"yyy"#),
            "{e}"
        );
        assert!(e.ends_with("..."), "{e}");
        let e = read(b"a 1 1\n# EOF\n", |_| anyhow::bail!("stop")).unwrap_err();
        assert_eq!(e.to_string(), "stop");
    }

    #[test]
    fn metadata_keeps_families_together() {
        let ok = "# TYPE h histogram\nh_bucket{le=\"1\"} 1 1\nh_count 1 1\nh_sum 1 1\n\
                  # TYPE g gauge\ng 1 1\nh_other 1 1\n# EOF\n";
        let (_, st) = read_all(ok).unwrap();
        assert_eq!(st.families, 3);
        // Without metadata in force, h_sum is a family of its own, as in OpenMetrics.
        read_all("# TYPE h histogram\nh_count 1 1\ng 1 1\nh_sum 1 1\n# EOF\n").unwrap();
        let e = read_err("# TYPE h histogram\nh_count 1 1\ng 1 1\n# HELP h x\n# EOF\n");
        assert!(
            e.contains("line 4: metric family \"h\" appears again"),
            "{e}"
        );
        let e = read_err("a 1 1\n# TYPE b gauge\na 2 2\n# EOF\n");
        assert!(
            e.contains("line 3: metric family \"a\" appears again"),
            "{e}"
        );
    }
}
