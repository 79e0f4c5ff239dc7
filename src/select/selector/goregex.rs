//! Go RE2 regex syntax (what Prometheus compiles with `regexp.Compile`) rewritten into an
//! equivalent pattern for the `regex` crate. The two dialects look alike but differ: Go's `\d \s \w
//! \b` are ASCII-only, Go takes `\Q..\E`, octal escapes and a `{` that starts no repeat as a
//! literal, and rejects syntax Rust accepts (`(?x)`, `(?<n>`, `\u`, `\<`, `a**`, `x{1001}`).

use std::fmt::Write;

/// What the last item pushed was: a repeat operator needs an operand, and Go refuses to stack
/// repeats (`a**`, `a{2}{3}`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    /// Start of input, after `(` or `|`: nothing to repeat.
    Nothing,
    /// An operand; `prod` is the largest product of counted repeats inside it (Go caps it at
    /// 1000, see `repeatIsValid` in Go's regexp/syntax).
    Atom { prod: u32 },
    /// A repeat operator starting at this byte offset.
    Repeat { start: usize },
}

/// Go's limit on a counted repeat, alone or nested.
const MAX_REPEAT: u32 = 1000;

/// Go's POSIX classes, which the regex crate spells and defines the same way (all ASCII).
const POSIX_CLASSES: [&str; 14] = [
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

/// Translates a complete Go regex into the regex crate's syntax with the same meaning. Errors
/// read like Go's (`invalid escape sequence: \`\C\``); some errors are left to the regex crate.
pub(super) fn translate(re: &str) -> Result<String, String> {
    let mut t = Translator {
        src: re,
        out: String::with_capacity(re.len() + 16),
        last: Last::Nothing,
        groups: Vec::new(),
        prod_here: 1,
        prod_before_last: 1,
        flags_at: None,
    };
    let mut pos = 0;
    while pos < re.len() {
        pos = t.step(pos)?;
    }
    Ok(t.out)
}

struct Translator<'a> {
    src: &'a str,
    out: String,
    last: Last,
    /// For each open group, the `prod_here` of its parent.
    groups: Vec<u32>,
    /// Largest repeat product among the items of the innermost open group.
    prod_here: u32,
    /// `prod_here` before the last item: a repeat replaces that item's product.
    prod_before_last: u32,
    /// Where in `out` flag directives (`(?i)`) written since the last item start: Go applies a
    /// repeat after them to that item (`a(?i)*` is `a*`), Rust would find no operand.
    flags_at: Option<usize>,
}

