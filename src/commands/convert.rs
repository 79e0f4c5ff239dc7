//! `prom2om convert`: a Prometheus data directory or `promtool tsdb dump` output in, sorted OpenMetrics
//! shards (or a stream) out.

use std::time::Instant;

use anyhow::Result;
use clap::{Args as ClapArgs, ValueEnum};

use super::common::{
    count, counts, describe_range, describe_selectors, describe_window, held, human_bytes,
    lock_output, recorded_path, stderr_is_terminal, warn_later, warn_quoted_names, DashboardArgs,
    FilterArgs, OutputArgs,
};
use crate::format::shard_dir::{Loss, LOSS_SKIPPED_INVALID, LOSS_TORN_LOG};
use crate::pipeline::convert::{convert, ConvertOptions, ConvertStats};
use crate::pipeline::datadir::{self, DirStats, ReadOptions};
use crate::pipeline::input::InputSpec;
use crate::pipeline::sink::{Output, RunInfo, Sink, SinkSummary, StaleMode};
use crate::select::filter::Filter;

/// Convert a Prometheus data directory, or `promtool tsdb dump` output, into OpenMetrics that
/// `promtool tsdb create-blocks-from openmetrics` imports bit-exact.
#[derive(ClapArgs, Debug)]
#[command(after_help = "Examples:
  # a data directory, read directly (read-only, no promtool)
  prom2om convert /var/lib/prometheus/metrics2 \\
    -m '{__name__=~\"elasticsearch_.*\"}' --since 24h -o shards/
  # the same through promtool
  promtool tsdb dump /var/lib/prometheus/metrics2 \\
    | prom2om convert -m '{__name__=~\"elasticsearch_.*\"}' --since 24h -o shards/
  prom2om convert dump.txt.gz \\
    --start 2024-05-01T00:00:00Z --end 2024-05-02T00:00:00Z -o shards/
  prom2om convert dump.txt -o - > all.om

A data directory is read where it lies, never written: blocks (their indexes pick the series, and
chunks outside the time range are not read), then the head (chunks_head, WAL checkpoint and
segments, wbl), as `promtool tsdb dump` sees them; safe on a running Prometheus.

A dump of persisted blocks (series whole and in label order) is written while it is read; other
input (a head-only TSDB, concatenated or shuffled dumps) is sorted first, spilling to --temp-dir
beyond --memory-limit. Both give the same bytes.

Shards are named WINDOWSTART-SHARD.om.gz; manifest.json is written last. Import them with
`prom2om import shards/ --tsdb DATA_DIR`, or by hand with gunzip and
`promtool tsdb create-blocks-from openmetrics FILE DATA_DIR`.")]
pub struct Args {
    /// Prometheus data directories or block directories (read directly, read-only), dump files
    /// (plain or gzip, detected by content); - or nothing reads stdin.
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<String>,

    #[command(flatten)]
    pub filter: FilterArgs,

    #[command(flatten)]
    pub dashboard: DashboardArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    /// What to do with staleness markers (the end of a series when its target vanished).
    /// From a data directory they are known exactly: `carry` writes them to a sidecar beside
    /// each shard (WINDOW-SHARD.stale.om.gz, listed in the manifest and checked by `verify`; the
    /// shards stay plain OpenMetrics; `import` writes them into the home blocks as markers and
    /// `import --remote-write` sends them, only `import --promtool` cannot and says so), `drop`
    /// removes exactly them, `keep`
    /// writes them as NaN in the shards (imported as real NaN, which breaks aggregations for 5
    /// minutes). With -o - there is no sidecar: `carry` drops them. Dump text prints a marker as
    /// NaN and cannot carry it: for dump input `carry` and `drop` remove a NaN whose neighbours
    /// in its series are not NaN (a guess) and keep runs of NaNs (real values); `keep` keeps
    /// every NaN.
    #[arg(long, value_enum, default_value_t = Stale::Carry)]
    pub stale: Stale,

    /// Skip lines that are not valid dump output, and damaged chunks, series or WAL records of a
    /// data directory (counted, the first few reported) instead of stopping with exit code 2.
    #[arg(long)]
    pub skip_invalid: bool,

