//! Go string quoting: `strconv.Quote`, which `promtool tsdb dump` uses for label values (and for
//! non-classic label names since Prometheus 3.1), and the matching unquoting. Unquoting is on the
//! hot path of dump parsing; quoting serves tests, the fuzz target and corpus generation.

use memchr::memchr;

/// Why a quoted string could not be decoded, and where: `pos` is the offset of the offending
/// backslash in the bytes given to [`unquote_at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnquoteError {
    pub pos: usize,
    pub msg: &'static str,
}

/// The message of an unknown escape such as `\q`; callers may append the escape itself.
pub const INVALID_ESCAPE: &str = "invalid escape";

/// Decodes the bytes between the double quotes of a Go-quoted string into `out`, as Go's
/// `strconv.Unquote` does: `\a \b \f \n \r \t \v \\ \"`, `\xNN`, octal `\NNN` (at most `\377`),
/// `\uNNNN` and `\UNNNNNNNN` (surrogates and values above U+10FFFF rejected). Other bytes pass
/// through unchanged, so the caller must check UTF-8 afterwards (`\xff` yields an invalid byte).
/// Like Go, `\'` is rejected inside a double-quoted string.
pub fn unquote_into(inner: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    unquote_at(inner, out).map_err(|e| e.msg)
}

/// [`unquote_into`] that also reports where the bad escape starts.
pub fn unquote_at(inner: &[u8], out: &mut Vec<u8>) -> Result<(), UnquoteError> {
    let mut done = 0;
    while let Some(i) = memchr(b'\\', &inner[done..]) {
        let bs = done + i;
        out.extend_from_slice(&inner[done..bs]);
        done = unescape(inner, bs, out)?;
    }
    out.extend_from_slice(&inner[done..]);
    Ok(())
}

/// Decodes the escape whose backslash is at `bs`; returns the offset just after it.
fn unescape(s: &[u8], bs: usize, out: &mut Vec<u8>) -> Result<usize, UnquoteError> {
    let fail = |msg| Err(UnquoteError { pos: bs, msg });
    let Some(&c) = s.get(bs + 1) else {
        return fail("backslash at end of quoted string");
    };
    let simple = match c {
        b'a' => Some(0x07),
        b'b' => Some(0x08),
        b'f' => Some(0x0c),
        b'n' => Some(b'\n'),
        b'r' => Some(b'\r'),
        b't' => Some(b'\t'),
        b'v' => Some(0x0b),
        b'\\' => Some(b'\\'),
        b'"' => Some(b'"'),
        _ => None,
    };
    if let Some(b) = simple {
        out.push(b);
        return Ok(bs + 2);
    }
    match c {
        b'x' => match hex_digits(s, bs + 2, 2) {
            Some(v) => {
                out.push(v as u8);
                Ok(bs + 4)
            }
            None => fail("\\x escape needs 2 hex digits"),
        },
        b'0'..=b'7' => {
            let digits = s
                .get(bs + 1..bs + 4)
                .filter(|d| d.iter().all(|b| matches!(b, b'0'..=b'7')));
            let Some(d) = digits else {
                return fail("octal escape needs 3 octal digits");
            };
            let v = d.iter().fold(0u32, |v, &b| v * 8 + u32::from(b - b'0'));
            if v > 255 {
                return fail("octal escape above \\377");
            }
            out.push(v as u8);
            Ok(bs + 4)
        }
        b'u' | b'U' => {
            let (n, msg) = if c == b'u' {
                (4, "\\u escape needs 4 hex digits")
            } else {
                (8, "\\U escape needs 8 hex digits")
            };
            let Some(v) = hex_digits(s, bs + 2, n) else {
                return fail(msg);
            };
            let Some(ch) = char::from_u32(v) else {
                return fail("escape is a surrogate or above U+10FFFF");
            };
            out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
            Ok(bs + 2 + n)
        }
        _ => fail(INVALID_ESCAPE),
    }
}

/// The value of `n` hex digits at `s[at..]`, if they are all there.
fn hex_digits(s: &[u8], at: usize, n: usize) -> Option<u32> {
    s.get(at..at + n)?
        .iter()
        .try_fold(0u32, |v, &b| Some(v << 4 | (b as char).to_digit(16)?))
}

