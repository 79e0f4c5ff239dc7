//! Grafana's dashboard JSON model read into what selection needs: panels (nested, collapsed and
//! pre-v16 rows, library panels, schema v2 elements), their targets, annotations and variables.

use std::collections::HashMap;

use serde_json::Value;

/// A dashboard as far as selection needs it.
#[derive(Clone, Debug, Default)]
pub struct Dashboard {
    pub title: String,
    pub panels: Vec<Panel>,
    pub variables: Vec<Variable>,
}

/// A panel with queries, or an annotation query.
#[derive(Clone, Debug, Default)]
pub struct Panel {
    /// `Row / Panel` for panels inside a row.
    pub title: String,
    pub targets: Vec<Target>,
    /// A library panel whose model is not in the file: its name.
    pub library: Option<String>,
    /// The variable the panel (or its row) repeats over.
    pub repeat: Option<String>,
    /// The panel's minimum interval (`1m`, `>1m`), raw.
    pub min_interval: Option<String>,
    pub max_data_points: Option<u64>,
    /// Grafana's per-panel "relative time" (`timeFrom`) and "time shift" (`timeShift`), raw.
    pub time_from: Option<String>,
    pub time_shift: Option<String>,
    /// An annotation query rather than a panel.
    pub annotation: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Target {
    pub ref_id: String,
    pub expr: String,
    pub hidden: bool,
    pub datasource: Datasource,
    /// The target's own minimum interval, raw.
    pub interval: Option<String>,
}

/// What kind of datasource answers a query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Datasource {
    /// Prometheus, or a reference that cannot be resolved (the default datasource, a name):
    /// taken as Prometheus, the only kind a dashboard for this tool is expected to use.
    #[default]
    Prometheus,
    /// Another plugin type (`loki`, `elasticsearch`...).
    Other(String),
    /// Grafana's `-- Dashboard --` datasource: reuses another panel's results.
    Dashboard,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VarKind {
    Query,
    Custom,
    Constant,
    Textbox,
    Interval,
    Datasource,
    Adhoc,
    Other(String),
}

/// A templating variable.
#[derive(Clone, Debug)]
pub struct Variable {
    pub name: String,
    pub kind: VarKind,
    /// The query (query variables), the value list (custom, interval) or the value (constant,
    /// textbox).
    pub query: String,
    /// The saved value(s); `$__all` stands for All.
    pub current: Vec<String>,
    pub options: Vec<String>,
    pub multi: bool,
    pub include_all: bool,
    pub all_value: Option<String>,
    pub datasource: Datasource,
    /// Interval variables: the `auto` option's number of steps and minimum.
    pub auto_count: Option<u64>,
    pub auto_min: Option<String>,
}

/// Reads a dashboard: the plain model, the export wrapper `{"dashboard": ...}`, a schema v2
/// resource (`spec.elements`). Errors name what is wrong; the caller adds the file.
pub fn parse(bytes: &[u8]) -> Result<Dashboard, String> {
    let root: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let mut d = &root;
    if let Some(inner) = d.get("dashboard").filter(|v| v.is_object()) {
        d = inner;
    }
    if let Some(spec) = d.get("spec").filter(|s| s.get("elements").is_some()) {
        d = spec;
    }
    if !d.is_object() {
        return Err("not a Grafana dashboard: the JSON is not an object".into());
    }
    if d.get("panels").is_none()
        && d.get("rows").is_none()
        && d.get("elements").is_none()
        && d.get("templating").is_none()
    {
        return Err(
            "not a Grafana dashboard: no panels, rows, elements or templating found".into(),
        );
    }
    let ctx = Context::new(&root, d);
    let title = str_of(d, "title").unwrap_or("untitled").to_string();
    let mut panels = Vec::new();
    if let Some(elements) = d.get("elements").and_then(Value::as_object) {
        v2::read_elements(elements, &mut panels);
        let variables = v2::read_variables(d);
        v2::read_annotations(d, &mut panels);
        return Ok(Dashboard {
            title,
            panels,
            variables,
        });
    }
    let variables = read_variables(d, &ctx);
    // An expanded row holds no panels: those below it, up to the next row, are its own.
    let mut row: (String, Option<&str>) = (String::new(), None);
    for p in arr(d, "panels") {
        if str_of(p, "type") == Some("row") {
            row = (
                str_of(p, "title").unwrap_or("").to_string(),
                str_of(p, "repeat").filter(|s| !s.is_empty()),
            );
        }
        let (prefix, repeat) = match str_of(p, "type") {
            Some("row") => ("", None),
            _ => (row.0.as_str(), row.1),
        };
        ctx.read_panel(p, prefix, repeat, &mut panels);
    }
    for row in arr(d, "rows") {
        let prefix = str_of(row, "title").unwrap_or("");
        let repeat = str_of(row, "repeat").filter(|s| !s.is_empty());
        for p in arr(row, "panels") {
            ctx.read_panel(p, prefix, repeat, &mut panels);
        }
    }
    read_annotations(d, &ctx, &mut panels);
    Ok(Dashboard {
        title,
        panels,
        variables,
    })
}

fn arr<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn truthy(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// A JSON scalar as text (`"5m"`, `300`).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn join_title(prefix: &str, title: &str) -> String {
    match (prefix.is_empty(), title.is_empty()) {
        (true, _) => title.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) => format!("{prefix} / {title}"),
    }
}

