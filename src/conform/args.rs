//! The command line of `progjar-chat conform`: its arguments, what is
//! under test, and the command that reruns one case.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use super::process::shell_quote;
use super::users::UserMap;
use crate::duration::format_secs;
use crate::spec::{self, Spec, PROTOCOL_PATH};

/// Arguments of `progjar-chat conform`.
#[derive(Debug, Args)]
#[command(
    after_help = "Verdicts: OK; NON-STRICT (right status and shape, but a message text, the \
    byte form or an ordering differs from the spec's exact wording); NOT-IMPLEMENTED (the \
    implementation lacks a command the case uses; not run); BLOCKED (a step that only prepares \
    the case failed: fix the rule it names first); FAILED (a wrong answer, or none); ERROR (the \
    case could not run: refused, the program died, a runner fault).\n\n\
    Result, the last line: DOES NOT CONFORM when a MUST case is FAILED, ERROR, BLOCKED or \
    NOT-IMPLEMENTED; else CONFORMS EXCEPT WORDING when a MUST case is NON-STRICT because a reply \
    text is worded otherwise than the spec's; else CONFORMS. Other NON-STRICT differences and \
    SHOULD cases never change the result. Cases listed in --expect do not count.\n\n\
    Exit codes: 0 conforms (or conforms except wording, with --accept-wording); 1 does not, or \
    conforms except wording; 2 the runner could not work (bad arguments, nothing listening, a \
    server that cannot start); 130 interrupted by Ctrl-C (SIGINT), 143 by SIGTERM, with the \
    results so far.\n\n\
    Durations (--timeout, --startup-timeout): seconds (2, 0.5) or with a unit (500ms, 2s, 2m). \
    A report path of - writes that report to standard output (the text then goes to standard error)."
)]
pub(crate) struct ConformArgs {
    #[command(subcommand)]
    pub(super) target: Option<TargetArgs>,
    /// List every case, server and client (ID, level, spec line, rule), and exit.
    #[arg(long)]
    pub(super) list: bool,
}

#[derive(Debug, Subcommand)]
pub(super) enum TargetArgs {
    /// Test a server: one that is running (--connect) or one started afresh for every case (--spawn).
    #[command(after_help = "Examples:\n  \
        progjar-chat conform server --connect 127.0.0.1:8889\n  \
        progjar-chat conform server --spawn 'python3 server.py --port {port}'\n  \
        progjar-chat conform server --spawn 'python3 server_thread_chat.py' --port 8889 --case 'AUTH-*'")]
    Server(ServerArgs),
    /// Test a client program: type each case's lines into it and check what it prints.
    #[command(
        after_help = "The runner starts a reference server for every case, on --port (default 8889, \
        what most clients use), or on a free port that replaces {port} in the command's arguments.\n\n\
        Examples:\n  \
        progjar-chat conform client -- python3 chat-cli.py\n  \
        progjar-chat conform client -- python3 client.py --port {port}"
    )]
    Client(ClientArgs),
    /// Grade a whole class: every submission of a manifest (or every folder of --each),
    /// its server and its client, at once, into one matrix of submissions x rules.
    #[command(after_help = CLASS_HELP)]
    Class(super::class::ClassArgs),
    /// Explore a server: random sessions against it and against the reference,
    /// each deviation shrunk to a minimal example that `conform server --examples` replays.
    #[command(
        after_help = "Each session is generated from the protocol's grammar (every command, \
        known and unknown users, right and wrong passwords, tokens live, logged out, never issued \
        and mangled, texts with multi-byte and control characters, requests pipelined or cut at \
        any byte and across the read sizes 16, 32, 64 and 1024, several connections), run against \
        the server under test and against the reference server in this process, and compared \
        under the spec's rules: tokens are variables, a reply text worded otherwise is graded as \
        in the examples. A deviation is shrunk to the smallest session that still shows it and \
        printed as a spec example; the same deviation (the same rules and kind) is reported once, \
        with a count. The seed is printed at the start: --seed N reruns the same sessions.\n\n\
        Exit codes: 0 nothing found; 1 something found; 2 the runner could not work; 130/143 \
        interrupted (what was found so far is reported).\n\n\
        Examples:\n  \
        progjar-chat conform explore --spawn 'python3 server.py --port {port}'\n  \
        progjar-chat conform explore --spawn 'python3 server.py --port {port}' --seed 7 --budget 2m --out found/\n  \
        progjar-chat conform explore --connect 127.0.0.1:8889 --sessions 200 --json report.json\n  \
        progjar-chat conform server --examples found/01-LOGOUT-4.md --spawn 'python3 server.py --port {port}'"
    )]
    Explore(ExploreArgs),
}

