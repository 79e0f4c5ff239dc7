//! Property tests of the dump line format: whatever `write_line` prints, `parse_line` and
//! `decode_labels` read back exactly; Go quoting round-trips; the fuzz target's function holds
//! its invariants on random and mutated input.

use prom2om::format::dump::goquote::{quote, unquote_into};
use prom2om::format::dump::{
    decode_labels, fuzz_check, parse_go_float, parse_line, write_line, Value,
};
use prom2om::format::gofloat::format_g;
use prom2om::labels::Labels;
use proptest::prelude::*;

/// Characters that stress quoting, mixed with arbitrary ones (controls, non-BMP, unassigned).
fn awkward_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => any::<char>(),
        2 => prop::char::range('a', 'z'),
        2 => prop::sample::select(vec![
            '"', '\\', '\n', '\r', '\t', '\x01', '\x7f', '\u{85}', '\u{a0}', '\u{ad}', '\u{200b}',
            '\u{2028}', '\u{feff}', '\u{e000}', '😀', '\u{10ffff}', 'é', ' ', '=', ',', '{', '}',
            '.', '_',
        ]),
    ]
}

fn text(min: usize, max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(awkward_char(), min..max).prop_map(String::from_iter)
}

fn label_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z_][a-zA-Z0-9_]{0,8}",
        Just("__name__".to_string()),
        text(1, 8),
    ]
}

fn labels() -> impl Strategy<Value = Labels> {
    prop::collection::vec((label_name(), text(0, 12)), 0..6).prop_map(Labels::from_pairs)
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => any::<u64>().prop_map(f64::from_bits),
        1 => prop::sample::select(vec![
            0.0, -0.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::MAX, f64::MIN,
            f64::MIN_POSITIVE, f64::from_bits(1), f64::from_bits(0x7ff0_0000_0000_0002), 1e6, 0.1,
        ]),
        1 => (-1_000_000i64..1_000_000).prop_map(|i| i as f64),
    ]
}

fn seed_line() -> impl Strategy<Value = Vec<u8>> {
    (labels(), float(), any::<i64>()).prop_map(|(l, v, ts)| {
        let mut out = Vec::new();
        write_line(&l, v, ts, &mut out);
        out.pop();
        out
    })
}

/// A valid line with a few random byte edits, so random input reaches the parser's depths.
fn mutated_line() -> impl Strategy<Value = Vec<u8>> {
    let alphabet = prop::sample::select(b"{}=\", \\xuU0123456789.e+-NaIf\r\xff\xc3a_".to_vec());
    let edit = (any::<prop::sample::Index>(), alphabet, 0..3u8);
    (seed_line(), prop::collection::vec(edit, 1..5)).prop_map(|(mut b, edits)| {
        for (at, c, op) in edits {
            let i = at.index(b.len() + 1);
            match op {
                0 => b.insert(i, c),
                1 if i < b.len() => b[i] = c,
                _ if i < b.len() => drop(b.remove(i)),
                _ => b.push(c),
            }
        }
        b
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn write_then_parse_round_trips(l in labels(), v in float(), ts in any::<i64>()) {
        let mut out = Vec::new();
        write_line(&l, v, ts, &mut out);
        prop_assert_eq!(out.pop(), Some(b'\n'));
        let line = parse_line(&out).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(line.ts, ts);
        match line.value {
            Value::Float(w) => prop_assert!(w.to_bits() == v.to_bits() || (v.is_nan() && w.is_nan())),
            Value::Histogram(h) => prop_assert!(false, "histogram {:?}", h),
        }
        let back = decode_labels(line.labels).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, l);
    }

    #[test]
    fn quote_then_unquote_round_trips(s in text(0, 20)) {
        let mut q = Vec::new();
        quote(&s, &mut q);
        prop_assert_eq!(q.first(), Some(&b'"'));
        prop_assert_eq!(q.last(), Some(&b'"'));
        let mut back = Vec::new();
        prop_assert_eq!(unquote_into(&q[1..q.len() - 1], &mut back), Ok(()));
        prop_assert_eq!(back, s.as_bytes());
    }

    #[test]
    fn any_string_round_trips_through_quote(s in any::<String>()) {
        let mut q = Vec::new();
        quote(&s, &mut q);
        let mut back = Vec::new();
        prop_assert_eq!(unquote_into(&q[1..q.len() - 1], &mut back), Ok(()));
        prop_assert_eq!(back, s.as_bytes());
    }

    #[test]
    fn unquote_never_panics(b in prop::collection::vec(any::<u8>(), 0..40)) {
        let _ = unquote_into(&b, &mut Vec::new());
    }

    #[test]
    fn format_g_reads_back_bit_exact(bits in any::<u64>()) {
        let v = f64::from_bits(bits);
        let mut s = Vec::new();
        format_g(v, &mut s);
        let back = parse_go_float(&s);
        prop_assert!(back.is_some(), "{:?}", String::from_utf8_lossy(&s));
        let back = back.unwrap();
        prop_assert!(back.to_bits() == bits || (v.is_nan() && back.is_nan()));
    }

    /// Mirrors fuzz/fuzz_targets/parse_line.rs: the same function on random bytes.
    #[test]
    fn fuzz_target_on_random_bytes(data in prop::collection::vec(any::<u8>(), 0..120)) {
        fuzz_check(&data);
    }

    #[test]
    fn fuzz_target_on_mutated_lines(data in mutated_line()) {
        fuzz_check(&data);
    }
}
