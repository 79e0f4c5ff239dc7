//! Go's `%g` rendering of a float64 (`strconv.FormatFloat(v, 'g', -1, 64)`), which is how
//! `promtool tsdb dump` prints values. Writing values the same way keeps converted output
//! textually identical to the dump, and the shortest round-trip digits keep it bit-exact.

/// The longest text [`format_g_into`] writes: a sign, 17 digits, a point and `e-324`.
pub const MAX_G_LEN: usize = 24;

/// Appends `v` as Go's `%g` prints it: the shortest digits that read back to the same bits, in
/// exponent form (`1e+06`, `2.5e-10`) when the decimal exponent is below -4 or at least 6 (Go's
/// rule for shortest precision), and `+Inf`, `-Inf`, `NaN`, `-0` spelled as Go spells them.
pub fn format_g(v: f64, out: &mut Vec<u8>) {
    // Formatting in place, not in a buffer then copied: a wide copy of bytes just stored one by
    // one stalls on store forwarding, and this runs once per sample written.
    let at = out.len();
    out.resize(at + 32, 0);
    let tail = (&mut out[at..]).try_into().expect("32 bytes");
    let n = format_g_into(v, tail);
    out.truncate(at + n);
}

/// [`format_g`] into `out[..n]`; returns `n`, at most [`MAX_G_LEN`].
pub fn format_g_into(v: f64, out: &mut [u8; 32]) -> usize {
    if !v.is_finite() || v == 0.0 {
        let s: &[u8] = if v.is_nan() {
            b"NaN"
        } else if v == f64::INFINITY {
            b"+Inf"
        } else if v == f64::NEG_INFINITY {
            b"-Inf"
        } else if v.is_sign_negative() {
            b"-0"
        } else {
            b"0"
        };
        out[..s.len()].copy_from_slice(s);
        return s.len();
    }
    let neg = usize::from(v.is_sign_negative());
    out[0] = b'-';
    let body: &mut [u8; 24] = (&mut out[neg..neg + 24]).try_into().expect("24 bytes");
    let a = v.abs();
    if let Some((n, k)) = few_decimals(a) {
        return neg + decimal(n, k, body);
    }
    // zmij yields the shortest round-trip digits, closest to the value: the digits Go's shortest
    // mode picks (zmij's own tests hold it to ryu's, ours to the ryu-based reference). Only its
    // layout differs: `123.45`, `1234567.0`, `0.00001`, `1.5e-7`, `1e+16`.
    let mut zb = zmij::Buffer::new();
    neg + relayout(zb.format_finite(a).as_bytes(), body)
}

/// Lays out zmij's text of a positive finite value Go's way into `out`; returns the length.
fn relayout(s: &[u8], out: &mut [u8; 24]) -> usize {
    let n = s.len();
    // zmij writes an exponent only where Go does too (below 1e-5 and from 1e16 on), but with
    // one digit where Go writes two: `1e-7` against `1e-07`.
    if let Some(k) = [3, 4, 5].into_iter().find(|&k| n >= k && s[n - k] == b'e') {
        let e = n - k;
        out[..e + 2].copy_from_slice(&s[..e + 2]);
        if k == 3 {
            out[e + 2] = b'0';
            out[e + 3] = s[e + 2];
            return n + 1;
        }
        out[e + 2..n].copy_from_slice(&s[e + 2..]);
        return n;
    }
    if s[0] == b'0' {
        // `0.000ddd`: Go writes the same down to 1e-4 (four zeros at most), 1e-5 with an exponent.
        let z = s[2..]
            .iter()
            .position(|&c| c != b'0')
            .expect("a non-zero digit");
        if z < 4 {
            out[..n].copy_from_slice(s);
            return n;
        }
        return exponent_form(&s[2 + z..], b"", -(z as i32) - 1, out);
    }
    let p = s
        .iter()
        .position(|&c| c == b'.')
        .expect("zmij's fixed form has a point");
    // An integral value comes as `1234567.0` (only from 2^53 on: smaller ones took the integer path).
    let frac: &[u8] = if n == p + 2 && s[p + 1] == b'0' {
        b""
    } else {
        &s[p + 1..]
    };
    if p <= 6 {
        // Decimal exponent below 6: Go writes the fixed form too, without zmij's `.0`.
        let len = if frac.is_empty() { p } else { n };
        out[..len].copy_from_slice(&s[..len]);
        return len;
    }
    exponent_form(&s[..p], frac, p as i32 - 1, out)
}

