//! Write-ahead log segments (`wal/`, `wbl/`, checkpoints) as Prometheus' `tsdb/wlog` lays them
//! out: 32 KiB pages of CRC32C-checked fragments, reassembled here into records, zero-copy.
//! A record's fragments ([`Span`]s) can be noted and read back later without walking again.
//!
//! Fragment: type byte (low 3 bits: 0 page padding, 1 full, 2 first, 3 middle, 4 last; bit 3
//! snappy, bit 4 zstd), BE16 length, BE32 CRC32C of the data, data. Fragments never cross a page
//! in what Prometheus writes; a record may span pages and, when bigger than what is left of a
//! segment, segments. A record cut short at the end of the newest segment is a write in progress.

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use super::{Error, ErrorKind};

/// Size of a WAL page: fragments never cross one.
pub const PAGE_SIZE: usize = 32 * 1024;
/// Fragment header: type, BE16 length, BE32 CRC32C.
pub const HEADER_SIZE: usize = 7;
const SNAPPY: u8 = 1 << 3;
const ZSTD: u8 = 1 << 4;
/// Decompressed records bigger than this are refused, bounding memory on hostile input.
const MAX_RECORD: usize = 256 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Snappy,
    Zstd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Full,
    First,
    Middle,
    Last,
}

/// One record: its bytes (borrowed from the segment when it is one uncompressed fragment) and
/// where its first fragment starts.
pub struct Record<'r> {
    pub data: &'r [u8],
    pub segment: usize,
    pub offset: usize,
}

/// Where the data of one fragment lies: the segment (index in the segments read) and the byte
/// range in it. A record is the concatenation of its fragments' data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub segment: u32,
    pub len: u32,
    pub start: usize,
}

impl Span {
    fn bytes<'s>(&self, segs: &[&'s [u8]]) -> &'s [u8] {
        &segs[self.segment as usize][self.start..self.start + self.len as usize]
    }
}

/// The record whose fragments are `spans` in `segs` (as a reader noted them), as logged (before
/// decompression): borrowed from the segment when it is one fragment, else copied into `buf`.
pub fn assemble<'x>(segs: &[&'x [u8]], spans: &[Span], buf: &'x mut Vec<u8>) -> &'x [u8] {
    if let [one] = spans {
        return one.bytes(segs);
    }
    buf.clear();
    for s in spans {
        buf.extend_from_slice(s.bytes(segs));
    }
    buf
}

/// One record before decompression: its type can often be told without decompressing it, so
/// that a reader interested in a few types skips the others cheaply; a record of several
/// fragments is only copied together when its bytes are asked for.
pub struct RawRecord<'r> {
    segs: &'r [&'r [u8]],
    spans: &'r [Span],
    comp: Compression,
    buf: &'r mut Vec<u8>,
    out: &'r mut Vec<u8>,
    pub segment: usize,
    pub offset: usize,
}

impl<'r> RawRecord<'r> {
    /// The record's first byte (its type) when known without decompressing: uncompressed and
    /// snappy records; `None` for zstd, and for an empty record.
    pub fn type_hint(&self) -> Option<u8> {
        // Enough of the start for a snappy length varint, a literal tag and its length bytes.
        let mut head = [0u8; 16];
        let mut n = 0;
        for s in self.spans {
            let b = s.bytes(self.segs);
            let k = b.len().min(head.len() - n);
            head[n..n + k].copy_from_slice(&b[..k]);
            n += k;
            if n == head.len() {
                break;
            }
        }
        let head = &head[..n];
        match self.comp {
            Compression::None => head.first().copied(),
            Compression::Snappy => snappy_first_byte(head),
            Compression::Zstd => None,
        }
    }

    /// How the record is compressed, and where its fragments lie: for reading it again
    /// ([`assemble`], [`decompress_record`]) without walking the pages, as the second pass of
    /// the head replay does.
    pub fn spans(&self) -> (Compression, &[Span]) {
        (self.comp, self.spans)
    }

    /// The record's bytes, decompressed when needed.
    pub fn data(self) -> Result<&'r [u8], Error> {
        let raw = assemble(self.segs, self.spans, self.buf);
        if self.comp == Compression::None {
            return Ok(raw);
        }
        let out = self.out;
        match decompress(self.comp, raw, out) {
            Ok(()) => Ok(&out[..]),
            Err(msg) => {
                Err(Error::new(ErrorKind::Malformed, self.offset, msg).in_segment(self.segment))
            }
        }
    }
}

