//! The `progjar-chat` command line: one binary, one subcommand per role.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::exit::{fail, EXIT_FAILURE, EXIT_USAGE};
use crate::protocol::limits::{
    Limits, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_LINE, DEFAULT_MAX_PENDING,
    DEFAULT_MAX_PENDING_BYTES, DEFAULT_MAX_PENDING_OUTPUT, DEFAULT_MAX_SESSIONS_PER_USER,
};
use crate::protocol::users::UserDirectory;
use crate::server;
use crate::shared::SharedChat;

#[derive(Debug, Parser)]
#[command(
    name = "progjar-chat",
    version,
    propagate_version = true,
    about = "Reference server, client and conformance suite of the Progjar chat protocol",
    long_about = "Reference server, client and conformance suite of the Progjar chat protocol.\n\n\
        The protocol: a client sends lines ending in \\r\\n (`auth USER PASS`, `send TOKEN TO TEXT`,\n\
        `inbox TOKEN`, `list TOKEN`, `logout TOKEN`); the server answers each with one JSON object\n\
        followed by \\r\\n\\r\\n. The full specification is spec/PROTOCOL.md.\n\n\
        Try it:\n  progjar-chat server            # listens on 127.0.0.1:8889, users messi/henderson/lineker\n  \
        progjar-chat client            # then type: auth messi surabaya",
    after_help = "Logs go to stderr; set RUST_LOG=debug to see one line per connection and request."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the reference server.
    Server(ServerArgs),
    /// Run the interactive reference client.
    Client(crate::client::ClientArgs),
    /// Check another implementation's server or client against the spec.
    Conform(crate::conform::ConformArgs),
    /// Measure a server: throughput and latency under closed-loop load.
    Bench(crate::bench::BenchArgs),
    /// Hash a password for a users file's "password_hash" (argon2id).
    ///
    /// Reads the password from the first line of standard input, so that it
    /// stays out of the shell history and the process list:
    /// `printf 's3cret' | progjar-chat hash-password`.
    HashPassword,
}

#[derive(Debug, Args)]
struct ServerArgs {
    /// Address to listen on; port 0 picks a free port. The first line on
    /// stdout names the address actually bound.
    #[arg(long, default_value = "127.0.0.1:8889", value_name = "ADDR", value_parser = parse_listen)]
    listen: SocketAddr,
    /// Load users from a JSON file instead of the built-in messi, henderson
    /// and lineker (password `surabaya`). Format:
    /// {"users": [{"username": "messi", "name": "Lionel Messi", "password": "surabaya"}]}
    #[arg(long, value_name = "FILE")]
    users: Option<PathBuf>,
    /// The longest request line accepted, in bytes, `\r\n` included.
    /// A longer line gets the error `--Request Terlalu Panjang` and is skipped.
    #[arg(long, default_value_t = DEFAULT_MAX_LINE, value_name = "BYTES")]
    max_line: usize,
    /// The most messages that may wait for one recipient. A `send` beyond
    /// it gets the error `Inbox Penuh` and stores nothing.
    #[arg(long, default_value_t = DEFAULT_MAX_PENDING, value_name = "MESSAGES")]
    max_pending: usize,
    /// The most bytes of message text that may wait for one recipient. A
    /// `send` beyond it gets the error `Inbox Penuh` and stores nothing.
    #[arg(long, default_value_t = DEFAULT_MAX_PENDING_BYTES, value_name = "BYTES")]
    max_pending_bytes: usize,
    /// The most connections open at once. One more gets the error
    /// `Server Penuh` and is closed.
    #[arg(long, default_value_t = DEFAULT_MAX_CONNECTIONS, value_name = "N")]
    max_connections: usize,
    /// The most live sessions per user. One more `auth` (with the right
    /// password) ends that user's least recently used session first.
    #[arg(long, default_value_t = DEFAULT_MAX_SESSIONS_PER_USER, value_name = "N")]
    max_sessions_per_user: usize,
    /// The most bytes of replies held for one connection: past it, the
    /// server handles no more of that connection's requests until its
    /// client has read them (a client that never reads cannot make it
    /// hold more).
    #[arg(long, default_value_t = DEFAULT_MAX_PENDING_OUTPUT, value_name = "BYTES")]
    max_pending_output: usize,
    /// Close a connection that sends nothing for DURATION while it owes no
    /// reply, or does not take a reply it is owed for DURATION (`30`, `30s`, `2m`). Off by default.
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse_positive)]
    idle_timeout: Option<std::time::Duration>,
}