#[derive(Debug, Args)]
pub(super) struct ExploreArgs {
    #[command(flatten)]
    pub(super) server: ServerTarget,
    /// The seed of the sessions: the same seed gives the same sessions.
    /// Without it, a random seed (printed at the start).
    #[arg(long, value_name = "N")]
    pub(super) seed: Option<u64>,
    /// How long to explore (shrinking a finding may take longer).
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = crate::duration::parse_positive)]
    pub(super) budget: Duration,
    /// Stop after N sessions (and within the budget).
    #[arg(long, value_name = "N")]
    pub(super) sessions: Option<u64>,
    /// Sessions run at the same time (default: 2 with --spawn and {port}, else 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=16))]
    pub(super) jobs: Option<u64>,
    /// The most sessions tried while shrinking one finding.
    #[arg(long, default_value_t = 60, value_name = "N")]
    pub(super) shrink_tries: usize,
    /// Write each finding to DIR as an example file that
    /// `conform server --examples FILE` replays.
    #[arg(long, value_name = "DIR")]
    pub(super) out: Option<PathBuf>,
    /// Also write the findings and the coverage as JSON to FILE (- for standard output).
    #[arg(long, value_name = "FILE")]
    pub(super) json: Option<PathBuf>,
    /// How long to wait for any one reply of the server under test (shorter
    /// than `conform server`'s 2 s: a session that hangs is rerun while shrinking).
    #[arg(long, default_value = "1", value_name = "DURATION", value_parser = crate::duration::parse_positive)]
    pub(super) timeout: Duration,
}

const CLASS_HELP: &str =
    "A manifest is a TOML file: defaults at the top, then one [[submission]] each.\n\n  \
    timeout = \"1s\"                       # defaults for every submission\n  \
    server = \"python3 server.py {port}\"\n\n  \
    [[submission]]\n  \
    name = \"budi\"\n  \
    dir = \"submissions/budi\"            # where its commands run (relative to the manifest)\n  \
    client = \"python3 chat-cli.py {port}\"\n  \
    users = \"users.json\"                # optional, as --users\n  \
    expect = \"budi.expect\"              # optional, as --expect\n\n\
    Exit codes: 0 every submission conforms; 1 some do not (a server that cannot start, a \
    client that hangs: those too); 2 the runner could not work (a bad manifest, no submission, \
    a report that cannot be written).\n\n\
    Examples:\n  \
    progjar-chat conform class class.toml --html class.html --csv class.csv\n  \
    progjar-chat conform class --each 'submissions/*' --server 'python3 server_thread_chat.py' \
    --client 'python3 chat-cli.py' --markdown grades.md\n  \
    progjar-chat conform class class.toml --json - --jobs 4";

#[derive(Debug, Args)]
pub(super) struct ServerArgs {
    #[command(flatten)]
    pub(super) server: ServerTarget,
    #[command(flatten)]
    pub(super) common: CommonArgs,
}

/// The server under test, for `conform server` and `conform explore` alike:
/// both reach it the same way, case by case or session by session.
#[derive(Debug, Args)]
pub(super) struct ServerTarget {
    /// Test the server running at HOST:PORT. Its state carries over, so before
    /// each case (or session) the runner logs each test user in, empties its
    /// inbox and logs it out again.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "spawn")]
    pub(super) connect: Option<String>,
    /// Start the server under test with this shell command for every case (or
    /// session), and kill its whole process group afterwards. `{port}` in it is
    /// replaced by a free port (and lets explore's sessions run in parallel).
    #[arg(long, value_name = "CMD")]
    pub(super) spawn: Option<String>,
    /// With --spawn and no {port} in the command: the port the server listens on.
    #[arg(long, default_value_t = 8889)]
    pub(super) port: u16,
    /// With --spawn: how long a server may take to accept connections.
    #[arg(long, default_value = "10", value_name = "DURATION", value_parser = crate::duration::parse_positive)]
    pub(super) startup_timeout: Duration,
}

impl ServerTarget {
    /// What is under test: `None` unless exactly one of `--connect` and
    /// `--spawn` was given.
    pub(super) fn under(&self) -> Option<Under> {
        match (&self.connect, &self.spawn) {
            (Some(addr), None) => Some(Under::Connect { addr_arg: addr.clone(), addr: None }),
            (None, Some(command)) => {
                Some(Under::Spawn { command: command.clone(), port: self.port })
            }
            _ => None,
        }
    }
}

