//! What to export for a set of Grafana dashboards: every series their panels, annotations and
//! variables query over the export window, and how far before the window those queries reach.

pub mod json;
pub mod promql;
pub mod vars;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use self::json::{Dashboard, Datasource, Panel, VarKind};
use self::promql::VarQuery;
use self::vars::{Builtins, Value, Var};
use crate::select::selector::Selector;

/// Grafana's Prometheus datasource default scrape interval, the floor of `$__interval`.
pub const SCRAPE_INTERVAL_MS: i64 = 15_000;

/// Points per panel when the dashboard does not set `maxDataPoints` (Grafana uses the panel's
/// width in pixels): a narrow panel's, so `$__interval` and the reach back err on the long side.
pub const DEFAULT_MAX_DATA_POINTS: i64 = 300;

/// The export window the dashboards are looked at over, and the `--var` values.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub start_ms: i64,
    pub end_ms: i64,
    pub vars: BTreeMap<String, Vec<String>>,
}

/// Parses `--var NAME=VALUE` arguments; a name given several times is multi-valued.
pub fn parse_vars(args: &[String]) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for a in args {
        let Some((n, v)) = a.split_once('=') else {
            return Err(crate::bad_input!("--var {a:?}: expected NAME=VALUE"));
        };
        let n = n.trim().trim_start_matches('$');
        if n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(crate::bad_input!(
                "--var {a:?}: {n:?} is not a variable name"
            ));
        }
        out.entry(n.to_string()).or_default().push(v.to_string());
    }
    Ok(out)
}

/// One query of a panel, as used.
#[derive(Clone, Debug, Serialize)]
pub struct QueryReport {
    pub ref_id: String,
    /// The expression with the variables replaced, as it runs at home.
    pub expr: String,
    pub selectors: Vec<String>,
    pub reach_ms: i64,
    pub notes: Vec<String>,
    /// The parser's message when the expression does not parse.
    pub error: Option<String>,
}

/// A panel (or annotation, or variable query): what was used and what could not be.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PanelReport {
    pub title: String,
    pub queries: Vec<QueryReport>,
    pub skipped: Vec<String>,
}

/// A variable: its value and where it came from.
#[derive(Clone, Debug, Serialize)]
pub struct VarReport {
    pub name: String,
    pub value: String,
    pub source: &'static str,
    pub used: bool,
}

/// What one dashboard selects.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// The file, as the user named it.
    pub name: String,
    pub title: String,
    pub panels: Vec<PanelReport>,
    pub variables: Vec<VarReport>,
    /// Every selector the dashboard uses, without duplicates, in order of appearance.
    #[serde(serialize_with = "selector_texts")]
    pub selectors: Vec<Selector>,
    /// The longest reach before the window, and the expression that needs it.
    pub reach_ms: i64,
    pub reach_expr: String,
    pub warnings: Vec<String>,
    /// Expressions that do not parse: `panel: ref: message`.
    pub errors: Vec<String>,
    /// Names written as variables that are neither the dashboard's nor a `--var`, each with the
    /// first query that uses one (`panel "T" A`), for the warning.
    #[serde(skip)]
    pub undefined: BTreeMap<String, String>,
}

impl Report {
    /// Panels with at least one query used.
    pub fn panels_used(&self) -> usize {
        self.panels
            .iter()
            .filter(|p| p.title.starts_with("panel ") && !p.queries.is_empty())
            .count()
    }

    pub fn variables_used(&self) -> Vec<&VarReport> {
        self.variables.iter().filter(|v| v.used).collect()
    }
}

fn selector_texts<S: serde::Serializer>(sels: &[Selector], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(sels.iter().map(|x| x.text.as_str()))
}

/// Reads one dashboard file's bytes.
pub fn load(bytes: &[u8]) -> Result<Dashboard, String> {
    json::parse(bytes)
}

