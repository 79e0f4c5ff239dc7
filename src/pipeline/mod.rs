//! What every source flows through on its way to the shards: input chunking, the dump converter,
//! the sink and its series table (windows, staleness, spill, streaming), and the shard writer.

pub mod atomic_file;
pub mod convert;
pub mod datadir;
pub mod head;
pub mod input;
pub mod out_dir;
pub mod run_lock;
mod series;
pub mod shard;
pub mod sink;
pub mod sorter;
pub mod spill;
pub mod stream;