/// Appends `s` quoted exactly as Go's `strconv.Quote` does: printable runes raw, `"` and `\`
/// backslashed, `\a \b \f \n \r \t \v` by name, other non-printable runes as `\xNN` (below
/// U+0080), `\uNNNN` or `\UNNNNNNNN`, hex in lowercase. See [`is_go_print`] for the one place
/// where this can differ from Go.
pub fn quote(s: &str, out: &mut Vec<u8>) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut done = 0;
    for (i, c) in s.char_indices() {
        let plain = if c.is_ascii() {
            matches!(c, ' '..='~') && c != '"' && c != '\\'
        } else {
            is_go_print(c)
        };
        if !plain {
            out.extend_from_slice(&bytes[done..i]);
            escape_rune(c, out);
            done = i + c.len_utf8();
        }
    }
    out.extend_from_slice(&bytes[done..]);
    out.push(b'"');
}

/// The quoted form of `s` as a `String`, for messages and tests.
pub fn quoted(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + 2);
    quote(s, &mut out);
    String::from_utf8(out).expect("quote writes UTF-8")
}

fn escape_rune(c: char, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let named = match c {
        '"' => b'"',
        '\\' => b'\\',
        '\x07' => b'a',
        '\x08' => b'b',
        '\x0c' => b'f',
        '\n' => b'n',
        '\r' => b'r',
        '\t' => b't',
        '\x0b' => b'v',
        _ => 0,
    };
    if named != 0 {
        out.extend_from_slice(&[b'\\', named]);
        return;
    }
    let v = c as u32;
    let (prefix, n) = match v {
        0..=0x7f => (b'x', 2),
        0x80..=0xffff => (b'u', 4),
        _ => (b'U', 8),
    };
    out.extend_from_slice(&[b'\\', prefix]);
    out.extend((0..n).rev().map(|k| HEX[(v >> (4 * k) & 0xf) as usize]));
}

/// Go's `strconv.IsPrint` for a non-ASCII rune: letters, marks, numbers, punctuation and
/// symbols are printable; controls (Cc), format characters (Cf), spaces other than U+0020 (Zs,
/// Zl, Zp), private use (Co) and unassigned code points (Cn) are not. Rust's std has no general
/// category table, so controls and spaces come from `char` methods, Cf, Co and noncharacters
/// from explicit ranges (Unicode 15), and planes 4 to 16 (unassigned, tags, private use) are
/// handled whole. The approximation: other unassigned code points (gaps inside planes 0 to 3)
/// count as printable here while Go escapes them as `\uNNNN`. Label values rarely hold them.
pub fn is_go_print(c: char) -> bool {
    let v = c as u32;
    if v < 0x100 {
        // Go's own Latin-1 rule: printable ASCII, and U+00A1..=U+00FF except the soft hyphen.
        return (0x20..0x7f).contains(&v) || (0xa1..=0xff).contains(&v) && v != 0xad;
    }
    if v >= 0x40000 {
        // Planes 4-13 are unassigned, 15-16 private use; plane 14 holds tags (Cf) and the
        // variation selectors supplement (Mn), the only printable runes up here.
        return (0xe0100..=0xe01ef).contains(&v);
    }
    if c.is_whitespace() || c.is_control() {
        return false;
    }
    let noncharacter = (0xfdd0..=0xfdef).contains(&v) || v & 0xfffe == 0xfffe;
    let private_use = (0xe000..=0xf8ff).contains(&v);
    !(noncharacter || private_use || is_format(v))
}