impl Translator<'_> {
    /// Translates the item starting at byte `pos`; returns where the next one starts.
    fn step(&mut self, pos: usize) -> Result<usize, String> {
        let rest = &self.src[pos..];
        let c = rest.chars().next().expect("step is called before the end");
        let flags_at = self.flags_at.take();
        if !matches!(c, '*' | '+' | '?' | '{' | '(') {
            return self.step_item(pos, c);
        }
        let repeat_at = flags_at.unwrap_or(self.out.len());
        match c {
            '(' => {
                self.flags_at = flags_at;
                self.open_group(pos)
            }
            '*' | '+' | '?' => {
                let mut end = pos + 1;
                if self.src[end..].starts_with('?') {
                    end += 1;
                }
                self.repeat(pos, end, None, repeat_at)?;
                Ok(end)
            }
            _ => match parse_repeat(rest) {
                Some((len, min, max)) => {
                    let mut end = pos + len;
                    let spec = &self.src[pos..end];
                    let too_big = |n: i64| n < 0 || n > i64::from(MAX_REPEAT);
                    if too_big(min) || (max >= 0 && (too_big(max) || min > max)) {
                        return Err(format!("invalid repeat count: `{spec}`"));
                    }
                    if self.src[end..].starts_with('?') {
                        end += 1;
                    }
                    self.repeat(pos, end, Some((min, max)), repeat_at)?;
                    Ok(end)
                }
                None => {
                    // Go: a `{` that starts no valid repeat is a literal.
                    self.out.push_str("\\{");
                    self.atom(1);
                    Ok(pos + 1)
                }
            },
        }
    }

    /// Any item but a repeat or a group opener.
    fn step_item(&mut self, pos: usize, c: char) -> Result<usize, String> {
        match c {
            '\\' => self.escape(pos),
            '[' => {
                let end = class(self.src, pos, &mut self.out)?;
                self.atom(1);
                Ok(end)
            }
            ')' => {
                self.out.push(')');
                let inner = self.prod_here;
                // An unbalanced `)` is left for the regex crate to report.
                self.prod_here = self.groups.pop().unwrap_or(1);
                self.atom(inner);
                Ok(pos + 1)
            }
            '|' => {
                self.out.push('|');
                self.last = Last::Nothing;
                Ok(pos + 1)
            }
            '.' | '^' | '$' => {
                self.out.push(c);
                self.atom(1);
                Ok(pos + 1)
            }
            _ => {
                push_lit(&mut self.out, c);
                self.atom(1);
                Ok(pos + c.len_utf8())
            }
        }
    }

    fn atom(&mut self, prod: u32) {
        self.last = Last::Atom { prod };
        self.prod_before_last = self.prod_here;
        self.prod_here = self.prod_here.max(prod);
    }

    /// Applies the repeat operator `src[start..end]` (`{min,max}` when counted) to the last item.
    fn repeat(
        &mut self,
        start: usize,
        end: usize,
        counted: Option<(i64, i64)>,
        out_at: usize,
    ) -> Result<(), String> {
        let mut prod = match self.last {
            Last::Nothing => {
                let op = &self.src[start..end];
                return Err(format!("missing argument to repetition operator: `{op}`"));
            }
            Last::Repeat { start: prev } => {
                let ops = &self.src[prev..end];
                return Err(format!("invalid nested repetition operator: `{ops}`"));
            }
            Last::Atom { prod } => prod,
        };
        // Go's repeatIsValid: nested counted repeats may make at most 1000 copies of anything,
        // and a repeat of at most zero copies is always fine.
        match counted {
            Some((_, 0)) => prod = 0,
            Some((min, max)) => {
                let m = (if max < 0 { min } else { max }).max(1) as u32;
                if (min >= 2 || max >= 2) && u64::from(m) * u64::from(prod) > 1000 {
                    let spec = &self.src[start..end];
                    return Err(format!("invalid repeat count: `{spec}`"));
                }
                prod = prod.saturating_mul(m);
            }
            None => {}
        }
        // Greediness may change by moving before flags (`(?U)`), but not whether a value matches.
        self.out.insert_str(out_at, &self.src[start..end]);
        self.last = Last::Repeat { start };
        self.prod_here = self.prod_before_last.max(prod);
        Ok(())
    }

    /// `(`, `(?:`, `(?flags)`, `(?flags:`, `(?P<name>`: the forms Go accepts.
    fn open_group(&mut self, pos: usize) -> Result<usize, String> {
        let rest = &self.src[pos..];
        if !rest.starts_with("(?") {
            self.push_group("(");
            return Ok(pos + 1);
        }
        if rest.len() > 4 && rest[2..].starts_with("P<") {
            let Some(end) = rest.find('>') else {
                return Err(format!("invalid named capture: `{rest}`"));
            };
            let name = &rest[4..end];
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(format!("invalid named capture: `{}`", &rest[..=end]));
            }
            // Names do not change what matches, and Rust's name rules differ from Go's.
            self.push_group("(");
            return Ok(pos + end + 1);
        }
        let (len, on, off, opens) = parse_flags(rest)?;
        let flags = if off.is_empty() {
            on
        } else {
            format!("{on}-{off}")
        };
        if opens {
            self.push_group(&format!("(?{flags}:"));
        } else if !flags.is_empty() {
            // Flags for the rest of the group: no operand of its own, as in Go.
            self.flags_at.get_or_insert(self.out.len());
            let _ = write!(self.out, "(?{flags})");
        }
        Ok(pos + len)
    }

    fn push_group(&mut self, open: &str) {
        self.flags_at = None;
        self.out.push_str(open);
        self.groups.push(self.prod_here);
        self.prod_here = 1;
        self.last = Last::Nothing;
    }

    /// A backslash outside a class.
    fn escape(&mut self, pos: usize) -> Result<usize, String> {
        let rest = &self.src[pos..];
        match rest[1..].chars().next() {
            Some('A') => self.out.push_str("\\A"),
            Some('z') => self.out.push_str("\\z"),
            // Go's word boundary is ASCII-only.
            Some('b') => self.out.push_str("(?-u:\\b)"),
            Some('B') => self.out.push_str("(?-u:\\B)"),
            Some('C') => return Err("invalid escape sequence: `\\C`".into()),
            Some('Q') => {
                // Everything up to `\E` (or the end) is literal.
                let body = &rest[2..];
                let (lit, used) = match body.find("\\E") {
                    Some(i) => (&body[..i], 2 + i + 2),
                    None => (body, rest.len()),
                };
                for c in lit.chars() {
                    push_lit(&mut self.out, c);
                    self.atom(1);
                }
                return Ok(pos + used);
            }
            Some('p' | 'P') => {
                let used = unicode_class(rest, &mut self.out)?;
                self.atom(1);
                return Ok(pos + used);
            }
            Some(c @ ('d' | 'D' | 's' | 'S' | 'w' | 'W')) => {
                let (set, negated) = perl_class(c);
                let _ = write!(self.out, "[{}{set}]", if negated { "^" } else { "" });
            }
            _ => {
                let (c, used) = parse_escape(rest)?;
                push_lit(&mut self.out, c);
                self.atom(1);
                return Ok(pos + used);
            }
        }
        self.atom(1);
        Ok(pos + 2)
    }
}