/// What datasource references resolve against: `__inputs` of exported dashboards, datasource
/// variables, and library panel models in `__elements`.
struct Context<'a> {
    inputs: HashMap<String, String>,
    ds_vars: HashMap<String, String>,
    elements: HashMap<String, &'a Value>,
}

impl<'a> Context<'a> {
    fn new(root: &'a Value, d: &'a Value) -> Context<'a> {
        let mut inputs = HashMap::new();
        for i in arr(root, "__inputs").chain(arr(d, "__inputs")) {
            if let (Some(n), Some(p)) = (str_of(i, "name"), str_of(i, "pluginId")) {
                inputs.insert(n.to_string(), p.to_string());
            }
        }
        let mut ds_vars = HashMap::new();
        for v in templating(d) {
            if str_of(v, "type") == Some("datasource") {
                if let (Some(n), Some(q)) = (str_of(v, "name"), v.get("query").and_then(text)) {
                    ds_vars.insert(n.to_string(), q);
                }
            }
        }
        let mut elements = HashMap::new();
        for holder in [root, d] {
            if let Some(m) = holder.get("__elements").and_then(Value::as_object) {
                for (uid, e) in m {
                    if let Some(model) = e.get("model") {
                        elements.insert(uid.clone(), model);
                    }
                }
            }
        }
        Context {
            inputs,
            ds_vars,
            elements,
        }
    }

    /// The kind of a datasource reference: an object `{type, uid}`, a name, `${DS_X}` of
    /// `__inputs`, `$var` of a datasource variable, or nothing (the default).
    fn datasource(&self, v: Option<&Value>) -> Option<Datasource> {
        let v = v.filter(|v| !v.is_null())?;
        if let Some(t) = str_of(v, "type") {
            return Some(kind_of_type(t, str_of(v, "uid").unwrap_or("")));
        }
        let name = v.as_str().or_else(|| str_of(v, "uid"))?;
        Some(self.datasource_name(name))
    }

    fn datasource_name(&self, name: &str) -> Datasource {
        let var = name
            .strip_prefix("${")
            .and_then(|s| s.strip_suffix('}'))
            .or_else(|| name.strip_prefix('$'));
        if let Some(var) = var {
            if let Some(p) = self.inputs.get(var).or_else(|| self.ds_vars.get(var)) {
                return kind_of_type(p, "");
            }
        }
        kind_of_name(name)
    }

    fn read_panel(&self, p: &Value, prefix: &str, repeat: Option<&str>, out: &mut Vec<Panel>) {
        if str_of(p, "type") == Some("row") {
            let title = join_title(prefix, str_of(p, "title").unwrap_or(""));
            let row_repeat = str_of(p, "repeat").filter(|s| !s.is_empty()).or(repeat);
            for inner in arr(p, "panels") {
                self.read_panel(inner, &title, row_repeat, out);
            }
            return;
        }
        let mut p = p;
        let lib = p.get("libraryPanel");
        if let Some(lib) = lib.filter(|_| p.get("targets").is_none()) {
            match str_of(lib, "uid").and_then(|u| self.elements.get(u)) {
                Some(model) => p = model,
                None => {
                    let name = str_of(lib, "name").or(str_of(lib, "uid")).unwrap_or("?");
                    out.push(Panel {
                        title: join_title(prefix, str_of(p, "title").unwrap_or(name)),
                        library: Some(name.to_string()),
                        ..Panel::default()
                    });
                    return;
                }
            }
        }
        // Panels nested in panels (old collapsed rows kept as `panels` on a non-row panel).
        for inner in arr(p, "panels") {
            self.read_panel(inner, prefix, repeat, out);
        }
        let Some(targets) = p.get("targets").and_then(Value::as_array) else {
            return;
        };
        let panel_ds = self.datasource(p.get("datasource"));
        let targets = targets
            .iter()
            .filter_map(|t| {
                let ds = self
                    .datasource(t.get("datasource"))
                    .filter(|d| !matches!(d, Datasource::Other(k) if k == "mixed"))
                    .or_else(|| panel_ds.clone())
                    .unwrap_or_default();
                Some(Target {
                    ref_id: str_of(t, "refId").unwrap_or("").to_string(),
                    expr: str_of(t, "expr")?.to_string(),
                    hidden: truthy(t, "hide"),
                    datasource: ds,
                    interval: str_of(t, "interval")
                        .filter(|s| !s.is_empty())
                        .map(str::to_string),
                })
            })
            .collect();
        out.push(Panel {
            title: join_title(prefix, str_of(p, "title").unwrap_or("")),
            targets,
            library: None,
            repeat: str_of(p, "repeat")
                .filter(|s| !s.is_empty())
                .or(repeat)
                .map(str::to_string),
            min_interval: str_of(p, "interval")
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            max_data_points: p.get("maxDataPoints").and_then(Value::as_u64),
            time_from: str_of(p, "timeFrom")
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            time_shift: str_of(p, "timeShift")
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            annotation: false,
        });
    }
}

