//! Line editing for the client when a person types at a terminal.
//!
//! When both stdin and stdout are terminals (and `TERM` is one that
//! rustyline can drive), lines are read with [`rustyline`]: the usual
//! readline keys (arrows, Home/End, Ctrl-A/E/K/U/W, Alt-B/F…), Up/Down
//! through this session's history, Ctrl-R reverse search. The history
//! lives in memory only: nothing is written to disk (an `auth` line holds a
//! password).
//!
//! Ctrl-D on an empty line ends the input, as end of file does for piped
//! input. Ctrl-C at the prompt ends it as well: it is what Ctrl-C does to
//! the original client (and to this one while it waits for a reply), and
//! Ctrl-U already clears the line.
//!
//! The client only prints between two reads (a reply answers the line just
//! typed; the server sends nothing unasked), so rustyline never shares the
//! screen with other output: each read starts on a fresh line, after the
//! previous reply has been flushed.

use std::io::{self, IsTerminal};

use rustyline::error::ReadlineError;
use rustyline::{Config, DefaultEditor};

/// How many lines the history keeps.
const HISTORY_LINES: usize = 1000;

/// `TERM` values rustyline does not edit on (it then just prints the prompt
/// and reads a line, which is what the plain path does too).
const UNSUPPORTED_TERMS: [&str; 3] = ["dumb", "cons25", "emacs"];

/// Whether the client should read through [`LineEditor`]: stdin and stdout
/// are terminals and `TERM` is not one rustyline refuses. Anything else
/// (piped or redirected input or output) takes the plain path, unchanged.
pub(crate) fn wanted() -> bool {
    let term = std::env::var("TERM").unwrap_or_default();
    io::stdin().is_terminal()
        && io::stdout().is_terminal()
        && !UNSUPPORTED_TERMS.iter().any(|t| t.eq_ignore_ascii_case(&term))
}

/// A rustyline editor driven from async code: each read runs on tokio's
/// blocking pool, and the editor (with its history) comes back after it.
pub(crate) struct LineEditor {
    editor: Option<DefaultEditor>,
}

impl LineEditor {
    /// An editor with an empty in-memory history.
    pub(crate) fn new() -> io::Result<Self> {
        let config = Config::builder()
            .max_history_size(HISTORY_LINES)
            .map_err(to_io)?
            .history_ignore_dups(true)
            .map_err(to_io)?
            .auto_add_history(true)
            .build();
        let editor = DefaultEditor::with_config(config).map_err(to_io)?;
        Ok(Self { editor: Some(editor) })
    }

    /// Shows `prompt` and reads one edited line (without its newline).
    /// `Ok(None)` means the input has ended: Ctrl-D on an empty line or
    /// Ctrl-C. Either way the cursor is left at the start of a fresh line.
    pub(crate) async fn read_line(&mut self, prompt: String) -> io::Result<Option<String>> {
        let Some(mut editor) = self.editor.take() else {
            return Err(io::Error::other("the line editor was lost by an earlier failure"));
        };
        let (editor, result) = tokio::task::spawn_blocking(move || {
            let result = editor.readline(&prompt);
            (editor, result)
        })
        .await
        .map_err(io::Error::other)?;
        self.editor = Some(editor);
        match result {
            Ok(line) => Ok(Some(line)),
            Err(ReadlineError::Eof | ReadlineError::Interrupted) => Ok(None),
            Err(error) => Err(to_io(error)),
        }
    }
}

fn to_io(error: ReadlineError) -> io::Error {
    match error {
        ReadlineError::Io(error) => error,
        other => io::Error::other(other),
    }
}
