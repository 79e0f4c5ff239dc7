//! Series selectors out of PromQL expressions (parsed by the `promql-parser` crate, turned into
//! our `Selector`s so matching keeps Prometheus semantics) and how far back each one reaches.

use std::time::{Duration, SystemTime};

use promql_parser::label::{MatchOp as PMatchOp, Matcher as PMatcher};
use promql_parser::parser::{self, AtModifier, Expr, Offset, VectorSelector};

use super::vars::ANY;
use crate::labels::METRIC_NAME;
use crate::select::selector::{MatchOp, Matcher, Selector};

/// Prometheus's default `--query.lookback-delta`: how far back an instant vector looks.
pub const LOOKBACK_MS: i64 = 5 * 60_000;

/// The selectors of one expression and its reach.
#[derive(Debug, Default)]
pub struct Extracted {
    pub selectors: Vec<Selector>,
    /// How long before the first evaluation time data must be there.
    pub reach_ms: i64,
    /// Notes on parts that could not be turned into selectors, or data the export cannot hold.
    pub notes: Vec<String>,
}

/// Where a selector's evaluation times sit: relative to each step, or fixed by `@`.
#[derive(Clone, Copy)]
enum Anchor {
    Step,
    At(i64),
}

#[derive(Clone, Copy)]
struct Walk {
    anchor: Anchor,
    /// Offsets and subquery ranges accumulated on the way down.
    back_ms: i64,
    start_ms: i64,
    end_ms: i64,
}

/// Parses `expr` and collects every vector and matrix selector in it, anywhere (functions,
/// aggregations, binary operations, subqueries, `offset`, `@`). Err: the parser's message.
pub fn extract(expr: &str, start_ms: i64, end_ms: i64) -> Result<Extracted, String> {
    too_large(expr)?;
    let ast = parser::parse(&raw_strings_quoted(expr))?;
    let mut out = Extracted::default();
    let w = Walk {
        anchor: Anchor::Step,
        back_ms: 0,
        start_ms,
        end_ms,
    };
    walk(&ast, w, &mut out);
    Ok(out)
}

/// At most this many binary operators in one expression: promql-parser (0.11) types each binary
/// node by walking its whole left spine, so parsing takes time quadratic in their number (8,000
/// took 4 s, 32,000 over 12 s; no real dashboard comes near).
const MAX_OPERATORS: usize = 2_000;

/// At most this nesting of brackets: the parser and the walk recurse once per level.
const MAX_DEPTH: usize = 256;

/// Refuses, before parsing, an expression too large to analyse in reasonable time and stack: its
/// count of binary operators (outside strings and comments) or its bracket nesting.
fn too_large(expr: &str) -> Result<(), String> {
    let (mut ops, mut depth, mut deepest) = (0usize, 0usize, 0usize);
    let b = expr.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'"' | b'\'' | b'`') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += if b[i] == b'\\' && q != b'`' { 2 } else { 1 };
                }
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'<' | b'>' => ops += 1,
            b'=' | b'!' if b.get(i + 1) == Some(&b'=') => {
                ops += 1;
                i += 1;
            }
            c if c.is_ascii_alphabetic() => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                if matches!(&expr[start..i], "and" | "or" | "unless") {
                    ops += 1;
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    if ops > MAX_OPERATORS {
        return Err(format!(
            "too large to analyse: {ops} binary operators (at most {MAX_OPERATORS}); select its \
             series with --match instead"
        ));
    }
    if deepest > MAX_DEPTH {
        return Err(format!(
            "too deeply nested to analyse: {deepest} levels of brackets (at most {MAX_DEPTH}); \
             select its series with --match instead"
        ));
    }
    Ok(())
}

/// The expression with each `raw` string written as a "quoted" one. promql-parser (0.11) reads
/// backslashes in raw strings as escapes and refuses `\.`, which Prometheus takes as two
/// characters: Grafana's `${var:regex}` in backquotes needs it.
fn raw_strings_quoted(expr: &str) -> std::borrow::Cow<'_, str> {
    if !expr.contains('`') {
        return expr.into();
    }
    let mut out = String::with_capacity(expr.len() + 16);
    let mut chars = expr.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                out.push(c);
                while let Some(d) = chars.next() {
                    out.push(d);
                    if d == '\\' {
                        out.extend(chars.next());
                    } else if d == c || d == '\n' {
                        break;
                    }
                }
            }
            '#' => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == '\n' {
                        break;
                    }
                }
            }
            '`' => {
                let rest = chars.as_str();
                let Some(end) = rest.find('`') else {
                    // Unterminated: left for the parser to report.
                    out.push(c);
                    out.push_str(rest);
                    break;
                };
                out.push_str(&serde_json::to_string(&rest[..end]).expect("strings serialize"));
                chars = rest[end + 1..].chars();
            }
            c => out.push(c),
        }
    }
    out.into()
}

