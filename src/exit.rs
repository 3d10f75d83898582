//! How a subcommand ends: its exit code, and the one line on stderr that
//! says why it failed.
//!
//! A leaf: it imports nothing of the crate, so the command line, the client
//! and the load generator can all end the same way without importing one
//! another (the command line imports them, not the other way round).

use std::process::ExitCode;

/// Exit code for a failure while running (a lost connection, a runtime
/// that would not start, a file that could not be written).
pub(crate) const EXIT_FAILURE: u8 = 1;

/// Exit code for bad arguments or configuration (clap uses it too).
pub(crate) const EXIT_USAGE: u8 = 2;

/// Prints `progjar-chat: error: …` on stderr and gives the exit code.
pub(crate) fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("progjar-chat: error: {message}");
    ExitCode::from(code)
}