    /// No summary on stderr.
    #[arg(short, long)]
    pub quiet: bool,

    /// Print what converting the data directories would write (per window: series, samples,
    /// OpenMetrics bytes, shards; the total and a time estimate) from their indexes and chunk
    /// headers alone, and write nothing. The head (WAL) is not counted.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stale {
    Carry,
    Drop,
    Keep,
}

impl Stale {
    pub fn mode(self) -> StaleMode {
        match self {
            Stale::Carry => StaleMode::Carry,
            Stale::Drop => StaleMode::Drop,
            Stale::Keep => StaleMode::Keep,
        }
    }
}

/// One input: a TSDB directory, or a run of dump inputs read together.
enum Source {
    Tsdb(std::path::PathBuf),
    Dumps(Vec<InputSpec>),
}

fn sources(args: &[String]) -> Vec<Source> {
    let mut out: Vec<Source> = Vec::new();
    if args.is_empty() {
        return vec![Source::Dumps(vec![InputSpec::Stdin])];
    }
    for a in args {
        let p = std::path::Path::new(a);
        if a != "-" && p.is_dir() {
            out.push(Source::Tsdb(p.to_path_buf()));
            continue;
        }
        match out.last_mut() {
            Some(Source::Dumps(v)) => v.push(InputSpec::parse(a)),
            _ => out.push(Source::Dumps(vec![InputSpec::parse(a)])),
        }
    }
    out
}

pub fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    let mut filter = args.filter.resolve()?;
    let dashboards = args.dashboard.apply(&mut filter, args.quiet)?;
    let stale = args.stale.mode();
    let progress = stderr_is_terminal() && !args.quiet;
    let sources = sources(&args.inputs);
    let any_dump = sources.iter().any(|s| matches!(s, Source::Dumps(_)));
    let mut sink_opts = args.output.sink_options(stale, progress)?;
    if args.dry_run {
        let dirs: Vec<std::path::PathBuf> = sources
            .iter()
            .map(|s| match s {
                Source::Tsdb(d) => Ok(d.clone()),
                Source::Dumps(_) => Err(crate::bad_input!(
                    "--dry-run estimates from a data directory's index; dump text must be read to                      be counted"
                )),
            })
            .collect::<Result<_>>()?;
        return super::dry_run::run(&dirs, &filter, &sink_opts);
    }
    // Dumps of persisted blocks and data directories come in series order: their shards can be
    // written while reading.
    sink_opts.stream = true;
    refuse_output_in_data_dir(&sources, &sink_opts.output)?;
    let _lock = lock_output(&sink_opts.output)?;
    let mut sink = Sink::create(sink_opts)?;
    if !args.output.allow_merge {
        sink.refuse_merges(&filter.edits);
    }
    let opts = ConvertOptions {
        filter: filter.clone(),
        skip_invalid: args.skip_invalid,
        progress,
    };
    let mut stats = ConvertStats::default();
    let mut dir_stats: Option<DirStats> = None;
    let mut names = Vec::new();
    let mut losses = Vec::new();
    for src in &sources {
        let res = match src {
            Source::Dumps(inputs) => convert(inputs, &opts, &mut sink).map(|s| {
                let input: Vec<String> = inputs.iter().map(|i| i.name()).collect();
                losses.extend(dump_losses(&input.join(", "), &s));
                add_stats(&mut stats, s);
                names.extend(inputs.iter().map(|i| match i {
                    InputSpec::File(p) => recorded_path(p),
                    InputSpec::Stdin => i.name(),
                }));
            }),
            Source::Tsdb(dir) => {
                let plan = sources.len() == 1;
                let read = (&filter, stale, args.skip_invalid, progress, plan);
                read_tsdb(dir, read, &mut sink).map(|s| {
                    losses.extend(dir_losses(&recorded_path(dir), &s));
                    dir_stats.get_or_insert_with(Default::default).add(&s);
                    names.push(recorded_path(dir));
                })
            }
        };
        if let Err(e) = res {
            sink.abandon();
            return Err(e);
        }
    }
    let dir_kept = dir_stats
        .as_ref()
        .map_or(0, |d| d.samples_kept + d.histograms_kept);
    if stats.samples_kept + dir_kept == 0 && sink.histogram_samples() == 0 {
        if !args.output.allow_empty {
            let why = match &dir_stats {
                Some(d) if !any_dump => nothing_kept_dir(d, &tsdb_dirs(&sources), &filter),
                _ => nothing_kept(&stats, sink.series_count(), &filter),
            };
            sink.abandon();
            return Err(crate::bad_input!(
                "{why}; --allow-empty accepts an empty output"
            ));
        }
        eprintln!("prom2om: warning: no sample kept; writing an empty output (--allow-empty)");
    }
    if let Some(l) = &stats.add_label_override {
        eprintln!(
            "prom2om: warning: --add-label overrides labels the series already have, e.g. of {l}"
        );
    }
    if stats.histograms_skipped > 0 {
        eprintln!(
            "prom2om: warning: {}",
            dump_histograms(stats.histograms_skipped)
        );
    }
    // Said even with -q: the export lacks what they held.
    let listed = args.output.output != "-";
    for l in &losses {
        warn_loss(l, listed);
    }
    let mut filters = filter.describe(recorded_mode(stale, any_dump, dir_stats.is_some()));
    filters.dashboards = dashboards.as_ref().map(|d| d.recorded.clone());
    let info = RunInfo {
        source: "convert".to_string(),
        inputs: names,
        filters,
        losses,
    };
    let summary = sink.finish(info)?;
    warn_later(&summary.later, &args.output.output)?;
    warn_quoted_names(&summary.quoted_names);
    if summary.negative_ts > 0 {
        eprintln!(
            "prom2om: warning: {} samples are before 1970; promtool's backfill skips some of those (it aligns its first block by truncating division)",
            summary.negative_ts
        );
    }
    if !args.quiet {
        let secs = started.elapsed().as_secs_f64();
        if any_dump {
            print_summary(&stats, &summary, secs, &args.output.output, stale);
        }
        if let Some(d) = &dir_stats {
            let out = &args.output.output;
            print_dir_summary(d, &summary, secs, (out, stale), !any_dump);
        }
        if let Some(d) = &dashboards {
            d.print_summary(Some(&args.output.output));
        }
    }
    Ok(())
}

