//! One request, from its parsed line to the change it makes: the first half
//! of the one path every request takes.
//!
//! [`prepare`] does all the work a request needs *before* the state: it
//! turns a parse error into its error reply and checks an `auth`'s password
//! (with a hashed password that takes milliseconds, so a server does it
//! without the lock). What is left is a [`Step`], which
//! [`super::chat::Chat::apply`] applies to the state in one go. The server
//! (through [`crate::shared::Batch`]) and every check of it (the `session`
//! fuzz target, the exhaustive check, the state machines, the split-request
//! tests) go through these two functions and nothing else.

use super::reply::ErrorReply;
use super::request::{Request, RequestError};
use super::users::{LoginError, UserDirectory, UserId};

/// A request made ready for the state: what is left to do under the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// Open a session for this user, whose password was right.
    Open(UserId),
    /// Queue `text` for `to`, if `token` names a live session.
    Send { token: &'a str, to: &'a str, text: &'a str },
    /// Take the pending mail of `token`'s user.
    Inbox { token: &'a str },
    /// Name the users online.
    List { token: &'a str },
    /// End `token`'s session.
    Logout { token: &'a str },
    /// Answer with this error and change nothing.
    Refuse(ErrorReply),
}

/// A prepared request and its command (`-` for a line that is not a
/// request), for the server's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Prepared<'a> {
    pub command: &'static str,
    pub step: Step<'a>,
}

/// Prepares a parsed request line without the state: a parse error becomes
/// its error reply, and an `auth` its login (or the reply for a wrong name
/// or password).
pub(crate) fn prepare<'a>(
    parsed: Result<Request<'a>, RequestError>,
    users: &UserDirectory,
) -> Prepared<'a> {
    let request = match parsed {
        Ok(request) => request,
        Err(error) => {
            return Prepared { command: "-", step: Step::Refuse(request_error_reply(error)) }
        }
    };
    let step = match request {
        Request::Auth { username, password } => match users.check_login(username, password) {
            Ok(user) => Step::Open(user),
            Err(error) => Step::Refuse(login_error_reply(error)),
        },
        Request::Send { token, to, text } => Step::Send { token, to, text },
        Request::Inbox { token } => Step::Inbox { token },
        Request::List { token } => Step::List { token },
        Request::Logout { token } => Step::Logout { token },
    };
    Prepared { command: request.command(), step }
}

/// The error reply for a failed `auth`.
fn login_error_reply(error: LoginError) -> ErrorReply {
    match error {
        LoginError::NoSuchUser => ErrorReply::UserNotFound,
        LoginError::WrongPassword => ErrorReply::WrongPassword,
    }
}

/// The error reply for a line that is not a request.
fn request_error_reply(error: RequestError) -> ErrorReply {
    match error {
        RequestError::NotUtf8 => ErrorReply::NotUtf8,
        RequestError::UnknownCommand => ErrorReply::UnknownCommand,
        RequestError::MissingFields => ErrorReply::MissingFields,
    }
}