/// `-- Mixed --`, `-- Dashboard --`, `-- Grafana --` and plugin ids.
fn kind_of_type(t: &str, uid: &str) -> Datasource {
    let t = t.to_ascii_lowercase();
    if uid == "-- Dashboard --" || t == "dashboard" {
        return Datasource::Dashboard;
    }
    if uid == "-- Mixed --" || (t == "datasource" && uid.contains("Mixed")) {
        return Datasource::Other("mixed".into());
    }
    if t.contains("prometheus") {
        return Datasource::Prometheus;
    }
    if t == "datasource" && uid.contains("Grafana") {
        return Datasource::Other("grafana".into());
    }
    Datasource::Other(t)
}

/// Old dashboards name datasources; a name is a Prometheus unless it names another plugin.
fn kind_of_name(name: &str) -> Datasource {
    const OTHERS: &[&str] = &[
        "loki",
        "elasticsearch",
        "influx",
        "graphite",
        "mysql",
        "postgres",
        "tempo",
        "jaeger",
        "zipkin",
        "cloudwatch",
        "testdata",
        "opentsdb",
    ];
    match name {
        "-- Dashboard --" => return Datasource::Dashboard,
        "-- Mixed --" => return Datasource::Other("mixed".into()),
        "-- Grafana --" => return Datasource::Other("grafana".into()),
        _ => {}
    }
    let lower = name.to_ascii_lowercase();
    match OTHERS.iter().find(|o| lower.contains(*o)) {
        Some(o) => Datasource::Other(o.to_string()),
        None => Datasource::Prometheus,
    }
}