/// Writes `c` as a literal, escaped when the regex crate gives it a meaning (in or out of a
/// class: `&`, `-` and `~` are set operators inside one).
fn push_lit(out: &mut String, c: char) {
    let mut buf = [0u8; 4];
    out.push_str(&regex::escape(c.encode_utf8(&mut buf)));
}

/// The ASCII set of a Perl class letter, and whether it is negated.
fn perl_class(c: char) -> (&'static str, bool) {
    match c {
        'd' => ("0-9", false),
        'D' => ("0-9", true),
        // Go's \s has no \v (the POSIX [:space:] has).
        's' => ("\\x09\\x0A\\x0C\\x0D\\x20", false),
        'S' => ("\\x09\\x0A\\x0C\\x0D\\x20", true),
        'w' => ("0-9A-Za-z_", false),
        _ => ("0-9A-Za-z_", true),
    }
}

/// Parses `{n}`, `{n,}` or `{n,m}` as Go does (no leading zeros, `-1` when too large); `None`
/// when `s` holds no repeat, so the `{` is a literal. Returns (length, min, max; max -1 = none).
fn parse_repeat(s: &str) -> Option<(usize, i64, i64)> {
    let b = s.as_bytes();
    let int = |i: usize| -> Option<(usize, i64)> {
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || (digits >= 2 && b[i] == b'0') {
            return None;
        }
        let mut n: i64 = 0;
        for &d in &b[i..i + digits] {
            if n >= 100_000_000 {
                n = -1;
                break;
            }
            n = n * 10 + i64::from(d - b'0');
        }
        Some((i + digits, n))
    };
    let (mut i, min) = int(1)?;
    let max;
    match b.get(i)? {
        b',' => {
            i += 1;
            if *b.get(i)? == b'}' {
                max = -1;
            } else {
                let (j, m) = int(i)?;
                i = j;
                // Too large a max makes the whole repeat invalid.
                if m < 0 {
                    return (b.get(i) == Some(&b'}')).then_some((i + 1, -1, 0));
                }
                max = m;
            }
        }
        _ => max = min,
    }
    (b.get(i) == Some(&b'}')).then_some((i + 1, min, max))
}

