//! PromQL series selectors (`metric{label=~"re", other!="x"}`) with Prometheus semantics: fully
//! anchored RE2-style regexes, and an absent label matching as the empty string. The syntax is what
//! Prometheus 2.42's `parser.ParseMetricSelector` takes, plus the Prometheus 3 quoted names.

mod goregex;

use std::fmt;

use nom::branch::alt;
use nom::bytes::complete::{tag, take_while};
use nom::character::complete::{char, multispace1, not_line_ending, satisfy};
use nom::combinator::{recognize, value};
use nom::error::{ErrorKind, ParseError};
use nom::multi::many0_count;
use nom::sequence::pair;
use nom::IResult;

use crate::bad_input;
use crate::labels::{Labels, METRIC_NAME};

/// The four PromQL matcher operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    RegexMatch,
    RegexNoMatch,
}

impl MatchOp {
    /// The operator as PromQL writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::RegexMatch => "=~",
            MatchOp::RegexNoMatch => "!~",
        }
    }
}

/// One `name op "value"` matcher.
#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    /// For the regex operators: `^(?:value)$` in Go's dialect, translated and compiled once.
    re: Option<regex::Regex>,
    /// For a regex that is a plain alternation of literals (`a|b`, or just `a`), the literals:
    /// compared directly instead of running the regex, as Prometheus does.
    set: Option<Box<[String]>>,
}

/// A parsed series selector: the series it selects match every matcher.
#[derive(Clone, Debug)]
pub struct Selector {
    pub matchers: Vec<Matcher>,
    /// The selector as the user wrote it, for messages and the manifest.
    pub text: String,
}

impl Matcher {
    /// A matcher; a regex value is checked and compiled here (bad regex = BadInput).
    pub fn new(name: &str, op: MatchOp, value: &str) -> anyhow::Result<Matcher> {
        Matcher::build(name.to_string(), op, value.to_string())
            .map_err(|e| bad_input!("invalid matcher {name}{}{value:?}: {e}", op.as_str()))
    }

    fn build(name: String, op: MatchOp, value: String) -> Result<Matcher, String> {
        let (mut re, mut set) = (None, None);
        if matches!(op, MatchOp::RegexMatch | MatchOp::RegexNoMatch) {
            match literal_alternatives(&value) {
                Some(lits) => set = Some(lits.into_boxed_slice()),
                None => re = Some(compile_regex(&value)?),
            }
        }
        Ok(Matcher {
            name,
            op,
            value,
            re,
            set,
        })
    }

    /// Whether a label value satisfies the matcher; pass `""` for an absent label.
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Equal => value == self.value,
            MatchOp::NotEqual => value != self.value,
            MatchOp::RegexMatch => self.regex_matches(value),
            MatchOp::RegexNoMatch => !self.regex_matches(value),
        }
    }

    fn regex_matches(&self, value: &str) -> bool {
        match (&self.set, &self.re) {
            (Some(set), _) => set.iter().any(|s| s == value),
            (None, Some(re)) => re.is_match(value),
            (None, None) => unreachable!("a regex matcher is built with a set or a regex"),
        }
    }

    /// Whether every value this matcher accepts, `other` accepts too (false when unsure).
    pub fn implies(&self, other: &Matcher) -> bool {
        if self.name != other.name {
            return false;
        }
        if self.op == other.op && self.value == other.value {
            return true;
        }
        self.pinned_values()
            .is_some_and(|vals| vals.iter().all(|v| other.matches(v)))
    }

    /// The only values this matcher accepts, when it names them: `=` or a literal alternation,
    /// also in the form Grafana writes multi-valued variables, `(a\.b|c)`.
    pub fn pinned_values(&self) -> Option<Vec<String>> {
        match self.op {
            MatchOp::Equal => Some(vec![self.value.clone()]),
            MatchOp::RegexMatch => match &self.set {
                Some(s) => Some(s.to_vec()),
                None => escaped_alternatives(&self.value),
            },
            _ => None,
        }
    }
}

impl fmt::Display for Matcher {
    /// PromQL form: `name="v"`, a non-classic name quoted as Prometheus 3 does.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if crate::labels::is_classic_label_name(&self.name) {
            f.write_str(&self.name)?;
        } else {
            write!(f, "{:?}", self.name)?;
        }
        write!(f, "{}{:?}", self.op.as_str(), self.value)
    }
}

