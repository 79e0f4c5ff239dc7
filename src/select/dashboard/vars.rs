//! Grafana variable interpolation for Prometheus queries: `$var`, `${var}`, `${var:format}`,
//! `[[var]]`, the built-ins fitted to the export window, and the values each variable takes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;

use super::json::{VarKind, Variable};

/// Stands for "any value" where a variable has none: identifier-safe, so it survives every
/// escaping and parses as part of a name or string; turned into `.*` when matchers are built.
pub const ANY: &str = "__prom2om_any__";

/// What a variable expands to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    List(Vec<String>),
    /// A custom "All" value, inserted as written (Grafana does not escape it).
    Raw(String),
    /// Unknown: any value matches.
    Any,
}

/// A variable ready for interpolation.
#[derive(Clone, Debug)]
pub struct Var {
    pub multi: bool,
    pub include_all: bool,
    pub value: Value,
    /// Where the value came from, for the report: `--var`, `saved`, `all`, `unset`.
    pub source: &'static str,
}

/// The export window and the panel's intervals, for the built-ins.
#[derive(Clone, Copy, Debug)]
pub struct Builtins {
    pub from_ms: i64,
    pub to_ms: i64,
    pub interval_ms: i64,
    pub rate_interval_ms: i64,
}

/// Grafana's variable syntaxes: `$var`, `[[var:fmt]]`, `${var.path:fmt}`.
static VARIABLE: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(
        r"\$([A-Za-z0-9_]+)|\[\[([A-Za-z0-9_]+?)(?::([A-Za-z0-9_]+))?\]\]|\$\{([A-Za-z0-9_]+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}",
    )
    .expect("valid regex")
});

/// Replaces every variable Grafana would replace in `s`; unknown names stay as written (as
/// `$1` in `label_replace`). Names of the variables used go into `used`; unknown names other than
/// group references (`$1`) go into `undefined`, since a selector that keeps one matches nothing.
pub fn interpolate(
    s: &str,
    vars: &HashMap<String, Var>,
    b: &Builtins,
    used: &mut BTreeSet<String>,
    undefined: &mut BTreeSet<String>,
) -> String {
    VARIABLE
        .replace_all(s, |c: &regex::Captures| {
            let name = c.get(1).or(c.get(2)).or(c.get(4)).expect("a name").as_str();
            let fmt = c.get(3).or(c.get(6)).map(|m| m.as_str());
            let whole = c.get(0).expect("match").as_str();
            if let Some(v) = builtin(name, fmt, b) {
                return v;
            }
            match vars.get(name) {
                Some(var) => {
                    used.insert(name.to_string());
                    format_value(name, var, fmt)
                }
                None => {
                    if !name.bytes().all(|c| c.is_ascii_digit()) {
                        undefined.insert(name.to_string());
                    }
                    whole.to_string()
                }
            }
        })
        .into_owned()
}

fn builtin(name: &str, fmt: Option<&str>, b: &Builtins) -> Option<String> {
    let range_ms = b.to_ms - b.from_ms;
    Some(match name {
        "__interval" => format_duration(b.interval_ms),
        "__interval_ms" => b.interval_ms.to_string(),
        "__rate_interval" => format_duration(b.rate_interval_ms),
        "__rate_interval_ms" => b.rate_interval_ms.to_string(),
        "__range" => format!("{}s", (range_ms + 500) / 1000),
        "__range_s" => ((range_ms + 500) / 1000).to_string(),
        "__range_ms" => range_ms.to_string(),
        "__from" | "__to" => {
            let ms = if name == "__from" { b.from_ms } else { b.to_ms };
            let mut parts = fmt.unwrap_or("").split(':');
            match (parts.next(), parts.next()) {
                (Some("date"), Some("seconds")) => ((ms + 500).div_euclid(1000)).to_string(),
                (Some("date"), None | Some("iso")) => chrono::DateTime::from_timestamp_millis(ms)?
                    .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                    .to_string(),
                _ => ms.to_string(),
            }
        }
        _ => return None,
    })
}