/// The union of what the dashboards select: without duplicates, and without a selector whose
/// series another one selects anyway (so fetch asks for each series once).
pub fn union(reports: &[Report]) -> Vec<Selector> {
    let mut seen = BTreeSet::new();
    let all: Vec<&Selector> = reports
        .iter()
        .flat_map(|r| &r.selectors)
        .filter(|s| seen.insert(s.text.clone()))
        .collect();
    // A selector that pins its metric names can only be covered by one that selects its first
    // name too, or by one that pins none: compare with those alone, not with every selector
    // (a dashboard of thousands of metrics made this quadratic).
    let names: Vec<Option<Vec<String>>> = all.iter().map(|s| s.metric_names()).collect();
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut unpinned = Vec::new();
    for (j, n) in names.iter().enumerate() {
        match n {
            Some(n) => n.iter().for_each(|n| by_name.entry(n).or_default().push(j)),
            None => unpinned.push(j),
        }
    }
    let everyone: Vec<usize> = (0..all.len()).collect();
    let kept = |i: usize| {
        let s = all[i];
        let candidates = match names[i].as_ref().and_then(|n| n.first()) {
            Some(first) => [
                by_name.get(first.as_str()).map_or(&[][..], Vec::as_slice),
                &unpinned,
            ],
            None => [&everyone[..], &[][..]],
        };
        !candidates.iter().flat_map(|c| c.iter()).any(|&j| {
            let o = all[j];
            // Of two that cover each other, the first stays.
            j != i && s.covered_by(o) && (j < i || !o.covered_by(s))
        })
    };
    (0..all.len())
        .filter(|&i| kept(i))
        .map(|i| all[i].clone())
        .collect()
}

/// Works out what `d` selects over the window of `opts`.
pub fn analyze(name: &str, d: &Dashboard, opts: &Options) -> Report {
    let window = (opts.end_ms - opts.start_ms).max(1);
    let (vars, unset) = vars::resolve(&d.variables, &opts.vars, window);
    let mut r = Report {
        name: name.to_string(),
        title: d.title.clone(),
        ..Report::default()
    };
    let mut used = BTreeSet::new();
    for p in &d.panels {
        let pr = panel(p, &vars, opts, &mut used, &mut r);
        r.panels.push(pr);
    }
    for v in &d.variables {
        if v.kind == VarKind::Query {
            let pr = variable(v, &vars, opts, &mut used, &mut r);
            r.panels.push(pr);
        }
    }
    let unset: Vec<&str> = unset
        .iter()
        .filter(|n| used.contains(*n))
        .map(String::as_str)
        .collect();
    if !unset.is_empty() {
        r.warnings.push(format!(
            "variables without a saved value match any value: {} (set them with --var NAME=VALUE)",
            unset.join(", ")
        ));
    }
    for (name, at) in &r.undefined {
        r.warnings.push(format!(
            "${name} (first in {at}) is neither a variable of the dashboard nor given with --var: \
             the queries keep it as written and their selectors match no series; give --var \
             {name}=VALUE (or --var {name}='*' for any value)"
        ));
    }
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    r.variables = names
        .into_iter()
        .map(|n| VarReport {
            name: n.clone(),
            value: describe_value(&vars[n].value),
            source: vars[n].source,
            used: used.contains(n),
        })
        .collect();
    r
}

fn describe_value(v: &Value) -> String {
    match v {
        Value::List(l) => l.join("|"),
        Value::Raw(s) => s.clone(),
        Value::Any => "*".into(),
    }
}

/// The built-ins of a panel: `$__interval` as Grafana works it out for the window, not below
/// the panel's or the target's minimum interval.
fn builtins(opts: &Options, p: &Panel, target_interval: Option<&str>) -> Builtins {
    let window = (opts.end_ms - opts.start_ms).max(1);
    let points = p
        .max_data_points
        .map_or(DEFAULT_MAX_DATA_POINTS, |n| n.max(1) as i64);
    let min = [p.min_interval.as_deref(), target_interval]
        .into_iter()
        .flatten()
        .filter_map(vars::parse_interval)
        .max()
        .unwrap_or(SCRAPE_INTERVAL_MS);
    let interval = vars::round_interval(window / points).max(min);
    Builtins {
        from_ms: opts.start_ms,
        to_ms: opts.end_ms,
        interval_ms: interval,
        rate_interval_ms: (interval + SCRAPE_INTERVAL_MS).max(4 * SCRAPE_INTERVAL_MS),
    }
}