/// Go's `regexp.QuoteMeta` leaves these alone: a value without them is literal text.
fn literal_alternatives(value: &str) -> Option<Vec<String>> {
    const META: &[char] = &[
        '\\', '.', '+', '*', '?', '(', ')', '[', ']', '{', '}', '^', '$',
    ];
    if value.contains(META) {
        return None;
    }
    let mut lits: Vec<String> = value.split('|').map(str::to_string).collect();
    lits.sort_unstable();
    lits.dedup();
    Some(lits)
}

/// `(a\.b|c)` or `a\.b|c`: literals with escaped punctuation, one optional group around them.
/// `None` for anything else (a class, a repetition, a flag, an escape that is not punctuation).
fn escaped_alternatives(value: &str) -> Option<Vec<String>> {
    let inner = match value.strip_prefix('(').and_then(|v| v.strip_suffix(')')) {
        Some(inner) if !inner.starts_with('?') => inner,
        _ => value,
    };
    let mut lits = vec![String::new()];
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e) if e.is_ascii_punctuation() => lits.last_mut()?.push(e),
                _ => return None,
            },
            '|' => lits.push(String::new()),
            '.' | '+' | '*' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '^' | '$' => return None,
            c => lits.last_mut()?.push(c),
        }
    }
    Some(lits)
}

/// Compiles a matcher regex as Prometheus 2.42 does, `^(?:RE)$` (so `.` does not match a
/// newline unless the regex says `(?s)`), with Go's syntax and ASCII-only Perl classes.
fn compile_regex(value: &str) -> Result<regex::Regex, String> {
    let go = format!("^(?:{value})$");
    let rust = goregex::translate(&go).map_err(|e| format!("error parsing regexp: {e}"))?;
    regex::RegexBuilder::new(&rust)
        // Go limits a regex by its program size, which is smaller than this crate's automata
        // for Unicode classes: give room rather than refuse what Prometheus takes.
        .size_limit(64 << 20)
        .build()
        .map_err(|e| match e {
            regex::Error::Syntax(s) => {
                let last = s.lines().last().unwrap_or("").trim_start_matches("error: ");
                format!("error parsing regexp: {last}: `{go}`")
            }
            e => format!("error compiling regexp: {e}"),
        })
}

impl Selector {
    /// Parses a selector: `metric`, `metric{a="b", c!~"x.*",}`, `{__name__=~"es_.*"}`,
    /// `{"my.metric", "service.name"="x"}`. Errors are BadInput with the line:column.
    pub fn parse(s: &str) -> anyhow::Result<Selector> {
        // `at` is a slice of `s`: its start is the position to report.
        let err = |at: &str, msg: &str| {
            let (line, col) = line_col(s, at.as_ptr() as usize - s.as_ptr() as usize);
            bad_input!(
                "invalid series selector {s:?}: {line}:{col}: {msg} \
                 (expected e.g. metric{{label=\"value\", other=~\"regex\"}})"
            )
        };
        let parsed = match selector(s) {
            Ok((_, p)) => p,
            Err(nom::Err::Error(e) | nom::Err::Failure(e)) => return Err(err(e.at, &e.msg)),
            Err(nom::Err::Incomplete(_)) => return Err(err(s, "incomplete input")),
        };
        let mut matchers = Vec::new();
        let mut name: Option<(String, &str)> = parsed.name.map(|n| (n.to_string(), n));
        for item in parsed.items {
            match item {
                Item::Name { value, at } => {
                    if value.is_empty() {
                        return Err(err(at, "the metric name must not be empty"));
                    }
                    if let Some((prev, _)) = &name {
                        let msg =
                            format!("metric name must not be set twice: {prev:?} or {value:?}");
                        return Err(err(at, &msg));
                    }
                    name = Some((value, at));
                }
                Item::Matcher {
                    name: label,
                    name_at,
                    op,
                    value,
                    value_at,
                } => {
                    if label.is_empty() {
                        return Err(err(name_at, "the label name must not be empty"));
                    }
                    matchers.push(Matcher::build(label, op, value).map_err(|e| err(value_at, &e))?);
                }
            }
        }
        if let Some((n, at)) = name {
            if let Some(m) = matchers.iter().find(|m| m.name == METRIC_NAME) {
                let msg = format!("metric name must not be set twice: {n:?} or {:?}", m.value);
                return Err(err(at, &msg));
            }
            // First: the cheapest and most selective test.
            let m = Matcher::build(METRIC_NAME.to_string(), MatchOp::Equal, n);
            matchers.insert(0, m.expect("an equality matcher always builds"));
        }
        if matchers.is_empty() {
            let at = parsed.open.unwrap_or(s);
            return Err(err(at, "a selector needs at least one label matcher"));
        }
        Ok(Selector {
            matchers,
            text: s.to_string(),
        })
    }