/// The first decompressed byte of a snappy block: it opens with a literal (nothing precedes it
/// to copy from) after the varint length.
fn snappy_first_byte(b: &[u8]) -> Option<u8> {
    let mut i = 0;
    let mut len = 0u64;
    loop {
        let x = *b.get(i)?;
        len |= ((x & 0x7f) as u64) << (7 * i);
        i += 1;
        if x < 0x80 {
            break;
        }
        if i == 5 {
            return None;
        }
    }
    let tag = *b.get(i)?;
    if len == 0 || tag & 3 != 0 {
        return None;
    }
    let extra = ((tag >> 2) as usize).saturating_sub(59);
    b.get(i + 1 + extra).copied()
}

/// Reads records from consecutive segments. `next` lends each record until the following call;
/// after an error, calling `next` again resumes at the next page (for skipping damage).
pub struct Records<'a> {
    segs: Vec<&'a [u8]>,
    /// The last segment may end in a record being written: stop there instead of failing.
    live_tail: bool,
    seg: usize,
    pos: usize,
    /// Fragments of the record being assembled.
    spans: Vec<Span>,
    /// The record's fragments copied together, when asked for.
    buf: Vec<u8>,
    out: Vec<u8>,
    /// Start (segment, offset) of the record being assembled, if any.
    pending: Option<(usize, usize)>,
    /// After damage: drop middle/last fragments until a record starts.
    resync: bool,
    torn: Option<(usize, usize)>,
    done: bool,
    /// CRCs another thread checked, and the page whose start the reader last stood at
    /// (segment, page): only there does the reader follow the same fragments as that check.
    checks: Option<&'a PageChecks>,
    aligned: (usize, usize),
}

/// A complete record (its fragments in the reader's `spans`): segment, offset, compression.
type Found = Option<(usize, usize, Compression)>;

enum Step {
    Frag(Kind, Compression, Span, usize),
    Padding,
    SegmentEnd,
}

impl<'a> Records<'a> {
    pub fn new(segs: Vec<&'a [u8]>, live_tail: bool) -> Records<'a> {
        Records {
            segs,
            live_tail,
            seg: 0,
            pos: 0,
            spans: Vec::new(),
            buf: Vec::new(),
            out: Vec::new(),
            pending: None,
            resync: false,
            torn: None,
            done: false,
            checks: None,
            aligned: (usize::MAX, 0),
        }
    }

    /// Trusts the pages `checks` found sound (checked by another thread, see
    /// [`PageChecks::check_backwards`]) instead of computing their CRCs again; claims the
    /// others, so that the checker stops where the reader got to.
    pub fn with_checks(mut self, checks: &'a PageChecks) -> Records<'a> {
        self.checks = Some(checks);
        self
    }

    /// Where the newest segment ended in an unfinished record (segment, offset), once `next`
    /// has returned `None`.
    pub fn torn_tail(&self) -> Option<(usize, usize)> {
        self.torn
    }

    /// The next record, `None` at the end, or the damage found (then call again to go on).
    #[allow(clippy::should_implement_trait)] // lends from self: not an Iterator
    pub fn next(&mut self) -> Option<Result<Record<'_>, Error>> {
        let raw = match self.next_raw()? {
            Ok(raw) => raw,
            Err(e) => return Some(Err(e)),
        };
        let (segment, offset) = (raw.segment, raw.offset);
        Some(raw.data().map(|data| Record {
            data,
            segment,
            offset,
        }))
    }

    /// Like [`Records::next`], leaving decompression to [`RawRecord::data`].
    pub fn next_raw(&mut self) -> Option<Result<RawRecord<'_>, Error>> {
        match self.advance() {
            Ok(None) => None,
            Ok(Some((segment, offset, comp))) => Some(Ok(RawRecord {
                segs: &self.segs,
                spans: &self.spans,
                comp,
                buf: &mut self.buf,
                out: &mut self.out,
                segment,
                offset,
            })),
            Err(e) => {
                self.skip_damage(&e);
                Some(Err(e))
            }
        }
    }

