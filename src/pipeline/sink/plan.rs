//! How the sink lays its shards out before they are written: each window's shard count planned
//! from an estimate of its text (a data dir's index, fetch's discovery, the window before), and
//! how many windows a pass of the input may cover.

use std::collections::HashMap;

use anyhow::Result;

use super::{shard_width, Output, Sink, SinkOptions, Streamer, Window};
use crate::pipeline::stream::Layout;

impl Sink {
    /// Plans the shards of each window from an estimate of its OpenMetrics text (window start,
    /// bytes as `Sink::push` counts them), before the first sample: a window then streams into
    /// the shards its final size asks for, where it would otherwise outgrow one streamed shard
    /// and go to the sorted path. A window whose final size asks for another count still goes
    /// there, so the shards are the same bytes whatever the estimate. Nothing to plan with
    /// --shards, for stdout, or once samples came.
    pub fn plan_windows(&mut self, text_bytes: impl IntoIterator<Item = (i64, u64)>) {
        let Output::Dir { path, compress } = &self.opts.output else {
            return;
        };
        if self.opts.shards.is_some() || self.stream.is_none() || !self.windows.is_empty() {
            return;
        }
        let d = self.opts.block_duration_ms;
        let planned: HashMap<i64, u32> = text_bytes
            .into_iter()
            .map(|(start, bytes)| (start.div_euclid(d) * d, self.shards_for(bytes)))
            .collect();
        let layout = layout_of(&self.opts, path, *compress, planned.clone());
        // Nothing was sent to the workers yet: the new streamer replaces them.
        drop(self.stream.take());
        self.stream = Some(Streamer::start(layout.clone(), self.opts.memory_limit));
        self.stream_layout = Some(layout);
        self.planned = planned;
    }

    /// Plans the window starting at `from`, which a pass begins and no sample reached yet, with
    /// the shards the window before it asks for, when nothing else planned it: a source read in
    /// passes of a window each (fetch's units) then streams windows of more than one shard too.
    /// A wrong guess costs speed only: that window goes to the sorted path.
    pub(super) fn plan_like_last(&mut self, from: i64) -> Result<()> {
        if self.stream.is_none()
            || self.opts.shards.is_some()
            || self.planned.contains_key(&from)
            || self.window_index.contains_key(&from)
        {
            return Ok(());
        }
        let last = self.windows.iter().filter(|w| w.start < from);
        let Some(last) = last.max_by_key(|w| w.start) else {
            return Ok(());
        };
        let n = self.shards_for(last.est_bytes);
        let (Some(st), Some(layout)) = (self.stream.as_mut(), self.stream_layout.as_mut()) else {
            return Ok(());
        };
        // More shards than the layout's file names have digits for: left to the sorted path.
        if shard_width(n) != layout.width {
            return Ok(());
        }
        self.planned.insert(from, n);
        std::sync::Arc::make_mut(&mut layout.planned).insert(from, n);
        st.plan(from, n)
    }

    /// Shards for a window of `est_bytes` of text when --shards does not say.
    pub(super) fn shards_for(&self, est_bytes: u64) -> u32 {
        est_bytes
            .div_ceil(self.opts.target_shard_bytes.max(1))
            .clamp(1, 1 << 16) as u32
    }

    /// The window outgrew the shards it streams into: the sorted path must write it.
    pub(super) fn outgrown(&self, win: &Window) -> bool {
        self.opts.shards.is_none()
            && win.est_bytes > u64::from(win.planned).saturating_mul(self.opts.target_shard_bytes)
    }

    /// Plans the windows' shards ([`Sink::plan_windows`]) from text spread over time ranges.
    pub(super) fn plan_text_ranges(&mut self, ranges: &[(i64, i64, u64)]) {
        let d = self.opts.block_duration_ms;
        let mut bytes: HashMap<i64, u64> = HashMap::new();
        for &(a, b, n) in ranges {
            let span = (b as i128 - a as i128 + 1).max(1);
            let mut w = a.div_euclid(d) * d;
            while w <= b {
                let (lo, hi) = (w.max(a), w.saturating_add(d - 1).min(b));
                let share = (n as i128 * (hi as i128 - lo as i128 + 1) / span) as u64;
                *bytes.entry(w).or_default() += share;
                let Some(next) = w.checked_add(d) else { break };
                w = next;
            }
        }
        self.plan_windows(bytes);
    }

    /// Whole output windows from `from`'s on, as many as keep the streamed shards a pass opens
    /// within [`Streamer::pass_writers`] (one window at least): those of a pass are finished
    /// while the next is read, so the open shards stay bounded whatever the input's length.
    pub(super) fn pass_end_for(&self, from: i64, until: i64) -> i64 {
        let (Some(st), Some(layout)) = (&self.stream, &self.stream_layout) else {
            return until;
        };
        let d = self.opts.block_duration_ms;
        let (cap, mut start, mut open) = (st.pass_writers(), self.window_start(from), 0);
        while start < until {
            let n = u64::from(layout.shards_at(start));
            if open > 0 && open + n > cap {
                return start;
            }
            open += n;
            start = start.saturating_add(d);
        }
        until
    }
}

/// The streamed path's layout of shards in `dir`.
pub(super) fn layout_of(
    opts: &SinkOptions,
    dir: &std::path::Path,
    compress: bool,
    planned: HashMap<i64, u32>,
) -> Layout {
    let shards = opts.shards.unwrap_or(1).max(1);
    let most = planned.values().copied().fold(shards, u32::max);
    Layout {
        dir: dir.to_path_buf(),
        compress: compress.then_some(opts.compression_level),
        block_duration_ms: opts.block_duration_ms,
        shards,
        planned: std::sync::Arc::new(planned),
        width: shard_width(most),
        stale: opts.stale,
    }
}
