//! The sort stage: orders one window's samples by (series rank, timestamp) per shard, keeping
//! input order among equal timestamps (so "the later input wins" survives spilling), in memory
//! when the window fits the budget and by an external merge sort of run files when it does not.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rayon::prelude::*;

use crate::pipeline::spill::{Rec, SpillFile, SpillReader, SpillWriter, REC_MEM};

/// A window's samples, in input order.
pub enum Partition {
    Mem(Vec<Rec>),
    File(SpillFile),
}

/// The samples of one shard, sorted, as the writer consumes them.
pub type SortedRecs<'a> = &'a mut dyn Iterator<Item = io::Result<Rec>>;

/// Sorts `part` into `n` shards (`shard_of(rank)`) and calls `emit(shard, records)` for each
/// shard that has samples, shards in parallel. Record series ids are replaced by their rank.
/// Memory stays within about `budget` bytes; larger partitions go through files under `tmp`.
pub fn sorted<S, E>(
    part: Partition,
    ranks: &[u32],
    shard_of: S,
    n: usize,
    budget: u64,
    tmp: PathBuf,
    emit: E,
) -> Result<()>
where
    S: Fn(u32) -> usize + Sync,
    E: Fn(usize, SortedRecs<'_>) -> Result<()> + Sync,
{
    match part {
        Partition::Mem(v) => sort_in_memory(v, ranks, &shard_of, n, &emit),
        Partition::File(f) if fits(&f, budget) => {
            sort_in_memory(load(f)?, ranks, &shard_of, n, &emit)
        }
        Partition::File(f) if n > 1 => {
            let shards = distribute(&f, ranks, &shard_of, n, &tmp)?;
            remove(&f);
            let per_shard = (budget / rayon::current_num_threads().max(1) as u64).max(1 << 20);
            shards
                .into_par_iter()
                .enumerate()
                .try_for_each(|(s, file)| match file {
                    // Distributed records already carry ranks.
                    Some(file) => sort_one(file, &[], per_shard, &tmp, &|it| emit(s, it)),
                    None => Ok(()),
                })
        }
        Partition::File(f) => sort_one(f, ranks, budget, &tmp, &|it| emit(0, it)),
    }
}

/// Sorts one shard's run file, in memory when it fits the budget, else externally.
fn sort_one(
    f: SpillFile,
    ranks: &[u32],
    budget: u64,
    tmp: &Path,
    emit: &(dyn Fn(SortedRecs<'_>) -> Result<()> + Sync),
) -> Result<()> {
    if fits(&f, budget) {
        return sort_in_memory(load(f)?, ranks, &|_| 0, 1, &|_, it| emit(it));
    }
    external_sort(f, ranks, budget, tmp, emit)
}

/// Maps series ids to ranks; an empty `ranks` means the ids already are ranks.
fn rank_of(ranks: &[u32], series: u32) -> u32 {
    if ranks.is_empty() {
        series
    } else {
        ranks[series as usize]
    }
}

fn sort_in_memory<S, E>(
    mut v: Vec<Rec>,
    ranks: &[u32],
    shard_of: &S,
    n: usize,
    emit: &E,
) -> Result<()>
where
    S: Fn(u32) -> usize + Sync,
    E: Fn(usize, SortedRecs<'_>) -> Result<()> + Sync,
{
    for r in v.iter_mut() {
        r.series = rank_of(ranks, r.series);
    }
    // Stable: equal (shard, rank, ts) keep input order. A clean dump's window is usually sorted
    // already; std's stable sort finds presorted runs in linear time, rayon's does not. Windows
    // run in parallel, so only one big unsorted window needs a parallel sort.
    let key = |r: &Rec| (shard_of(r.series), r.series, r.ts);
    if !v.is_sorted_by_key(key) {
        if v.len() > 1 << 22 {
            v.par_sort_by_key(key);
        } else {
            v.sort_by_key(key);
        }
    }
    let mut bounds = Vec::with_capacity(n);
    let mut start = 0;
    while start < v.len() {
        let s = shard_of(v[start].series);
        let len = v[start..].partition_point(|r| shard_of(r.series) == s);
        bounds.push((s, start, start + len));
        start += len;
    }
    bounds.into_par_iter().try_for_each(|(s, a, b)| {
        let mut it = v[a..b].iter().map(|r| Ok(*r));
        emit(s, &mut it)
    })
}

/// Whether a run file can be sorted in memory: the records plus the stable sort's scratch.
fn fits(f: &SpillFile, budget: u64) -> bool {
    f.count * REC_MEM * 3 / 2 <= budget
}

/// Reads a whole run file into memory and deletes it.
fn load(f: SpillFile) -> Result<Vec<Rec>> {
    let mut v = Vec::with_capacity(f.count as usize);
    let mut r = f.reader().context("reading a spill file")?;
    while r
        .read_batch(1 << 16, &mut v)
        .context("reading a spill file")?
        > 0
    {}
    remove(&f);
    Ok(v)
}

fn remove(f: &SpillFile) {
    let _ = std::fs::remove_file(&f.path);
}

/// Splits a run file into one run file per shard, series ids turned into ranks.
fn distribute<S: Fn(u32) -> usize>(
    f: &SpillFile,
    ranks: &[u32],
    shard_of: &S,
    n: usize,
    tmp: &Path,
) -> Result<Vec<Option<SpillFile>>> {
    let stem = f
        .path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut outs: Vec<Option<SpillWriter>> = (0..n).map(|_| None).collect();
    let mut r = f.reader().context("reading a spill file")?;
    let mut batch = Vec::with_capacity(1 << 16);
    let mut per: Vec<Vec<Rec>> = vec![Vec::new(); n];
    loop {
        batch.clear();
        if r.read_batch(1 << 16, &mut batch)
            .context("reading a spill file")?
            == 0
        {
            break;
        }
        for rec in &batch {
            let rank = rank_of(ranks, rec.series);
            per[shard_of(rank)].push(Rec {
                series: rank,
                ..*rec
            });
        }
        for (s, recs) in per.iter_mut().enumerate() {
            if recs.is_empty() {
                continue;
            }
            if outs[s].is_none() {
                let p = tmp.join(format!("{stem}.shard-{s}"));
                outs[s] = Some(SpillWriter::create(p).context("creating a spill file")?);
            }
            outs[s]
                .as_mut()
                .expect("created")
                .append(recs)
                .context("writing a spill file")?;
            recs.clear();
        }
    }
    outs.into_iter()
        .map(|o| {
            o.map(|w| w.finish().context("finishing a spill file"))
                .transpose()
        })
        .collect()
}

/// Sorts a run file larger than the budget: sorted runs of budget size, then a k-way merge.
fn external_sort(
    f: SpillFile,
    ranks: &[u32],
    budget: u64,
    tmp: &Path,
    emit: &(dyn Fn(SortedRecs<'_>) -> Result<()> + Sync),
) -> Result<()> {
    let chunk = ((budget * 2 / 3) / REC_MEM).max(4096) as usize;
    let mut r = f.reader().context("reading a spill file")?;
    let mut runs = Vec::new();
    let mut v = Vec::with_capacity(chunk);
    loop {
        v.clear();
        if r.read_batch(chunk, &mut v)
            .context("reading a spill file")?
            == 0
        {
            break;
        }
        for rec in v.iter_mut() {
            rec.series = rank_of(ranks, rec.series);
        }
        v.par_sort_by_key(|r| (r.series, r.ts));
        let p = f.path.with_extension(format!("sorted-{}", runs.len()));
        let mut w = SpillWriter::create(p).context("creating a spill file")?;
        w.append(&v).context("writing a spill file")?;
        runs.push(w.finish().context("finishing a spill file")?);
    }
    drop(v);
    remove(&f);
    let _ = tmp;
    let mut merge = Merge::new(&runs)?;
    let result = emit(&mut merge);
    for run in &runs {
        remove(run);
    }
    result
}

/// K-way merge of sorted runs; ties go to the earlier run, which holds the earlier input.
struct Merge {
    readers: Vec<(SpillReader, Vec<Rec>, usize)>,
    heap: BinaryHeap<Reverse<(u32, i64, usize)>>,
}

impl Merge {
    fn new(runs: &[SpillFile]) -> Result<Merge> {
        let mut m = Merge {
            readers: Vec::new(),
            heap: BinaryHeap::new(),
        };
        for (i, run) in runs.iter().enumerate() {
            m.readers
                .push((run.reader().context("reading a spill file")?, Vec::new(), 0));
            if let Some(rec) = m.peek(i)? {
                m.heap.push(Reverse((rec.series, rec.ts, i)));
            }
        }
        Ok(m)
    }

    fn peek(&mut self, i: usize) -> io::Result<Option<Rec>> {
        let (r, buf, pos) = &mut self.readers[i];
        if *pos == buf.len() {
            buf.clear();
            *pos = 0;
            r.read_batch(4096, buf)?;
        }
        Ok(buf.get(*pos).copied())
    }
}

impl Iterator for Merge {
    type Item = io::Result<Rec>;

    fn next(&mut self) -> Option<io::Result<Rec>> {
        let Reverse((_, _, i)) = self.heap.pop()?;
        let rec = {
            let (_, buf, pos) = &mut self.readers[i];
            let rec = buf[*pos];
            *pos += 1;
            rec
        };
        match self.peek(i) {
            Ok(Some(next)) => self.heap.push(Reverse((next.series, next.ts, i))),
            Ok(None) => {}
            Err(e) => return Some(Err(e)),
        }
        Some(Ok(rec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn recs(n: usize) -> Vec<Rec> {
        // Shuffled-looking input with repeated timestamps whose values tell input order apart.
        (0..n)
            .map(|i| Rec {
                ts: ((i * 7919) % 500) as i64,
                val: i as u64,
                series: ((i * 31) % 13) as u32,
                hist: i % 5 == 0,
            })
            .collect()
    }

    fn collect(part: Partition, n: usize, budget: u64, tmp: &Path) -> Vec<Vec<Rec>> {
        let ranks: Vec<u32> = (0..13).rev().collect();
        let out = Mutex::new(vec![Vec::new(); n]);
        sorted(
            part,
            &ranks,
            |r| r as usize % n,
            n,
            budget,
            tmp.to_path_buf(),
            |s, it| {
                let v: Vec<Rec> = it.collect::<io::Result<_>>()?;
                out.lock().unwrap()[s] = v;
                Ok(())
            },
        )
        .unwrap();
        out.into_inner().unwrap()
    }

    fn spill(v: &[Rec], dir: &Path, name: &str) -> SpillFile {
        let mut w = SpillWriter::create(dir.join(name)).unwrap();
        w.append(v).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn memory_file_and_external_sorts_agree() {
        let dir = tempfile::tempdir().unwrap();
        let v = recs(50_000);
        for n in [1, 3] {
            let mem = collect(Partition::Mem(v.clone()), n, u64::MAX, dir.path());
            let small = collect(
                Partition::File(spill(&v, dir.path(), "a")),
                n,
                1 << 16,
                dir.path(),
            );
            assert_eq!(mem, small, "n={n}");
            for shard in &mem {
                for w in shard.windows(2) {
                    let (a, b) = (&w[0], &w[1]);
                    assert!((a.series, a.ts) <= (b.series, b.ts));
                    if (a.series, a.ts) == (b.series, b.ts) {
                        assert!(a.val < b.val, "input order kept among equal timestamps");
                    }
                }
            }
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(leftovers.is_empty(), "run files removed: {leftovers:?}");
    }
}