#[derive(Debug, Args)]
pub(super) struct ClientArgs {
    /// The port the reference server listens on for the client, unless {port}
    /// appears in the command's arguments.
    #[arg(long, default_value_t = 8889)]
    pub(super) port: u16,
    /// The client program and its arguments, after `--`.
    #[arg(last = true, value_name = "CMD")]
    pub(super) command: Vec<String>,
    #[command(flatten)]
    pub(super) common: CommonArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(super) enum LevelArg {
    Must,
    Should,
}

#[derive(Debug, Args)]
pub(super) struct CommonArgs {
    /// List the cases (ID, level, spec line, rule) and exit.
    #[arg(long)]
    pub(super) list: bool,
    /// Print the cases as JSON (id, level, rule text, spec line, steps) and exit.
    #[arg(long)]
    pub(super) dump_cases: bool,
    /// Run only matching cases: an ID (`SEND-4.1`), a prefix (`AUTH`, `AUTH-1`) or a
    /// glob (`AUTH-*`). Repeat it or separate with commas.
    #[arg(long = "case", value_name = "PATTERN")]
    pub(super) cases: Vec<String>,
    /// Run only the MUST cases, or only the SHOULD cases.
    #[arg(long, value_enum, ignore_case = true)]
    pub(super) level: Option<LevelArg>,
    /// How long to wait for any one reply, line or prompt, in seconds.
    #[arg(long, default_value = "2", value_name = "DURATION", value_parser = crate::duration::parse_positive)]
    pub(super) timeout: Duration,
    /// How many cases run at once, each with its own process on its own
    /// port [default: twice the processors]. With --connect, or a command
    /// without {port}, the cases share one port and run one by one.
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub(super) jobs: Option<u16>,
    /// Count NON-STRICT as FAILED, and SHOULD cases as MUST.
    #[arg(long)]
    pub(super) strict: bool,
    /// Accept reply texts worded otherwise than the spec's (e.g. English error
    /// messages): "conforms except wording" then exits 0.
    #[arg(long)]
    pub(super) accept_wording: bool,
    /// A file of cases expected to fail, one per line: `CASE-ID  reason`
    /// (`#` starts a comment line). The exit code then follows new failures only.
    #[arg(long, value_name = "FILE")]
    pub(super) expect: Option<PathBuf>,
    /// Also write the results as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub(super) json: Option<PathBuf>,
    /// Also write the results as JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    pub(super) junit: Option<PathBuf>,
    /// Print the transcript of every case, passing ones too.
    #[arg(long, short = 'v')]
    pub(super) verbose: bool,
    /// The class's users, from a users file in the server's format
    /// ({"users": [{"username": "budi", "name": "Budi Santoso", "password": "rahasia"}]}).
    /// They replace the examples' messi, henderson and lineker, in that order.
    #[arg(long, value_name = "FILE", conflicts_with = "user")]
    pub(super) users: Option<PathBuf>,
    /// One of the class's users, `NAME:PASSWORD:FULL NAME`; repeat it. The
    /// first replaces the examples' messi, the second henderson, the third lineker.
    #[arg(long, value_name = "NAME:PASSWORD:FULL NAME")]
    pub(super) user: Vec<String>,
    /// Read the examples from this specification instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    pub(super) spec: Option<PathBuf>,
    /// Run the examples of FILE (e.g. one that `conform explore --out` wrote)
    /// instead of the specification's; the rules are still the specification's.
    #[arg(long, value_name = "FILE")]
    pub(super) examples: Option<PathBuf>,
}

/// What is under test, for messages and for the rerun command.
#[derive(Debug, Clone)]
pub(super) enum Under {
    Connect { addr_arg: String, addr: Option<SocketAddr> },
    Spawn { command: String, port: u16 },
    Client { argv: Vec<String>, port: u16 },
}

/// Everything needed to write the command that reruns one case.
pub(super) struct Invocation<'a> {
    pub(super) under: &'a Under,
    pub(super) common: &'a CommonArgs,
    pub(super) startup: Option<Duration>,
}

