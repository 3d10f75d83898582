//! One measured run against one server: open and authenticate the
//! connections, run the mix closed-loop, gather the latency histogram, then
//! log everything out and drain the mailboxes the run filled.
//!
//! Each connection writes a batch of requests (one request, or `--pipeline`
//! of them in one write), waits for every reply of the batch, and starts the
//! next. A request's latency runs from the write of its batch to the end of
//! its reply. Latencies are buffered per connection and merged into one HDR
//! histogram a few hundred at a time, so the connections do not contend on
//! it.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::conn::BenchConn;
use super::mix::{Mix, Op};
use super::sys::{self, Memory};
use super::wire;

/// How many connections are being opened at once.
const CONNECT_CONCURRENCY: usize = 256;

/// A connection merges its latencies into the histogram after this many…
const FLUSH_EVERY: usize = 256;
/// …or after this long, whichever comes first (for the progress line).
const FLUSH_AFTER: Duration = Duration::from_millis(50);

/// When a run stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Until {
    /// After this long (warm-up not included).
    Elapsed(Duration),
    /// After this many requests in total (warm-up not included).
    Requests(u64),
}

/// Everything one run needs.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub addr: SocketAddr,
    pub connections: usize,
    pub until: Until,
    pub warmup: Duration,
    pub pipeline: usize,
    pub mix: Mix,
    pub users: Vec<String>,
    pub password: String,
    /// The text of every `send`.
    pub text: String,
    /// Extra connections, authenticated and then left idle during the run.
    pub idle: usize,
    /// Extra sessions, opened over one connection and kept during the run.
    pub sessions: usize,
    pub timeout: Duration,
    /// The label of the live progress line, when there is one.
    pub progress: Option<String>,
    pub server_pid: Option<u32>,
    /// The server runs in this process (the baseline).
    pub in_process: bool,
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RunResult {
    /// Requests answered in the measured period.
    pub requests: u64,
    /// The measured period: from the end of the warm-up to the last reply.
    pub seconds: f64,
    pub requests_per_second: f64,
    pub latency_us: Latency,
    /// Replies whose status is `ERROR`.
    pub error_replies: u64,
    /// The error replies by message (at most 20 different ones).
    pub error_messages: BTreeMap<String, u64>,
    /// Connections that could not be opened or authenticated, or that failed
    /// or stopped answering during the run.
    pub connection_failures: u64,
    pub failure_reasons: BTreeMap<String, u64>,
    /// Connections that ran the mix.
    pub connections: usize,
    pub idle_connections: usize,
    pub extra_sessions: usize,
    /// How long opening and authenticating everything took.
    pub setup_seconds: f64,
    /// Requests of the clean-up (logouts, mailbox drains) that failed.
    pub cleanup_errors: u64,
    /// Only with `--server-pid`.
    pub server_memory: Option<ServerMemory>,
    /// How many CPUs' worth of time other processes on the machine used
    /// during the load (Linux; needs `--server-pid` for a server in another
    /// process). Above about 0.1 they competed with the run.
    pub other_cpus: Option<f64>,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
    pub mean: f64,
}

/// The server's resident memory at the points of a run, in KiB.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct ServerMemory {
    /// Before the run opened anything.
    pub start_kib: u64,
    /// With every connection and session of the run open and idle.
    pub after_setup_kib: u64,
    /// When the load stopped, before the clean-up.
    pub after_load_kib: u64,
    /// After the clean-up: connections closed, sessions ended, mail drained.
    pub end_kib: u64,
    /// The peak during setup and load (`VmHWM`, reset at the start when the
    /// kernel allows, else the process's lifetime peak).
    pub peak_kib: u64,
    /// `(after_setup - start) / (connections + idle connections)`, in bytes:
    /// what one open, authenticated connection costs the server.
    pub per_connection_bytes: Option<f64>,
}

