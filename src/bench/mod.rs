//! The load generator: `progjar-chat bench`, in the spirit of
//! redis-benchmark.
//!
//! Every connection opens a session first (the users of `--users` are
//! shared round-robin by many connections), then runs its `--mix`
//! closed-loop: it writes one request (or a batch of `--pipeline`
//! requests), waits for the replies, and writes the next. The report gives
//! requests per second, latency percentiles from an HDR histogram, error
//! replies and connection failures.
//!
//! Replies are read loosely (see [`wire`]) so that any server of the
//! protocol can be measured, the original Python one included: only
//! `"status": "ERROR"` counts as an error, and requests are pipelined only
//! when `--pipeline` asks for it (the original merges requests that arrive
//! together).
//!
//! `--baseline` runs the same load against a built-in server that answers
//! every line with one fixed reply and does nothing else ([`baseline`]): the
//! ceiling of this machine and this generator. With `--connect` as well,
//! both are measured, run after run, and the report gives the server's
//! figures as ratios to the baseline's.
//!
//! | module | what it is |
//! |---|---|
//! | [`mix`] | the `--mix` ops and the request each one sends |
//! | [`load`] | one measured run: setup, closed loop, histogram, clean-up |
//! | [`drain`] | `--inbox-drain`: one mailbox of N messages, one reply |
//! | [`baseline`] | the constant-reply server |
//! | [`conn`], [`wire`] | a client connection; reading replies loosely |
//! | [`report`], [`sys`] | the text and JSON report; `/proc` figures |
//! | [`thousands`] | counts as `1,234,568`, for every part of the report |

pub(crate) mod baseline;
pub(crate) mod conn;
pub(crate) mod drain;
pub(crate) mod load;
pub(crate) mod mix;
pub(crate) mod report;
pub(crate) mod sys;
pub(crate) mod thousands;
pub(crate) mod wire;

use std::io::IsTerminal;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use self::baseline::Baseline;
use self::load::{Plan, RunResult, Until};
use self::mix::{parse_mix, Mix};
use self::report::{Params, Ratios, Report, Summary, Target};
use self::sys::Machine;
use crate::exit::{fail, EXIT_FAILURE, EXIT_USAGE};

const EXAMPLES: &str = "Examples:
  progjar-chat bench                                   # 127.0.0.1:8889, 50 connections, 10 s
  progjar-chat bench --baseline -c 100 -d 5s           # the ceiling of this machine
  progjar-chat bench --connect 127.0.0.1:8889 --baseline -c 100 --mix send --runs 3
  progjar-chat bench --connect 127.0.0.1:8889 --pipeline 16 --json report.json
  progjar-chat bench --connect 127.0.0.1:8889 --idle 10000 -n 0 --server-pid PID
  progjar-chat bench --connect 127.0.0.1:8889 --inbox-drain 10000,100000 --pipeline 64

Mix ops: send (to the connection's own user, so send,inbox drains what it sends),
inbox, list, auth (opens one more session), logout (ends the session the latest
auth opened, else the connection's own).";

/// Arguments of `progjar-chat bench`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct BenchArgs {
    /// The server to measure. Without --connect and --baseline, 127.0.0.1:8889.
    #[arg(long, value_name = "HOST:PORT")]
    pub connect: Option<String>,
    /// Also measure the built-in baseline server (one fixed reply to every
    /// line, nothing else): the ceiling of this machine and this generator.
    /// With --connect, both run with the same parameters and the report
    /// gives the ratios.
    #[arg(long)]
    pub baseline: bool,
    /// Connections running the mix.
    #[arg(short = 'c', long, default_value_t = 50, value_name = "CONNECTIONS")]
    pub connections: usize,
    /// How long to run each measurement (10, 10s, 500ms, 2m) [default: 10s].
    #[arg(short = 'd', long, value_parser = crate::duration::parse, value_name = "DURATION",
          conflicts_with = "requests")]
    pub duration: Option<Duration>,
    /// Stop after this many requests in all (0: only set up, e.g. with --idle).
    #[arg(short = 'n', long, value_name = "REQUESTS")]
    pub requests: Option<u64>,
    /// Requests written at once per connection, each batch waiting for all
    /// its replies (1: no pipelining).
    #[arg(long, default_value_t = 1, value_name = "DEPTH",
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub pipeline: u32,
    /// The requests each connection repeats, in order.
    #[arg(long, default_value = "send,inbox", value_parser = parse_mix, value_name = "OPS")]
    pub mix: Mix,
    /// Write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Repeat each measurement; the report gives the median, min and max.
    /// With --baseline too, server and baseline runs alternate.
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: u32,
    /// Run the load this long before measuring.
    #[arg(long, default_value = "0s", value_parser = crate::duration::parse, value_name = "DURATION")]
    pub warmup: Duration,
    /// Also hold this many authenticated connections idle during the run.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub idle: usize,
    /// Also keep this many extra sessions open during the run (over one
    /// connection), e.g. for `list` with many sessions.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub sessions: usize,
    /// The length of the text of every `send`, in bytes.
    #[arg(long, default_value_t = 8, value_name = "BYTES")]
    pub message_size: usize,
    /// Instead of the load: fill one mailbox with N messages and time the
    /// one `inbox` that drains it (a comma-separated list runs each size).
    #[arg(long, value_delimiter = ',', value_name = "N")]
    pub inbox_drain: Vec<u64>,
    /// Users to log in as, shared round-robin by the connections.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "messi,henderson,lineker",
        value_name = "USERS"
    )]
    pub users: Vec<String>,
    /// Their password.
    #[arg(long, default_value = "surabaya")]
    pub password: String,
    /// The server's process id: report its memory (Linux /proc).
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// Worker threads of the load generator [default: the number of CPUs].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Worker threads of the baseline server [default: the number of CPUs,
    /// as the reference server has].
    #[arg(long, value_name = "N")]
    pub baseline_threads: Option<usize>,
    /// A connection that waits this long for a reply is counted as failed.
    #[arg(long, default_value = "10s", value_parser = crate::duration::parse, value_name = "DURATION")]
    pub timeout: Duration,
    /// No live progress line.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// Runs the benchmark: 0 when it ran (errors are in the report), 1 when no