/// Unicode 15 general category Cf above U+00FF (U+180E is Cf since Unicode 6.3).
fn is_format(v: u32) -> bool {
    const CF: &[(u32, u32)] = &[
        (0x0600, 0x0605),
        (0x061c, 0x061c),
        (0x06dd, 0x06dd),
        (0x070f, 0x070f),
        (0x0890, 0x0891),
        (0x08e2, 0x08e2),
        (0x180e, 0x180e),
        (0x200b, 0x200f),
        (0x202a, 0x202e),
        (0x2060, 0x2064),
        (0x2066, 0x206f),
        (0xfeff, 0xfeff),
        (0xfff9, 0xfffb),
        (0x110bd, 0x110bd),
        (0x110cd, 0x110cd),
        (0x13430, 0x1343f),
        (0x1bca0, 0x1bca3),
        (0x1d173, 0x1d17a),
    ];
    CF.iter().any(|&(lo, hi)| (lo..=hi).contains(&v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unq(s: &str) -> Result<Vec<u8>, &'static str> {
        let mut out = Vec::new();
        unquote_into(s.as_bytes(), &mut out).map(|()| out)
    }

    #[test]
    fn unquotes_every_go_escape() {
        let cases: &[(&str, &[u8])] = &[
            ("plain é 😀", "plain é 😀".as_bytes()),
            (r"\a\b\f\n\r\t\v", b"\x07\x08\x0c\n\r\t\x0b"),
            (r#"a\\b\"c"#, br#"a\b"c"#),
            (r"\x41\x7f\xFf", b"A\x7f\xff"),
            (r"\101\000\377", b"A\x00\xff"),
            (r"\u00e9\u200B", "é\u{200b}".as_bytes()),
            (r"\U0001F600\U0010ffff", "😀\u{10ffff}".as_bytes()),
            ("", b""),
        ];
        for &(inner, want) in cases {
            assert_eq!(unq(inner).as_deref(), Ok(want), "unquote {inner:?}");
        }
    }

    #[test]
    fn rejects_what_go_rejects() {
        let cases: &[(&str, usize, &str)] = &[
            (r"ab\q", 2, INVALID_ESCAPE),
            (r"\'", 0, INVALID_ESCAPE),
            ("x\\", 1, "backslash at end of quoted string"),
            (r"\x4", 0, "\\x escape needs 2 hex digits"),
            (r"\xg0", 0, "\\x escape needs 2 hex digits"),
            (r"\12", 0, "octal escape needs 3 octal digits"),
            (r"\128", 0, "octal escape needs 3 octal digits"),
            (r"\400", 0, "octal escape above \\377"),
            (r"\u12", 0, "\\u escape needs 4 hex digits"),
            (r"\U0001F60", 0, "\\U escape needs 8 hex digits"),
            (r"\ud800", 0, "escape is a surrogate or above U+10FFFF"),
            (r"\U00110000", 0, "escape is a surrogate or above U+10FFFF"),
            (r"ok\8", 2, INVALID_ESCAPE),
        ];
        for &(inner, pos, msg) in cases {
            let mut out = Vec::new();
            assert_eq!(
                unquote_at(inner.as_bytes(), &mut out),
                Err(UnquoteError { pos, msg }),
                "unquote {inner:?}"
            );
        }
    }

    #[test]
    fn quotes_like_go() {
        // Expected strings are what Go's strconv.Quote returns.
        let cases: &[(&str, &str)] = &[
            ("", r#""""#),
            ("up", r#""up""#),
            ("a\"b\\c", r#""a\"b\\c""#),
            ("\x07\x08\x0c\n\r\t\x0b", r#""\a\b\f\n\r\t\v""#),
            ("\x00\x01\x1f\x7f", r#""\x00\x01\x1f\x7f""#),
            ("\u{80}\u{85}\u{9f}", r#""\u0080\u0085\u009f""#),
            (
                "\u{a0}\u{a1}\u{ad}é\u{ff}",
                "\"\\u00a0\u{a1}\\u00adé\u{ff}\"",
            ),
            (
                "\u{200b}\u{2028}\u{feff}\u{3000}",
                r#""\u200b\u2028\ufeff\u3000""#,
            ),
            ("\u{e000}\u{fdd0}\u{fffe}", r#""\ue000\ufdd0\ufffe""#),
            ("😀 ∑ 中文 ש", "\"😀 ∑ 中文 ש\""),
            (
                "\u{e0001}\u{e0100}\u{f0000}",
                "\"\\U000e0001\u{e0100}\\U000f0000\"",
            ),
            ("\u{10ffff}", r#""\U0010ffff""#),
        ];
        for &(s, want) in cases {
            assert_eq!(quoted(s), want, "quote {s:?}");
        }
    }

    #[test]
    fn quote_then_unquote_round_trips() {
        for s in [
            "",
            "a\"\\\x01\u{85}\u{200b}😀\u{10ffff}\u{e000}",
            "tab\there",
        ] {
            let q = quoted(s);
            let got = unq(&q[1..q.len() - 1]).unwrap();
            assert_eq!(got, s.as_bytes());
        }
    }
}