/// An address to listen on, with a hint for a bare port (`8889`).
fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        if text.parse::<u16>().is_ok() {
            format!("`{text}` is a port, not an address: write --listen 127.0.0.1:{text} (or 0.0.0.0:{text} to listen beyond this machine)")
        } else {
            format!("`{text}` is not an address: write HOST:PORT with an IP address, e.g. 127.0.0.1:8889")
        }
    })
}

/// Parses the command line and runs the chosen subcommand.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Server(args) => run_server(args),
        Command::Client(args) => crate::client::main(args),
        Command::Conform(args) => crate::conform::main(args),
        Command::Bench(args) => crate::bench::main(args),
        Command::HashPassword => hash_password(),
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn run_server(args: ServerArgs) -> ExitCode {
    let users = match &args.users {
        Some(path) => match UserDirectory::load(path) {
            Ok(users) => users,
            Err(error) => return fail(EXIT_USAGE, error),
        },
        None => UserDirectory::builtin(),
    };
    let runtime = match server::runtime() {
        Ok(runtime) => runtime,
        Err(error) => return fail(EXIT_FAILURE, format!("cannot start the runtime: {error}")),
    };
    runtime.block_on(async {
        let listener = match tokio::net::TcpListener::bind(args.listen).await {
            Ok(listener) => listener,
            Err(error) => {
                return fail(EXIT_USAGE, format!("cannot listen on {}: {error}", args.listen))
            }
        };
        let shutdown = match shutdown_signal() {
            Ok(shutdown) => shutdown,
            Err(error) => {
                return fail(EXIT_FAILURE, format!("cannot install signal handlers: {error}"))
            }
        };
        let bound = listener.local_addr().map_or(args.listen, |addr| addr);
        if !bound.ip().is_loopback() {
            tracing::warn!(
                "listening on {bound}, beyond this machine: the protocol is plaintext, \
                 so passwords, tokens and messages cross the network readable by anyone on the path"
            );
        }
        println!("progjar-chat server listening on {bound}");
        let _ = std::io::stdout().flush();
        let limits = Limits {
            max_line: args.max_line,
            max_pending: args.max_pending,
            max_pending_bytes: args.max_pending_bytes,
            max_connections: args.max_connections,
            max_sessions_per_user: args.max_sessions_per_user,
            idle_timeout: args.idle_timeout,
            max_pending_output: args.max_pending_output,
        };
        let state = Arc::new(SharedChat::with_limits(users, limits));
        server::run(listener, state, shutdown).await;
        ExitCode::SUCCESS
    })
}

fn hash_password() -> ExitCode {
    use std::io::{BufRead, IsTerminal};
    if std::io::stdin().is_terminal() {
        eprint!("Password (shown as you type): ");
    }
    let mut line = String::new();
    if let Err(error) = std::io::stdin().lock().read_line(&mut line) {
        return fail(EXIT_FAILURE, format!("cannot read the password: {error}"));
    }
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() || password.chars().any(crate::protocol::pystr::is_space) {
        return fail(EXIT_USAGE, "a password must be non-empty and hold no whitespace");
    }
    match crate::users_file::hash_password(password) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(error) => fail(EXIT_FAILURE, error),
    }
}

/// Installs the Ctrl-C and SIGTERM handlers now, and returns a future that
/// completes on either signal.
///
/// The handlers are installed before the server announces its address: a
/// signal sent as soon as the address is printed must already stop the
/// server gracefully rather than kill it.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// spec/PROTOCOL.md: the server listens on 127.0.0.1:8889 unless told
    /// otherwise, and the client connects there. Checked on the parsed
    /// command line, so that no test has to take the real port.
    #[test]
    fn server_and_client_default_to_the_specs_address() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).expect("valid arguments").command;
        match parse(&["progjar-chat", "server"]) {
            Command::Server(args) => {
                assert_eq!(args.listen, SocketAddr::from(([127, 0, 0, 1], 8889)))
            }
            other => panic!("not the server: {other:?}"),
        }
        match parse(&["progjar-chat", "client"]) {
            Command::Client(args) => assert_eq!(args.connect, "127.0.0.1:8889"),
            other => panic!("not the client: {other:?}"),
        }
        match parse(&["progjar-chat", "server", "--listen", "127.0.0.1:0"]) {
            Command::Server(args) => assert_eq!(args.listen, SocketAddr::from(([127, 0, 0, 1], 0))),
            other => panic!("not the server: {other:?}"),
        }
    }
}