/// What a data directory's read lost: the records its logs end inside, the damage skipped.
fn dir_losses(input: &str, d: &DirStats) -> Vec<Loss> {
    let mut out = Vec::new();
    if !d.torn.is_empty() {
        out.push(Loss {
            kind: LOSS_TORN_LOG.into(),
            input: input.into(),
            count: d.torn.len() as u64,
            details: d.torn.clone(),
        });
    }
    if d.invalid_skipped > 0 {
        out.push(Loss {
            kind: LOSS_SKIPPED_INVALID.into(),
            input: input.into(),
            count: d.invalid_skipped,
            details: d.reported.clone(),
        });
    }
    out
}

/// What a run of dump inputs lost: the invalid lines skipped.
fn dump_losses(input: &str, c: &ConvertStats) -> Option<Loss> {
    (c.invalid_lines > 0).then(|| Loss {
        kind: LOSS_SKIPPED_INVALID.into(),
        input: input.into(),
        count: c.invalid_lines,
        details: c.invalid_reported.clone(),
    })
}

/// One warning per loss; `listed`: written into the manifest (not with -o -).
fn warn_loss(l: &Loss, listed: bool) {
    let listed = if listed {
        "; listed in the manifest's losses"
    } else {
        ""
    };
    if l.kind == LOSS_TORN_LOG {
        for d in &l.details {
            eprintln!(
                "prom2om: warning: {}/{d}: a record Prometheus was writing when it stopped (or \
                 is writing now, on a running server); its samples are not exported, as \
                 Prometheus's own WAL repair drops that record when it next starts{listed}",
                l.input
            );
        }
        return;
    }
    eprintln!(
        "prom2om: warning: skipped {} damaged items of {} (--skip-invalid; the first: {}): \
         their samples are not exported{listed}",
        l.count,
        l.input,
        l.details.first().map_or("-", String::as_str)
    );
}

