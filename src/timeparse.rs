//! Times, durations and sizes given on the command line. Times and durations follow Prometheus
//! exactly (the HTTP API's `parseTime`, `model.ParseDuration`), so a `--start` means the same
//! millisecond to prom2om as to the server it reads from.

use nom::branch::alt;
use nom::bytes::complete::{tag, take_while_m_n};
use nom::character::complete::{char, digit0, digit1, one_of};
use nom::combinator::{all_consuming, opt, recognize};
use nom::multi::many1;
use nom::sequence::{pair, tuple};
use nom::IResult;

use crate::bad_input;

const TIME_FORMS: &str = "expected an RFC 3339 time (2024-05-01T12:00:00Z, \
     2024-05-01T14:00:00.250+02:00) or Unix seconds (1714564800, 1714564800.25)";

/// Parses a time into Unix milliseconds, as the Prometheus HTTP API does: Unix seconds with an
/// optional fraction, rounded to the nearest millisecond (half away from zero), or an RFC 3339
/// time read like Go's `time.Parse` (up to nine fraction digits, truncated to the millisecond:
/// `.9999Z` is 999 ms, and before 1970 towards the past). Negative times are allowed. Like Go's
/// `ParseFloat`, `1_714_564_800` is a number; hex floats, `inf` and `nan` are refused.
pub fn parse_time(s: &str) -> anyhow::Result<i64> {
    let bad = |why: &str| bad_input!("invalid time {s:?}: {why}{TIME_FORMS}");
    if let Some(number) = decimal_float(s) {
        let t: f64 = number.parse().map_err(|_| bad(""))?;
        return unix_seconds_to_ms(t).ok_or_else(|| bad("out of range; "));
    }
    match rfc3339(s) {
        Ok((_, parts)) => parts.to_ms().map_err(|why| bad(&format!("{why}; "))),
        Err(_) => Err(bad("")),
    }
}