    /// Drops the partial record and moves to the page after the damage.
    fn skip_damage(&mut self, e: &Error) {
        self.pending = None;
        self.spans.clear();
        self.resync = true;
        if e.segment == self.seg {
            let at = e.offset.unwrap_or(0) as usize;
            let next_page = (at / PAGE_SIZE + 1) * PAGE_SIZE;
            self.pos = self.pos.max(next_page);
        }
    }

    fn err(&self, kind: ErrorKind, offset: usize, msg: impl Into<String>) -> Error {
        Error::new(kind, offset, msg).in_segment(self.seg)
    }

    fn in_last_segment(&self) -> bool {
        self.seg + 1 >= self.segs.len()
    }

    /// A tear only where a write may be in progress: the newest segment, nothing after it.
    fn tear_or(&mut self, at: usize, rest_clean: bool, e: Error) -> Result<(), Error> {
        let started_here = self.pending.is_none_or(|p| p.0 == self.seg);
        if self.live_tail && self.in_last_segment() && rest_clean && started_here {
            self.torn = Some((self.seg, self.pending.map_or(at, |p| p.1)));
            self.done = true;
            self.pending = None;
            Ok(())
        } else {
            Err(e)
        }
    }

    fn advance(&mut self) -> Result<Found, Error> {
        loop {
            if self.done {
                return Ok(None);
            }
            match self.step()? {
                Step::Padding => continue,
                Step::SegmentEnd => {
                    if self.seg + 1 < self.segs.len() {
                        self.seg += 1;
                        self.pos = 0;
                        continue;
                    }
                    self.done = true;
                    if let Some((s, off)) = self.pending {
                        let msg = "the log ends in the middle of a record";
                        let e = Error::new(ErrorKind::Truncated, off, msg).in_segment(s);
                        self.tear_or(off, true, e)?;
                    }
                    return Ok(None);
                }
                Step::Frag(kind, comp, data, at) => {
                    if let Some(r) = self.fragment(kind, comp, data, at)? {
                        return Ok(Some(r));
                    }
                }
            }
        }
    }

    fn fragment(
        &mut self,
        kind: Kind,
        comp: Compression,
        data: Span,
        at: usize,
    ) -> Result<Found, Error> {
        let starts = matches!(kind, Kind::Full | Kind::First);
        if self.resync {
            if !starts {
                return Ok(None);
            }
            self.resync = false;
        }
        match (starts, self.pending) {
            (true, Some(_)) | (false, None) => {
                let msg = format!("unexpected {kind:?} fragment");
                return Err(self.err(ErrorKind::Malformed, at, msg));
            }
            (true, None) => {
                self.pending = Some((self.seg, at));
                self.spans.clear();
            }
            (false, Some(_)) => {}
        }
        self.spans.push(data);
        if kind == Kind::Full {
            self.pending = None;
            return Ok(Some((self.seg, at, comp)));
        }
        if kind == Kind::Last {
            let (seg, off) = self.pending.take().expect("record start");
            return Ok(Some((seg, off, comp)));
        }
        Ok(None)
    }