/// The counters every connection adds to.
struct Shared {
    measure_from: Instant,
    end: Option<Instant>,
    remaining: Option<AtomicI64>,
    histogram: Mutex<Histogram<u64>>,
    measured: AtomicU64,
    /// Replies of the warm-up included: for the progress line and to notice
    /// a server that stopped answering.
    answered: AtomicU64,
    errors: AtomicU64,
    error_messages: Mutex<BTreeMap<String, u64>>,
}

impl Shared {
    fn note_error(&self, message: String) {
        let mut messages = self.error_messages.lock().unwrap_or_else(|p| p.into_inner());
        if messages.len() < 20 || messages.contains_key(&message) {
            *messages.entry(message).or_default() += 1;
        }
    }
}

/// Takes up to `want` requests from the run's total; 0 when none are left.
fn claim(remaining: &AtomicI64, want: usize) -> usize {
    let want = want as i64;
    let before = remaining.fetch_sub(want, Ordering::Relaxed);
    before.clamp(0, want) as usize
}

/// One connection running the mix.
struct Worker {
    conn: BenchConn,
    token: String,
    /// Sessions opened by `auth` in the mix and not yet logged out.
    extra: Vec<String>,
    pos: usize,
    send_line: Vec<u8>,
    inbox_line: Vec<u8>,
    list_line: Vec<u8>,
    auth_line: Vec<u8>,
    batch: Vec<Op>,
    out: Vec<u8>,
    latencies: Vec<u64>,
    answered: u64,
    errors: u64,
    last_flush: Instant,
    last_reply: Option<Instant>,
}

/// How a connection's run ended.
struct WorkerEnd {
    /// The connection, when it is still usable for the clean-up.
    worker: Option<Worker>,
    failure: Option<String>,
    last_reply: Option<Instant>,
}

impl Worker {
    fn new(conn: BenchConn, token: String, user: &str, password: &str, text: &str) -> Self {
        Self {
            send_line: format!("send {token} {user} {text}\r\n").into_bytes(),
            inbox_line: format!("inbox {token}\r\n").into_bytes(),
            list_line: format!("list {token}\r\n").into_bytes(),
            auth_line: format!("auth {user} {password}\r\n").into_bytes(),
            conn,
            token,
            extra: Vec::new(),
            pos: 0,
            batch: Vec::new(),
            out: Vec::new(),
            latencies: Vec::with_capacity(FLUSH_EVERY),
            answered: 0,
            errors: 0,
            last_flush: Instant::now(),
            last_reply: None,
        }
    }

    async fn run(mut self, shared: Arc<Shared>, mix: Arc<[Op]>, pipeline: usize) -> WorkerEnd {
        let outcome = self.run_mix(&shared, &mix, pipeline).await;
        self.flush(&shared);
        let last_reply = self.last_reply;
        match outcome {
            Ok(()) => WorkerEnd { worker: Some(self), failure: None, last_reply },
            Err(error) => WorkerEnd { worker: None, failure: Some(error.to_string()), last_reply },
        }
    }

    async fn run_mix(
        &mut self,
        shared: &Shared,
        mix: &[Op],
        pipeline: usize,
    ) -> std::io::Result<()> {
        loop {
            let now = Instant::now();
            if shared.end.is_some_and(|end| now >= end) {
                return Ok(());
            }
            self.plan_batch(mix, pipeline);
            let measuring = now >= shared.measure_from;
            if measuring {
                if let Some(remaining) = &shared.remaining {
                    let granted = claim(remaining, self.batch.len());
                    if granted == 0 {
                        return Ok(());
                    }
                    let unused = self.batch.len() - granted;
                    self.batch.truncate(granted);
                    self.pos = (self.pos + mix.len() - unused % mix.len()) % mix.len();
                }
            }
            self.write_batch();
            let sent = Instant::now();
            self.conn.send(&self.out).await?;
            for i in 0..self.batch.len() {
                let reply = self.conn.reply().await?;
                let done = Instant::now();
                if wire::is_error(reply) {
                    self.errors += u64::from(measuring);
                    if measuring {
                        shared.note_error(wire::error_message(reply));
                    }
                } else if self.batch[i] == Op::Auth {
                    if let Some(token) = wire::token(reply) {
                        self.extra.push(token);
                    }
                }
                self.answered += 1;
                if measuring {
                    self.latencies.push((done - sent).as_nanos() as u64);
                }
                self.last_reply = Some(done);
                if self.latencies.len() >= FLUSH_EVERY || done - self.last_flush >= FLUSH_AFTER {
                    self.flush(shared);
                }
            }
        }
    }