fn walk(e: &Expr, w: Walk, out: &mut Extracted) {
    match e {
        Expr::Aggregate(a) => {
            walk(&a.expr, w, out);
            if let Some(p) = &a.param {
                walk(p, w, out);
            }
        }
        Expr::Unary(u) => walk(&u.expr, w, out),
        Expr::Binary(b) => {
            walk(&b.lhs, w, out);
            walk(&b.rhs, w, out);
        }
        Expr::Paren(p) => walk(&p.expr, w, out),
        Expr::Subquery(s) => {
            let inner = shifted(w, s.at.as_ref(), s.offset.as_ref(), ms(&s.range));
            walk(&s.expr, inner, out);
        }
        Expr::VectorSelector(vs) => selector(vs, w, LOOKBACK_MS, out),
        Expr::MatrixSelector(m) => selector(&m.vs, w, ms(&m.range), out),
        Expr::Call(c) => {
            for a in &c.args.args {
                walk(a, w, out);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

fn ms(d: &Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

/// The walk below an `@`, `offset` and a range of `range_ms`.
fn shifted(w: Walk, at: Option<&AtModifier>, offset: Option<&Offset>, range_ms: i64) -> Walk {
    let off = match offset {
        Some(Offset::Pos(d)) => ms(d),
        Some(Offset::Neg(d)) => -ms(d),
        None => 0,
    };
    let (anchor, back) = match at {
        None => (w.anchor, w.back_ms),
        Some(AtModifier::Start) => (Anchor::At(w.start_ms), 0),
        Some(AtModifier::End) => (Anchor::At(w.end_ms), 0),
        Some(AtModifier::At(t)) => (Anchor::At(system_ms(t)), 0),
    };
    Walk {
        anchor,
        back_ms: back.saturating_add(off).saturating_add(range_ms),
        ..w
    }
}

fn system_ms(t: &SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => ms(&d),
        Err(e) => -ms(&e.duration()),
    }
}

fn selector(vs: &VectorSelector, w: Walk, range_ms: i64, out: &mut Extracted) {
    let w = shifted(w, vs.at.as_ref(), vs.offset.as_ref(), range_ms);
    let reach = match w.anchor {
        Anchor::Step => w.back_ms,
        Anchor::At(t) => w.start_ms.saturating_sub(t).saturating_add(w.back_ms),
    };
    out.reach_ms = out.reach_ms.max(reach);
    // Data after the window: a negative offset, or `@` past its end.
    let before = w.back_ms.saturating_sub(range_ms);
    let latest = match w.anchor {
        Anchor::Step => w.end_ms.saturating_sub(before),
        Anchor::At(t) => t.saturating_sub(before),
    };
    if latest > w.end_ms {
        out.notes.push(format!(
            "{}: needs data up to {} after the end of the window (negative offset or @), which is not exported",
            render(vs),
            super::vars::format_duration(latest.saturating_sub(w.end_ms))
        ));
    }
    match convert(vs) {
        Ok(sels) => out.selectors.extend(sels),
        Err(msg) => out.notes.push(format!("{}: {msg}", render(vs))),
    }
}

fn render(vs: &VectorSelector) -> String {
    let mut s = vs.name.clone().unwrap_or_default();
    let m = vs.matchers.to_string();
    if !m.is_empty() {
        s.push_str(&format!("{{{m}}}"));
    }
    s
}

/// Our selectors for a parsed one: one per `or` alternative (Prometheus 3), the metric name
/// added to each. A value holding [`ANY`] (a variable without a value) matches anything there.
pub fn convert(vs: &VectorSelector) -> Result<Vec<Selector>, String> {
    let groups: Vec<&[PMatcher]> = if vs.matchers.or_matchers.is_empty() {
        vec![&vs.matchers.matchers]
    } else {
        vs.matchers.or_matchers.iter().map(Vec::as_slice).collect()
    };
    if vs.name.as_deref() == Some(ANY) {
        return Err(
            "the metric name comes from a variable without a value: give it with --var".into(),
        );
    }
    let mut out = Vec::new();
    for group in groups {
        let mut ms = Vec::new();
        if let Some(n) = &vs.name {
            ms.extend(matcher(METRIC_NAME, MatchOp::Equal, n)?);
        }
        for m in group {
            let op = match m.op {
                PMatchOp::Equal => MatchOp::Equal,
                PMatchOp::NotEqual => MatchOp::NotEqual,
                PMatchOp::Re(_) => MatchOp::RegexMatch,
                PMatchOp::NotRe(_) => MatchOp::RegexNoMatch,
            };
            if m.name.contains(ANY) || (m.name == METRIC_NAME && m.value == ANY) {
                return Err(
                    "a label name or the metric name comes from a variable without a value: \
                     give it with --var"
                        .into(),
                );
            }
            ms.extend(matcher(&m.name, op, &m.value)?);
        }
        // Prometheus refuses a selector every series matches; one can only arise here when
        // variables without a value were widened, and it would export everything.
        if ms.iter().all(|m| m.matches("")) {
            return Err(
                "selects every series once the variables without a value match anything: \
                 give them with --var"
                    .into(),
            );
        }
        out.push(Selector::from_matchers(ms));
    }
    Ok(out)
}

/// One matcher; [`ANY`] in its value widens it: `.*` in a regex, an equality turned into a
/// regex, a negative matcher or one left matching anything dropped (the selection only grows).
fn matcher(name: &str, op: MatchOp, value: &str) -> Result<Option<Matcher>, String> {
    let make = |op, v: &str| Matcher::new(name, op, v).map_err(|e| format!("{e:#}"));
    if !value.contains(ANY) {
        return make(op, value).map(Some);
    }
    let widened = match op {
        MatchOp::NotEqual | MatchOp::RegexNoMatch => return Ok(None),
        MatchOp::RegexMatch => value.replace(ANY, ".*"),
        MatchOp::Equal => {
            let parts: Vec<String> = value.split(ANY).map(regex::escape).collect();
            parts.join(".*")
        }
    };
    // Matches every value, an absent label too: no constraint at all.
    if widened == ".*" {
        return Ok(None);
    }
    make(MatchOp::RegexMatch, &widened).map(Some)
}

/// What a Grafana Prometheus variable query needs at home so the dropdown lists the same values.
#[derive(Debug)]
pub enum VarQuery {
    /// Series to export.
    Selectors(Vec<Selector>, Vec<String>),
    /// Nothing to add, and why.
    Nothing(String),
}

/// `label_values(sel, label)`, `label_values(label)`, `label_names(...)`, `metrics(re)`,
/// `query_result(q)`, or a plain selector (Grafana's series query). `q` is interpolated.
pub fn variable_query(q: &str, start_ms: i64, end_ms: i64) -> Result<VarQuery, String> {
    let q = q.trim();
    if q.is_empty() {
        return Ok(VarQuery::Nothing("no query".into()));
    }
    let call = |name: &str| {
        q.strip_prefix(name)
            .map(str::trim_start)
            .and_then(|r| r.strip_prefix('('))
            .and_then(|r| r.trim_end().strip_suffix(')'))
            .map(str::trim)
    };
    if let Some(args) = call("label_values") {
        let (sel, label) = match args.rsplit_once(',') {
            Some((s, l)) => (Some(s.trim()), l.trim()),
            None => (None, args),
        };
        let label_ok =
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !label_ok {
            return Err(format!("label_values: {label:?} is not a label name"));
        }
        let not_empty = Matcher::new(label, MatchOp::NotEqual, "").map_err(|e| e.to_string())?;
        let Some(sel) = sel else {
            let s = Selector::from_matchers(vec![not_empty]);
            let note = format!(
                "label_values({label}) lists the values of every series with a {label} label: \
                 all of them are selected (give the metric, label_values(metric, {label}), to select less)"
            );
            return Ok(VarQuery::Selectors(vec![s], vec![note]));
        };
        let ex = extract(sel, start_ms, end_ms)?;
        let sels = ex
            .selectors
            .into_iter()
            .map(|s| {
                let mut ms = s.matchers;
                ms.push(not_empty.clone());
                Selector::from_matchers(ms)
            })
            .collect();
        return Ok(VarQuery::Selectors(sels, ex.notes));
    }
    if let Some(args) = call("label_names") {
        if args.is_empty() {
            return Ok(VarQuery::Nothing(
                "label_names() lists the label names of every series: not reproduced (it would take the whole TSDB)".into(),
            ));
        }
        let ex = extract(args, start_ms, end_ms)?;
        return Ok(VarQuery::Selectors(ex.selectors, ex.notes));
    }
    if let Some(re) = call("metrics") {
        // Grafana tests the regex unanchored against every metric name.
        let m = Matcher::new(METRIC_NAME, MatchOp::RegexMatch, &format!(".*(?:{re}).*"))
            .map_err(|e| format!("metrics({re}): {e:#}"))?;
        return Ok(VarQuery::Selectors(
            vec![Selector::from_matchers(vec![m])],
            vec![],
        ));
    }
    let inner = call("query_result").unwrap_or(q);
    let ex = extract(inner, start_ms, end_ms)?;
    Ok(VarQuery::Selectors(ex.selectors, ex.notes))
}