    /// Reads one fragment header (or padding) at the current position.
    fn step(&mut self) -> Result<Step, Error> {
        let Some(&seg) = self.segs.get(self.seg) else {
            return Ok(Step::SegmentEnd);
        };
        let at = self.pos;
        if at >= seg.len() {
            return Ok(Step::SegmentEnd);
        }
        let page_end = ((at / PAGE_SIZE + 1) * PAGE_SIZE).min(seg.len());
        let typ = seg[at];
        if typ & 7 == 0 {
            if seg[at + 1..page_end].iter().any(|&b| b != 0) {
                return Err(self.err(ErrorKind::Malformed, at, "non-zero byte in page padding"));
            }
            self.pos = page_end;
            return Ok(Step::Padding);
        }
        let kind = match typ & 7 {
            1 => Kind::Full,
            2 => Kind::First,
            3 => Kind::Middle,
            4 => Kind::Last,
            t => {
                let msg = format!("unknown fragment type {t}");
                return Err(self.err(ErrorKind::Malformed, at, msg));
            }
        };
        let comp = if typ & SNAPPY != 0 {
            Compression::Snappy
        } else if typ & ZSTD != 0 {
            Compression::Zstd
        } else {
            Compression::None
        };
        if seg.len() - at < HEADER_SIZE {
            let e = self.err(
                ErrorKind::Truncated,
                at,
                "segment ends inside a fragment header",
            );
            self.tear_or(at, true, e)?;
            return Ok(Step::SegmentEnd);
        }
        let len = u16::from_be_bytes([seg[at + 1], seg[at + 2]]) as usize;
        let crc = u32::from_be_bytes([seg[at + 3], seg[at + 4], seg[at + 5], seg[at + 6]]);
        if len > PAGE_SIZE - HEADER_SIZE {
            let msg = format!("fragment length {len} exceeds a page");
            return Err(self.err(ErrorKind::Malformed, at, msg));
        }
        let end = at + HEADER_SIZE + len;
        if end > seg.len() {
            let e = self.err(ErrorKind::Truncated, at, "segment ends inside a fragment");
            self.tear_or(at, true, e)?;
            return Ok(Step::SegmentEnd);
        }
        let page = (self.seg, at / PAGE_SIZE);
        if at % PAGE_SIZE == 0 {
            self.aligned = page;
        }
        let checked = self
            .checks
            .is_some_and(|c| self.aligned == page && c.sound(page));
        let data = &seg[at + HEADER_SIZE..end];
        let actual = if checked { crc } else { crc32c::crc32c(data) };
        if let (false, Some(c)) = (checked, self.checks) {
            c.claim(page);
        }
        if actual != crc {
            let msg = format!("CRC32C mismatch: stored {crc:08x}, computed {actual:08x}");
            let e = self.err(ErrorKind::Checksum, at, msg);
            let rest_clean = seg[end..].iter().all(|&b| b == 0);
            self.tear_or(at, rest_clean, e)?;
            return Ok(Step::SegmentEnd);
        }
        self.pos = end;
        let span = Span {
            segment: self.seg as u32,
            len: len as u32,
            start: at + HEADER_SIZE,
        };
        Ok(Step::Frag(kind, comp, span, at))
    }
}

/// Which pages of a set of segments hold only fragments with sound CRCs, as walked from the
/// page start: checked by a second thread while the reader walks the log from its start (the
/// checker from its end), so that the CRC work is split between them. Per page: unknown,
/// sound, or claimed by the reader (which checks it itself).
pub struct PageChecks {
    pages: Vec<Vec<AtomicU8>>,
    stopped: AtomicBool,
}

const UNKNOWN: u8 = 0;
const SOUND: u8 = 1;
const CLAIMED: u8 = 2;

impl PageChecks {
    pub fn new(segs: &[&[u8]]) -> PageChecks {
        let pages = segs
            .iter()
            .map(|s| {
                (0..s.len().div_ceil(PAGE_SIZE))
                    .map(|_| AtomicU8::new(UNKNOWN))
                    .collect()
            })
            .collect();
        PageChecks {
            pages,
            stopped: AtomicBool::new(false),
        }
    }