/// A value as Grafana formats it for a Prometheus query.
fn format_value(name: &str, var: &Var, fmt: Option<&str>) -> String {
    let vals = match &var.value {
        Value::Any => return ANY.to_string(),
        Value::Raw(s) => return s.clone(),
        Value::List(v) => v,
    };
    let multi = var.multi || var.include_all || vals.len() > 1;
    let alternation = |escaped: Vec<String>| match escaped.len() {
        1 => escaped.into_iter().next().expect("one"),
        _ => format!("({})", escaped.join("|")),
    };
    let quote = |q: char| {
        let list: Vec<String> = vals
            .iter()
            .map(|v| format!("{q}{}{q}", v.replace(q, &format!("\\{q}"))))
            .collect();
        list.join(",")
    };
    match fmt.map(|f| f.split(':').next().unwrap_or("")) {
        None if !multi => prometheus_regular_escape(&vals.join(",")),
        None => alternation(vals.iter().map(|v| prometheus_regex_escape(v)).collect()),
        Some("regex") => alternation(vals.iter().map(|v| regex_escape(v)).collect()),
        Some("pipe") => vals.join("|"),
        Some("glob") if vals.len() > 1 => format!("{{{}}}", vals.join(",")),
        Some("singlequote") => quote('\''),
        Some("doublequote") => quote('"'),
        Some("json") if multi => serde_json::to_string(vals).expect("strings serialize"),
        Some("text") => vals.join(" + "),
        Some("queryparam") => vals
            .iter()
            .map(|v| format!("var-{name}={v}"))
            .collect::<Vec<_>>()
            .join("&"),
        Some("distributed") => {
            let rest = vals.iter().skip(1).map(|v| format!("{name}={v}"));
            vals.iter()
                .take(1)
                .cloned()
                .chain(rest)
                .collect::<Vec<_>>()
                .join(",")
        }
        // csv, raw, glob and json of one value, and formats Grafana does not know.
        Some(_) => vals.join(","),
    }
}

/// Grafana's escaping of a single-valued variable in a Prometheus query (classic behaviour).
fn prometheus_regular_escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\'', "\\\\'")
}