/// `d.ddde±XX` from the significant digits `a` then `b` (trailing zeros in `a` only when `b` is
/// empty) and a decimal exponent with two digits.
fn exponent_form(a: &[u8], b: &[u8], exp: i32, out: &mut [u8; 24]) -> usize {
    let a = if b.is_empty() {
        &a[..=a
            .iter()
            .rposition(|&c| c != b'0')
            .expect("a non-zero digit")]
    } else {
        a
    };
    out[0] = a[0];
    let mut i = 1;
    if a.len() + b.len() > 1 {
        out[1] = b'.';
        out[2..a.len() + 1].copy_from_slice(&a[1..]);
        i = a.len() + 1;
        out[i..i + b.len()].copy_from_slice(b);
        i += b.len();
    }
    let e = exp.unsigned_abs() as u8;
    let sign = if exp < 0 { b'-' } else { b'+' };
    out[i..i + 4].copy_from_slice(&[b'e', sign, b'0' + e / 10, b'0' + e % 10]);
    i + 4
}

/// Decimal places tried by [`few_decimals`]: integers, and values such as prices, ratios, load
/// averages and CPU seconds. Each more place costs values with all 17 digits a try (measured: up
/// to two places cost them nothing, four cost them a third more time).
const MAX_DECIMALS: usize = 2;
const POW10: [f64; MAX_DECIMALS + 1] = [1.0, 10.0, 100.0];

/// `(n, k)` such that `n / 10^k`, with `k <= MAX_DECIMALS` decimal places, is the shortest
/// decimal that reads back as `a` (positive, finite), and the only one of its length: then it is
/// what Go prints, with no float formatter needed. `None` for other values.
///
/// Why it is the shortest: with `n < 2^53`, ParseFloat reads `n / 10^k` as `n as f64 / 10^k`
/// (one correctly rounded division of exact values), so the division check says it reads back
/// as `a`. Any other decimal of as many or fewer significant digits, near `a`, lies on the grid
/// of `10^-k` too (or on a coarser one) and so at least `10^-k` away from `n / 10^k`; when that
/// exceeds the float spacing `ulp(a)`, it is more than half an ulp from `a` and reads back as
/// another float.
fn few_decimals(a: f64) -> Option<(u64, usize)> {
    const TWO_53: f64 = (1u64 << 53) as f64;
    for (k, &p) in POW10.iter().enumerate() {
        let m = a * p;
        if m >= TWO_53 {
            return None;
        }
        // `as i64` is one instruction where `trunc` is a libm call without SSE4.1.
        let n = m as i64;
        if n as f64 != m {
            continue;
        }
        let ulp = f64::from_bits(a.to_bits() + 1) - a;
        return (n as f64 / p == a && ulp * p < 1.0).then_some((n as u64, k));
    }
    None
}