    /// Makes [`PageChecks::check_backwards`] return soon: the reader is done (or failed).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
    }

    fn state(&self, (seg, page): (usize, usize)) -> Option<&AtomicU8> {
        self.pages.get(seg)?.get(page)
    }

    fn sound(&self, page: (usize, usize)) -> bool {
        self.state(page)
            .is_some_and(|s| s.load(Ordering::Acquire) == SOUND)
    }

    fn claim(&self, page: (usize, usize)) {
        if let Some(s) = self.state(page) {
            let _ = s.compare_exchange(UNKNOWN, CLAIMED, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    /// Checks pages from the last one of the last segment backwards, until one the reader
    /// claimed: `segs` must be the segments the reader reads.
    pub fn check_backwards(&self, segs: &[&[u8]]) {
        for (si, seg) in segs.iter().enumerate().rev() {
            for page in (0..self.pages[si].len()).rev() {
                let st = &self.pages[si][page];
                if st.load(Ordering::Acquire) != UNKNOWN || self.stopped.load(Ordering::Acquire) {
                    return;
                }
                if page_sound(seg, page * PAGE_SIZE) {
                    let _ =
                        st.compare_exchange(UNKNOWN, SOUND, Ordering::AcqRel, Ordering::Acquire);
                }
            }
        }
    }
}

/// Whether the fragments from `start` to the end of its page are well framed, within the
/// page, with CRCs that match, and end in zero padding if any: then a reader that enters the
/// page at its start meets exactly these fragments and need not check their CRCs again.
fn page_sound(seg: &[u8], start: usize) -> bool {
    let page_end = (start + PAGE_SIZE).min(seg.len());
    let mut at = start;
    while at < page_end {
        let typ = seg[at];
        if typ & 7 == 0 {
            return seg[at..page_end].iter().all(|&b| b == 0);
        }
        if !(1..=4).contains(&(typ & 7)) || page_end - at < HEADER_SIZE {
            return false;
        }
        let len = u16::from_be_bytes([seg[at + 1], seg[at + 2]]) as usize;
        let crc = u32::from_be_bytes([seg[at + 3], seg[at + 4], seg[at + 5], seg[at + 6]]);
        let end = at + HEADER_SIZE + len;
        if end > page_end || crc32c::crc32c(&seg[at + HEADER_SIZE..end]) != crc {
            return false;
        }
        at = end;
    }
    true
}

/// Decompresses a whole record logged with `comp` into `out` (cleared first); Err says why not.
pub fn decompress_record(comp: Compression, src: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    decompress(comp, src, out)
}

/// Decompresses a whole record into `out`.
fn decompress(comp: Compression, src: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    match comp {
        Compression::None => {
            out.clear();
            out.extend_from_slice(src);
        }
        Compression::Snappy => {
            let n = snap::raw::decompress_len(src).map_err(|e| format!("snappy: {e}"))?;
            if n > MAX_RECORD {
                return Err(format!("snappy record of {n} bytes is too big"));
            }
            // A successful decompression writes all n bytes (snap checks it): a reused buffer
            // needs no zeroing.
            if out.len() >= n {
                out.truncate(n);
            } else {
                out.resize(n, 0);
            }
            snap::raw::Decoder::new()
                .decompress(src, out)
                .map_err(|e| format!("snappy: {e}"))?;
        }
        Compression::Zstd => {
            out.clear();
            let mut src = src;
            let dec = ruzstd::decoding::StreamingDecoder::new(&mut src)
                .map_err(|e| format!("zstd: {e}"))?;
            dec.take(MAX_RECORD as u64 + 1)
                .read_to_end(out)
                .map_err(|e| format!("zstd: {e}"))?;
            if out.len() > MAX_RECORD {
                return Err("zstd record is too big".into());
            }
        }
    }
    Ok(())
}

/// Writes records the way Prometheus' `wlog.WL.log` does (one flush per record), into in-memory
/// segments: for tests and fixtures, never into a data directory. Like Prometheus, a record
/// that does not fit in what is left of a segment starts a new one, and a record bigger than a
/// whole segment makes that segment longer (records never span segments as written).
pub struct Writer {
    pages_per_segment: usize,
    compression: Compression,
    segments: Vec<Vec<u8>>,
}

impl Writer {
    /// `segment_size` must be a multiple of [`PAGE_SIZE`].
    pub fn new(segment_size: usize, compression: Compression) -> Writer {
        assert!(segment_size >= PAGE_SIZE && segment_size % PAGE_SIZE == 0);
        Writer {
            pages_per_segment: segment_size / PAGE_SIZE,
            compression,
            segments: vec![Vec::new()],
        }
    }

    pub fn segments(&self) -> &[Vec<u8>] {
        &self.segments
    }

    pub fn into_segments(self) -> Vec<Vec<u8>> {
        self.segments
    }

    fn cur(&mut self) -> &mut Vec<u8> {
        self.segments.last_mut().expect("a segment")
    }

    fn alloc(&self) -> usize {
        self.segments.last().map_or(0, |s| s.len() % PAGE_SIZE)
    }

    fn pad_page(&mut self) {
        let a = self.alloc();
        if a > 0 {
            let cur = self.cur();
            cur.resize(cur.len() + PAGE_SIZE - a, 0);
        }
    }

    pub fn log(&mut self, rec: &[u8]) {
        if PAGE_SIZE - self.alloc() < HEADER_SIZE {
            self.pad_page();
        }
        let compressed = self.compress(rec);
        let (rec, flag) = match &compressed {
            Some((c, flag)) => (&c[..], *flag),
            None => (rec, 0),
        };
        // Signed as in Go: a segment grown past its size by a huge record has room < 0.
        let done_pages = (self.cur().len() / PAGE_SIZE) as i64;
        let left = (PAGE_SIZE - self.alloc() - HEADER_SIZE) as i64
            + (PAGE_SIZE - HEADER_SIZE) as i64 * (self.pages_per_segment as i64 - done_pages - 1);
        if rec.len() as i64 > left {
            self.pad_page();
            self.segments.push(Vec::new());
        }
        let mut rest = rec;
        let mut i = 0;
        while i == 0 || !rest.is_empty() {
            let l = rest.len().min(PAGE_SIZE - self.alloc() - HEADER_SIZE);
            let typ = match (i == 0, l == rest.len()) {
                (true, true) => 1,
                (false, true) => 4,
                (true, false) => 2,
                (false, false) => 3,
            } | flag;
            let part = &rest[..l];
            let cur = self.cur();
            cur.push(typ);
            cur.extend_from_slice(&(l as u16).to_be_bytes());
            cur.extend_from_slice(&crc32c::crc32c(part).to_be_bytes());
            cur.extend_from_slice(part);
            if PAGE_SIZE - self.alloc() < HEADER_SIZE {
                self.pad_page();
            }
            rest = &rest[l..];
            i += 1;
        }
    }

    fn compress(&self, rec: &[u8]) -> Option<(Vec<u8>, u8)> {
        if rec.is_empty() {
            return None;
        }
        let (c, flag) = match self.compression {
            Compression::None => return None,
            Compression::Snappy => (snap::raw::Encoder::new().compress_vec(rec).ok()?, SNAPPY),
            Compression::Zstd => (
                ruzstd::encoding::compress_to_vec(rec, ruzstd::encoding::CompressionLevel::Fastest),
                ZSTD,
            ),
        };
        (c.len() < rec.len()).then_some((c, flag))
    }
}

/// All records of `segs` as owned bytes, or the first error: a convenience for tests and tools.
pub fn read_all(segs: &[&[u8]], live_tail: bool) -> Result<Vec<Vec<u8>>, Error> {
    let mut r = Records::new(segs.to_vec(), live_tail);
    let mut out = Vec::new();
    while let Some(rec) = r.next() {
        out.push(rec?.data.to_vec());
    }
    Ok(out)
}

/// Fuzz target body: read arbitrary bytes as one live segment and as a two-segment log, going
/// on after every error; must never panic nor loop. The ways the head replay reads the log must
/// agree with the plain reading: with the CRC checks of a second thread done beforehand, and
/// records read again from the spans the first reading noted.
pub fn fuzz_wal(data: &[u8]) {
    let mid = data.len() / 2;
    for (segs, live) in [
        (vec![data], true),
        (vec![&data[..mid], &data[mid..]], false),
    ] {
        let plain = outcomes(Records::new(segs.clone(), live), data.len());
        let checks = PageChecks::new(&segs);
        checks.check_backwards(&segs);
        let checked = Records::new(segs.clone(), live).with_checks(&checks);
        assert_eq!(outcomes(checked, data.len()), plain);
        let mut r = Records::new(segs.clone(), live);
        let (mut buf, mut out) = (Vec::new(), Vec::new());
        let mut i = 0;
        while let Some(res) = r.next_raw() {
            if let Ok(raw) = res {
                let (comp, spans) = raw.spans();
                let spans = spans.to_vec();
                let rec = assemble(&segs, &spans, &mut buf);
                let again = match comp {
                    Compression::None => Some(rec.to_vec()),
                    _ => decompress_record(comp, rec, &mut out)
                        .ok()
                        .map(|()| out.clone()),
                };
                assert_eq!(again, plain[i].clone().ok());
            }
            i += 1;
        }
    }
}

/// Every record's bytes, or where the damage was, in reading order.
fn outcomes(mut r: Records<'_>, len: usize) -> Vec<Result<Vec<u8>, (usize, u64)>> {
    let mut v = Vec::new();
    while let Some(res) = r.next() {
        v.push(match res {
            Ok(rec) => {
                assert!(rec.data.len() <= MAX_RECORD);
                Ok(rec.data.to_vec())
            }
            Err(e) => Err((e.segment, e.offset.unwrap_or(u64::MAX))),
        });
        assert!(v.len() <= len + 2, "reader does not advance");
    }
    v
}

#[cfg(test)]
#[path = "wal_tests.rs"]
mod tests;