/// Grafana's escaping of each value of a multi-valued variable in a Prometheus query: regex
/// metacharacters get a backslash, written twice to survive the PromQL string.
fn prometheus_regex_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 8);
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\\\\\"),
            '$' | '^' | '*' | '{' | '}' | '[' | ']' | '+' | '?' | '.' | '(' | ')' | '|' => {
                out.push_str("\\\\");
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Grafana's `escapeRegex` (the `:regex` format): one backslash before each metacharacter.
fn regex_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 8);
    for c in v.chars() {
        if "\\^$*+?.()|[]{}/".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A duration in Prometheus syntax, largest units first: `1h30m`, `90s`, `250ms`.
pub fn format_duration(ms: i64) -> String {
    if ms <= 0 {
        return "0s".into();
    }
    const UNITS: [(&str, i64); 6] = [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
        ("", 0),
    ];
    let mut out = String::new();
    let mut rest = ms;
    for (unit, size) in UNITS.iter().take(5) {
        if rest >= *size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

/// Grafana's `roundInterval`: the raw step rounded to a readable one.
pub fn round_interval(ms: i64) -> i64 {
    const TABLE: &[(i64, i64)] = &[
        (10, 1),
        (15, 10),
        (35, 20),
        (75, 50),
        (150, 100),
        (350, 200),
        (750, 500),
        (1_500, 1_000),
        (3_500, 2_000),
        (7_500, 5_000),
        (12_500, 10_000),
        (17_500, 15_000),
        (25_000, 20_000),
        (45_000, 30_000),
        (90_000, 60_000),
        (210_000, 120_000),
        (450_000, 300_000),
        (750_000, 600_000),
        (1_050_000, 900_000),
        (1_500_000, 1_200_000),
        (2_700_000, 1_800_000),
        (5_400_000, 3_600_000),
        (9_000_000, 7_200_000),
        (16_200_000, 10_800_000),
        (24_300_000, 21_600_000),
        (64_800_000, 43_200_000),
        (129_600_000, 86_400_000),
        (604_800_000, 604_800_000),
        (3_024_000_000, 2_592_000_000),
    ];
    TABLE
        .iter()
        .find(|(limit, _)| ms < *limit)
        .map_or(31_536_000_000, |(_, v)| *v)
}

/// Parses a Grafana interval (`30s`, `>1m`, `1h30m`); `None` for anything else (`$var`).
pub fn parse_interval(s: &str) -> Option<i64> {
    crate::timeparse::parse_duration(s.trim().trim_start_matches('>')).ok()
}

/// The values every variable takes, and the names that fell back to "any value".
pub fn resolve(
    variables: &[Variable],
    user: &BTreeMap<String, Vec<String>>,
    window_ms: i64,
) -> (HashMap<String, Var>, Vec<String>) {
    let mut out = HashMap::new();
    let mut unset = Vec::new();
    for v in variables {
        if matches!(v.kind, VarKind::Datasource | VarKind::Adhoc) {
            continue;
        }
        let var = match user.get(&v.name) {
            Some(vals) => from_user(v, vals, window_ms),
            None => from_saved(v, window_ms),
        };
        if var.value == Value::Any && var.source == "unset" {
            unset.push(v.name.clone());
        }
        out.insert(v.name.clone(), var);
    }
    for (name, vals) in user {
        if !out.contains_key(name) {
            let plain = Variable {
                name: name.clone(),
                kind: VarKind::Custom,
                query: String::new(),
                current: Vec::new(),
                options: Vec::new(),
                multi: false,
                include_all: false,
                all_value: None,
                datasource: Default::default(),
                auto_count: None,
                auto_min: None,
            };
            out.insert(name.clone(), from_user(&plain, vals, window_ms));
        }
    }
    (out, unset)
}

fn from_user(v: &Variable, vals: &[String], window_ms: i64) -> Var {
    let mut var = all_of(v);
    var.source = "--var";
    if !vals.iter().any(|s| s == "*") {
        var.value = Value::List(vals.to_vec());
    } else if v.kind == VarKind::Interval {
        // Any interval: the longest, which reaches back the most.
        let longest = Variable {
            current: Vec::new(),
            ..v.clone()
        };
        var.value = Value::List(vec![interval_value(&longest, window_ms)]);
    }
    var
}

/// The "All" choice: the custom all value, else every known option, else anything.
fn all_of(v: &Variable) -> Var {
    let options = match v.kind {
        VarKind::Custom | VarKind::Interval => split_custom(&v.query),
        _ => v.options.clone(),
    };
    let value = match (&v.all_value, options.is_empty()) {
        (Some(a), _) => Value::Raw(a.clone()),
        (None, false) if matches!(v.kind, VarKind::Custom) => Value::List(options),
        _ => Value::Any,
    };
    Var {
        multi: v.multi,
        include_all: v.include_all,
        value,
        source: "all",
    }
}

fn from_saved(v: &Variable, window_ms: i64) -> Var {
    let saved = |value| Var {
        multi: v.multi,
        include_all: v.include_all,
        value,
        source: "saved",
    };
    match v.kind {
        VarKind::Constant => return saved(Value::List(vec![v.query.clone()])),
        VarKind::Interval => return saved(Value::List(vec![interval_value(v, window_ms)])),
        _ => {}
    }
    if v.current.iter().any(|c| c == "$__all") {
        return all_of(v);
    }
    if !v.current.is_empty() {
        return saved(Value::List(v.current.clone()));
    }
    if v.kind == VarKind::Textbox && !v.query.is_empty() {
        return saved(Value::List(vec![v.query.clone()]));
    }
    Var {
        multi: v.multi,
        include_all: v.include_all,
        value: Value::Any,
        source: "unset",
    }
}

/// An interval variable's value: the saved one, `auto` worked out as Grafana does, or with
/// nothing saved the longest option (the most any choice at home can reach back).
fn interval_value(v: &Variable, window_ms: i64) -> String {
    let options = split_custom(&v.query);
    let current = v.current.first().map(String::as_str).unwrap_or("");
    let auto = current == "auto" || current.starts_with("$__auto_interval");
    if auto {
        let count = v.auto_count.unwrap_or(30).max(1) as i64;
        let min = v
            .auto_min
            .as_deref()
            .and_then(parse_interval)
            .unwrap_or(10_000);
        return format_duration(round_interval(window_ms / count).max(min));
    }
    if parse_interval(current).is_some() {
        return current.to_string();
    }
    options
        .iter()
        .filter_map(|o| parse_interval(o).map(|ms| (ms, o)))
        .max()
        .map_or_else(|| "5m".to_string(), |(_, o)| o.clone())
}

/// A custom variable's `a,b,c` (or `text : value`) list.
fn split_custom(q: &str) -> Vec<String> {
    q.split(',')
        .map(|s| match s.split_once(" : ") {
            Some((_, v)) => v.trim().to_string(),
            None => s.trim().to_string(),
        })
        .filter(|s| !s.is_empty() && s != "auto")
        .collect()
}
