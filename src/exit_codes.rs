//! Process exit codes, and the error type that selects code 2. Scripts around prom2om rely on
//! telling "your input or flags are wrong" (2) from "something failed while running" (1).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Success,
    /// Runtime failure: I/O, network, a tool that failed.
    Failure,
    /// Bad usage or bad input: fix the command line or the data.
    BadInput,
}

impl ExitCode {
    pub fn code(self) -> i32 {
        match self {
            ExitCode::Success => 0,
            ExitCode::Failure => 1,
            ExitCode::BadInput => 2,
        }
    }

    /// Code 2 when any error in the chain is a [`BadInput`] (also one carried inside an
    /// `io::Error`, as readers report bad data), else 1.
    pub fn of(err: &anyhow::Error) -> ExitCode {
        let carries = |e: &(dyn std::error::Error + 'static)| {
            e.downcast_ref::<BadInput>().is_some()
                || e.downcast_ref::<std::io::Error>()
                    .and_then(|io| io.get_ref())
                    .is_some_and(|inner| inner.downcast_ref::<BadInput>().is_some())
        };
        if err.downcast_ref::<BadInput>().is_some() || err.chain().any(carries) {
            ExitCode::BadInput
        } else {
            ExitCode::Failure
        }
    }
}

/// An error in what the user gave us (a flag value, an input line), as opposed to a failure of
/// the machine. Wrap it in anyhow context freely: the exit code is found anywhere in the chain.
#[derive(Debug)]
pub struct BadInput(pub String);

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// The reader of stdout went away (`prom2om inspect d | head`). The run then ends quietly with
/// exit 0, as ripgrep and the classic Unix tools do: the reader has what it wanted.
#[derive(Debug)]
pub struct StdoutClosed;

impl fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stdout was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// A writer to stdout whose broken-pipe errors carry [`StdoutClosed`]. Only stdout is wrapped,
/// so a broken socket or a failed child pipe is never taken for a satisfied reader.
pub struct MarkClosed<W>(pub W);

/// Stdout for a command's output, see [`MarkClosed`].
pub fn stdout() -> MarkClosed<std::io::Stdout> {
    MarkClosed(std::io::stdout())
}

impl<W: std::io::Write> std::io::Write for MarkClosed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf).map_err(mark_closed)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush().map_err(mark_closed)
    }
}

fn mark_closed(e: std::io::Error) -> std::io::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::io::Error::new(std::io::ErrorKind::BrokenPipe, StdoutClosed)
    } else {
        e
    }
}

/// Whether the error is stdout's reader going away, anywhere in the chain.
pub fn is_stdout_closed(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.is::<StdoutClosed>()
            || e.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .is_some_and(|inner| inner.is::<StdoutClosed>())
    })
}

/// `Err(BadInput(..))` from a format string, for early returns.
#[macro_export]
macro_rules! bad_input {
    ($($arg:tt)*) => {
        ::anyhow::Error::new($crate::exit_codes::BadInput(format!($($arg)*)))
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn bad_input_anywhere_in_chain_is_code_2() {
        let e: anyhow::Result<()> = Err(bad_input!("line 3: junk"));
        let e = e.context("reading dump.txt").unwrap_err();
        assert_eq!(ExitCode::of(&e).code(), 2);
        let io = anyhow::Error::new(std::io::Error::other("disk full"));
        assert_eq!(ExitCode::of(&io).code(), 1);
        let bad = std::io::Error::other(BadInput("truncated gzip".into()));
        let bad = anyhow::Error::new(bad).context("reading d.gz");
        assert_eq!(ExitCode::of(&bad).code(), 2);
    }

    #[test]
    fn only_a_broken_pipe_on_stdout_is_a_closed_stdout() {
        let pipe = || std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let socket = anyhow::Error::new(pipe()).context("sending a request");
        assert!(!is_stdout_closed(&socket));
        let out = anyhow::Error::new(mark_closed(pipe())).context("writing to stdout");
        assert!(is_stdout_closed(&out));
        assert!(!is_stdout_closed(&anyhow::Error::new(mark_closed(
            std::io::Error::other("disk full")
        ))));
    }
}