    /// Chooses the next batch: up to `pipeline` ops of the mix, stopping
    /// before a `logout` that needs the token of an `auth` in this batch.
    fn plan_batch(&mut self, mix: &[Op], pipeline: usize) {
        self.batch.clear();
        let mut auths = 0;
        while self.batch.len() < pipeline {
            let op = mix[self.pos];
            if op == Op::Logout && self.extra.is_empty() && auths > 0 {
                break;
            }
            auths += usize::from(op == Op::Auth);
            self.batch.push(op);
            self.pos = (self.pos + 1) % mix.len();
        }
    }

    fn write_batch(&mut self) {
        self.out.clear();
        for &op in &self.batch {
            match op {
                Op::Send => self.out.extend_from_slice(&self.send_line),
                Op::Inbox => self.out.extend_from_slice(&self.inbox_line),
                Op::List => self.out.extend_from_slice(&self.list_line),
                Op::Auth => self.out.extend_from_slice(&self.auth_line),
                Op::Logout => {
                    let token = self.extra.pop();
                    let token = token.as_deref().unwrap_or(&self.token);
                    self.out.extend_from_slice(b"logout ");
                    self.out.extend_from_slice(token.as_bytes());
                    self.out.extend_from_slice(b"\r\n");
                }
            }
        }
    }

    fn flush(&mut self, shared: &Shared) {
        if !self.latencies.is_empty() {
            let mut histogram = shared.histogram.lock().unwrap_or_else(|p| p.into_inner());
            for &nanos in &self.latencies {
                histogram.saturating_record(nanos.max(1));
            }
            drop(histogram);
            shared.measured.fetch_add(self.latencies.len() as u64, Ordering::Relaxed);
            self.latencies.clear();
        }
        shared.answered.fetch_add(std::mem::take(&mut self.answered), Ordering::Relaxed);
        shared.errors.fetch_add(std::mem::take(&mut self.errors), Ordering::Relaxed);
        self.last_flush = Instant::now();
    }
}

/// Opens a connection and authenticates it.
async fn open_session(
    addr: SocketAddr,
    user: &str,
    password: &str,
    limit: Duration,
) -> Result<(BenchConn, String), String> {
    let mut conn = match tokio::time::timeout(limit, BenchConn::connect(addr)).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(error)) => return Err(format!("connect: {error}")),
        Err(_) => return Err("connect: timed out".into()),
    };
    let line = format!("auth {user} {password}\r\n");
    let reply = conn.request(line.as_bytes(), limit).await.map_err(|e| format!("auth: {e}"))?;
    let token = wire::token(reply).ok_or_else(|| "auth: reply without a token".to_owned())?;
    Ok((conn, token))
}

/// Opens `count` authenticated connections, a bounded number at a time;
/// connection `i` logs in as user `i % users`.
async fn open_many(
    plan: &Plan,
    count: usize,
    failures: &mut BTreeMap<String, u64>,
) -> Vec<(usize, BenchConn, String)> {
    let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let mut set = JoinSet::new();
    for i in 0..count {
        let gate = Arc::clone(&gate);
        let (addr, limit) = (plan.addr, plan.timeout);
        let user = plan.users[i % plan.users.len()].clone();
        let password = plan.password.clone();
        set.spawn(async move {
            let _permit = gate.acquire_owned().await;
            (i, open_session(addr, &user, &password, limit).await)
        });
    }
    let mut opened = Vec::with_capacity(count);
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, Ok((conn, token)))) => opened.push((i, conn, token)),
            Ok((_, Err(reason))) => *failures.entry(reason).or_default() += 1,
            Err(_) => *failures.entry("setup task failed".into()).or_default() += 1,
        }
    }
    opened.sort_by_key(|(i, _, _)| *i);
    opened
}

