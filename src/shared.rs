//! The state shared by every connection of a server.
//!
//! A std `Mutex` (not tokio's) guards the [`Chat`]: each critical section is
//! a short in-memory update that never awaits, which is exactly the case in
//! which tokio's documentation recommends the blocking mutex. Replies are
//! encoded after the lock is released.

use crate::protocol::chat::{login_error_reply, request_error_reply, Chat};
use crate::protocol::reply::Reply;
use crate::protocol::request::{parse_request_bytes, Request};
use crate::protocol::token::TokenSource;
use crate::protocol::users::UserDirectory;
use crate::sync::{lock, Mutex};

/// A [`Chat`] that many connections can use at once.
#[derive(Debug)]
pub struct SharedChat {
    /// Fixed for the life of the server, so read without the lock.
    users: std::sync::Arc<UserDirectory>,
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
        let users = std::sync::Arc::new(users);
        Self { chat: Mutex::new(Chat::new(std::sync::Arc::clone(&users))), users }
    }

    /// Handles one request line and appends the reply's bytes to `out`.
    pub fn handle_line(&self, line: &[u8], tokens: &mut impl TokenSource, out: &mut Vec<u8>) -> Handled {
        let (command, reply) = match parse_request_bytes(line) {
            // The password is checked before the lock is taken: with a
            // hashed password the check takes milliseconds.
            Ok(Request::Auth { username, password }) => {
                let reply = match self.users.check_login(username, password) {
                    Ok(user) => lock(&self.chat).open_session(user, tokens),
                    Err(error) => Reply::Error(login_error_reply(error)),
                };
                ("auth", reply)
            }
            Ok(request) => (request.command(), lock(&self.chat).handle(request, tokens)),
            Err(error) => ("-", Reply::Error(request_error_reply(error))),
        };
        reply.encode(out);
        Handled { command, outcome: reply.outcome() }
    }

    /// Runs `f` on the state under the lock (for tests and statistics).
    pub fn with<R>(&self, f: impl FnOnce(&mut Chat) -> R) -> R {
        f(&mut lock(&self.chat))
    }
}
