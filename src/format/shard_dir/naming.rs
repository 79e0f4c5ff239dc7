//! The names of a shard directory's files (`WINDOWSTART-SHARD.om[.gz]`, their side files) and
//! the hash that puts a series into its shard: what the writer makes and the reader checks.

/// A stable hash of a series from its rendered `name{labels} ` prefix: decides its shard.
pub fn series_hash(prefix: &[u8]) -> u64 {
    // FNV-1a: stable across runs, platforms and versions, unlike std's hasher.
    prefix.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `WINDOWSTART-SHARD.om[.gz]`, the shard number padded to `width` digits: names sort by window,
/// then shard.
pub fn file_name(window_start_ms: i64, shard: usize, width: usize, compress: bool) -> String {
    format!(
        "{}-{shard:0width$}.om{}",
        utc_stamp(window_start_ms),
        if compress { ".gz" } else { "" }
    )
}

/// The name of the stale-markers sidecar of shard `file`: `W-S.om.gz` → `W-S.stale.om.gz`.
pub fn stale_sidecar_name(file: &str) -> String {
    side_name(file, "stale")
}

/// The name of the native histograms' side file of shard `file`: `W-S.om.gz` →
/// `W-S.hist.om.gz`.
pub fn hist_sidecar_name(file: &str) -> String {
    side_name(file, "hist")
}

fn side_name(file: &str, tag: &str) -> String {
    let (stem, ext) = match file.strip_suffix(".om.gz") {
        Some(stem) => (stem, ".om.gz"),
        None => (file.strip_suffix(".om").unwrap_or(file), ".om"),
    };
    format!("{stem}.{tag}{ext}")
}

/// `YYYYMMDDTHHMMSSZ` for a Unix-ms instant: file names that sort by time.
pub fn utc_stamp(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (proleptic Gregorian), after H. Hinnant's public-domain algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(1_700_000_000_000), "20231114T221320Z");
        assert_eq!(utc_stamp(-1), "19691231T235959Z");
        assert_eq!(utc_stamp(951_782_400_000), "20000229T000000Z");
    }

    #[test]
    fn names_sort_by_window_then_shard() {
        assert_eq!(file_name(0, 7, 3, true), "19700101T000000Z-007.om.gz");
        assert_eq!(file_name(0, 7, 1, false), "19700101T000000Z-7.om");
        assert_eq!(stale_sidecar_name("x-1.om.gz"), "x-1.stale.om.gz");
        assert_eq!(stale_sidecar_name("x-1.om"), "x-1.stale.om");
        assert_eq!(hist_sidecar_name("x-1.om.gz"), "x-1.hist.om.gz");
        assert_eq!(hist_sidecar_name("x-1.om"), "x-1.hist.om");
    }
}