/// Sends `lines` over `conn`, `depth` per write, and counts the error
/// replies (or everything not yet answered, when the connection fails).
async fn pipelined(
    conn: &mut BenchConn,
    lines: &[String],
    depth: usize,
    limit: Duration,
) -> (Vec<Option<String>>, u64) {
    let mut tokens = Vec::with_capacity(lines.len());
    let mut errors = 0;
    let mut out = Vec::new();
    for chunk in lines.chunks(depth.max(1)) {
        out.clear();
        for line in chunk {
            out.extend_from_slice(line.as_bytes());
        }
        if conn.send(&out).await.is_err() {
            let unanswered = (lines.len() - tokens.len()) as u64;
            return (tokens, errors + unanswered);
        }
        for _ in chunk {
            match conn.reply_within(limit).await {
                Ok(reply) if wire::is_error(reply) => {
                    errors += 1;
                    tokens.push(None);
                }
                Ok(reply) => tokens.push(wire::token(reply)),
                Err(_) => {
                    let unanswered = (lines.len() - tokens.len()) as u64;
                    return (tokens, errors + unanswered);
                }
            }
        }
    }
    (tokens, errors)
}

fn server_memory(plan: &Plan) -> Option<Memory> {
    plan.server_pid.and_then(sys::memory)
}

