//! The load generator (being written).

use std::process::ExitCode;

/// Arguments of `progjar-chat bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {}

/// Runs the benchmark.
pub fn main(_args: BenchArgs) -> ExitCode {
    ExitCode::FAILURE
}
