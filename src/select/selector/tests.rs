//! Unit tests of selector parsing and matching (the behaviour was checked against promtool 2.42
//! `tsdb dump --match`; tests/selector_promtool.rs does that comparison for real).

use super::*;
use crate::exit_codes::ExitCode;

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap_or_else(|e| panic!("{s}: {e:#}"))
}

fn lbl(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn parse_err(s: &str) -> String {
    let e = Selector::parse(s).expect_err(s);
    assert_eq!(ExitCode::of(&e), ExitCode::BadInput, "{s}");
    e.to_string()
}

/// (name, op, value) of each matcher, in order.
fn shape(s: &str) -> Vec<(String, &'static str, String)> {
    sel(s)
        .matchers
        .iter()
        .map(|m| (m.name.clone(), m.op.as_str(), m.value.clone()))
        .collect()
}

fn t(n: &str, op: &'static str, v: &str) -> (String, &'static str, String) {
    (n.to_string(), op, v.to_string())
}

#[test]
fn parses_the_forms_prometheus_takes() {
    assert_eq!(shape("up"), [t("__name__", "=", "up")]);
    assert_eq!(shape("up{}"), [t("__name__", "=", "up")]);
    assert_eq!(shape(" up { } "), [t("__name__", "=", "up")]);
    assert_eq!(shape(r#"{a="b"}"#), [t("a", "=", "b")]);
    assert_eq!(
        shape(r#"metric{a="b",c!~"x.*",}"#),
        [
            t("__name__", "=", "metric"),
            t("a", "=", "b"),
            t("c", "!~", "x.*")
        ]
    );
    assert_eq!(
        shape("\n\tm\t{ a != 'x' ,\n b =~ `y` , c!~\"z\" }\n"),
        [
            t("__name__", "=", "m"),
            t("a", "!=", "x"),
            t("b", "=~", "y"),
            t("c", "!~", "z")
        ]
    );
    assert_eq!(
        shape("es:rate_5m:sum"),
        [t("__name__", "=", "es:rate_5m:sum")]
    );
    assert_eq!(shape(":x"), [t("__name__", "=", ":x")]);
    assert_eq!(shape(r#"{__name__="x"}"#), [t("__name__", "=", "x")]);
    assert_eq!(
        shape(r#"{__name__=~"es_.*"}"#),
        [t("__name__", "=~", "es_.*")]
    );
    // Several matchers on one label are fine.
    assert_eq!(
        shape(r#"{a="1",a!="2"}"#),
        [t("a", "=", "1"), t("a", "!=", "2")]
    );
    // Keywords that the PromQL grammar takes back as metric names, and any label name.
    for kw in [
        "sum", "by", "offset", "and", "or", "unless", "without", "start", "end", "avg",
    ] {
        assert_eq!(shape(kw), [t("__name__", "=", kw)]);
    }
    assert_eq!(shape(r#"x{on="1",bool="2",nan="3"}"#).len(), 4);
    // Comments run to the end of the line.
    assert_eq!(shape("m # all of m\n"), [t("__name__", "=", "m")]);
    assert_eq!(
        shape("m{\n# c\na='1'}"),
        [t("__name__", "=", "m"), t("a", "=", "1")]
    );
}

#[test]
fn parses_prometheus_3_quoted_names() {
    assert_eq!(shape(r#"{"my.metric"}"#), [t("__name__", "=", "my.metric")]);
    assert_eq!(
        shape(r#"{"my.metric", "service.name"="x", 'k8s/app'!~`a|b`}"#),
        [
            t("__name__", "=", "my.metric"),
            t("service.name", "=", "x"),
            t("k8s/app", "!~", "a|b")
        ]
    );
    assert_eq!(shape(r#"{"a" = "b"}"#), [t("a", "=", "b")]);
    assert_eq!(
        shape(r#"{"__name__"=~"x|y"}"#),
        [t("__name__", "=~", "x|y")]
    );
}

#[test]
fn string_escapes() {
    let v = |s: &str| sel(&format!("{{a={s}}}")).matchers[0].value.clone();
    assert_eq!(v(r#""a\nb\tc\\d\"e""#), "a\nb\tc\\d\"e");
    assert_eq!(v(r"'it\'s'"), "it's");
    assert_eq!(v(r#""\a\b\f\r\v""#), "\x07\x08\x0c\r\x0b");
    assert_eq!(v(r#""\x41\101\u00e9\U0001F600""#), "AAé😀");
    assert_eq!(v(r#""\xc3\xa9""#), "é");
    assert_eq!(v("`raw \\n \"q\" 'x'\nline`"), "raw \\n \"q\" 'x'\nline");
    assert_eq!(v(r#""""#), "");
    assert_eq!(v(r#""é✓""#), "é✓");
}

#[test]
fn each_error_has_its_message_and_position() {
    for (s, want) in [
        (
            "",
            "1:1: unexpected end of input: expected a metric name or \"{\"",
        ),
        ("   ", "1:4: unexpected end of input"),
        ("{}", "1:1: a selector needs at least one label matcher"),
        (" {  } ", "1:2: a selector needs at least one label matcher"),
        (r#"a{x="1}"#, "1:5: unterminated quoted string"),
        ("a{x='1\n'}", "1:5: unterminated quoted string"),
        ("a{x=`1}", "1:5: unterminated raw string"),
        (r#"a{x="\q"}"#, "1:6: unknown escape sequence U+0071 'q'"),
        (r#"a{x="\'"}"#, "unknown escape sequence U+0027 '''"),
        (r#"a{x='\"'}"#, "unknown escape sequence U+0022 '\"'"),
        (
            r#"a{x="\x4g"}"#,
            "illegal character U+0067 'g' in escape sequence",
        ),
        (
            r#"a{x="\08"}"#,
            "illegal character U+0038 '8' in escape sequence",
        ),
        (
            r#"a{x="\400"}"#,
            "escape sequence is an invalid Unicode code point",
        ),
        (
            r#"a{x="\ud800"}"#,
            "escape sequence is an invalid Unicode code point",
        ),
        (
            r#"a{x="\U00110000"}"#,
            "escape sequence is an invalid Unicode code point",
        ),
        (r#"a{x="\xff"}"#, "1:5: the string is not valid UTF-8"),
        (
            r#"a{x=~"("}"#,
            "1:6: error parsing regexp: unclosed group: `^(?:()$`",
        ),
        (
            r#"a{x=~"\\C"}"#,
            "error parsing regexp: invalid escape sequence: `\\C`",
        ),
        (
            r#"a{x=~"x{1001}"}"#,
            "error parsing regexp: invalid repeat count: `{1001}`",
        ),
        (r#"a{x=~"[z-a]"}"#, "invalid character class range: `z-a`"),
        (
            r#"a{__name__="b"}"#,
            "1:1: metric name must not be set twice: \"a\" or \"b\"",
        ),
        (r#"a{__name__=~"a"}"#, "metric name must not be set twice"),
        (
            r#"{"a","b"}"#,
            "1:6: metric name must not be set twice: \"a\" or \"b\"",
        ),
        (r#"a{"b"}"#, "1:3: metric name must not be set twice"),
        (r#"{""}"#, "1:2: the metric name must not be empty"),
        (r#"{""="x"}"#, "1:2: the label name must not be empty"),
        (
            "a{,}",
            "1:3: unexpected \",\" in label matching, expected a label name or \"}\"",
        ),
        (r#"a{x="1",,}"#, "1:9: unexpected \",\""),
        (
            r#"a{x="1" y="2"}"#,
            "1:9: unexpected \"y\" in label matching, expected \",\" or \"}\"",
        ),
        (
            r#"a{x="1""#,
            "1:8: unexpected end of input in label matching",
        ),
        (
            r#"a{x=="1"}"#,
            "1:5: unexpected \"=\" in label matching, expected a string",
        ),
        (
            r#"a{x~"1"}"#,
            "1:4: unexpected \"~\" in label matching, expected a label matching op",
        ),
        ("a{x}", "1:4: unexpected \"}\""),
        (
            "a{x=1}",
            "1:5: unexpected \"1\" in label matching, expected a string",
        ),
        (r#"{a:b="x"}"#, "1:3: unexpected \":\""),
        (
            r#"{1x="1"}"#,
            "1:2: unexpected \"1\" in label matching, expected a label name",
        ),
        (
            r#"a{x="1"}{y="2"}"#,
            "1:9: unexpected \"{\" after the selector",
        ),
        (r#"a{x="1"} b"#, "1:10: unexpected \"b\" after the selector"),
        ("a[5m]", "1:2: unexpected \"[\" after the selector"),
        ("a offset 5m", "1:3: unexpected \"o\" after the selector"),
        ("1a", "1:1: unexpected \"1\": expected a metric name"),
        ("é", "1:1: unexpected \"é\""),
        (r#"{é="1"}"#, "1:2: unexpected \"é\""),
        ("nan", "1:1: unexpected number \"nan\""),
        ("Inf", "unexpected number \"Inf\""),
        ("on", "unexpected keyword \"on\""),
        ("BOOL", "unexpected keyword \"BOOL\""),
        ("group_left", "unexpected keyword"),
        ("atan2", "unexpected keyword"),
        ("m{\n  a=\"1\",\n  b=~\"(\"}", "3:6: error parsing regexp"),
    ] {
        let got = parse_err(s);
        assert!(got.contains(want), "{s:?}: got {got:?}, want {want:?}");
        assert!(
            got.contains(&format!("{s:?}")),
            "message names the input: {got}"
        );
    }
}

#[test]
fn operators_and_absent_labels() {
    let with = lbl(&[("__name__", "m"), ("a", "x")]);
    let without = lbl(&[("__name__", "m")]);
    let cases = [
        (r#"{a="x"}"#, true, false),
        (r#"{a=""}"#, false, true),
        (r#"{a!=""}"#, true, false),
        (r#"{a!="x"}"#, false, true),
        (r#"{a!="y"}"#, true, true),
        (r#"{a=~"x"}"#, true, false),
        (r#"{a=~".*"}"#, true, true),
        (r#"{a=~".+"}"#, true, false),
        (r#"{a=~"x|"}"#, true, true),
        (r#"{a!~".+"}"#, false, true),
        (r#"{a!~"x"}"#, false, true),
        (r#"{a!~""}"#, true, false),
        (r#"{b=~".*"}"#, true, true),
        (r#"m{b=""}"#, true, true),
        (r#"n{b=""}"#, false, false),
    ];
    for (s, w, wo) in cases {
        assert_eq!(sel(s).matches(&with), w, "{s} with a");
        assert_eq!(sel(s).matches(&without), wo, "{s} without a");
    }
}

#[test]
fn regexes_are_fully_anchored() {
    let m = |s: &str, v: &str| sel(&format!("{{a=~{s:?}}}")).matchers[0].matches(v);
    assert!(m("es", "es"));
    assert!(!m("es", "es_x"));
    assert!(!m("es", "xes"));
    assert!(m("es.*", "es_x"));
    assert!(!m("a|b", "ab"));
    assert!(m("a|b", "b"));
    assert!(m("es_(x|y)", "es_y"));
    assert!(!m("es_(x|y)", "es_xy"));
    // `^(?:` + RE + `)$`: an alternation cannot escape the group.
    assert!(!m("x|y.*", "x1"));
    assert!(m("x|y.*", "y1"));
    // The user's own anchors are harmless.
    assert!(m("^es$", "es"));
}

#[test]
fn dot_does_not_match_newline_without_s_flag() {
    let m = |s: &str, v: &str| sel(&format!("{{a=~{s:?}}}")).matchers[0].matches(v);
    assert!(!m(".*", "line1\nline2"));
    assert!(!m("line1.line2", "line1\nline2"));
    assert!(m("(?s)line1.*", "line1\nline2"));
    assert!(m("line1\\nline2", "line1\nline2"));
    assert!(m("line1[^a]line2", "line1\nline2"));
    assert!(m("line1\\sline2", "line1\nline2"));
    assert!(!m("line1$", "line1\nline2"));
    assert!(m("(?ms)line1$.*", "line1\nline2"));
    // So `!~".*"` selects exactly the values holding a newline.
    assert!(!sel(r#"{a!~".*"}"#).matchers[0].matches("x"));
    assert!(sel(r#"{a!~".*"}"#).matchers[0].matches("x\ny"));
}

#[test]
fn case_insensitive_and_classes() {
    let m = |s: &str, v: &str| sel(&format!("{{a=~{s:?}}}")).matchers[0].matches(v);
    assert!(m("(?i)ES_.*", "es_x"));
    assert!(m("(?i:E)s", "es"));
    assert!(!m("(?i:E)s", "eS"));
    assert!(!m("ES_.*", "es_x"));
    assert!(m("\\d+", "123"));
    assert!(!m("\\d+", "١٢٣"), "Go's \\d is ASCII");
    assert!(!m("\\w+", "café"), "Go's \\w is ASCII");
    assert!(m("\\pL+", "café"));
    assert!(m("[[:alpha:]]+", "abc"));
    assert!(m("a{2}", "aa"));
    assert!(
        m("a{", "a{"),
        "Go takes a {{ that starts no repeat as a literal"
    );
    assert!(m("\\Q.*\\E", ".*"));
}

#[test]
fn literal_alternations_take_the_fast_path() {
    let s = sel(r#"{a=~"x|y|x", b!~"lit", c=~"", d=~"a.b"}"#);
    assert_eq!(
        s.matchers[0].set.as_deref(),
        Some(&["x".to_string(), "y".to_string()][..])
    );
    assert!(s.matchers[0].re.is_none());
    assert!(s.matchers[1].set.is_some());
    assert_eq!(s.matchers[2].set.as_deref(), Some(&[String::new()][..]));
    assert!(s.matchers[3].set.is_none() && s.matchers[3].re.is_some());
    assert!(s.matchers[1].matches("other") && !s.matchers[1].matches("lit"));
    assert!(s.matchers[2].matches("") && !s.matchers[2].matches("x"));
}

#[test]
fn metric_names() {
    let names = |s: &str| sel(s).metric_names();
    let v = |n: &[&str]| Some(n.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(names("up"), v(&["up"]));
    assert_eq!(names(r#"up{job="x"}"#), v(&["up"]));
    assert_eq!(names(r#"{__name__="up"}"#), v(&["up"]));
    assert_eq!(names(r#"{__name__=~"b|a|b"}"#), v(&["a", "b"]));
    assert_eq!(names(r#"{__name__=~"a|b", __name__!="a"}"#), v(&["b"]));
    assert_eq!(names(r#"{__name__=~"a|b", __name__=~"b.*"}"#), v(&["b"]));
    assert_eq!(names(r#"{"my.metric"}"#), v(&["my.metric"]));
    assert_eq!(names(r#"{__name__=""}"#), v(&[""]));
    assert_eq!(names(r#"{__name__=~"es_.*"}"#), None);
    assert_eq!(names(r#"{__name__!="a"}"#), None);
    assert_eq!(names(r#"{__name__=~"(?i)a"}"#), None);
    assert_eq!(names(r#"{job="x"}"#), None);
}

#[test]
fn any_matches_empty_list_is_everything() {
    let l = lbl(&[("__name__", "up"), ("job", "a")]);
    assert!(any_matches(&[], &l));
    assert!(any_matches(&[sel("down"), sel(r#"{job="a"}"#)], &l));
    assert!(!any_matches(&[sel("down"), sel(r#"{job="b"}"#)], &l));
}

#[test]
fn matcher_new_and_display() {
    let m = Matcher::new("service.name", MatchOp::RegexNoMatch, "a\"b").unwrap();
    assert_eq!(m.to_string(), r#""service.name"!~"a\"b""#);
    assert_eq!(
        Matcher::new("job", MatchOp::Equal, "x")
            .unwrap()
            .to_string(),
        r#"job="x""#
    );
    let e = Matcher::new("a", MatchOp::RegexMatch, "(").unwrap_err();
    assert_eq!(ExitCode::of(&e), ExitCode::BadInput);
    assert!(e.to_string().contains("unclosed group"), "{e}");
    assert_eq!(sel(" up ").to_string(), " up ");
}

#[test]
fn from_matchers_reads_back_the_same() {
    let m = |n: &str, op, v: &str| Matcher::new(n, op, v).unwrap();
    let cases = [
        (
            vec![
                m("__name__", MatchOp::Equal, "up"),
                m("job", MatchOp::Equal, "a\"b\\c\n"),
            ],
            r#"up{job="a\"b\\c\n"}"#,
        ),
        (vec![m("__name__", MatchOp::Equal, "up")], "up"),
        (
            vec![m("__name__", MatchOp::Equal, "nan")],
            r#"{__name__="nan"}"#,
        ),
        (
            vec![m("service.name", MatchOp::RegexMatch, "a|b\u{1}")],
            r#"{"service.name"=~"a|b\u0001"}"#,
        ),
        (vec![m("job", MatchOp::NotEqual, "")], r#"{job!=""}"#),
    ];
    for (ms, text) in cases {
        let s = Selector::from_matchers(ms.clone());
        assert_eq!(s.text, text);
        let back = sel(&s.text);
        assert_eq!(back.matchers.len(), ms.len(), "{text}");
        for (a, b) in back.matchers.iter().zip(&ms) {
            assert_eq!(
                (&a.name, a.op, &a.value),
                (&b.name, b.op, &b.value),
                "{text}"
            );
        }
    }
}

#[test]
fn covered_by() {
    let c = |a: &str, b: &str| sel(a).covered_by(&sel(b));
    assert!(c(r#"up{a="x"}"#, r#"up{a!=""}"#));
    assert!(c(r#"up{a="x", b="y"}"#, r#"up{a="x"}"#));
    assert!(c(r#"up{a=~"x|y"}"#, r#"{__name__=~"u.*", a=~"[xy]"}"#));
    assert!(c(r#"up{a=~"x.*"}"#, r#"up{a=~"x.*"}"#));
    assert!(!c(r#"up{a!=""}"#, r#"up{a="x"}"#));
    assert!(
        !c(r#"up"#, r#"up{a=""}"#),
        "a label absent from the first is unknown"
    );
    assert!(
        !c(r#"up{a=~"x.*"}"#, r#"up{a=~"x.+"}"#),
        "unsure: regexes are not compared"
    );
    assert!(!c(r#"up{a=""}"#, r#"up{a!=""}"#));
    // Grafana's multi-valued variables: escaped literals in a group.
    assert!(c(r#"up{a=~"(x\\.1|y)"}"#, r#"up{a!=""}"#));
    assert!(c(r#"up{a=~"(x\\.1|y)"}"#, r#"up{a=~"x.1|y"}"#));
    assert!(!c(r#"up{a=~"(x\\.1|y)"}"#, r#"up{a="x.1"}"#));
    assert!(!c(r#"up{a=~"(x\\d|y)"}"#, r#"up{a!=""}"#), "\\d is a class");
    assert!(!c(r#"up{a=~"(?i)x"}"#, r#"up{a="x"}"#));
    assert!(!c(r#"up{a=~"(x)(y)"}"#, r#"up{a="x)(y"}"#));
}

proptest::proptest! {
    /// `covered_by` is sound: whatever the first selects, the second selects.
    #[test]
    fn covered_by_never_loses_a_series(
        a in proptest::collection::vec(0usize..14, 1..4),
        b in proptest::collection::vec(0usize..14, 1..4),
        values in proptest::collection::vec(0usize..6, 3),
    ) {
        const MATCHERS: [&str; 14] = [
            r#"a="x""#, r#"a!="""#, r#"a=~"x|y""#, r#"a=~"x.*""#, r#"a!~"y""#, r#"a="""#,
            r#"a=~"(x\\.y|y)""#, r#"a=~"(|x)""#,
            r#"b="x""#, r#"b=~"y|""#, r#"b!="x""#, r#"__name__="up""#, r#"__name__=~"u.*|x""#,
            r#"__name__!="x""#,
        ];
        const VALUES: [&str; 6] = ["", "x", "y", "xy", "up", "x.y"];
        let mk = |ix: &[usize]| {
            let body: Vec<&str> = ix.iter().map(|&i| MATCHERS[i]).collect();
            Selector::parse(&format!("{{{}}}", body.join(", ")))
        };
        let (Ok(sa), Ok(sb)) = (mk(&a), mk(&b)) else { return Ok(()) };
        if sa.covered_by(&sb) {
            let mut pairs = vec![("__name__", VALUES[values[0]])];
            pairs.push(("a", VALUES[values[1]]));
            pairs.push(("b", VALUES[values[2]]));
            let l = lbl(&pairs);
            proptest::prop_assert!(!sa.matches(&l) || sb.matches(&l), "{} {} {l:?}", sa, sb);
        }
    }
}