/// Runs `plan` once.
pub(crate) async fn run(plan: &Plan) -> RunResult {
    let mut failures = BTreeMap::new();
    let mut cleanup_errors = 0;
    if let Some(pid) = plan.server_pid {
        sys::reset_peak(pid);
    }
    let memory_start = server_memory(plan);
    let setup_started = Instant::now();

    // Extra sessions, over one connection.
    let mut sessions: Option<(BenchConn, Vec<String>)> = None;
    if plan.sessions > 0 {
        match open_session(plan.addr, &plan.users[0], &plan.password, plan.timeout).await {
            Ok((mut conn, token)) => {
                let lines: Vec<String> = (0..plan.sessions - 1)
                    .map(|i| {
                        format!("auth {} {}\r\n", plan.users[i % plan.users.len()], plan.password)
                    })
                    .collect();
                let (tokens, errors) =
                    pipelined(&mut conn, &lines, plan.pipeline, plan.timeout).await;
                if errors > 0 {
                    *failures.entry("extra session: auth failed".into()).or_default() += errors;
                }
                let mut tokens: Vec<String> = tokens.into_iter().flatten().collect();
                tokens.push(token);
                sessions = Some((conn, tokens));
            }
            Err(reason) => *failures.entry(format!("extra sessions: {reason}")).or_default() += 1,
        }
    }
    let idle = open_many(plan, plan.idle, &mut failures).await;
    let active = open_many(plan, plan.connections, &mut failures).await;
    let setup_seconds = setup_started.elapsed().as_secs_f64();
    let memory_setup = server_memory(plan);

    // The load.
    let cpu_start = sys::CpuTimes::now(plan.server_pid);
    let start = Instant::now();
    let measure_from = start + plan.warmup;
    let shared = Arc::new(Shared {
        measure_from,
        end: match plan.until {
            Until::Elapsed(duration) => Some(measure_from + duration),
            Until::Requests(_) => None,
        },
        remaining: match plan.until {
            Until::Requests(n) => Some(AtomicI64::new(i64::try_from(n).unwrap_or(i64::MAX))),
            Until::Elapsed(_) => None,
        },
        histogram: Mutex::new(
            Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds"),
        ),
        measured: AtomicU64::new(0),
        answered: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        error_messages: Mutex::new(BTreeMap::new()),
    });
    let connections = active.len();
    let mix: Arc<[Op]> = plan.mix.ops().into();
    let mut set = JoinSet::new();
    let no_load = plan.until == Until::Requests(0);
    let mut workers = Vec::new();
    for (i, conn, token) in active {
        let user = &plan.users[i % plan.users.len()];
        let worker = Worker::new(conn, token, user, &plan.password, &plan.text);
        if no_load {
            workers.push(worker);
        } else {
            set.spawn(worker.run(Arc::clone(&shared), Arc::clone(&mix), plan.pipeline));
        }
    }
    let progress = plan.progress.clone().map(|label| {
        let shared = Arc::clone(&shared);
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        (tokio::spawn(show_progress(label, shared, start, bar.clone())), bar)
    });

    let mut ends = Vec::new();
    let mut last_answered = 0;
    let mut last_change = Instant::now();
    loop {
        tokio::select! {
            joined = set.join_next() => match joined {
                None => break,
                Some(Ok(end)) => ends.push(end),
                Some(Err(error)) => {
                    let reason = if error.is_cancelled() {
                        "no reply within --timeout"
                    } else {
                        "connection task panicked"
                    };
                    *failures.entry(reason.into()).or_default() += 1;
                }
            },
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                let now = Instant::now();
                let answered = shared.answered.load(Ordering::Relaxed);
                if answered != last_answered {
                    last_answered = answered;
                    last_change = now;
                }
                let overdue = shared.end.is_some_and(|end| now > end + plan.timeout);
                if overdue || now - last_change > plan.timeout {
                    set.abort_all();
                }
            }
        }
    }
    if let Some((task, bar)) = progress {
        task.abort();
        let _ = task.await;
        bar.finish_and_clear();
    }
    let cpu_end = sys::CpuTimes::now(plan.server_pid);
    let load_seconds = start.elapsed().as_secs_f64();
    let memory_load = server_memory(plan);

    let last_reply = ends.iter().filter_map(|end| end.last_reply).max();
    let seconds = match last_reply {
        Some(last) if last > measure_from => (last - measure_from).as_secs_f64(),
        _ => 0.0,
    };
    for end in ends {
        if let Some(reason) = end.failure {
            *failures.entry(reason).or_default() += 1;
        }
        workers.extend(end.worker);
    }
    let histogram = shared.histogram.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let requests = shared.measured.load(Ordering::Relaxed);
    let us = |nanos: u64| nanos as f64 / 1000.0;
    let latency_us = if histogram.is_empty() {
        Latency::default()
    } else {
        Latency {
            p50: us(histogram.value_at_quantile(0.5)),
            p90: us(histogram.value_at_quantile(0.9)),
            p99: us(histogram.value_at_quantile(0.99)),
            p99_9: us(histogram.value_at_quantile(0.999)),
            max: us(histogram.max()),
            mean: histogram.mean() / 1000.0,
        }
    };
    let error_messages =
        std::mem::take(&mut *shared.error_messages.lock().unwrap_or_else(|p| p.into_inner()));

    // Clean-up: end every session, drain the mail the run left.
    let mut set = JoinSet::new();
    for mut worker in workers {
        let limit = plan.timeout;
        let depth = plan.pipeline;
        set.spawn(async move {
            let mut tokens = std::mem::take(&mut worker.extra);
            tokens.push(worker.token.clone());
            let lines: Vec<String> = tokens.iter().map(|t| format!("logout {t}\r\n")).collect();
            pipelined(&mut worker.conn, &lines, depth, limit).await.1
        });
    }
    for (_, mut conn, token) in idle {
        let limit = plan.timeout;
        set.spawn(async move {
            pipelined(&mut conn, &[format!("logout {token}\r\n")], 1, limit).await.1
        });
    }
    if let Some((mut conn, tokens)) = sessions {
        let (limit, depth) = (plan.timeout, plan.pipeline);
        set.spawn(async move {
            let lines: Vec<String> = tokens.iter().map(|t| format!("logout {t}\r\n")).collect();
            pipelined(&mut conn, &lines, depth, limit).await.1
        });
    }
    while let Some(joined) = set.join_next().await {
        cleanup_errors += joined.unwrap_or(1);
    }
    if plan.mix.sends() && !no_load {
        for user in plan.users.iter().take(plan.connections.max(1)) {
            cleanup_errors += drain_mailbox(plan, user).await;
        }
    }
    let memory_end = match plan.server_pid {
        Some(_) => {
            tokio::time::sleep(Duration::from_millis(200)).await;
            server_memory(plan)
        }
        None => None,
    };

    let server_memory = match (memory_start, memory_setup, memory_load, memory_end) {
        (Some(start), Some(setup), Some(load), Some(end)) => {
            let opened = connections + plan.idle;
            Some(ServerMemory {
                start_kib: start.rss_kib,
                after_setup_kib: setup.rss_kib,
                after_load_kib: load.rss_kib,
                end_kib: end.rss_kib,
                peak_kib: load.peak_kib,
                per_connection_bytes: (opened > 0).then(|| {
                    (setup.rss_kib as f64 - start.rss_kib as f64) * 1024.0 / opened as f64
                }),
            })
        }
        _ => None,
    };
    RunResult {
        requests,
        seconds,
        requests_per_second: if seconds > 0.0 { requests as f64 / seconds } else { 0.0 },
        latency_us,
        error_replies: shared.errors.load(Ordering::Relaxed),
        error_messages,
        connection_failures: failures.values().sum(),
        failure_reasons: failures,
        connections,
        idle_connections: plan.idle,
        extra_sessions: plan.sessions,
        setup_seconds,
        cleanup_errors,
        server_memory,
        other_cpus: match (cpu_start, cpu_end) {
            (Some(start), Some(end)) => end.others_since(&start, load_seconds, plan.in_process),
            _ => None,
        },
    }
}

