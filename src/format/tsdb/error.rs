//! The one error of the TSDB readers: what is wrong, in which file when known, at which byte,
//! as Prometheus's `wlog.CorruptionErr` names the segment and offset of the damage.

use std::fmt;

/// What is wrong with a TSDB file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file ends before a structure it announces.
    Truncated,
    /// A CRC32C over a section or chunk does not match.
    Checksum,
    /// Wrong magic number or unsupported version.
    Header,
    /// A value out of range or an inconsistent structure.
    Malformed,
    /// A chunk encoding this reader does not know.
    UnknownEncoding(u8),
    /// Damage at the end of a file with nothing but zeros after it: what a write in progress
    /// looks like in the newest file of a running server (the head's chunk files).
    Torn,
}

/// A format error: what is wrong, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    /// The file, when known: readers of one byte slice leave it to their caller
    /// ([`Error::in_file`]), which knows the name.
    pub file: Option<String>,
    /// Which of the files a reader of several was given holds the damage (the WAL's segments,
    /// from 0); 0 for readers of one.
    pub segment: usize,
    /// The byte offset in the file (in a chunk's data for the chunk decoders); `None` in a WAL
    /// record's payload, whose bytes may be reassembled and decompressed: the WAL reader gives
    /// the record's place.
    pub offset: Option<u64>,
    pub what: String,
}

impl Error {
    /// An error at byte `offset`.
    pub fn new(kind: ErrorKind, offset: usize, what: impl Into<String>) -> Error {
        Error {
            kind,
            file: None,
            segment: 0,
            offset: Some(offset as u64),
            what: what.into(),
        }
    }

    /// An error with no byte offset of its own (in a WAL record's payload).
    pub fn unplaced(kind: ErrorKind, what: impl Into<String>) -> Error {
        Error {
            kind,
            file: None,
            segment: 0,
            offset: None,
            what: what.into(),
        }
    }

    /// The same error, named in `file`.
    pub fn in_file(mut self, file: impl Into<String>) -> Error {
        self.file = Some(file.into());
        self
    }

    /// The same error, in segment `segment` of a reader of several.
    pub fn in_segment(mut self, segment: usize) -> Error {
        self.segment = segment;
        self
    }

    /// The same error with its offset moved by `base`: for a reader of part of a file (a
    /// chunk's data) whose caller knows where that part lies.
    pub fn shifted(mut self, base: usize) -> Error {
        self.offset = self.offset.map(|o| o.saturating_add(base as u64));
        self
    }

    /// Damage at the end of a file that a running server may still be writing.
    pub fn is_torn(&self) -> bool {
        self.kind == ErrorKind::Torn
    }
}

impl fmt::Display for Error {
    /// `file: byte N: what` when the file is known, as Prometheus names damage; otherwise
    /// `at byte N: what`, for the caller to put after the file's name; `what` alone without
    /// an offset.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.offset) {
            (Some(file), Some(o)) => write!(f, "{file}: byte {o}: ")?,
            (Some(file), None) => write!(f, "{file}: ")?,
            (None, Some(o)) => write!(f, "at byte {o}: ")?,
            (None, None) => {}
        }
        f.write_str(&self.what)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_file_and_offset_when_known() {
        let e = Error::new(ErrorKind::Checksum, 32, "CRC32C mismatch");
        assert_eq!(e.to_string(), "at byte 32: CRC32C mismatch");
        let e = e.in_file("wal/00000000").in_segment(2);
        assert_eq!(e.to_string(), "wal/00000000: byte 32: CRC32C mismatch");
        assert_eq!(e.segment, 2);
        let e = Error::unplaced(ErrorKind::Malformed, "unknown record type 14");
        assert_eq!(e.to_string(), "unknown record type 14");
        assert_eq!(
            e.clone().in_file("f").to_string(),
            "f: unknown record type 14"
        );
        assert_eq!(e.shifted(10).offset, None);
        let e = Error::new(ErrorKind::Torn, 7, "x").shifted(10);
        assert_eq!(e.offset, Some(17));
        assert!(e.is_torn());
    }
}
