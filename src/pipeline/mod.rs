//! What every source flows through on its way to the shards: the dump and data-dir readers, the
//! sink trait they feed (`feed`), the shard sink (windows, staleness, spill, streaming), the writer.

pub mod atomic_file;
pub mod convert;
pub mod datadir;
pub mod feed;
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