/// The staleness mode the manifest records: what was done. Dump text alone has nothing exact to
/// carry, so `carry` did what `drop` does (and its manifests stay as they were).
fn recorded_mode(stale: StaleMode, any_dump: bool, any_dir: bool) -> &'static str {
    match stale {
        StaleMode::Carry if any_dump && !any_dir => StaleMode::Drop.as_str(),
        s => s.as_str(),
    }
}

/// Refuses an output directory that is a data directory being read, or inside one: prom2om never
/// writes into a customer's data directory (not even its lock file), `--force` or not.
fn refuse_output_in_data_dir(sources: &[Source], output: &Output) -> Result<()> {
    let Output::Dir { path, .. } = output else {
        return Ok(());
    };
    let out = resolved(path);
    for src in sources {
        let Source::Tsdb(dir) = src else { continue };
        let Ok(data) = dir.canonicalize() else {
            continue;
        };
        if out.starts_with(&data) {
            return Err(crate::bad_input!(
                "output directory {} is inside the data directory {} being read: prom2om never \
                 writes into a Prometheus data directory; choose -o outside it",
                path.display(),
                dir.display()
            ));
        }
    }
    Ok(())
}

/// `path` with symbolic links and `..` resolved, for a path that may not exist yet: its nearest
/// existing ancestor canonicalized, the rest appended as given.
fn resolved(path: &std::path::Path) -> std::path::PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut rest = Vec::new();
    let mut cur = abs.as_path();
    loop {
        if let Ok(c) = cur.canonicalize() {
            return rest.iter().rev().fold(c, |mut acc, part| {
                if part == ".." {
                    acc.pop();
                } else if part != "." {
                    acc.push(part);
                }
                acc
            });
        }
        match (cur.parent(), cur.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                cur = parent;
            }
            _ => return abs,
        }
    }
}

