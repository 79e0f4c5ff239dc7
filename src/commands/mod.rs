//! One module per subcommand: its clap `Args` (doc comments are the help text) and its `run`.
//! Library logic lives in the crate's other modules; these only validate options and wire them.

// Doc comments here are `--help` text, printed as written: `[1h]` and bare URLs are meant
// literally, not as rustdoc links.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::bare_urls)]

pub mod common;
pub mod completions;
pub mod convert;
pub mod dashboard;
pub mod dry_run;
pub mod fetch;
pub mod http_args;
pub mod import;
pub mod inspect;
pub mod verify;