/// Takes everything waiting for `user` (outside the measurement).
async fn drain_mailbox(plan: &Plan, user: &str) -> u64 {
    // A drain after a long `send` run can be a very large reply.
    let limit = plan.timeout.max(Duration::from_secs(60));
    let Ok((mut conn, token)) = open_session(plan.addr, user, &plan.password, limit).await else {
        return 1;
    };
    let lines = [format!("inbox {token}\r\n"), format!("logout {token}\r\n")];
    pipelined(&mut conn, &lines, 1, limit).await.1
}

/// The live progress line on stderr: time, requests, the rate of the last
/// second, errors.
async fn show_progress(label: String, shared: Arc<Shared>, start: Instant, bar: ProgressBar) {
    let mut recent: VecDeque<(Instant, u64)> = VecDeque::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let now = Instant::now();
        let answered = shared.answered.load(Ordering::Relaxed);
        recent.push_back((now, answered));
        while recent.len() > 5 {
            recent.pop_front();
        }
        let (then, before) = recent[0];
        let span = (now - then).as_secs_f64();
        let rate = if span > 0.0 { (answered - before) as f64 / span } else { 0.0 };
        let phase = if now < shared.measure_from { " (warm-up)" } else { "" };
        bar.set_message(format!(
            "{label}: {:6.1} s{phase}  {} requests  {} req/s  {} errors",
            (now - start).as_secs_f64(),
            super::thousands::thousands(answered as f64),
            super::thousands::thousands(rate),
            shared.errors.load(Ordering::Relaxed),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_never_exceed_the_total() {
        let remaining = AtomicI64::new(10);
        assert_eq!(claim(&remaining, 4), 4);
        assert_eq!(claim(&remaining, 4), 4);
        assert_eq!(claim(&remaining, 4), 2);
        assert_eq!(claim(&remaining, 4), 0);
        assert_eq!(claim(&remaining, 1), 0);
    }
}