    /// Whether the series with these labels is selected (an absent label is the value `""`).
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matchers
            .iter()
            .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
    }

    /// Whether every series this selector selects, `other` selects too (false when unsure):
    /// each of `other`'s matchers is implied by one of ours.
    pub fn covered_by(&self, other: &Selector) -> bool {
        other
            .matchers
            .iter()
            .all(|o| self.matchers.iter().any(|m| m.implies(o)))
    }

    /// The metric names this selector can select, sorted, when a `__name__` matcher pins them
    /// (`=`, or a regex that is an alternation of literals); `None` when any name may match. A
    /// `""` in the list stands for series without a metric name.
    pub fn metric_names(&self) -> Option<Vec<String>> {
        let on_name = || self.matchers.iter().filter(|m| m.name == METRIC_NAME);
        let mut names = on_name().find_map(Matcher::pinned_values)?;
        names.retain(|n| on_name().all(|m| m.matches(n)));
        names.sort_unstable();
        names.dedup();
        Some(names)
    }
}

impl Selector {
    /// A selector of matchers built elsewhere (from a parsed PromQL expression); its text is
    /// the PromQL form, which [`Selector::parse`] and Prometheus read back to the same matchers.
    pub fn from_matchers(matchers: Vec<Matcher>) -> Selector {
        let quote = |s: &str| serde_json::to_string(s).expect("strings serialize");
        let bare_name = matchers.iter().position(|m| {
            m.name == METRIC_NAME
                && m.op == MatchOp::Equal
                && crate::labels::is_classic_metric_name(&m.value)
                && check_metric_ident(&m.value).is_ok()
        });
        let mut text = bare_name.map_or_else(String::new, |i| matchers[i].value.clone());
        let rest: Vec<String> = matchers
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != bare_name)
            .map(|(_, m)| {
                let name = if crate::labels::is_classic_label_name(&m.name) {
                    m.name.clone()
                } else {
                    quote(&m.name)
                };
                format!("{name}{}{}", m.op.as_str(), quote(&m.value))
            })
            .collect();
        if !rest.is_empty() || bare_name.is_none() {
            text.push_str(&format!("{{{}}}", rest.join(", ")));
        }
        Selector { matchers, text }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Whether any of the selectors selects the series; an empty list selects everything.
pub fn any_matches(selectors: &[Selector], labels: &Labels) -> bool {
    selectors.is_empty() || selectors.iter().any(|s| s.matches(labels))
}

/// 1-based line and column (in characters) of byte offset `off`.
fn line_col(s: &str, off: usize) -> (usize, usize) {
    let before = &s[..off];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

// ---- the parser ----

/// A parse error: where, and what went wrong.
#[derive(Debug)]
struct PErr<'a> {
    at: &'a str,
    msg: String,
}

impl<'a> ParseError<&'a str> for PErr<'a> {
    fn from_error_kind(at: &'a str, kind: ErrorKind) -> Self {
        PErr {
            at,
            msg: format!("syntax error ({})", kind.description()),
        }
    }

    fn append(_: &'a str, _: ErrorKind, other: Self) -> Self {
        other
    }
}

type PRes<'a, T> = IResult<&'a str, T, PErr<'a>>;

fn fail<T>(at: &str, msg: impl Into<String>) -> PRes<'_, T> {
    Err(nom::Err::Failure(PErr {
        at,
        msg: msg.into(),
    }))
}

/// The next token, for messages: `"{"`, or `end of input`.
fn describe(i: &str) -> String {
    match i.chars().next() {
        None => "end of input".to_string(),
        Some(c) => format!("{:?}", c.to_string()),
    }
}

struct Parsed<'a> {
    name: Option<&'a str>,
    /// Where `{` is, when there are braces.
    open: Option<&'a str>,
    items: Vec<Item<'a>>,
}

