//! The replies and their exact bytes.
//!
//! Every reply is one JSON object, written as Python's `json.dumps` writes
//! it (see [`super::json`]), followed by `\r\n\r\n`. Keys come in the order
//! the original emits them. Note that `list` and `logout` answer under the
//! key `messages`, as the assignment shows.

use std::collections::HashMap;
use std::sync::Arc;

use super::json::write_str;
use super::users::{UserDirectory, UserId};

/// What ends every reply on the wire.
pub const REPLY_TERMINATOR: &[u8] = b"\r\n\r\n";

/// One reply to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// `auth` succeeded: `{"status": "OK", "tokenid": "…"}`.
    LoggedIn { token: String },
    /// `send` succeeded: `{"status": "OK", "message": "Message Sent"}`.
    MessageSent,
    /// `inbox`: `{"status": "OK", "messages": {"sender": [{…}, …], …}}`.
    Inbox(Inbox),
    /// `list`: `{"status": "OK", "messages": ["user - Full Name", …]}`.
    List(Online),
    /// `logout`: `{"status": "OK", "messages": "Anda berhasil logout!"}`.
    LoggedOut,
    /// `{"status": "ERROR", "message": "…"}`.
    Error(ErrorReply),
}

/// The messages an `inbox` took out of a mailbox, oldest first.
#[derive(Debug, Clone)]
pub struct Inbox {
    pub users: Arc<UserDirectory>,
    pub recipient: UserId,
    pub mail: Vec<Pending>,
}

/// One message waiting in a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub from: UserId,
    pub text: Box<str>,
}

/// The users with at least one live session, in the order of their earliest
/// live session.
#[derive(Debug, Clone)]
pub struct Online {
    pub users: Arc<UserDirectory>,
    pub online: Vec<UserId>,
}

/// The error replies, each with the original's message string where the
/// original has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorReply {
    /// `auth` names no such user.
    UserNotFound,
    /// `auth` has the wrong password.
    WrongPassword,
    /// `send` names no such recipient.
    RecipientNotFound,
    /// The token belongs to no live session.
    UnknownToken,
    /// A field the command needs is missing.
    MissingFields,
    /// The first field is no command.
    UnknownCommand,
    /// The request is not UTF-8 (the original crashed; our choice).
    NotUtf8,
    /// The request line is longer than the server accepts (our choice).
    LineTooLong,
}

impl ErrorReply {
    /// The `message` string of this error.
    pub fn message(self) -> &'static str {
        match self {
            ErrorReply::UserNotFound => "User Tidak Ada",
            ErrorReply::WrongPassword => "Password Salah",
            ErrorReply::RecipientNotFound => "User Tidak Ditemukan",
            ErrorReply::UnknownToken => "Informasi tidak ditemukan",
            ErrorReply::MissingFields => "--Protocol Tidak Benar",
            ErrorReply::UnknownCommand => "**Protocol Tidak Benar",
            ErrorReply::NotUtf8 => "--Request Bukan UTF-8",
            ErrorReply::LineTooLong => "--Request Terlalu Panjang",
        }
    }
}

impl Reply {
    /// Whether the reply's status is `OK`.
    pub fn is_ok(&self) -> bool {
        !matches!(self, Reply::Error(_))
    }

    /// A short name for logs: `OK` or the error message.
    pub fn outcome(&self) -> &'static str {
        match self {
            Reply::Error(error) => error.message(),
            _ => "OK",
        }
    }

    /// Appends the reply's exact bytes, terminator included.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Reply::LoggedIn { token } => {
                out.extend_from_slice(b"{\"status\": \"OK\", \"tokenid\": ");
                write_str(out, token);
                out.push(b'}');
            }
            Reply::MessageSent => {
                out.extend_from_slice(b"{\"status\": \"OK\", \"message\": \"Message Sent\"}");
            }
            Reply::Inbox(inbox) => {
                out.extend_from_slice(b"{\"status\": \"OK\", \"messages\": ");
                inbox.encode(out);
                out.push(b'}');
            }
            Reply::List(online) => {
                out.extend_from_slice(b"{\"status\": \"OK\", \"messages\": [");
                for (i, &id) in online.online.iter().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(b", ");
                    }
                    let user = online.users.get(id);
                    write_str(out, &format!("{} - {}", user.username, user.name));
                }
                out.extend_from_slice(b"]}");
            }
            Reply::LoggedOut => {
                out.extend_from_slice(
                    b"{\"status\": \"OK\", \"messages\": \"Anda berhasil logout!\"}",
                );
            }
            Reply::Error(error) => {
                out.extend_from_slice(b"{\"status\": \"ERROR\", \"message\": ");
                write_str(out, error.message());
                out.push(b'}');
            }
        }
        out.extend_from_slice(REPLY_TERMINATOR);
    }

    /// The reply's exact bytes, terminator included.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

impl Inbox {
    /// Writes `{"sender": [{"msg_from": …, "msg_to": …, "msg": …}, …], …}`:
    /// senders in the order of their oldest pending message, each sender's
    /// messages in send order.
    fn encode(&self, out: &mut Vec<u8>) {
        let mut senders: Vec<UserId> = Vec::new();
        let mut by_sender: HashMap<UserId, Vec<&str>> = HashMap::new();
        for pending in &self.mail {
            by_sender
                .entry(pending.from)
                .or_insert_with(|| {
                    senders.push(pending.from);
                    Vec::new()
                })
                .push(&pending.text);
        }
        let to_name = &self.users.get(self.recipient).name;
        out.push(b'{');
        for (i, sender) in senders.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b", ");
            }
            let from = self.users.get(*sender);
            write_str(out, &from.username);
            out.extend_from_slice(b": [");
            for (j, text) in by_sender[sender].iter().enumerate() {
                if j > 0 {
                    out.extend_from_slice(b", ");
                }
                out.extend_from_slice(b"{\"msg_from\": ");
                write_str(out, &from.name);
                out.extend_from_slice(b", \"msg_to\": ");
                write_str(out, to_name);
                out.extend_from_slice(b", \"msg\": ");
                write_str(out, text);
                out.push(b'}');
            }
            out.push(b']');
        }
        out.push(b'}');
    }
}
