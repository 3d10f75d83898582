//! The conformance runner (being written).

use std::process::ExitCode;

/// Arguments of `progjar-chat conform`.
#[derive(Debug, clap::Args)]
pub struct ConformArgs {}

/// Runs the conformance suite.
pub fn main(_args: ConformArgs) -> ExitCode {
    ExitCode::FAILURE
}
