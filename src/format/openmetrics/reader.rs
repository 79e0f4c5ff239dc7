//! The strict OpenMetrics reader: Prometheus' parser semantics (2.42, plus the quoted names of
//! 3.x), and the order backfill wants. Zero-copy per sample; labels are decoded once per series.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use super::{parse_go_float, timestamp_reads_back};
use crate::bad_input;
use crate::labels::{is_classic_metric_name, Labels, METRIC_NAME};

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
pub(crate) fn parse_series(line: &[u8]) -> Result<(Labels, usize), String> {
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
    use crate::format::openmetrics::{write_sample, write_series_prefix, EOF_LINE, GO_NAN_BITS};

    /// Labels, value bits, timestamp, first of its series.
    type Got = (Labels, u64, i64, bool);

    fn read_all(text: &str) -> anyhow::Result<(Vec<Got>, ReadStats)> {
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
