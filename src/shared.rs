//! The state shared by every connection of a server.
//!
//! A std `Mutex` (not tokio's) guards the [`Chat`]: each critical section is
//! a short in-memory update that never awaits, which is exactly the case in
//! which tokio's documentation recommends the blocking mutex.
//!
//! Every request takes one path, [`Batch::answer`]: the line is parsed and
//! prepared without the state ([`crate::protocol::step::prepare`]), then
//! applied to it ([`Chat::apply`]) and encoded. The server and every check
//! of it (the `session` fuzz target, the exhaustive check, the state
//! machines, the split-request tests) call it, so what is checked is what
//! the server runs.
//!
//! A server handles the requests of one read as a [`Batch`]: the lock is
//! taken once for all of them instead of once per request, which matters
//! when a client pipelines (16 requests per read means 16 times fewer
//! acquisitions, and far fewer collisions between worker threads). Each
//! request is still one atomic step, in order. Small replies are encoded
//! under the lock; before a large `inbox` or `list` reply is encoded, and
//! before an `auth` password is checked (argon2 takes milliseconds), the
//! lock is released.

use crate::protocol::chat::Chat;
use crate::protocol::frame::FrameError;
use crate::protocol::limits::Limits;
use crate::protocol::reply::{ErrorReply, Reply};
use crate::protocol::request::{parse_request_bytes, Request};
use crate::protocol::step::{prepare, Prepared};
use crate::protocol::token::TokenSource;
use crate::protocol::users::UserDirectory;
use crate::sync::{lock, Mutex, MutexGuard};

/// A [`Chat`] that many connections can use at once.
#[derive(Debug)]
pub struct SharedChat {
    /// Fixed for the life of the server, so read without the lock.
    users: std::sync::Arc<UserDirectory>,
    /// Fixed too; the connection limits are the server's to apply.
    limits: Limits,
    chat: Mutex<Chat>,
}

/// What was asked and how it went, for a log line. Never holds a password
/// or a whole token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handled {
    pub command: &'static str,
    pub outcome: &'static str,
}

impl SharedChat {
    /// A fresh server state for these users.
    pub fn new(users: UserDirectory) -> Self {
        Self::with_limits(users, Limits::default())
    }

    /// A fresh server state for these users, under these limits.
    pub fn with_limits(users: UserDirectory, limits: Limits) -> Self {
        let users = std::sync::Arc::new(users);
        let chat = Chat::with_limits(std::sync::Arc::clone(&users), limits);
        Self { chat: Mutex::new(chat), users, limits }
    }

    /// The limits this state was made with: the server's too.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Handles one request line and appends the reply's bytes to `out`.
    pub fn handle_line(
        &self,
        line: &[u8],
        tokens: &mut impl TokenSource,
        out: &mut Vec<u8>,
    ) -> Handled {
        self.batch().handle_line(line, tokens, out)
    }

    /// Starts a batch: requests handled through it share one acquisition of
    /// the lock, which is released when the batch is dropped.
    pub fn batch(&self) -> Batch<'_> {
        Batch { shared: self, guard: None }
    }

    /// Runs `f` on the state under the lock (for tests and statistics).
    pub fn with<R>(&self, f: impl FnOnce(&mut Chat) -> R) -> R {
        f(&mut lock(&self.chat))
    }
}

/// Requests handled one after another under one acquisition of the lock
/// (see the module documentation). Drop it to release the lock.
pub struct Batch<'a> {
    shared: &'a SharedChat,
    guard: Option<MutexGuard<'a, Chat>>,
}

/// Replies with more parts than this are encoded outside the lock.
const ENCODE_UNDER_LOCK: usize = 16;

impl Batch<'_> {
    /// Handles one request line and appends the reply's bytes to `out`,
    /// exactly as [`SharedChat::handle_line`] does.
    pub fn handle_line(
        &mut self,
        line: &[u8],
        tokens: &mut impl TokenSource,
        out: &mut Vec<u8>,
    ) -> Handled {
        let parsed = parse_request_bytes(line);
        if matches!(parsed, Ok(Request::Auth { .. })) {
            // The password is checked without the lock: with a hashed
            // password the check takes milliseconds.
            self.guard = None;
        }
        let Prepared { command, step } = prepare(parsed, &self.shared.users);
        let reply = self.chat().apply(step, tokens);
        let large = match &reply {
            Reply::Inbox(inbox) => inbox.mail.len() > ENCODE_UNDER_LOCK,
            Reply::List(online) => online.online.len() > ENCODE_UNDER_LOCK,
            _ => false,
        };
        if large {
            self.guard = None;
        }
        reply.encode(&self.shared.users, out);
        let outcome = reply.outcome();
        if let (Reply::Inbox(inbox), Some(chat)) = (reply, &mut self.guard) {
            chat.recycle(inbox);
        }
        Handled { command, outcome }
    }

    /// Answers one request as a
    /// [`Connection`](crate::protocol::connection::Connection) hands it out: a line is
    /// handled as [`Batch::handle_line`] does, and a line over the limit
    /// gets its one error reply. This is what a server does with each
    /// request of a connection, and what the checks of the server drive.
    pub fn answer(
        &mut self,
        request: Result<&[u8], FrameError>,
        tokens: &mut impl TokenSource,
        out: &mut Vec<u8>,
    ) -> Handled {
        match request {
            Ok(line) => self.handle_line(line, tokens, out),
            Err(FrameError::LineTooLong { .. }) => {
                let error = ErrorReply::LineTooLong;
                error.encode(out);
                Handled { command: "-", outcome: error.message() }
            }
        }
    }

    /// The state, locked (once per batch, or again after a release).
    fn chat(&mut self) -> &mut Chat {
        self.guard.get_or_insert_with(|| lock(&self.shared.chat))
    }
}
