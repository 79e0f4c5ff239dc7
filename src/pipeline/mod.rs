//! What every source flows through on its way to the shards: input reading and chunking, the
//! dump converter, the sink (interning, windows, staleness, spill, streaming) and the shard writer.

pub mod atomic_file;
pub mod convert;
pub mod datadir;
pub mod input;
pub mod manifest;
pub mod shard;
pub mod sink;
pub mod sorter;
pub mod spill;
pub mod stream;
