//! The report: what is printed, and the JSON written by `--json`.

use serde::Serialize;

use super::drain::DrainResult;
use super::load::RunResult;
use super::sys::Machine;
use super::thousands::thousands;

/// The whole `--json` report.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub tool: &'static str,
    pub version: &'static str,
    pub machine: Machine,
    pub params: Params,
    /// The server named by `--connect`, when there is one.
    pub server: Option<Target>,
    /// The built-in baseline, with `--baseline`.
    pub baseline: Option<Target>,
    /// Server over baseline, run by run, when both ran.
    pub ratio: Option<Ratios>,
    /// With `--inbox-drain`, one entry per size and run.
    pub inbox_drain: Vec<DrainResult>,
}

/// The parameters of the run, as given or defaulted.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Params {
    pub connections: usize,
    pub pipeline: usize,
    pub mix: String,
    pub duration_seconds: Option<f64>,
    pub requests: Option<u64>,
    pub warmup_seconds: f64,
    pub runs: usize,
    pub idle: usize,
    pub sessions: usize,
    pub message_size: usize,
    pub users: Vec<String>,
    pub threads: usize,
    pub baseline_threads: usize,
}

/// The runs against one server and their spread.
#[derive(Debug, Serialize)]
pub(crate) struct Target {
    pub addr: String,
    pub runs: Vec<RunResult>,
    pub summary: Option<Summary>,
}

/// Median, min and max over the runs.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub(crate) fn of(values: &[f64]) -> Option<Self> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median =
            if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
        Some(Self { median, min: sorted[0], max: sorted[n - 1] })
    }
}

/// A target's figures over all its runs.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Summary {
    pub requests_per_second: Spread,
    pub p50_us: Spread,
    pub p90_us: Spread,
    pub p99_us: Spread,
    pub p99_9_us: Spread,
    pub max_us: Spread,
    /// Totals over the runs.
    pub requests: u64,
    pub error_replies: u64,
    pub connection_failures: u64,
}

impl Summary {
    pub(crate) fn of(runs: &[RunResult]) -> Option<Self> {
        let spread = |f: fn(&RunResult) -> f64| Spread::of(&runs.iter().map(f).collect::<Vec<_>>());
        Some(Self {
            requests_per_second: spread(|r| r.requests_per_second)?,
            p50_us: spread(|r| r.latency_us.p50)?,
            p90_us: spread(|r| r.latency_us.p90)?,
            p99_us: spread(|r| r.latency_us.p99)?,
            p99_9_us: spread(|r| r.latency_us.p99_9)?,
            max_us: spread(|r| r.latency_us.max)?,
            requests: runs.iter().map(|r| r.requests).sum(),
            error_replies: runs.iter().map(|r| r.error_replies).sum(),
            connection_failures: runs.iter().map(|r| r.connection_failures).sum(),
        })
    }
}

/// Server over baseline, computed for each pair of runs made back to back.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Ratios {
    /// Throughput: 1.0 is the ceiling; higher is better.
    pub throughput: Spread,
    /// p50 and p99 latency: lower is better.
    pub p50: Spread,
    pub p99: Spread,
}

impl Ratios {
    pub(crate) fn of(server: &[RunResult], baseline: &[RunResult]) -> Option<Self> {
        let pairs: Vec<_> = server.iter().zip(baseline).collect();
        let ratio = |f: fn(&RunResult) -> f64| {
            Spread::of(&pairs.iter().map(|(s, b)| f(s) / f(b)).collect::<Vec<_>>())
        };
        Some(Self {
            throughput: ratio(|r| r.requests_per_second)?,
            p50: ratio(|r| r.latency_us.p50)?,
            p99: ratio(|r| r.latency_us.p99)?,
        })
    }
}

/// Microseconds as milliseconds with three decimals.
pub(crate) fn ms(us: f64) -> String {
    format!("{:.3}", us / 1000.0)
}

/// One line per run.
pub(crate) fn run_line(run: &RunResult) -> String {
    let l = &run.latency_us;
    let mut line = format!(
        "{:>9} req/s  {} requests in {:.2} s  latency ms p50 {} p90 {} p99 {} p99.9 {} max {}  errors {}  failures {}",
        thousands(run.requests_per_second),
        thousands(run.requests as f64),
        run.seconds,
        ms(l.p50),
        ms(l.p90),
        ms(l.p99),
        ms(l.p99_9),
        ms(l.max),
        run.error_replies,
        run.connection_failures,
    );
    if let Some(memory) = &run.server_memory {
        line += &format!(
            "\n      server RSS KiB: start {} after setup {} after load {} end {} peak {}",
            memory.start_kib,
            memory.after_setup_kib,
            memory.after_load_kib,
            memory.end_kib,
            memory.peak_kib
        );
        if let Some(per) = memory.per_connection_bytes {
            line += &format!(" ({per:.0} bytes per connection)");
        }
    }
    if let Some(others) = run.other_cpus.filter(|&o| o >= 0.1) {
        line += &format!("\n      note: other processes used {others:.2} CPUs during this run");
    }
    for (message, count) in &run.error_messages {
        line += &format!("\n      error reply {message:?}: {count}");
    }
    for (reason, count) in &run.failure_reasons {
        line += &format!("\n      connection failure {reason:?}: {count}");
    }
    line
}

/// The closing lines for one target.
pub(crate) fn summary_lines(name: &str, summary: &Summary, runs: usize) -> String {
    let s = |x: &Spread| format!("{} ({}–{})", ms(x.median), ms(x.min), ms(x.max));
    let rps = &summary.requests_per_second;
    format!(
        "{name}: median of {runs}: {} req/s ({}–{}), p50 {} ms, p99 {} ms, p99.9 {} ms",
        thousands(rps.median),
        thousands(rps.min),
        thousands(rps.max),
        s(&summary.p50_us),
        s(&summary.p99_us),
        s(&summary.p99_9_us),
    )
}

/// The ratio line.
pub(crate) fn ratio_line(ratio: &Ratios) -> String {
    let s = |x: &Spread| format!("{:.2} ({:.2}–{:.2})", x.median, x.min, x.max);
    format!(
        "server / baseline: throughput {}, p50 latency {}, p99 latency {}",
        s(&ratio.throughput),
        s(&ratio.p50),
        s(&ratio.p99)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread() {
        let s = Spread::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Spread::of(&[1.0, 2.0, 4.0, 8.0]).unwrap().median, 3.0);
        assert!(Spread::of(&[]).is_none());
    }
}