/// Parses a `(?` group opener's flags as Go does; returns (length, flags set, flags cleared,
/// whether it opens a group).
fn parse_flags(rest: &str) -> Result<(usize, String, String, bool), String> {
    let mut on = String::new();
    let mut off = String::new();
    let mut negated = false;
    let mut saw_flag = false;
    for (i, c) in rest.char_indices().skip(2) {
        match c {
            'i' | 'm' | 's' | 'U' => {
                let (add, remove) = if negated {
                    (&mut off, &mut on)
                } else {
                    (&mut on, &mut off)
                };
                remove.retain(|f| f != c);
                if !add.contains(c) {
                    add.push(c);
                }
                saw_flag = true;
            }
            '-' if !negated => {
                negated = true;
                saw_flag = false;
            }
            ':' | ')' if !negated || saw_flag => return Ok((i + 1, on, off, c == ':')),
            _ => {
                let seen = &rest[..i + c.len_utf8()];
                return Err(format!("invalid or unsupported Perl syntax: `{seen}`"));
            }
        }
    }
    Err(format!("invalid or unsupported Perl syntax: `{rest}`"))
}

/// `\pN`, `\p{Greek}`, `\P{^Greek}`: returns the bytes used.
fn unicode_class(s: &str, out: &mut String) -> Result<usize, String> {
    let mut negated = s.as_bytes()[1] == b'P';
    let (name, used) = match s[2..].chars().next() {
        Some('{') => match s.find('}') {
            Some(end) => (&s[3..end], end + 1),
            None => return Err(format!("invalid character class range: `{s}`")),
        },
        Some(c) => (&s[2..2 + c.len_utf8()], 2 + c.len_utf8()),
        None => return Err(format!("invalid character class range: `{s}`")),
    };
    let name = match name.strip_prefix('^') {
        Some(n) => {
            negated = !negated;
            n
        }
        None => name,
    };
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("invalid character class range: `{}`", &s[..used]));
    }
    let _ = write!(out, "\\{}{{{name}}}", if negated { 'P' } else { 'p' });
    Ok(used)
}

/// Go's single-character escapes (`s` starts with the backslash): returns the character and the
/// bytes used.
fn parse_escape(s: &str) -> Result<(char, usize), String> {
    // `used` counts characters: the text may hold multi-byte ones.
    let invalid = |used: usize| {
        let seq: String = s.chars().take(used).collect();
        Err(format!("invalid escape sequence: `{seq}`"))
    };
    let mut it = s[1..].char_indices().map(|(i, c)| (i + 1, c));
    let Some((_, c)) = it.next() else {
        return Err("trailing backslash at end of expression".into());
    };
    let c_end = 1 + c.len_utf8();
    let octal = |b: Option<&u8>| b.is_some_and(|b| (b'0'..=b'7').contains(b));
    let b = s.as_bytes();
    let v: u32 = match c {
        // A lone non-zero digit would be a backreference: not supported.
        '1'..='7' if !octal(b.get(2)) => return invalid(c_end),
        '0'..='7' => {
            let mut v = c as u32 - '0' as u32;
            let mut i = 2;
            while i < 4 && octal(b.get(i)) {
                v = v * 8 + u32::from(b[i] - b'0');
                i += 1;
            }
            return Ok((char::from_u32(v).expect("octal < 512"), i));
        }
        'x' => {
            let hex = |b: u8| (b as char).to_digit(16);
            if b.get(2) == Some(&b'{') {
                // Any number of hex digits up to U+10FFFF. Go takes a surrogate too, which can
                // never match UTF-8 text; we refuse it.
                let Some(close) = s.find('}') else {
                    return invalid(s.chars().count());
                };
                let digits = &s[3..close];
                let mut v: u32 = 0;
                for d in digits.bytes() {
                    match hex(d) {
                        Some(d) if v <= 0x10FFFF => v = v * 16 + d,
                        _ => return invalid(s[..=close].chars().count()),
                    }
                }
                match char::from_u32(v).filter(|_| !digits.is_empty()) {
                    Some(c) => return Ok((c, close + 1)),
                    None => return invalid(s[..=close].chars().count()),
                }
            }
            match (
                b.get(2).and_then(|&d| hex(d)),
                b.get(3).and_then(|&d| hex(d)),
            ) {
                (Some(h), Some(l)) => return Ok((char::from(16 * h as u8 + l as u8), 4)),
                _ => return invalid(4),
            }
        }
        'a' => 7,
        'f' => 12,
        'n' => 10,
        'r' => 13,
        't' => 9,
        'v' => 11,
        // Escaped ASCII punctuation is itself.
        c if c.is_ascii() && !c.is_ascii_alphanumeric() => c as u32,
        _ => return invalid(c_end),
    };
    Ok((char::from_u32(v).expect("ASCII"), c_end))
}