enum Item<'a> {
    Matcher {
        name: String,
        name_at: &'a str,
        op: MatchOp,
        value: String,
        value_at: &'a str,
    },
    /// A bare quoted string in braces: the metric name (Prometheus 3).
    Name { value: String, at: &'a str },
}

/// Spaces and `#` comments, as the PromQL lexer skips them.
fn ws(i: &str) -> PRes<'_, &str> {
    recognize(many0_count(alt((
        multispace1,
        recognize(pair(char('#'), not_line_ending)),
    ))))(i)
}

fn metric_ident(i: &str) -> PRes<'_, &str> {
    recognize(pair(
        satisfy(|c| c.is_ascii_alphabetic() || c == '_' || c == ':'),
        take_while(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
    ))(i)
}

fn label_ident(i: &str) -> PRes<'_, &str> {
    recognize(pair(
        satisfy(|c| c.is_ascii_alphabetic() || c == '_'),
        take_while(|c: char| c.is_ascii_alphanumeric() || c == '_'),
    ))(i)
}

fn match_op(i: &str) -> PRes<'_, MatchOp> {
    alt((
        value(MatchOp::RegexMatch, tag("=~")),
        value(MatchOp::RegexNoMatch, tag("!~")),
        value(MatchOp::NotEqual, tag("!=")),
        value(MatchOp::Equal, tag("=")),
    ))(i)
}

fn selector(input: &str) -> PRes<'_, Parsed<'_>> {
    let (i, _) = ws(input)?;
    let (i, name) = match metric_ident(i) {
        Ok((rest, n)) => {
            check_metric_ident(n)?;
            (rest, Some(n))
        }
        Err(_) => (i, None),
    };
    let (i, _) = ws(i)?;
    let (i, open, items) = if i.starts_with('{') {
        let (rest, items) = braces(i)?;
        (rest, Some(i), items)
    } else {
        (i, None, Vec::new())
    };
    if name.is_none() && open.is_none() {
        let msg = format!(
            "unexpected {}: expected a metric name or \"{{\"",
            describe(i)
        );
        return fail(i, msg);
    }
    let (i, _) = ws(i)?;
    if !i.is_empty() {
        return fail(i, format!("unexpected {} after the selector", describe(i)));
    }
    Ok((i, Parsed { name, open, items }))
}

/// PromQL lexes these words as numbers or keywords, so they cannot be a bare metric name
/// (`and`, `or`, `sum`, `by`, `offset`... can: the grammar takes them back as names).
fn check_metric_ident(n: &str) -> PRes<'_, ()> {
    let lower = n.to_ascii_lowercase();
    match lower.as_str() {
        "inf" | "nan" => fail(n, format!("unexpected number {n:?}: not a metric name")),
        "on" | "ignoring" | "group_left" | "group_right" | "bool" | "atan2" => fail(
            n,
            format!("unexpected keyword {n:?}: not allowed as a metric name"),
        ),
        _ => Ok((n, ())),
    }
}

/// `{` matchers separated by commas (a trailing one allowed) `}`.
fn braces(i: &str) -> PRes<'_, Vec<Item<'_>>> {
    let (mut i, _) = char('{')(i)?;
    let mut items = Vec::new();
    loop {
        i = ws(i)?.0;
        if let Some(rest) = i.strip_prefix('}') {
            return Ok((rest, items));
        }
        let (rest, it) = item(i)?;
        items.push(it);
        i = ws(rest)?.0;
        if let Some(rest) = i.strip_prefix(',') {
            i = rest;
        } else if let Some(rest) = i.strip_prefix('}') {
            return Ok((rest, items));
        } else {
            let msg = format!(
                "unexpected {} in label matching, expected \",\" or \"}}\"",
                describe(i)
            );
            return fail(i, msg);
        }
    }
}