fn templating(d: &Value) -> impl Iterator<Item = &Value> {
    d.get("templating")
        .map(|t| arr(t, "list"))
        .into_iter()
        .flatten()
}

/// `current.value` (a string or a list) as a list.
fn current_values(v: &Value) -> Vec<String> {
    match v.get("current").and_then(|c| c.get("value")) {
        Some(Value::Array(a)) => a.iter().filter_map(text).collect(),
        Some(v) => text(v).filter(|s| !s.is_empty()).into_iter().collect(),
        None => Vec::new(),
    }
}

fn var_kind(t: &str) -> VarKind {
    match t {
        "query" => VarKind::Query,
        "custom" => VarKind::Custom,
        "constant" => VarKind::Constant,
        "textbox" => VarKind::Textbox,
        "interval" => VarKind::Interval,
        "datasource" => VarKind::Datasource,
        "adhoc" => VarKind::Adhoc,
        other => VarKind::Other(other.to_string()),
    }
}

fn read_variables(d: &Value, ctx: &Context) -> Vec<Variable> {
    templating(d)
        .filter_map(|v| {
            let name = str_of(v, "name")?.to_string();
            let query = match v.get("query") {
                Some(Value::Object(o)) => o.get("query").and_then(text).unwrap_or_default(),
                Some(q) => text(q).unwrap_or_default(),
                None => String::new(),
            };
            Some(Variable {
                name,
                kind: var_kind(str_of(v, "type").unwrap_or("query")),
                query,
                current: current_values(v),
                options: arr(v, "options")
                    .filter_map(|o| o.get("value").and_then(text))
                    .filter(|s| s != "$__all")
                    .collect(),
                multi: truthy(v, "multi"),
                include_all: truthy(v, "includeAll"),
                all_value: str_of(v, "allValue")
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
                datasource: ctx.datasource(v.get("datasource")).unwrap_or_default(),
                auto_count: v.get("auto_count").and_then(Value::as_u64),
                auto_min: str_of(v, "auto_min").map(str::to_string),
            })
        })
        .collect()
}

fn read_annotations(d: &Value, ctx: &Context, out: &mut Vec<Panel>) {
    let list = d.get("annotations").map(|a| arr(a, "list"));
    for a in list.into_iter().flatten() {
        let Some(expr) = str_of(a, "expr").filter(|e| !e.is_empty()) else {
            continue;
        };
        let name = str_of(a, "name").unwrap_or("");
        out.push(Panel {
            title: name.to_string(),
            annotation: true,
            targets: vec![Target {
                ref_id: "Anno".into(),
                expr: expr.to_string(),
                hidden: false,
                datasource: ctx.datasource(a.get("datasource")).unwrap_or_default(),
                interval: str_of(a, "step").map(str::to_string),
            }],
            ..Panel::default()
        });
    }
}

/// Schema v2 (`elements`, `variables`, `annotations` as kinds with specs).
mod v2 {
    use super::*;

    /// The datasource of a v2 query: `query.kind` (v2alpha1), `query.group` (v2beta1) or the
    /// datasource reference.
    fn query_kind(q: &Value) -> Datasource {
        let query = q.get("query");
        let kind = query
            .and_then(|x| str_of(x, "group"))
            .or_else(|| query.and_then(|x| str_of(x, "kind")))
            .filter(|k| *k != "DataQuery")
            .or_else(|| q.get("datasource").and_then(|d| str_of(d, "type")));
        kind.map_or(Datasource::Prometheus, |k| kind_of_type(k, ""))
    }

    fn expr_of(q: &Value) -> Option<String> {
        let spec = q.get("query")?.get("spec")?;
        str_of(spec, "expr")
            .or_else(|| str_of(spec, "query"))
            .map(str::to_string)
    }

