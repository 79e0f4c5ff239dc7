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

/// For tests: every file in `dir` (a sink's output), name and bytes, by name.
#[cfg(test)]
pub(crate) fn files_in(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}