/// Lays out `n / 10^k` (`0 < n < 2^53`, `k <= MAX_DECIMALS`) Go's way; returns the length.
fn decimal(mut n: u64, mut k: usize, out: &mut [u8; 24]) -> usize {
    const _: () = assert!(MAX_DECIMALS <= 2, "decimal() writes at most two places");
    while k > 0 && n % 10 == 0 {
        n /= 10;
        k -= 1;
    }
    let nd = n.ilog10() as usize + 1;
    let exp = nd as i32 - 1 - k as i32;
    if exp < 0 {
        // `0.ddd` or `0.0d`: at least 0.01, far from Go's exponent form (below 1e-4).
        out[..3].copy_from_slice(b"0.0");
        let z = (-exp - 1) as usize;
        write_digits(n, &mut out[2 + z..2 + z + nd]);
        return 2 + z + nd;
    }
    if exp >= 6 {
        // Exponent form: the digits from out[1] on, the first moved before the point. An
        // integer may end in zeros, which go, and the point with them if alone.
        write_digits(n, &mut out[1..=nd]);
        out[0] = out[1];
        out[1] = b'.';
        let mut end = nd + 1;
        while out[end - 1] == b'0' {
            end -= 1;
        }
        if end == 2 {
            end = 1;
        }
        let e = exp as u8;
        out[end..end + 4].copy_from_slice(&[b'e', b'+', b'0' + e / 10, b'0' + e % 10]);
        return end + 4;
    }
    let point = exp as usize + 1;
    let (int, frac) = match k {
        0 => (n, 0),
        1 => (n / 10, n % 10),
        _ => (n / 100, n % 100),
    };
    write_digits(int, &mut out[..point]);
    if k == 0 {
        return point;
    }
    out[point] = b'.';
    let f = frac as usize * 2;
    if k == 1 {
        out[point + 1] = DIGIT_PAIRS[f + 1];
    } else {
        out[point + 1] = DIGIT_PAIRS[f];
        out[point + 2] = DIGIT_PAIRS[f + 1];
    }
    point + 1 + k
}

/// "00" to "99", for writing two digits per division.
const DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566\
    676869707172737475767778798081828384858687888990919293949596979899";