    pub fn read_elements(elements: &serde_json::Map<String, Value>, out: &mut Vec<Panel>) {
        let mut keys: Vec<&String> = elements.keys().collect();
        keys.sort();
        for k in keys {
            let e = &elements[k];
            let spec = e.get("spec").unwrap_or(&Value::Null);
            let title = str_of(spec, "title").unwrap_or(k).to_string();
            if str_of(e, "kind") == Some("LibraryPanel") {
                let lib = spec.get("libraryPanel").unwrap_or(spec);
                let name = str_of(lib, "name").unwrap_or(&title).to_string();
                out.push(Panel {
                    title,
                    library: Some(name),
                    ..Panel::default()
                });
                continue;
            }
            let group = spec.get("data").and_then(|d| d.get("spec"));
            let queries = group.map(|g| arr(g, "queries")).into_iter().flatten();
            let targets = queries
                .filter_map(|q| {
                    let qs = q.get("spec")?;
                    Some(Target {
                        ref_id: str_of(qs, "refId").unwrap_or("").to_string(),
                        expr: expr_of(qs)?,
                        hidden: truthy(qs, "hidden"),
                        datasource: query_kind(qs),
                        interval: None,
                    })
                })
                .collect();
            let options = group.and_then(|g| g.get("queryOptions"));
            out.push(Panel {
                title,
                targets,
                min_interval: options
                    .and_then(|o| str_of(o, "interval"))
                    .map(str::to_string),
                max_data_points: options
                    .and_then(|o| o.get("maxDataPoints"))
                    .and_then(Value::as_u64),
                time_from: options
                    .and_then(|o| str_of(o, "timeFrom"))
                    .map(str::to_string),
                time_shift: options
                    .and_then(|o| str_of(o, "timeShift"))
                    .map(str::to_string),
                ..Panel::default()
            });
        }
    }

    pub fn read_variables(d: &Value) -> Vec<Variable> {
        arr(d, "variables")
            .filter_map(|v| {
                let spec = v.get("spec")?;
                let kind = match str_of(v, "kind")? {
                    "QueryVariable" => VarKind::Query,
                    "CustomVariable" => VarKind::Custom,
                    "ConstantVariable" => VarKind::Constant,
                    "TextVariable" => VarKind::Textbox,
                    "IntervalVariable" => VarKind::Interval,
                    "DatasourceVariable" => VarKind::Datasource,
                    "AdhocVariable" => VarKind::Adhoc,
                    other => VarKind::Other(other.to_string()),
                };
                let query = match spec.get("query") {
                    Some(q @ Value::Object(_)) => expr_of(spec)
                        .or_else(|| {
                            q.get("spec")
                                .and_then(|s| str_of(s, "query"))
                                .map(Into::into)
                        })
                        .unwrap_or_default(),
                    Some(q) => text(q).unwrap_or_default(),
                    None => String::new(),
                };
                Some(Variable {
                    name: str_of(spec, "name")?.to_string(),
                    datasource: if spec.get("query").is_some_and(Value::is_object) {
                        query_kind(spec)
                    } else {
                        Datasource::Prometheus
                    },
                    kind,
                    query,
                    current: current_values(spec),
                    options: arr(spec, "options")
                        .filter_map(|o| o.get("value").and_then(text))
                        .filter(|s| s != "$__all")
                        .collect(),
                    multi: truthy(spec, "multi"),
                    include_all: truthy(spec, "includeAll"),
                    all_value: str_of(spec, "allValue")
                        .filter(|s| !s.is_empty())
                        .map(str::to_string),
                    auto_count: spec.get("auto_count").and_then(Value::as_u64),
                    auto_min: str_of(spec, "auto_min").map(str::to_string),
                })
            })
            .collect()
    }

    pub fn read_annotations(d: &Value, out: &mut Vec<Panel>) {
        for a in arr(d, "annotations") {
            let Some(spec) = a.get("spec") else { continue };
            let Some(expr) = expr_of(spec).filter(|e| !e.is_empty()) else {
                continue;
            };
            out.push(Panel {
                title: str_of(spec, "name").unwrap_or("").to_string(),
                annotation: true,
                targets: vec![Target {
                    ref_id: "Anno".into(),
                    expr,
                    hidden: false,
                    datasource: query_kind(spec),
                    interval: None,
                }],
                ..Panel::default()
            });
        }
    }
}