impl Invocation<'_> {
    pub(super) fn rerun(&self, id: &str) -> String {
        let mut parts: Vec<String> = vec!["progjar-chat".into(), "conform".into()];
        match self.under {
            Under::Connect { addr_arg, .. } => {
                parts.extend(["server".into(), "--connect".into(), shell_quote(addr_arg)]);
            }
            Under::Spawn { command, port } => {
                parts.extend(["server".into(), "--spawn".into(), shell_quote(command)]);
                if !command.contains("{port}") && *port != 8889 {
                    parts.extend(["--port".into(), port.to_string()]);
                }
                if let Some(startup) = self.startup.filter(|s| *s != Duration::from_secs(10)) {
                    parts.extend(["--startup-timeout".into(), format_secs(startup)]);
                }
            }
            Under::Client { port, .. } => {
                parts.push("client".into());
                if *port != 8889 {
                    parts.extend(["--port".into(), port.to_string()]);
                }
            }
        }
        if self.common.timeout != Duration::from_secs(2) {
            parts.extend(["--timeout".into(), format_secs(self.common.timeout)]);
        }
        if self.common.strict {
            parts.push("--strict".into());
        }
        if self.common.accept_wording {
            parts.push("--accept-wording".into());
        }
        if let Some(spec) = &self.common.spec {
            parts.extend(["--spec".into(), shell_quote(&spec.display().to_string())]);
        }
        if let Some(examples) = &self.common.examples {
            parts.extend(["--examples".into(), shell_quote(&examples.display().to_string())]);
        }
        if let Some(users) = &self.common.users {
            parts.extend(["--users".into(), shell_quote(&users.display().to_string())]);
        }
        for user in &self.common.user {
            parts.extend(["--user".into(), shell_quote(user)]);
        }
        parts.extend(["--case".into(), shell_quote(id)]);
        if let Under::Client { argv, .. } = self.under {
            parts.push("--".into());
            parts.extend(argv.iter().map(|a| shell_quote(a)));
        }
        parts.join(" ")
    }
}

/// A client command given as one quoted word with spaces (`-- 'python3
/// client.py'`) is split into its words, as a shell would, with a note:
/// there is no program called `python3 client.py`.
pub(super) fn split_one_word(argv: &[String]) -> Vec<String> {
    match argv {
        [only] if only.contains(char::is_whitespace) && !program_exists(only) => {
            let words: Vec<String> = only.split_whitespace().map(str::to_owned).collect();
            eprintln!(
                "progjar-chat conform: note: running `{only}` as the words {}: put each word after `--` on its own, unquoted",
                words.iter().map(|w| format!("`{w}`")).collect::<Vec<_>>().join(" ")
            );
            words
        }
        _ => argv.to_vec(),
    }
}

/// Checks, before any case runs, that each report file can be written:
/// a typo in a path costs nothing but this message.
pub(super) fn check_report_paths(paths: &[&Option<PathBuf>]) -> Result<(), String> {
    for path in paths.iter().filter_map(|p| p.as_ref()) {
        if path.as_os_str() == "-" {
            continue;
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("cannot write the report {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Whether `program` names a file, directly or on the `PATH`.
pub(super) fn program_exists(program: &str) -> bool {
    let path = Path::new(program);
    if path.components().count() > 1 {
        return path.exists();
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

pub(super) fn load_spec(path: Option<&Path>) -> Result<(Spec, String), String> {
    let (text, name) = match path {
        Some(path) => (
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            path.display().to_string(),
        ),
        None => (spec::PROTOCOL_MD.to_owned(), PROTOCOL_PATH.to_owned()),
    };
    let spec = spec::parse(&text).map_err(|errors| {
        let list: Vec<String> = errors.iter().map(|e| format!("  {name} {e}")).collect();
        format!("the specification has errors:\n{}", list.join("\n"))
    })?;
    Ok((spec, name))
}

/// The examples of a file of examples (`--examples`): fenced `example`
/// blocks in the spec's notation, as `conform explore --out` writes them.
pub(super) fn load_examples(path: &Path) -> Result<Vec<spec::Example>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let name = path.display();
    let parsed = spec::parse(&text).map_err(|errors| {
        let list: Vec<String> = errors.iter().map(|e| format!("  {name} {e}")).collect();
        format!("the examples have errors:\n{}", list.join("\n"))
    })?;
    if parsed.examples.is_empty() {
        return Err(format!(
            "{name} has no example (a fenced block whose info string is `example ID LEVEL`)"
        ));
    }
    Ok(parsed.examples)
}

/// The test users, for the header: the class's if given.
pub(super) fn users_named(common: &CommonArgs) -> String {
    let users = match (&common.users, common.user.is_empty()) {
        (Some(path), _) => UserMap::from_file(path).unwrap_or_default(),
        (None, false) => UserMap::from_flags(&common.user).unwrap_or_default(),
        (None, true) => UserMap::builtin(),
    };
    users.users().iter().take(3).map(|u| u.username.as_str()).collect::<Vec<_>>().join(", ")
}
