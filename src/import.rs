//! `import`: a shard directory into a TSDB, each shard read once through `format::shard_dir` and
//! verified in that read: into a Prometheus data dir as blocks (`tsdb`), or into a remote-write
//! receiver (`remote_write`, then `verify_remote`), in one vocabulary (`outcome`, `state`).

pub mod blocks;
pub mod build;
pub mod future;
pub mod holding;
pub mod home_version;
mod lanes;
pub mod lock;
pub mod outcome;
pub mod promtool;
pub mod receiver;
pub mod remote_write;
pub mod rw_negotiate;
pub mod rw_request;
pub mod state;
pub mod tsdb;
pub mod verify_remote;
mod window_gate;

pub use outcome::{Destination, Outcome, Progress, ShardResult, Silent, Summary};
pub use promtool::Promtool;