/// Translates the bracket class starting at byte `pos` of `src`; returns the byte after it.
fn class(src: &str, pos: usize, out: &mut String) -> Result<usize, String> {
    let whole = &src[pos..];
    let missing = || format!("missing closing ]: `{whole}`");
    let mut i = pos + 1;
    out.push('[');
    if src[i..].starts_with('^') {
        out.push('^');
        i += 1;
    }
    let mut first = true;
    loop {
        let t = &src[i..];
        if t.is_empty() {
            return Err(missing());
        }
        if t.starts_with(']') && !first {
            out.push(']');
            return Ok(i + 1);
        }
        first = false;
        if t.len() > 2 && t.starts_with("[:") {
            if let Some(end) = t[2..].find(":]") {
                let spec = &t[..end + 4];
                let name = spec[2..spec.len() - 2].trim_start_matches('^');
                if spec[2..].matches('^').count() > 1 || !POSIX_CLASSES.contains(&name) {
                    return Err(format!("invalid character class range: `{spec}`"));
                }
                out.push_str(spec);
                i += spec.len();
                continue;
            }
        }
        if t.starts_with("\\p") || t.starts_with("\\P") {
            i += unicode_class(t, out)?;
            continue;
        }
        if let Some(c @ ('d' | 'D' | 's' | 'S' | 'w' | 'W')) =
            t.strip_prefix('\\').and_then(|r| r.chars().next())
        {
            let (set, negated) = perl_class(c);
            // A negated set inside a class is a nested class: Rust takes their union.
            if negated {
                let _ = write!(out, "[^{set}]");
            } else {
                out.push_str(set);
            }
            i += 2;
            continue;
        }
        let lo_start = i;
        let (lo, used) = class_char(t).map_err(|e| e.unwrap_or_else(missing))?;
        i += used;
        push_lit(out, lo);
        let t = &src[i..];
        if t.len() >= 2 && t.starts_with('-') && !t[1..].starts_with(']') {
            let (hi, used) = class_char(&t[1..]).map_err(|e| e.unwrap_or_else(missing))?;
            if hi < lo {
                let range = &src[lo_start..i + 1 + used];
                return Err(format!("invalid character class range: `{range}`"));
            }
            out.push('-');
            push_lit(out, hi);
            i += 1 + used;
        }
    }
}