/// The variable values a panel is drawn with: once, or once per value of its repeat variable.
fn repeats(p: &Panel, vars: &HashMap<String, Var>) -> Vec<HashMap<String, Var>> {
    let repeated = p.repeat.as_ref().and_then(|n| match vars.get(n) {
        Some(
            var @ Var {
                value: Value::List(values),
                ..
            },
        ) if values.len() > 1 => Some((n, var, values)),
        _ => None,
    });
    let Some((name, var, values)) = repeated else {
        return vec![vars.clone()];
    };
    values
        .iter()
        .map(|one| {
            let mut m = vars.clone();
            let single = Var {
                value: Value::List(vec![one.clone()]),
                ..var.clone()
            };
            m.insert(name.clone(), single);
            m
        })
        .collect()
}

fn panel(
    p: &Panel,
    vars: &HashMap<String, Var>,
    opts: &Options,
    used: &mut BTreeSet<String>,
    r: &mut Report,
) -> PanelReport {
    let kind = if p.annotation { "annotation" } else { "panel" };
    let mut pr = PanelReport {
        title: format!("{kind} {:?}", p.title),
        ..PanelReport::default()
    };
    if let Some(lib) = &p.library {
        pr.skipped.push(format!(
            "library panel {lib:?}: its queries are not in the dashboard JSON (export the \
             dashboard with \"Export for sharing externally\" to include them)"
        ));
        return pr;
    }
    let popts = panel_window(p, opts, &mut pr);
    for t in &p.targets {
        let why = match &t.datasource {
            _ if t.expr.trim().is_empty() => continue,
            _ if t.hidden => Some("hidden".to_string()),
            Datasource::Prometheus => None,
            Datasource::Other(kind) => Some(format!("{kind} datasource, not Prometheus")),
            Datasource::Dashboard => Some("reuses another panel's results".to_string()),
        };
        if let Some(why) = why {
            pr.skipped.push(format!("{}: {why}", t.ref_id));
            continue;
        }
        let b = builtins(&popts, p, t.interval.as_deref());
        for scope in repeats(p, vars) {
            let mut undefined = BTreeSet::new();
            let expr = vars::interpolate(&t.expr, &scope, &b, used, &mut undefined);
            for name in undefined {
                let at = format!("{} {}", pr.title, t.ref_id);
                r.undefined.entry(name).or_insert(at);
            }
            let q = query(&t.ref_id, expr, &popts, &p.title, r);
            // Grafana aligns the start of a range query down to its step; a panel's own time
            // range may start before the dashboard's.
            let reach = q
                .reach_ms
                .saturating_add(b.interval_ms)
                .saturating_add(opts.start_ms.saturating_sub(popts.start_ms));
            if q.error.is_none() && reach > r.reach_ms {
                r.reach_ms = reach;
                r.reach_expr = q.expr.clone();
            }
            pr.queries.push(QueryReport {
                reach_ms: reach,
                ..q
            });
        }
    }
    pr
}

/// The time range a panel queries: the dashboard's, or its own relative time (`timeFrom`, the
/// last N before the end), moved back by its time shift.
fn panel_window(p: &Panel, opts: &Options, pr: &mut PanelReport) -> Options {
    let mut parse = |what: &str, raw: &Option<String>| -> i64 {
        let Some(raw) = raw else { return 0 };
        match vars::parse_interval(raw.trim().trim_start_matches("now-")) {
            Some(ms) => ms,
            None => {
                pr.skipped.push(format!(
                    "{what} {raw:?} is not a duration: the reach back ignores it"
                ));
                0
            }
        }
    };
    let from = parse("relative time", &p.time_from);
    let shift = parse("time shift", &p.time_shift);
    let start = if from > 0 {
        opts.end_ms.saturating_sub(from)
    } else {
        opts.start_ms
    };
    Options {
        start_ms: start.saturating_sub(shift),
        end_ms: opts.end_ms.saturating_sub(shift),
        vars: BTreeMap::new(),
    }
}

