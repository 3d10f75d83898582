//! The interactive reference client: `progjar-chat client`.
//!
//! It behaves like the course's original Python client, extended with
//! `list` and `logout` as the assignment describes: the same prompt, the
//! same local checks, the same request bytes and the same output lines, so
//! that transcripts of the two can be compared line by line. `--trace` adds
//! the original's debug lines (the echoed `send` request, every reply in
//! 64-byte pieces, `end of string`), which the assignment's transcripts show.
//!
//! Where the original crashes (end of input, a malformed reply, a lost
//! server) this client ends cleanly or prints an `Error, …` line instead.
//!
//! The rules live in the sans-I/O [`session`]; this module is only the loop
//! that reads stdin, writes the socket and prints. When a person types at a
//! terminal, lines are read through [`terminal`] (line editing, history,
//! Ctrl-R); piped or redirected input is read exactly as before.

pub(crate) mod session;
pub(crate) mod terminal;

use std::fmt;
use std::io;
use std::process::ExitCode;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use self::session::{Action, ClientSession, ReplyBuffer};
use self::terminal::LineEditor;
use crate::exit::{fail, EXIT_FAILURE};

/// Arguments of `progjar-chat client`.
#[derive(Debug, clap::Args)]
pub(crate) struct ClientArgs {
    /// The server to connect to.
    #[arg(long, default_value = "127.0.0.1:8889", value_name = "HOST:PORT")]
    pub connect: String,
    /// Also print the original client's debug lines: the request line of
    /// every `send`, each reply as `diterima dari server b'…'` in 64-byte
    /// pieces, and `end of string`.
    #[arg(long)]
    pub trace: bool,
}

/// Runs the client until stdin ends (exit 0) or the connection fails
/// (an error line on stderr, exit 1).
pub(crate) fn main(args: ClientArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_io().build() {
        Ok(runtime) => runtime,
        Err(error) => return fail(EXIT_FAILURE, format!("cannot start the runtime: {error}")),
    };
    match runtime.block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => fail(EXIT_FAILURE, failure),
    }
}

/// Why the client stopped before the end of its input.
#[derive(Debug)]
enum Failure {
    Connect { addr: String, error: io::Error },
    ServerClosed,
    Connection(io::Error),
    Terminal(io::Error),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Connect { addr, error } => write!(f, "cannot connect to {addr}: {error}"),
            Failure::ServerClosed => f.write_str("the server closed the connection"),
            Failure::Connection(error) => write!(f, "connection to the server failed: {error}"),
            Failure::Terminal(error) => write!(f, "cannot use stdin or stdout: {error}"),
        }
    }
}

async fn run(args: &ClientArgs) -> Result<(), Failure> {
    let mut stream = TcpStream::connect(&args.connect)
        .await
        .map_err(|error| Failure::Connect { addr: args.connect.clone(), error })?;
    let _ = stream.set_nodelay(true);
    let mut input = if terminal::wanted() {
        Input::Terminal(LineEditor::new().map_err(Failure::Terminal)?)
    } else {
        Input::Plain(BufReader::new(tokio::io::stdin()))
    };
    let mut stdout = tokio::io::stdout();
    let mut session = ClientSession::new(args.trace);
    let mut replies = ReplyBuffer::default();
    let mut line = Vec::new();
    loop {
        if !input.next_line(&mut stdout, &session.prompt(), &mut line).await? {
            return Ok(());
        }
        let request = match session.command(&line) {
            Action::Print(output) => {
                print(&mut stdout, &format!("{output}\n")).await?;
                continue;
            }
            Action::Send(request) => request,
        };
        if let Some(echo) = &request.echo {
            print(&mut stdout, &format!("{echo}\n")).await?;
        }
        stream.write_all(request.wire.as_bytes()).await.map_err(Failure::Connection)?;
        let reply = read_reply(&mut stream, &mut replies).await?;
        let mut output = String::new();
        for line in session.reply(&request.expect, &reply) {
            output.push_str(&line);
            output.push('\n');
        }
        // Flushed before the next read: the editor starts on a fresh line
        // after it, so a reply never runs into the prompt.
        print(&mut stdout, &output).await?;
    }
}

/// Where typed lines come from.
enum Input {
    /// Anything but a terminal (a pipe, a file), or a terminal rustyline
    /// does not drive: the prompt is printed and a line read, as the
    /// original client does.
    Plain(BufReader<tokio::io::Stdin>),
    /// A person at a terminal: rustyline shows the prompt and edits the
    /// line.
    Terminal(LineEditor),
}

impl Input {
    /// Shows `prompt` and reads the next line into `line` (its newline
    /// included on the plain path, left out by the editor; the session
    /// takes both). Returns false when the input has ended.
    async fn next_line(
        &mut self,
        stdout: &mut (impl AsyncWrite + Unpin),
        prompt: &str,
        line: &mut Vec<u8>,
    ) -> Result<bool, Failure> {
        line.clear();
        match self {
            Input::Plain(stdin) => {
                // The prompt is written before every read, piped input
                // included, as Python's `input(prompt)` does.
                print(stdout, prompt).await?;
                if stdin.read_until(b'\n', line).await.map_err(Failure::Terminal)? == 0 {
                    // End the last prompt's line so the shell starts on a
                    // fresh one.
                    print(stdout, "\n").await?;
                    return Ok(false);
                }
                Ok(true)
            }
            Input::Terminal(editor) => {
                // At the end (Ctrl-D, Ctrl-C) rustyline has already moved
                // to a fresh line.
                match editor.read_line(prompt.to_owned()).await.map_err(Failure::Terminal)? {
                    Some(typed) => {
                        line.extend_from_slice(typed.as_bytes());
                        Ok(true)
                    }
                    None => Ok(false),
                }
            }
        }
    }
}

/// Reads until one whole reply has arrived.
async fn read_reply(stream: &mut TcpStream, replies: &mut ReplyBuffer) -> Result<Vec<u8>, Failure> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(reply) = replies.next_reply() {
            return Ok(reply);
        }
        match stream.read(&mut chunk).await.map_err(Failure::Connection)? {
            0 => return Err(Failure::ServerClosed),
            n => replies.extend(&chunk[..n]),
        }
    }
}

/// Writes and flushes, so that a prompt shows before the read that follows.
async fn print(stdout: &mut (impl AsyncWrite + Unpin), text: &str) -> Result<(), Failure> {
    stdout.write_all(text.as_bytes()).await.map_err(Failure::Terminal)?;
    stdout.flush().await.map_err(Failure::Terminal)
}