/// Reads one data directory or block directory into the sink.
/// With `plan` (the only input) the shards of each window are planned from the blocks' indexes
/// first, so that every window is written while reading ([`Sink::plan_windows`]).
fn read_tsdb(
    dir: &std::path::Path,
    (filter, stale, skip_invalid, progress, plan): (&Filter, StaleMode, bool, bool, bool),
    sink: &mut Sink,
) -> Result<DirStats> {
    let opened = datadir::open(dir)?;
    for why in &opened.skipped {
        eprintln!("prom2om: warning: skipped a block as Prometheus does: {why}");
    }
    let opts = ReadOptions {
        filter: filter.clone(),
        keep_stale: stale != StaleMode::Drop,
        skip_invalid,
    };
    if plan {
        let est = datadir::estimate(&opened.blocks, &opts, sink.block_duration_ms())?;
        sink.plan_windows(est.windows.iter().map(|(&w, e)| (w, e.text_bytes)));
    }
    let pb = if progress {
        crate::progress::bar(0, "reading blocks", false)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let stats = datadir::read_dir(opened, &opts, sink, &pb)?;
    pb.finish_and_clear();
    Ok(stats)
}

fn add_stats(a: &mut ConvertStats, b: ConvertStats) {
    let widen = |x: Option<(i64, i64)>, y: Option<(i64, i64)>| match (x, y) {
        (Some((a0, a1)), Some((b0, b1))) => Some((a0.min(b0), a1.max(b1))),
        (x, None) => x,
        (None, y) => y,
    };
    a.bytes += b.bytes;
    a.lines += b.lines;
    a.samples_kept += b.samples_kept;
    a.dropped_by_match += b.dropped_by_match;
    a.dropped_by_time += b.dropped_by_time;
    a.histograms_skipped += b.histograms_skipped;
    a.invalid_lines += b.invalid_lines;
    a.empty_lines += b.empty_lines;
    a.invalid_reported.extend(b.invalid_reported);
    a.input_range = widen(a.input_range, b.input_range);
    a.matched_range = widen(a.matched_range, b.matched_range);
    a.dropped_series.extend(b.dropped_series);
    if a.add_label_override.is_none() {
        a.add_label_override = b.add_label_override;
    }
}

/// The warning for native histograms in dump text, which cannot carry them exactly.
fn dump_histograms(n: u64) -> String {
    format!(
        "skipped {n} native histogram samples of the dump text: promtool's dump cannot carry them \
         exactly (2.48+ prints them lossily, without schema, zero threshold, reset hint or empty \
         buckets, and leaves out the first sample of each histogram series; 2.42 ends a series \
         at its first histogram); read the data directory instead, which carries them exactly: \
         prom2om convert DATA_DIR"
    )
}

/// The data directories among the sources.
fn tsdb_dirs(sources: &[Source]) -> Vec<&std::path::Path> {
    let dirs = sources.iter().filter_map(|s| match s {
        Source::Tsdb(d) => Some(d.as_path()),
        Source::Dumps(_) => None,
    });
    dirs.collect()
}

/// What the data directories held, for a run that kept nothing: their blocks and head, series,
/// samples and time range, and the series and samples of those the selectors match at any
/// time. Read again for this message (the run itself reads only the selected series).
struct DirCensus {
    blocks: usize,
    heads: usize,
    all: crate::inspect::Report,
    matched: Option<crate::inspect::Report>,
}

fn dir_census(dirs: &[&std::path::Path], filter: &Filter) -> Result<DirCensus> {
    let mut c = DirCensus {
        blocks: 0,
        heads: 0,
        all: Default::default(),
        matched: None,
    };
    let selected = Filter {
        selectors: filter.selectors.clone(),
        ..Filter::default()
    };
    for dir in dirs {
        let opened = datadir::open(dir)?;
        c.blocks += opened.blocks.len();
        c.heads += usize::from(opened.head_dir.is_some());
        let r = crate::inspect::inspect_tsdb(dir, &selected, None)?;
        let widen = |a: Option<i64>, b: Option<i64>, f: fn(i64, i64) -> i64| match (a, b) {
            (Some(x), Some(y)) => Some(f(x, y)),
            (x, y) => x.or(y),
        };
        c.all.min_ts_ms = widen(c.all.min_ts_ms, r.min_ts_ms, i64::min);
        c.all.max_ts_ms = widen(c.all.max_ts_ms, r.max_ts_ms, i64::max);
        c.all.series += r.series;
        c.all.samples += r.samples;
        c.all.kept_series += r.kept_series;
        c.all.kept_samples += r.kept_samples;
        c.all.histogram_samples += r.histogram_samples;
        c.all.histogram_stale_markers += r.histogram_stale_markers;
        c.all.kept_histogram_samples += r.kept_histogram_samples;
        let add = |a: &mut Option<u64>, b: Option<u64>| *a = Some(a.unwrap_or(0) + b.unwrap_or(0));
        add(&mut c.all.stale_markers, r.stale_markers);
        add(&mut c.all.kept_stale_markers, r.kept_stale_markers);
    }
    if !filter.selectors.is_empty() {
        c.matched = Some(crate::inspect::Report {
            series: c.all.kept_series,
            samples: c.all.kept_samples,
            stale_markers: c.all.kept_stale_markers,
            histogram_samples: c.all.kept_histogram_samples,
            ..Default::default()
        });
    }
    Ok(c)
}

impl DirCensus {
    /// `the data dir D held 3 blocks and a head: 84 series, 12345 samples from A to B`.
    fn held(&self, dirs: &[&std::path::Path]) -> String {
        let names: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        let what = match names.len() {
            1 => format!("the data dir {}", names[0]),
            _ => format!("the data dirs {}", names.join(", ")),
        };
        let plural = |n: usize, one: &str, many: &str| match n {
            1 => format!("1 {one}"),
            n => format!("{n} {many}"),
        };
        let head = match (self.heads, dirs.len()) {
            (0, _) => "no head".to_string(),
            (1, 1) => "a head".to_string(),
            (n, _) => plural(n, "head", "heads"),
        };
        let range = match (self.all.min_ts_ms, self.all.max_ts_ms) {
            (Some(a), Some(b)) => format!(" {}", describe_range((a, b))),
            _ => String::new(),
        };
        format!(
            "{what} held {} and {head}: {} series, {}{range}",
            plural(self.blocks, "block", "blocks"),
            self.all.series,
            samples_and_markers(&self.all)
        )
    }
}

/// `12280 samples and 53 staleness markers` (each kind counted apart, as the manifest does).
fn samples_and_markers(r: &crate::inspect::Report) -> String {
    let markers = r.stale_markers.unwrap_or(0);
    counts(
        r.samples,
        markers,
        r.histogram_samples,
        r.histogram_stale_markers,
    )
}

/// Why reading data directories kept no sample, in one line: what they held (blocks and head,
/// series, samples, time range) against what the filters asked.
fn nothing_kept_dir(d: &DirStats, dirs: &[&std::path::Path], filter: &Filter) -> String {
    let selectors = describe_selectors(filter);
    let within = match describe_window(filter) {
        w if w.is_empty() => "at any time".to_string(),
        w => format!("within {w}"),
    };
    let census = match dir_census(dirs, filter) {
        Ok(c) => c,
        Err(e) => {
            return format!(
                "nothing kept: no series {}has samples {within} (what the data dir holds could \
                 not be read again: {e:#})",
                match selectors.is_empty() {
                    true => String::new(),
                    false => format!("matching {selectors} "),
                }
            )
        }
    };
    let held = census.held(dirs);
    let markers = d.stale_dropped + d.histogram_stale_dropped;
    if markers > 0 {
        let which = match selectors.is_empty() {
            true => "its series".to_string(),
            false => format!("the series matching {selectors}"),
        };
        return format!(
            "nothing kept: {held}; {within} {which} hold only staleness markers ({markers}, \
             dropped by --stale drop)"
        );
    }
    match &census.matched {
        Some(m) if m.series == 0 && d.series == 0 => {
            format!("nothing kept: {held}; none matching {selectors}")
        }
        _ if census.all.samples + census.all.histogram_samples == 0 => {
            format!("nothing kept: {held}")
        }
        Some(m) => format!(
            "nothing kept: {held}; the {} series matching {selectors} hold {}, none {within}",
            m.series,
            samples_and_markers(m)
        ),
        None => format!("nothing kept: {held}; none {within}"),
    }
}

/// Staleness markers of the data directories: (dropped, kept as NaN, carried in sidecars).
fn dir_markers(d: &DirStats, s: &SinkSummary, stale: StaleMode) -> (u64, u64, u64) {
    match stale {
        StaleMode::Keep => (d.stale_dropped, d.stale_kept, 0),
        StaleMode::Drop => (d.stale_dropped + d.stale_kept, 0, 0),
        StaleMode::Carry => {
            let carried = s.written.markers.markers;
            let dropped = d.stale_dropped + d.stale_kept.saturating_sub(carried);
            (dropped, 0, carried)
        }
    }
}

fn print_dir_summary(
    d: &DirStats,
    s: &SinkSummary,
    secs: f64,
    (out, stale): (&str, StaleMode),
    only: bool,
) {
    eprintln!(
        "prom2om: read {} ({} series, {} chunks; {} chunks outside the time range or deleted, not read) and the head ({} series) in {secs:.2}s",
        count(d.blocks, "block"),
        d.series - d.head_series,
        d.chunks_read,
        d.chunks_skipped,
        d.head_series
    );
    let (dropped, kept, carried) = dir_markers(d, s, stale);
    eprintln!(
        "prom2om: staleness markers dropped {dropped}, kept {kept}, carried in sidecars {carried}; histogram samples {}, histogram staleness markers passed on {}, dropped {}; samples dropped by time {}, deleted by tombstones {}; damaged chunks or series skipped {}",
        d.histogram_samples(),
        d.histogram_stale_kept,
        d.histogram_stale_dropped,
        d.dropped_by_time,
        d.deleted,
        d.invalid_skipped
    );
    if stale == StaleMode::Carry && out == "-" && dropped > 0 {
        eprintln!(
            "prom2om: note: -o - has no sidecar for staleness markers: write to a directory to carry them, or --stale keep to keep them as NaN"
        );
    }
    for r in &d.reported {
        eprintln!("prom2om:   skipped {r}");
    }
    if only {
        let w = &s.written;
        // Overlapping blocks are merged while reading, as Prometheus merges them: no
        // duplicates reach the sink.
        eprintln!("prom2om: kept {} series, {}", s.series, held(w));
        if out != "-" {
            eprintln!(
                "prom2om: wrote {}, {} ({} of OpenMetrics) to {out}",
                count(s.shards as u64, "shard"),
                human_bytes(s.bytes),
                human_bytes(w.uncompressed_bytes)
            );
        }
    }
}

/// Why a run kept no sample, in one line: what the input held against what the filters asked.
fn nothing_kept(st: &ConvertStats, matched: usize, filter: &Filter) -> String {
    let (series, more) = st.input_series(matched);
    let held = match st.input_range {
        Some(r) => format!(
            "{}{series} series {}",
            if more { "more than " } else { "" },
            describe_range(r)
        ),
        None if st.invalid_lines > 0 => {
            return format!(
                "nothing kept: the input held no valid sample ({} bad lines skipped)",
                st.invalid_lines
            )
        }
        None => {
            return "nothing kept: the input is empty: no samples (did `promtool tsdb dump` \
                    fail? 2.42 refuses a data dir without wal/)"
                .into()
        }
    };
    let (selectors, window) = (describe_selectors(filter), describe_window(filter));
    if matched == 0 {
        return format!("nothing kept: the input held {held}, none matching {selectors}");
    }
    if st.dropped_by_time == 0 {
        return match st.histograms_skipped {
            0 => format!(
                "nothing kept: the input held {held}; the {matched} series kept hold no valid \
                 sample ({} bad lines skipped)",
                st.invalid_lines
            ),
            n => format!(
                "nothing kept: the input held {held}; the {matched} series kept hold only native \
                 histogram samples: {}",
                dump_histograms(n)
            ),
        };
    }
    if filter.selectors.is_empty() {
        return format!("nothing kept: the input held {held}, none within {window}");
    }
    let range = st.matched_range.map(describe_range).unwrap_or_default();
    format!(
        "nothing kept: the input held {held}; the {matched} matching {selectors} hold samples \
         {range}, none within {window}"
    )
}

/// Throughput in MB/s to three significant digits: a small input read at 0.74 MB/s is not "0".
fn mb_per_s(bytes: u64, secs: f64) -> String {
    match bytes as f64 / 1e6 / secs.max(1e-9) {
        r if r >= 100.0 => format!("{r:.0}"),
        r if r >= 10.0 => format!("{r:.1}"),
        r => format!("{r:.2}"),
    }
}

fn print_summary(c: &ConvertStats, s: &SinkSummary, secs: f64, out: &str, stale: StaleMode) {
    let w = &s.written;
    let mbps = mb_per_s(c.bytes, secs);
    eprintln!(
        "prom2om: read {} lines ({}) in {secs:.2}s, {mbps} MB/s",
        c.lines,
        human_bytes(c.bytes)
    );
    eprintln!(
        "prom2om: kept {} series, {}; dropped by --match {}, by time {}",
        s.series,
        held(w),
        c.dropped_by_match,
        c.dropped_by_time
    );
    eprintln!(
        "prom2om: staleness markers dropped {}{}, duplicates dropped {}, conflicting duplicates {} (later input kept), histograms skipped {}, bad lines {}",
        w.stale_dropped,
        match stale {
            StaleMode::Keep => "",
            // Dump text prints a marker as NaN: nothing exact to carry.
            _ => " (guessed: a lone NaN in dump text)",
        },
        w.duplicates, w.conflicts, c.histograms_skipped, c.invalid_lines
    );
    for r in &c.invalid_reported {
        eprintln!("prom2om:   skipped {r}");
    }
    if out != "-" {
        eprintln!(
            "prom2om: wrote {}, {} ({} of OpenMetrics) to {out}{}{}",
            count(s.shards as u64, "shard"),
            human_bytes(s.bytes),
            human_bytes(w.uncompressed_bytes),
            match s.streamed_shards {
                0 => String::new(),
                1 if s.shards == 1 => ", while reading".to_string(),
                n if n == s.shards => ", all while reading".to_string(),
                n => format!(", {n} of them while reading"),
            },
            if s.spilled_bytes > 0 {
                format!(", {} spilled to disk", human_bytes(s.spilled_bytes))
            } else {
                String::new()
            }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_inputs_read_at_a_rate_above_zero() {
        assert_eq!(mb_per_s(14_000, 0.02), "0.70");
        assert_eq!(mb_per_s(1_200_000, 0.1), "12.0");
        assert_eq!(mb_per_s(1_525_000_000, 2.3), "663");
    }
}