/// Writes the decimal digits of `n` right-aligned in `out`, whose length must be their count.
#[inline]
pub(crate) fn write_digits(mut n: u64, out: &mut [u8]) {
    let mut i = out.len();
    while n >= 100 {
        let d = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        out[i] = DIGIT_PAIRS[d];
        out[i + 1] = DIGIT_PAIRS[d + 1];
    }
    if n >= 10 {
        let d = n as usize * 2;
        out[i - 2] = DIGIT_PAIRS[d];
        out[i - 1] = DIGIT_PAIRS[d + 1];
    } else {
        out[i - 1] = b'0' + n as u8;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn g(v: f64) -> String {
        let mut out = Vec::new();
        format_g(v, &mut out);
        String::from_utf8(out).unwrap()
    }

    /// The previous implementation, kept as the reference: ryu's shortest digits, parsed back out
    /// of its text and laid out Go's way one byte at a time.
    fn reference(v: f64) -> String {
        if v.is_nan() {
            return "NaN".into();
        }
        if v.is_infinite() {
            return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
        }
        if v == 0.0 {
            return if v.is_sign_negative() { "-0" } else { "0" }.into();
        }
        let mut buf = ryu::Buffer::new();
        let s = buf.format_finite(v.abs());
        let (mant, exp_part) = match s.split_once('e') {
            Some((m, e)) => (m, e.parse::<i32>().unwrap()),
            None => (s, 0),
        };
        let point = mant.find('.').unwrap_or(mant.len()) as i32;
        let all: String = mant.chars().filter(|&c| c != '.').collect();
        let first = all.find(|c| c != '0').unwrap();
        let digits = all[first..].trim_end_matches('0');
        let exp = point - first as i32 - 1 + exp_part;
        let sign = if v < 0.0 { "-" } else { "" };
        if !(-4..6).contains(&exp) {
            let (d0, rest) = digits.split_at(1);
            let point = if rest.is_empty() { "" } else { "." };
            let esign = if exp < 0 { '-' } else { '+' };
            format!("{sign}{d0}{point}{rest}e{esign}{:02}", exp.unsigned_abs())
        } else if exp < 0 {
            format!("{sign}0.{}{digits}", "0".repeat((-exp - 1) as usize))
        } else {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                format!("{sign}{digits:0<int_len$}")
            } else {
                let (i, f) = digits.split_at(int_len);
                format!("{sign}{i}.{f}")
            }
        }
    }

    #[test]
    fn matches_go_percent_g() {
        // Expected strings are what Go's fmt.Sprintf("%g", v) prints.
        let cases: &[(f64, &str)] = &[
            (15.0, "15"),
            (1e6, "1e+06"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (-0.0, "-0"),
            (0.0, "0"),
            (2.5e-10, "2.5e-10"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (0.1, "0.1"),
            (-12.5, "-12.5"),
            (1700000000.0, "1.7e+09"),
            (100000.0, "100000"),
            (1e21, "1e+21"),
            (399606251.43, "3.9960625143e+08"),
            (9007199254740993.0, "9.007199254740992e+15"),
            (1e15, "1e+15"),
            (1e16, "1e+16"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (1.5e-7, "1.5e-07"),
            (0.000123, "0.000123"),
            (-1.2e-5, "-1.2e-05"),
        ];
        for &(v, want) in cases {
            assert_eq!(g(v), want, "format_g({v:?})");
            assert_eq!(reference(v), want, "reference({v:?})");
        }
    }

    #[test]
    fn reads_back_bit_exact() {
        for bits in [
            1u64,
            0x3ff0_0000_0000_0001,
            0x7fef_ffff_ffff_ffff,
            0x4197_d784_0000_0001,
        ] {
            let v = f64::from_bits(bits);
            assert_eq!(g(v).parse::<f64>().unwrap().to_bits(), bits);
        }
    }

    #[test]
    fn every_decimal_exponent_and_integer_length() {
        for e in -325..=309 {
            for m in [
                "1",
                "1.5",
                "9.999999",
                "1.234567890123",
                "4.9406564584124654",
            ] {
                let v: f64 = format!("{m}e{e}").parse().unwrap();
                for v in [v, -v, f64::from_bits(v.to_bits() + 1)] {
                    assert_eq!(g(v), reference(v), "{v:e}");
                }
            }
        }
        for k in 0..=53 {
            for n in [
                1u64 << k,
                (1u64 << k) - 1,
                (1 << k) + 1,
                10u64.pow(k.min(19) as u32),
            ] {
                for v in [n as f64, -(n as f64), n as f64 * 10.0] {
                    assert_eq!(g(v), reference(v), "{v:e}");
                }
            }
        }
    }

    /// Bit patterns weighted toward the shapes that matter: any bits (NaN payloads, subnormals,
    /// huge and tiny exponents), integers, and few-digit decimals around every layout boundary.
    fn arb_value() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<u64>().prop_map(f64::from_bits),
            (0u64..1 << 52).prop_map(f64::from_bits),
            (-(1i64 << 54)..1 << 54).prop_map(|n| n as f64),
            (any::<i32>(), -12i32..20).prop_map(|(m, e)| m as f64 * 10f64.powi(e)),
            (any::<i64>(), -25i32..25).prop_map(|(m, e)| (m >> 10) as f64 / 10f64.powi(e)),
            // Few decimals, and the floats next to them.
            (0u32..54, any::<u64>(), 0i32..5, -2i64..=2).prop_map(|(b, n, k, d)| {
                let v = (n >> (64 - b.max(1))) as f64 / 10f64.powi(k);
                f64::from_bits((v.to_bits() as i64 + d).max(0) as u64)
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn same_text_as_the_reference(v in arb_value()) {
            let got = g(v);
            prop_assert_eq!(&got, &reference(v));
            let mut buf = [0u8; 32];
            let n = format_g_into(v, &mut buf);
            prop_assert!(n <= MAX_G_LEN);
            prop_assert_eq!(&buf[..n], got.as_bytes());
        }
    }
}