/// connection could be opened, 2 for bad arguments.
pub(crate) fn main(args: BenchArgs) -> ExitCode {
    if args.users.iter().any(|u| u.is_empty() || u.contains(char::is_whitespace)) {
        return fail(EXIT_USAGE, "--users: a username is empty or holds white space");
    }
    if !args.inbox_drain.is_empty() && args.connect.is_none() && args.baseline {
        return fail(EXIT_USAGE, "--inbox-drain needs a real server (--connect)");
    }
    let server = if args.connect.is_some() || !args.baseline {
        let text = args.connect.as_deref().unwrap_or("127.0.0.1:8889");
        match resolve(text) {
            Ok(addr) => Some(addr),
            Err(message) => return fail(EXIT_USAGE, message),
        }
    } else {
        None
    };
    let mut machine = Machine::describe();
    let threads = args.threads.unwrap_or(machine.cpus).max(1);
    let baseline_threads = args.baseline_threads.unwrap_or(machine.cpus).max(1);
    // Fair to its connections in the way the server is (see
    // `server::GLOBAL_QUEUE_INTERVAL`): with tokio's default, connections
    // whose tasks landed in the shared run queue waited in the generator
    // itself, which added tens of milliseconds to the measured p99 at 1,000
    // connections, whatever the server.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("bench")
        .enable_all()
        .global_queue_interval(crate::server::GLOBAL_QUEUE_INTERVAL)
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(EXIT_FAILURE, format!("cannot start the runtime: {error}")),
    };
    let baseline = if args.baseline && args.inbox_drain.is_empty() {
        match Baseline::start(baseline_threads) {
            Ok(baseline) => Some(baseline),
            Err(error) => {
                return fail(EXIT_FAILURE, format!("cannot start the baseline server: {error}"))
            }
        }
    } else {
        None
    };

    let until = match (args.duration, args.requests) {
        (_, Some(n)) => Until::Requests(n),
        (Some(d), None) => Until::Elapsed(d),
        (None, None) => Until::Elapsed(Duration::from_secs(10)),
    };
    let text: String = (0..args.message_size).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    let plan = |addr: SocketAddr| Plan {
        addr,
        connections: args.connections,
        until,
        warmup: args.warmup,
        pipeline: args.pipeline as usize,
        mix: args.mix.clone(),
        users: args.users.clone(),
        password: args.password.clone(),
        text: text.clone(),
        idle: args.idle,
        sessions: args.sessions,
        timeout: args.timeout,
        progress: None,
        server_pid: None,
        in_process: false,
    };
    let show_progress = !args.quiet && std::io::stderr().is_terminal();
    let runs = args.runs as usize;
    let params = Params {
        connections: args.connections,
        pipeline: args.pipeline as usize,
        mix: args.mix.to_string(),
        duration_seconds: match until {
            Until::Elapsed(d) => Some(d.as_secs_f64()),
            Until::Requests(_) => None,
        },
        requests: match until {
            Until::Requests(n) => Some(n),
            Until::Elapsed(_) => None,
        },
        warmup_seconds: args.warmup.as_secs_f64(),
        runs,
        idle: args.idle,
        sessions: args.sessions,
        message_size: args.message_size,
        users: args.users.clone(),
        threads,
        baseline_threads,
    };
    println!("progjar-chat bench: {}", describe(&params, !args.inbox_drain.is_empty()));
    println!("machine: {}", machine.summary());

    let mut report = Report {
        tool: "progjar-chat bench",
        version: env!("CARGO_PKG_VERSION"),
        machine: machine.clone(),
        params,
        server: server.map(|addr| Target {
            addr: addr.to_string(),
            runs: Vec::new(),
            summary: None,
        }),
        baseline: baseline.as_ref().map(|b| Target {
            addr: format!("{} (in-process, constant reply)", b.addr()),
            runs: Vec::new(),
            summary: None,
        }),
        ratio: None,
        inbox_drain: Vec::new(),
    };
    let mut failed = false;

    if let (false, Some(addr)) = (args.inbox_drain.is_empty(), server) {
        let plan = Plan { server_pid: args.server_pid, ..plan(addr) };
        println!("inbox drain, server {addr}");
        for &size in &args.inbox_drain {
            for _ in 0..runs {
                match runtime.block_on(drain::run(&plan, size)) {
                    Ok(result) => {
                        println!("  {}", drain::line(&result));
                        report.inbox_drain.push(result);
                    }
                    Err(message) => {
                        println!("  {size} messages: failed: {message}");
                        failed = true;
                    }
                }
            }
        }
    } else {
        for run in 0..runs {
            // Alternate which goes first, so slow drift of the machine
            // does not favour one of them.
            let order: [bool; 2] = if run % 2 == 0 { [true, false] } else { [false, true] };
            for is_server in order {
                let (name, addr, pid) = match (is_server, server, &baseline) {
                    (true, Some(addr), _) => ("server", addr, args.server_pid),
                    (false, _, Some(b)) => ("baseline", b.addr(), None),
                    _ => continue,
                };
                let label = format!("{name} run {}/{runs}", run + 1);
                let plan = Plan {
                    server_pid: pid,
                    in_process: !is_server,
                    progress: show_progress.then(|| label.clone()),
                    ..plan(addr)
                };
                let result = runtime.block_on(load::run(&plan));
                println!("{label}: {}", report::run_line(&result));
                failed |= result.connections == 0 && args.connections > 0;
                let target = if is_server { &mut report.server } else { &mut report.baseline };
                if let Some(target) = target {
                    target.runs.push(result);
                }
            }
        }
        for (name, target) in [("server", &mut report.server), ("baseline", &mut report.baseline)] {
            if let Some(target) = target {
                target.summary = Summary::of(&target.runs);
                if let Some(summary) = &target.summary {
                    println!("{}", report::summary_lines(name, summary, target.runs.len()));
                }
            }
        }
        if let (Some(s), Some(b)) = (&report.server, &report.baseline) {
            report.ratio = Ratios::of(&s.runs, &b.runs);
            if let Some(ratio) = &report.ratio {
                println!("{}", report::ratio_line(ratio));
            }
        }
        let errors: u64 = [&report.server, &report.baseline]
            .into_iter()
            .flatten()
            .flat_map(|t| &t.runs)
            .map(|r: &RunResult| r.error_replies + r.connection_failures)
            .sum();
        if errors > 0 {
            println!("warning: {errors} error replies and connection failures (see above)");
        }
    }
    drop(baseline);
    machine.load_average_end = sys::load_average();
    report.machine.load_average_end = machine.load_average_end;

    if let Some(path) = &args.json {
        let written = serde_json::to_vec_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|json| std::fs::write(path, json).map_err(|e| e.to_string()));
        if let Err(error) = written {
            return fail(EXIT_FAILURE, format!("cannot write {}: {error}", path.display()));
        }
    }
    if failed {
        return fail(EXIT_FAILURE, "no connection to the server could be opened");
    }
    ExitCode::SUCCESS
}

fn resolve(text: &str) -> Result<SocketAddr, String> {
    text.to_socket_addrs()
        .map_err(|error| format!("--connect {text}: {error}"))?
        .next()
        .ok_or_else(|| format!("--connect {text}: no address"))
}

fn describe(params: &Params, drain: bool) -> String {
    let mut text = if drain {
        format!("{} sending connections, pipeline {}", params.connections, params.pipeline)
    } else {
        format!(
            "mix {}, {} connections, pipeline {}",
            params.mix, params.connections, params.pipeline
        )
    };
    if !drain {
        match (params.duration_seconds, params.requests) {
            (_, Some(n)) => text += &format!(", {n} requests"),
            (Some(d), None) => text += &format!(", {d} s"),
            (None, None) => {}
        }
        if params.warmup_seconds > 0.0 {
            text += &format!(" after {} s of warm-up", params.warmup_seconds);
        }
        if params.idle > 0 {
            text += &format!(", {} idle connections", params.idle);
        }
        if params.sessions > 0 {
            text += &format!(", {} extra sessions", params.sessions);
        }
    }
    text += &format!(", {} run(s), {} generator threads", params.runs, params.threads);
    text
}
