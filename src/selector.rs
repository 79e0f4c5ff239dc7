//! PromQL series selectors (`metric{label=~"re", other!="x"}`) with Prometheus semantics: fully
//! anchored RE2-style regexes, and an absent label matching as the empty string.

/// The four PromQL matcher operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    RegexMatch,
    RegexNoMatch,
}

/// One `name op "value"` matcher.
#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    /// For the regex operators: `^(?:value)$`, compiled once.
    re: Option<regex::Regex>,
}

/// A parsed series selector: the series it selects match every matcher.
#[derive(Clone, Debug)]
pub struct Selector {
    pub matchers: Vec<Matcher>,
    /// The selector as the user wrote it, for messages and the manifest.
    pub text: String,
}