fn query(ref_id: &str, expr: String, opts: &Options, title: &str, r: &mut Report) -> QueryReport {
    let mut q = QueryReport {
        ref_id: ref_id.to_string(),
        expr,
        selectors: Vec::new(),
        reach_ms: 0,
        notes: Vec::new(),
        error: None,
    };
    match promql::extract(&q.expr, opts.start_ms, opts.end_ms) {
        Ok(ex) => {
            add_selectors(r, &ex.selectors, &mut q.selectors);
            q.reach_ms = ex.reach_ms;
            q.notes = ex.notes;
        }
        Err(e) => {
            r.errors
                .push(format!("panel {title:?}: {ref_id}: {e}: {}", q.expr));
            q.error = Some(e);
        }
    }
    // As it runs at home when the variable is All or unset (in a regex, where Grafana's All
    // goes): matching anything.
    q.expr = q.expr.replace(vars::ANY, ".*");
    q
}

fn add_selectors(r: &mut Report, sels: &[Selector], texts: &mut Vec<String>) {
    for s in sels {
        if !texts.contains(&s.text) {
            texts.push(s.text.clone());
        }
        if !r.selectors.iter().any(|x| x.text == s.text) {
            r.selectors.push(s.clone());
        }
    }
}

/// A query variable: what its dropdown needs at home.
fn variable(
    v: &json::Variable,
    vars: &HashMap<String, Var>,
    opts: &Options,
    used: &mut BTreeSet<String>,
    r: &mut Report,
) -> PanelReport {
    let mut pr = PanelReport {
        title: format!("variable {:?}", v.name),
        ..PanelReport::default()
    };
    if let Datasource::Other(kind) = &v.datasource {
        pr.skipped
            .push(format!("{kind} datasource, not Prometheus"));
        return pr;
    }
    let b = builtins(opts, &Panel::default(), None);
    let mut undefined = BTreeSet::new();
    let q = vars::interpolate(&v.query, vars, &b, used, &mut undefined);
    for name in undefined {
        let at = format!("variable {:?}", v.name);
        r.undefined.entry(name).or_insert(at);
    }
    let mut qr = QueryReport {
        ref_id: "query".into(),
        expr: q.clone(),
        selectors: Vec::new(),
        reach_ms: 0,
        notes: Vec::new(),
        error: None,
    };
    match promql::variable_query(&q, opts.start_ms, opts.end_ms) {
        Ok(VarQuery::Selectors(sels, notes)) => {
            add_selectors(r, &sels, &mut qr.selectors);
            qr.notes = notes;
            pr.queries.push(qr);
        }
        Ok(VarQuery::Nothing(why)) => pr.skipped.push(format!("{q}: {why}")),
        Err(e) => {
            r.errors.push(format!("variable {:?}: {e}: {q}", v.name));
            qr.error = Some(e);
            pr.queries.push(qr);
        }
    }
    pr
}

/// Fuzz entry: dashboard JSON (and the same bytes as one PromQL expression and as a variable
/// query) must never panic, and every derived selector must read back to itself.
pub fn fuzz_dashboard(data: &[u8]) {
    let opts = Options {
        start_ms: 1_700_000_000_000,
        end_ms: 1_700_086_400_000,
        vars: BTreeMap::from([(
            "cluster".to_string(),
            vec!["a.b".to_string(), "c".to_string()],
        )]),
    };
    let mut sels = Vec::new();
    if let Ok(d) = load(data) {
        sels.extend(analyze("fuzz", &d, &opts).selectors);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(ex) = promql::extract(text, opts.start_ms, opts.end_ms) {
            sels.extend(ex.selectors);
        }
        if let Ok(VarQuery::Selectors(s, _)) =
            promql::variable_query(text, opts.start_ms, opts.end_ms)
        {
            sels.extend(s);
        }
    }
    for s in sels {
        let back = Selector::parse(&s.text)
            .unwrap_or_else(|e| panic!("derived selector {:?} does not read back: {e:#}", s.text));
        let ops = |x: &Selector| -> Vec<(String, &'static str, String)> {
            x.matchers
                .iter()
                .map(|m| (m.name.clone(), m.op.as_str(), m.value.clone()))
                .collect()
        };
        let (mut a, mut b) = (ops(&s), ops(&back));
        a.sort();
        b.sort();
        assert_eq!(a, b, "{}", s.text);
    }
}

#[cfg(test)]
mod tests;
