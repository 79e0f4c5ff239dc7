//! The label set of one series, as Prometheus models it: `(name, value)` pairs sorted byte-wise
//! by name, the metric name being the label `__name__`. Every input (dump, HTTP API) is turned into
//! this before filtering and writing.

use std::fmt;

/// The label that holds the metric name.
pub const METRIC_NAME: &str = "__name__";

/// Labels of one series, sorted byte-wise by name, names unique. Values are valid UTF-8, as
/// Prometheus requires; an empty value means the same as an absent label and is never stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    /// Builds a label set from pairs in any order. Later pairs win on a repeated name; pairs with
    /// an empty value are left out (Prometheus treats them as absent).
    pub fn from_pairs<I, N, V>(pairs: I) -> Labels
    where
        I: IntoIterator<Item = (N, V)>,
        N: Into<String>,
        V: Into<String>,
    {
        let mut v: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(n, v)| (n.into(), v.into()))
            .collect();
        // Stable sort keeps input order among equal names, so "later wins" holds after dedup.
        v.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let mut out: Vec<(String, String)> = Vec::with_capacity(v.len());
        for (n, val) in v {
            match out.last_mut() {
                Some(last) if last.0 == n => last.1 = val,
                _ => out.push((n, val)),
            }
        }
        out.retain(|(_, v)| !v.is_empty());
        Labels(out)
    }

    /// The value of `name`, or `None` when the series has no such label.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(n, _)| n.as_bytes().cmp(name.as_bytes()))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    /// The metric name (`__name__`), or `""` for a series without one.
    pub fn metric_name(&self) -> &str {
        self.get(METRIC_NAME).unwrap_or("")
    }

    /// Sets `name` to `value`; an empty value removes the label.
    pub fn set(&mut self, name: &str, value: &str) {
        match self
            .0
            .binary_search_by(|(n, _)| n.as_bytes().cmp(name.as_bytes()))
        {
            Ok(i) if value.is_empty() => {
                self.0.remove(i);
            }
            Ok(i) => self.0[i].1 = value.to_string(),
            Err(_) if value.is_empty() => {}
            Err(i) => self.0.insert(i, (name.to_string(), value.to_string())),
        }
    }

    /// Removes `name` if present.
    pub fn remove(&mut self, name: &str) {
        self.set(name, "");
    }

    /// The pairs in order, `__name__` included.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Labels {
    /// Prometheus' own rendering, `{a="1", b="2"}`, for messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (n, v)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{n}={v:?}")?;
        }
        f.write_str("}")
    }
}

/// A classic metric name, `[a-zA-Z_:][a-zA-Z0-9_:]*`: written bare in OpenMetrics.
pub fn is_classic_metric_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_' || b[0] == b':')
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

/// A classic label name, `[a-zA-Z_][a-zA-Z0-9_]*`: written bare in OpenMetrics and the dump.
pub fn is_classic_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_bytewise_uppercase_before_name() {
        let l = Labels::from_pairs([("alpha", "2"), ("__name__", "m"), ("Zeta", "1")]);
        let names: Vec<_> = l.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["Zeta", "__name__", "alpha"]);
        assert_eq!(l.metric_name(), "m");
        assert_eq!(l.get("alpha"), Some("2"));
        assert_eq!(l.get("missing"), None);
    }

    #[test]
    fn empty_values_are_absent_and_later_pairs_win() {
        let l = Labels::from_pairs([("a", "1"), ("b", ""), ("a", "3")]);
        assert_eq!(l.to_string(), r#"{a="3"}"#);
        let mut l = l;
        l.set("c", "x");
        l.set("a", "");
        assert_eq!(l.to_string(), r#"{c="x"}"#);
    }

    #[test]
    fn classic_names() {
        assert!(is_classic_metric_name("es:rate_5m"));
        assert!(!is_classic_metric_name("service.name"));
        assert!(!is_classic_metric_name("1abc"));
        assert!(is_classic_label_name("_a1"));
        assert!(!is_classic_label_name("a:b"));
    }
}