/// Unix milliseconds as RFC 3339 in UTC, for messages: `2023-11-14T22:13:20Z`, with `.250` when
/// the time has milliseconds; beyond chrono's range (about ±262000 years) the plain number.
pub fn format_time(ms: i64) -> String {
    use chrono::{Datelike, Timelike};
    let Some(t) = chrono::DateTime::from_timestamp_millis(ms) else {
        return format!("{ms} ms");
    };
    let frac = match ms.rem_euclid(1000) {
        0 => String::new(),
        f => format!(".{f:03}"),
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{frac}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Whether a time given as Unix seconds has 13 or more integer digits: a millisecond timestamp
/// by mistake (as seconds, the year 33658 or later), which `--start`/`--end` refuse.
pub fn looks_like_milliseconds(s: &str) -> bool {
    let int = s.strip_prefix('-').unwrap_or(s);
    let int = int.split('.').next().unwrap_or("");
    let digits = int.bytes().filter(u8::is_ascii_digit).count();
    digits >= 13 && int.bytes().all(|b| b.is_ascii_digit() || b == b'_')
}

/// `s` without its digit-separating underscores when it has Go's `strconv.ParseFloat` decimal
/// syntax (hex floats, `inf` and `nan` left out: they make no sensible time).
fn decimal_float(s: &str) -> Option<String> {
    // Go: an underscore must sit between two digits.
    let b = s.as_bytes();
    let digit_at = |i: Option<usize>| i.and_then(|i| b.get(i)).is_some_and(u8::is_ascii_digit);
    let separators_ok = (0..b.len())
        .filter(|&i| b[i] == b'_')
        .all(|i| digit_at(i.checked_sub(1)) && digit_at(Some(i + 1)));
    if !separators_ok {
        return None;
    }
    let plain = s.replace('_', "");
    is_decimal(&plain).then_some(plain)
}

fn is_decimal(s: &str) -> bool {
    let mantissa = alt((
        recognize(pair(digit1, opt(pair(char('.'), digit0)))),
        recognize(pair(char('.'), digit1)),
    ));
    let exponent = tuple((one_of("eE"), opt(one_of("+-")), digit1));
    let mut float = all_consuming(recognize(tuple((
        opt(one_of::<_, _, nom::error::Error<&str>>("+-")),
        mantissa,
        opt(exponent),
    ))));
    float(s).is_ok()
}

/// Prometheus' arithmetic: `s, ns := math.Modf(t); ns = math.Round(ns*1000)/1000`, then
/// `time.Unix(int64(s), int64(ns*1e9))` and milliseconds floored.
fn unix_seconds_to_ms(t: f64) -> Option<i64> {
    let secs = t.trunc();
    // Beyond this Go's int64 conversions wrap; refuse instead.
    if !secs.is_finite() || secs.abs() >= (i64::MAX / 1000) as f64 {
        return None;
    }
    let frac = ((t - secs) * 1000.0).round() / 1000.0;
    let nanos = i128::from(secs as i64) * 1_000_000_000 + i128::from((frac * 1e9) as i64);
    i64::try_from(nanos.div_euclid(1_000_000)).ok()
}

/// The fields of `2006-01-02T15:04:05.999999999Z07:00` as Go's `time.Parse` reads them.
struct Rfc3339 {
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    /// `(sign, hours, minutes)` east of UTC.
    offset: (i64, i64, i64),
}

fn num<T: std::str::FromStr>(min: usize, max: usize) -> impl FnMut(&str) -> IResult<&str, T> {
    move |i| {
        let (rest, digits) = take_while_m_n(min, max, |c: char| c.is_ascii_digit())(i)?;
        let n = digits.parse().map_err(|_| {
            nom::Err::Error(nom::error::Error::new(i, nom::error::ErrorKind::Digit))
        })?;
        Ok((rest, n))
    }
}

/// Go's general parser with the RFC 3339 layout (checked against Prometheus 2.42): a 1- or
/// 2-digit hour, `.` or `,` before one to nine fraction digits, `Z` or `±hh:mm` with any two
/// digits (Go does not range-check the offset: `+99:99` is taken).
fn rfc3339(s: &str) -> IResult<&str, Rfc3339> {
    let (i, (year, _, month, _, day, _)) = tuple((
        num(4, 4),
        char('-'),
        num(2, 2),
        char('-'),
        num(2, 2),
        char('T'),
    ))(s)?;
    let (i, (hour, _, minute, _, second)) =
        tuple((num(1, 2), char(':'), num(2, 2), char(':'), num(2, 2)))(i)?;
    let fraction_digits = take_while_m_n(1, 9, |c: char| c.is_ascii_digit());
    let (i, frac) = opt(pair(one_of(".,"), fraction_digits))(i)?;
    let (i, offset) = alt((
        |i| tag("Z")(i).map(|(r, _)| (r, (1, 0, 0))),
        |i| {
            let mut offset = tuple((one_of("+-"), num(2, 2), char(':'), num(2, 2)));
            let (r, (sign, h, _, m)) = offset(i)?;
            Ok((r, (if sign == '-' { -1 } else { 1 }, h, m)))
        },
    ))(i)?;
    let (i, _) = nom::combinator::eof(i)?;
    let nanos = frac.map_or(0, |(_, digits): (char, &str)| {
        digits.parse::<u32>().expect("nine digits fit") * 10u32.pow(9 - digits.len() as u32)
    });
    let parts = Rfc3339 {
        year,
        month,
        day,
        hour,
        minute,
        second,
        nanos,
        offset,
    };
    Ok((i, parts))
}

impl Rfc3339 {
    fn to_ms(&self) -> Result<i64, String> {
        for (v, max, what) in [
            (self.hour, 23, "hour"),
            (self.minute, 59, "minute"),
            (self.second, 59, "second"),
        ] {
            if v > max {
                return Err(format!("{what} out of range"));
            }
        }
        let (sign, off_h, off_m) = self.offset;
        if !(1..=12).contains(&self.month) {
            return Err("month out of range".into());
        }
        // chrono is the standard Rust date crate; we use only its proleptic Gregorian calendar
        // (days per month, leap years, days since the epoch), with no clock or time zone data.
        let date = chrono::NaiveDate::from_ymd_opt(self.year, self.month, self.day)
            .ok_or("day out of range")?;
        let local = date
            .and_hms_nano_opt(self.hour, self.minute, self.second, self.nanos)
            .ok_or("time out of range")?;
        Ok(local.and_utc().timestamp_millis() - sign * (off_h * 60 + off_m) * 60_000)
    }
}

/// Duration units, largest first, in milliseconds.
const DURATION_UNITS: [(&str, i64); 7] = [
    ("y", 365 * 24 * 3600 * 1000),
    ("w", 7 * 24 * 3600 * 1000),
    ("d", 24 * 3600 * 1000),
    ("h", 3600 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
];

/// Parses a Prometheus duration (`model.ParseDuration`) into milliseconds: `1y2w3d4h5m6s7ms`,
/// units largest first and each at most once, a year being 365 days; `0` alone is allowed.
/// Like Prometheus, a duration must fit Go's `time.Duration` (about 292 years).
pub fn parse_duration(s: &str) -> anyhow::Result<i64> {
    let bad = |why: &str| {
        bad_input!(
            "invalid duration {s:?}: {why}expected e.g. 30s, 5m, 1h30m, 2w or 1y: a whole number \
             before each unit of y w d h m s ms, largest first, each at most once (or 0)"
        )
    };
    if s == "0" {
        return Ok(0);
    }
    let unit = alt((
        tag("ms"),
        tag("y"),
        tag("w"),
        tag("d"),
        tag("h"),
        tag("m"),
        tag("s"),
    ));
    let parsed: IResult<&str, Vec<(&str, &str)>> = all_consuming(many1(pair(digit1, unit)))(s);
    let Ok((_, parts)) = parsed else {
        return Err(bad(if s.is_empty() { "empty; " } else { "" }));
    };
    // Go's time.Duration counts nanoseconds in an int64.
    const MAX_MS: i64 = i64::MAX / 1_000_000;
    let mut last_unit = None;
    let mut total: i64 = 0;
    for (digits, unit) in parts {
        let idx = DURATION_UNITS
            .iter()
            .position(|(u, _)| *u == unit)
            .expect("parsed unit");
        if last_unit.is_some_and(|l| l >= idx) {
            return Err(bad(&format!("unit {unit:?} out of order or repeated; ")));
        }
        last_unit = Some(idx);
        let n: i64 = digits.parse().unwrap_or(i64::MAX);
        total = n
            .checked_mul(DURATION_UNITS[idx].1)
            .and_then(|ms| ms.checked_add(total))
            .filter(|&t| t <= MAX_MS)
            .ok_or_else(|| bad("out of range; "))?;
    }
    Ok(total)
}

/// Parses a size in bytes: `1024`, `512B`, binary `64KiB` `64MiB` `2GiB` `1TiB` `1PiB`, decimal
/// `64KB` `64MB` `1GB` `1TB` `1PB`, and `64K` `64M` `2G` `1T` `1P` meaning the binary units.
/// Units are case-insensitive; the number is a whole one.
pub fn parse_size(s: &str) -> anyhow::Result<u64> {
    let bad = |why: &str| {
        bad_input!(
            "invalid size {s:?}: {why}expected a whole number of bytes with an optional unit: \
             B, KiB MiB GiB TiB PiB (powers of 1024; K M G T P mean the same), \
             KB MB GB TB PB (powers of 1000)"
        )
    };
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(digits_end);
    if digits.is_empty() {
        return Err(bad(""));
    }
    let unit = unit.to_ascii_lowercase();
    let mult: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "p" | "pib" => 1 << 50,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "pb" => 1_000_000_000_000_000,
        _ => return Err(bad("unknown unit; ")),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| bad("too large; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit_codes::ExitCode;

    fn err_of<T: std::fmt::Debug>(r: anyhow::Result<T>) -> String {
        let e = r.expect_err("should fail");
        assert_eq!(ExitCode::of(&e), ExitCode::BadInput);
        e.to_string()
    }

    #[test]
    fn unix_seconds_round_to_the_millisecond() {
        for (s, ms) in [
            ("1714564800", 1_714_564_800_000),
            ("1714564800.123", 1_714_564_800_123),
            ("1714564800.5", 1_714_564_800_500),
            ("0", 0),
            ("0.0015", 2),
            ("-0.0015", -2),
            ("0.0004", 0),
            ("1.9996", 2000),
            ("-1.5", -1500),
            ("-1714564800", -1_714_564_800_000),
            ("+5", 5000),
            (".5", 500),
            ("5.", 5000),
            ("1e3", 1_000_000),
            ("1.5E-1", 150),
            ("1_714_564_800", 1_714_564_800_000),
            ("1_0.5_5", 10_550),
            ("1e1_0", 10_000_000_000_000),
        ] {
            assert_eq!(parse_time(s).unwrap(), ms, "{s}");
        }
    }

    #[test]
    fn rfc3339_truncates_to_the_millisecond() {
        for (s, ms) in [
            ("2024-05-01T12:00:00Z", 1_714_564_800_000),
            ("2024-05-01T14:00:00+02:00", 1_714_564_800_000),
            ("2024-05-01T07:30:00-04:30", 1_714_564_800_000),
            ("2024-05-01T12:00:00.123456789Z", 1_714_564_800_123),
            ("2024-05-01T12:00:00.9999Z", 1_714_564_800_999),
            ("2024-05-01T12:00:00,5Z", 1_714_564_800_500),
            ("2024-05-01T1:00:00Z", 1_714_525_200_000),
            ("2024-02-29T00:00:00Z", 1_709_164_800_000),
            ("1970-01-01T00:00:00Z", 0),
            ("1969-12-31T23:59:59.9995Z", -1),
            ("1970-01-01T00:00:00+24:00", -86_400_000),
            ("1970-01-01T00:00:00-00:60", 3_600_000),
            ("1970-01-01T00:00:00+99:99", -(99 * 60 + 99) * 60_000),
            ("2024-05-01T12:00:00-00:00", 1_714_564_800_000),
            ("0000-01-01T00:00:00Z", -62_167_219_200_000),
            ("9999-12-31T23:59:59.999Z", 253_402_300_799_999),
        ] {
            assert_eq!(parse_time(s).unwrap(), ms, "{s}");
        }
    }

    #[test]
    fn bad_times() {
        for (s, why) in [
            ("", ""),
            ("abc", ""),
            ("2024-05-01", ""),
            ("2024-05-01 12:00:00Z", ""),
            ("2024-05-01t12:00:00Z", ""),
            ("2024-05-01T12:00:00z", ""),
            ("2024-05-01T12:00:00", ""),
            ("2024-05-01T12:00:00+0200", ""),
            ("2024-05-01T12:00Z", ""),
            ("24-05-01T12:00:00Z", ""),
            ("2024-5-01T12:00:00Z", ""),
            ("2024-05-01T12:00:00.Z", ""),
            ("2024-02-30T00:00:00Z", "day out of range"),
            ("2023-02-29T00:00:00Z", "day out of range"),
            ("2024-13-01T00:00:00Z", "month out of range"),
            ("2024-05-01T24:00:00Z", "hour out of range"),
            ("2024-05-01T12:60:00Z", "minute out of range"),
            ("2024-05-01T12:00:60Z", "second out of range"),
            ("2024-05-01T12:00:00.1234567891Z", ""),
            ("2024-05-01T012:00:00Z", ""),
            ("2024-05-01T12:00:00+02:00 ", ""),
            ("+2024-05-01T12:00:00Z", ""),
            ("2024-00-01T00:00:00Z", "month out of range"),
            ("2024-05-00T00:00:00Z", "day out of range"),
            ("1e400", "out of range"),
            ("1e16", "out of range"),
            ("inf", ""),
            ("NaN", ""),
            ("0x10", ""),
            ("1_", ""),
            ("_1", ""),
            ("1__0", ""),
            ("1._5", ""),
            ("1e_5", ""),
            ("0x1p4", ""),
            (" 1", ""),
        ] {
            let e = err_of(parse_time(s));
            assert!(e.contains(why) && e.contains(&format!("{s:?}")), "{s}: {e}");
            assert!(e.contains("RFC 3339") && e.contains("Unix seconds"), "{e}");
        }
    }

    #[test]
    fn durations() {
        for (s, ms) in [
            ("0", 0),
            ("0s", 0),
            ("1ms", 1),
            ("90s", 90_000),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("1d", 86_400_000),
            ("2w", 1_209_600_000),
            ("1y", 31_536_000_000),
            (
                "1y2w3d4h5m6s7ms",
                31_536_000_000 + 1_209_600_000 + 259_200_000 + 14_706_007,
            ),
            ("007m", 420_000),
            ("292y", 292 * 31_536_000_000),
            // The last whole day promtool 2.42 takes (`for: 106751d` in a rule).
            ("106751d", 106_751 * 86_400_000),
        ] {
            assert_eq!(parse_duration(s).unwrap(), ms, "{s}");
        }
        for (s, why) in [
            ("", "empty"),
            ("-1h", ""),
            ("1", ""),
            ("1x", ""),
            ("1.5h", ""),
            ("1H", ""),
            ("h", ""),
            ("1h 30m", ""),
            ("30m1h", "out of order"),
            ("1m1m", "out of order or repeated"),
            ("1s1m", "out of order"),
            ("293y", "out of range"),
            ("106752d", "out of range"),
            ("15251w", "out of range"),
            ("99999999999999999999ms", "out of range"),
        ] {
            let e = err_of(parse_duration(s));
            assert!(e.contains(why) && e.contains(&format!("{s:?}")), "{s}: {e}");
            assert!(e.contains("1h30m"), "names the accepted forms: {e}");
        }
    }

    #[test]
    fn sizes() {
        for (s, b) in [
            ("0", 0),
            ("1024", 1024),
            ("512B", 512),
            ("64KiB", 64 << 10),
            ("64kib", 64 << 10),
            ("64K", 64 << 10),
            ("64MiB", 64 << 20),
            ("64M", 64 << 20),
            ("64m", 64 << 20),
            ("2GiB", 2 << 30),
            ("2G", 2 << 30),
            ("1TiB", 1 << 40),
            ("1PiB", 1 << 50),
            ("64KB", 64_000),
            ("64MB", 64_000_000),
            ("64mb", 64_000_000),
            ("1GB", 1_000_000_000),
            ("1TB", 1_000_000_000_000),
        ] {
            assert_eq!(parse_size(s).unwrap(), b, "{s}");
        }
        for (s, why) in [
            ("", ""),
            ("MiB", ""),
            ("-1", ""),
            ("1.5GiB", "unknown unit"),
            ("64 MiB", "unknown unit"),
            ("64XB", "unknown unit"),
            ("64Mi", "unknown unit"),
            ("16384PiB", "too large"),
            ("99999999999999999999", "too large"),
        ] {
            let e = err_of(parse_size(s));
            assert!(e.contains(why) && e.contains(&format!("{s:?}")), "{s}: {e}");
            assert!(e.contains("KiB") && e.contains("KB"), "{e}");
        }
    }

    #[test]
    fn formats_times_and_spots_milliseconds() {
        assert_eq!(format_time(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(format_time(-250), "1969-12-31T23:59:59.750Z");
        assert!(looks_like_milliseconds("1700000000000"));
        assert!(looks_like_milliseconds("-1700000000000.5"));
        assert!(!looks_like_milliseconds("1700000000"));
        assert!(!looks_like_milliseconds("2024-05-01T00:00:00Z"));
    }
}