/// `name op "value"`, `"quoted name" op "value"`, or a lone `"metric name"`.
fn item(i: &str) -> PRes<'_, Item<'_>> {
    let (rest, name) = if i.starts_with(['"', '\'', '`']) {
        let (rest, name) = string_lit(i)?;
        let (after_ws, _) = ws(rest)?;
        if match_op(after_ws).is_err() {
            return Ok((rest, Item::Name { value: name, at: i }));
        }
        (after_ws, name)
    } else {
        match label_ident(i) {
            Ok((rest, n)) => (ws(rest)?.0, n.to_string()),
            Err(_) => {
                let msg = format!(
                    "unexpected {} in label matching, expected a label name or \"}}\"",
                    describe(i)
                );
                return fail(i, msg);
            }
        }
    };
    let Ok((rest, op)) = match_op(rest) else {
        let msg = format!(
            "unexpected {} in label matching, expected a label matching operator",
            describe(rest)
        );
        return fail(rest, msg);
    };
    let (value_at, _) = ws(rest)?;
    if !value_at.starts_with(['"', '\'', '`']) {
        let msg = format!(
            "unexpected {} in label matching, expected a string",
            describe(value_at)
        );
        return fail(value_at, msg);
    }
    let (rest, value) = string_lit(value_at)?;
    let item = Item::Matcher {
        name,
        name_at: i,
        op,
        value,
        value_at,
    };
    Ok((rest, item))
}

/// A PromQL string: "double" or 'single' quoted with Go escapes (`\xNN` and octal give bytes,
/// which must form UTF-8), or `raw` with none.
fn string_lit(i: &str) -> PRes<'_, String> {
    let q = match i.chars().next() {
        Some(q @ ('"' | '\'' | '`')) => q,
        _ => return Err(nom::Err::Error(PErr::from_error_kind(i, ErrorKind::Char))),
    };
    let body = &i[1..];
    if q == '`' {
        return match body.find('`') {
            Some(end) => Ok((&body[end + 1..], body[..end].to_string())),
            None => fail(i, "unterminated raw string"),
        };
    }
    let mut buf: Vec<u8> = Vec::new();
    let mut rest = body;
    loop {
        match rest.chars().next() {
            None | Some('\n') => return fail(i, "unterminated quoted string"),
            Some('\\') => rest = unescape(rest, q, &mut buf)?.0,
            Some(c) if c == q => {
                return match String::from_utf8(buf) {
                    Ok(s) => Ok((&rest[1..], s)),
                    Err(_) => fail(
                        i,
                        "the string is not valid UTF-8 (see its \\x or octal escapes)",
                    ),
                };
            }
            Some(c) => {
                buf.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                rest = &rest[c.len_utf8()..];
            }
        }
    }
}

/// One escape sequence (`s` starts at the backslash), as the PromQL lexer checks it and Go's
/// unquoting decodes it.
fn unescape<'a>(s: &'a str, quote: char, buf: &mut Vec<u8>) -> PRes<'a, ()> {
    let Some(c) = s[1..].chars().next() else {
        return fail(s, "escape sequence not terminated");
    };
    let simple = match c {
        'a' => Some(7),
        'b' => Some(8),
        'f' => Some(12),
        'n' => Some(b'\n'),
        'r' => Some(b'\r'),
        't' => Some(b'\t'),
        'v' => Some(11),
        '\\' => Some(b'\\'),
        c if c == quote => Some(c as u8),
        _ => None,
    };
    if let Some(b) = simple {
        buf.push(b);
        return Ok((&s[2..], ()));
    }
    // (digits, base, largest value, gives a byte, where the digits start)
    let (n, base, max, byte, start) = match c {
        '0'..='7' => (3, 8, 255, true, 1),
        'x' => (2, 16, 255, true, 2),
        'u' => (4, 16, 0x10FFFF, false, 2),
        'U' => (8, 16, 0x10FFFF, false, 2),
        c => return fail(s, format!("unknown escape sequence {}", go_rune(c))),
    };
    let mut v: u32 = 0;
    let mut digits = s[start..].chars();
    for _ in 0..n {
        match digits.next() {
            None => return fail(s, "escape sequence not terminated"),
            Some(d) => match d.to_digit(base) {
                Some(x) => v = v * base + x,
                None => {
                    return fail(
                        s,
                        format!("illegal character {} in escape sequence", go_rune(d)),
                    )
                }
            },
        }
    }
    if v > max || (0xD800..0xE000).contains(&v) {
        return fail(s, "escape sequence is an invalid Unicode code point");
    }
    if byte {
        buf.push(v as u8);
    } else {
        let c = char::from_u32(v).expect("checked above");
        buf.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
    }
    Ok((&s[start + n..], ()))
}

/// Go's `%#U`: `U+0071 'q'`.
fn go_rune(c: char) -> String {
    if c.is_control() {
        format!("U+{:04X}", c as u32)
    } else {
        format!("U+{:04X} '{c}'", c as u32)
    }
}

#[cfg(test)]
mod tests;
