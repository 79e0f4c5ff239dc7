//! Progress bars on stderr, shown only when stderr is a terminal so logs and pipes stay clean.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar over `len` units (bytes when `bytes`), hidden when stderr is not a terminal or `len` is 0.
pub fn bar(len: u64, msg: &'static str, bytes: bool) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = if len == 0 {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::new(len)
    };
    pb.set_draw_target(ProgressDrawTarget::stderr_with_hz(8));
    let tmpl = match (len, bytes) {
        (0, true) => "{spinner} {msg} {bytes} ({bytes_per_sec}) {elapsed}",
        (0, false) => "{spinner} {msg} {pos} {elapsed}",
        (_, true) => "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
        (_, false) => "{msg} [{bar:30}] {pos}/{len} (eta {eta})",
    };
    pb.set_style(
        ProgressStyle::with_template(tmpl)
            .expect("static template")
            .progress_chars("=> "),
    );
    pb.set_message(msg);
    pb
}