/// One character of a class, escaped or not. `Err(None)` means the input ended.
fn class_char(t: &str) -> Result<(char, usize), Option<String>> {
    match t.chars().next() {
        None => Err(None),
        Some('\\') => parse_escape(t).map_err(Some),
        Some(c) => Ok((c, c.len_utf8())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(re: &str) -> String {
        translate(re).unwrap_or_else(|e| panic!("{re}: {e}"))
    }

    fn full(re: &str) -> regex::Regex {
        regex::Regex::new(&tr(&format!("^(?:{re})$"))).unwrap()
    }

    #[test]
    fn perl_classes_are_ascii() {
        assert!(!full(r"\w+").is_match("café"));
        assert!(full(r"\w+").is_match("cafe_1"));
        assert!(!full(r"\d").is_match("٣"));
        assert!(full(r"\D").is_match("٣"));
        assert!(!full(r"\s").is_match("\u{b}"));
        assert!(full(r"[[:space:]]").is_match("\u{b}"));
        assert!(full(r"[\d\s]+").is_match("1 2\n"));
        assert!(full(r"[^\D]").is_match("7"));
        assert!(!full(r"[^\D]").is_match("x"));
        assert!(full(r".*\bx").is_match("éx"));
    }

    #[test]
    fn go_literals() {
        assert!(full(r"a{").is_match("a{"));
        assert!(full(r"a{,3}").is_match("a{,3}"));
        assert!(full(r"a{01}").is_match("a{01}"));
        assert!(full(r"x{2}").is_match("xx"));
        assert!(full(r"\Qa.b\E+").is_match("a.bbb"));
        assert!(full(r"\101\0").is_match("A\0"));
        assert!(full(r"\x41\x{42}").is_match("AB"));
        assert!(full(r"\<\>").is_match("<>"));
        assert!(full(r"[[]").is_match("["));
        assert!(full(r"[]a]+").is_match("]a"));
        assert!(full(r"[a&&b]+").is_match("&"));
        assert!(full(r"[a-]+").is_match("-a"));
        assert!(full(r"a]}").is_match("a]}"));
        assert!(full(r"(?P<n1>a)|(?P<n2>b)").is_match("b"));
        assert!(full(r"(?i)ABC").is_match("abc"));
        assert!(full(r"xa(?i)(?s)*B").is_match("xaaab"));
        assert!(full(r"xa(?i)(?s)*B").is_match("xb"));
        assert!(full(r"(a)(?i){2}").is_match("aa"));
        assert!(translate(r"a(?i)(*)").is_err());
        assert!(full(r"(?ii-m:A)").is_match("a"));
        assert!(full(r"\pL\p{Greek}\PN\p{^N}").is_match("aαxy"));
    }

    #[test]
    fn go_errors() {
        for (re, msg) in [
            (r"a**", "invalid nested repetition operator: `**`"),
            (r"a{2}{3}", "invalid nested repetition operator: `{2}{3}`"),
            (r"*a", "missing argument to repetition operator: `*`"),
            (r"(+)", "missing argument to repetition operator: `+`"),
            (r"a|?", "missing argument to repetition operator: `?`"),
            (r"x{1001}", "invalid repeat count: `{1001}`"),
            (r"x{2,1}", "invalid repeat count: `{2,1}`"),
            (r"(x{100}){11}", "invalid repeat count: `{11}`"),
            (r"\C", "invalid escape sequence: `\\C`"),
            (r"\e", "invalid escape sequence: `\\e`"),
            (r"\u0041", "invalid escape sequence: `\\u`"),
            (r"\1", "invalid escape sequence: `\\1`"),
            (r"\Z", "invalid escape sequence: `\\Z`"),
            (r"(?x)a", "invalid or unsupported Perl syntax: `(?x`"),
            (r"(?i)*a", "missing argument to repetition operator: `*`"),
            (r"(?<n>a)", "invalid or unsupported Perl syntax: `(?<`"),
            (r"(?=a)", "invalid or unsupported Perl syntax: `(?=`"),
            (r"(?i-)a", "invalid or unsupported Perl syntax: `(?i-)`"),
            (r"[a", "missing closing ]: `[a`"),
            (r"[z-a]", "invalid character class range: `z-a`"),
            (r"[[:foo:]]", "invalid character class range: `[:foo:]`"),
            (r"\p{", "invalid character class range: `\\p{`"),
            (r"a\", "trailing backslash at end of expression"),
        ] {
            assert_eq!(translate(re).unwrap_err(), msg, "{re}");
        }
    }

    #[test]
    fn repeat_products() {
        assert!(translate(r"(x{10}){100}").is_ok());
        assert!(translate(r"((x{10}y){10}){11}").is_err());
        assert!(translate(r"(x{0}){1000}").is_ok());
        assert!(translate(r"((x{500}){0}){3}").is_ok());
        assert!(translate(r"((x{500}){0,}){3}").is_err());
        assert!(translate(r"(x*){1000}").is_ok());
        assert!(translate(r"x{1000}y{1000}").is_ok());
    }

    #[test]
    fn anchoring_is_left_to_the_caller() {
        assert_eq!(tr("^(?:a|b)$"), "^(?:a|b)$");
        assert_eq!(tr(r"a.b"), "a.b");
    }
}
