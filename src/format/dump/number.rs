//! Numbers of the dump line: the value as Go's `%g` prints it and the integer timestamp. Both are
//! read with the exact grammar Go produces, so junk is refused rather than half-read.

/// Integer milliseconds: optional `-`, digits, within i64.
pub(super) fn parse_ts(s: &[u8]) -> Result<i64, &'static str> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', d)) => (true, d),
        _ => (false, s),
    };
    if digits.is_empty() {
        return Err(if s.is_empty() {
            "missing timestamp after the value"
        } else {
            "timestamp is not an integer"
        });
    }
    let mut acc: u64 = 0;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return Err("timestamp is not an integer");
        }
        acc = acc
            .checked_mul(10)
            .and_then(|a| a.checked_add(u64::from(d)))
            .ok_or("timestamp out of range for int64")?;
    }
    if neg {
        if acc > 1 << 63 {
            return Err("timestamp out of range for int64");
        }
        Ok((acc as i64).wrapping_neg())
    } else {
        i64::try_from(acc).map_err(|_| "timestamp out of range for int64")
    }
}

/// The bits of the NaN Go's `ParseFloat("NaN")` returns (`math.NaN()`).
pub const GO_NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

/// A float exactly in the shapes Go's `%g` prints: `-?(0|[1-9][0-9]*)(\.[0-9]+)?(e[+-][0-9]{2,3})?`,
/// `+Inf`, `-Inf`, `NaN`. Values that overflow to infinity or underflow to zero are refused (`%g`
/// never prints them). The result has the bits Go's `ParseFloat` gives (NaN has
/// [`GO_NAN_BITS`]): common short forms take Clinger's exact fast path, the rest std's correctly
/// rounded parser.
pub fn parse_go_float(s: &[u8]) -> Option<f64> {
    match s {
        b"+Inf" => return Some(f64::INFINITY),
        b"-Inf" => return Some(f64::NEG_INFINITY),
        b"NaN" => return Some(f64::from_bits(GO_NAN_BITS)),
        _ => {}
    }
    let neg = s.first() == Some(&b'-');
    let mut i = usize::from(neg);
    let mut mant: u64 = 0;
    let mut sig = 0usize; // significant digits in `mant`
    let int_start = i;
    while i < s.len() && s[i].is_ascii_digit() {
        accumulate(&mut mant, &mut sig, s[i]);
        i += 1;
    }
    let int_len = i - int_start;
    if int_len == 0 || (int_len > 1 && s[int_start] == b'0') {
        return None;
    }
    let mut frac_len = 0i32;
    if s.get(i) == Some(&b'.') {
        i += 1;
        let frac_start = i;
        while i < s.len() && s[i].is_ascii_digit() {
            accumulate(&mut mant, &mut sig, s[i]);
            i += 1;
        }
        frac_len = i32::try_from(i - frac_start).unwrap_or(i32::MAX);
        if frac_len == 0 {
            return None;
        }
    }
    let mut exp = 0i32;
    if s.get(i) == Some(&b'e') {
        let exp_neg = match s.get(i + 1) {
            Some(b'+') => false,
            Some(b'-') => true,
            _ => return None,
        };
        let digits = &s[i + 2..];
        if !(2..=3).contains(&digits.len()) || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        exp = digits.iter().fold(0, |e, &c| e * 10 + i32::from(c - b'0'));
        if exp_neg {
            exp = -exp;
        }
        i = s.len();
    }
    if i != s.len() {
        return None;
    }
    let e10 = exp.saturating_sub(frac_len);
    let v = if sig <= 19 && mant <= 1 << 53 && (-22..=22).contains(&e10) {
        // Both operands are exact doubles, so one IEEE operation rounds correctly.
        let m = mant as f64;
        if e10 >= 0 {
            m * POW10[e10 as usize]
        } else {
            m / POW10[(-e10) as usize]
        }
    } else {
        let text = std::str::from_utf8(&s[usize::from(neg)..]).ok()?;
        let v: f64 = text.parse().ok()?;
        if v.is_infinite() || (v == 0.0 && (sig > 0)) {
            return None;
        }
        v
    };
    Some(if neg { -v } else { v })
}

/// Adds a decimal digit to the mantissa, counting significant digits (leading zeros are not).
#[inline(always)]
fn accumulate(mant: &mut u64, sig: &mut usize, c: u8) {
    if *sig > 0 || c != b'0' {
        *sig += 1;
        *mant = mant.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
    }
}

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_form() {
        let cases: &[(&str, f64)] = &[
            ("15", 15.0),
            ("0", 0.0),
            ("1e+06", 1e6),
            ("1.234567e+06", 1234567.0),
            ("123456", 123456.0),
            ("2.5e-10", 2.5e-10),
            ("0.0001", 0.0001),
            ("1e-05", 1e-5),
            ("0.1", 0.1),
            ("-12.5", -12.5),
            ("1.7e+09", 1.7e9),
            ("1e+21", 1e21),
            ("1.7976931348623157e+308", f64::MAX),
            ("-1.7976931348623157e+308", f64::MIN),
            ("2.2250738585072014e-308", f64::MIN_POSITIVE),
            ("5e-324", f64::from_bits(1)),
            ("4.9406564584124654e-324", f64::from_bits(1)),
            (
                "2.225073858507201e-308",
                f64::from_bits(0x000f_ffff_ffff_ffff),
            ),
            ("9007199254740993", 9007199254740992.0),
            ("12345678901234567890123", 1.2345678901234568e22),
            ("+Inf", f64::INFINITY),
            ("-Inf", f64::NEG_INFINITY),
        ];
        for &(text, want) in cases {
            let got = parse_go_float(text.as_bytes()).unwrap();
            assert_eq!(got.to_bits(), want.to_bits(), "{text}");
            assert_eq!(
                got.to_bits(),
                text.parse::<f64>().unwrap().to_bits(),
                "{text}"
            );
        }
        assert_eq!(
            parse_go_float(b"-0").map(f64::to_bits),
            Some((-0.0f64).to_bits())
        );
        assert_eq!(parse_go_float(b"NaN").map(f64::to_bits), Some(GO_NAN_BITS));
    }

    #[test]
    fn rejects_values_go_does_not_print() {
        for junk in [
            "1.2.3", "0x10", "inf", "nan", "Inf", "+5", ".5", "5.", "1e5", "1E+05", "1e+5",
            "1e+1000", "01", "-", "-NaN", "1e+999", "1e-400", "1_000", "١",
        ] {
            assert_eq!(parse_go_float(junk.as_bytes()), None, "{junk}");
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_ts(b"-1"), Ok(-1));
        assert_eq!(parse_ts(b"1700000000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_ts(b"9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_ts(b"-9223372036854775808"), Ok(i64::MIN));
        for (ts, msg) in [
            ("9223372036854775808", "timestamp out of range for int64"),
            ("-9223372036854775809", "timestamp out of range for int64"),
            (
                "99999999999999999999999",
                "timestamp out of range for int64",
            ),
            ("1.5", "timestamp is not an integer"),
            ("-", "timestamp is not an integer"),
            ("1e3", "timestamp is not an integer"),
            ("+5", "timestamp is not an integer"),
            ("", "missing timestamp after the value"),
        ] {
            assert_eq!(parse_ts(ts.as_bytes()), Err(msg), "{ts}");
        }
    }
}
