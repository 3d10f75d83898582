//! The replies and their exact bytes.
//!
//! Every reply is one JSON object, written as Python's `json.dumps` writes
//! it (see [`super::json`]), followed by `\r\n\r\n`. Keys come in the order
//! the original emits them. Note that `list` and `logout` answer under the
//! key `messages`, as the assignment shows.

use std::collections::HashMap;

use super::frame::REPLY_TERMINATOR;
use super::json::write_str;
use super::mailbox::{Mailbox, Message};
use super::users::{UserDirectory, UserId};

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
    pub recipient: UserId,
    pub(crate) mail: Mailbox,
}

/// The users with at least one live session, in the order of their earliest
/// live session.
#[derive(Debug, Clone)]
pub struct Online {
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
    /// The recipient's mailbox is at the server's limit (our choice; see
    /// [`super::limits`]).
    MailboxFull,
    /// The server has as many connections as it allows; sent once to a new
    /// connection, which is then closed (our choice).
    ServerFull,
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
            ErrorReply::MailboxFull => "Inbox Penuh",
            ErrorReply::ServerFull => "Server Penuh",
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

    /// Appends the reply's exact bytes, terminator included. `users` is the
    /// directory the ids in the reply come from (a reply does not hold it:
    /// sharing it would touch a reference count that every worker thread
    /// shares, on every `inbox` and `list`).
    pub fn encode(&self, users: &UserDirectory, out: &mut Vec<u8>) {
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
                inbox.encode(users, out);
                out.push(b'}');
            }
            Reply::List(online) => {
                out.extend_from_slice(b"{\"status\": \"OK\", \"messages\": [");
                for (i, &id) in online.online.iter().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(b", ");
                    }
                    // The string `username - name`, encoded without first
                    // being built: JSON escapes character by character, so
                    // the encoding of a concatenation is the concatenation
                    // of the encodings. Drop the quote that would close the
                    // username and the one that would open the name.
                    let user = users.json(id);
                    out.extend_from_slice(&user.username[..user.username.len() - 1]);
                    out.extend_from_slice(b" - ");
                    out.extend_from_slice(&user.name[1..]);
                }
                out.extend_from_slice(b"]}");
            }
            Reply::LoggedOut => {
                out.extend_from_slice(
                    b"{\"status\": \"OK\", \"messages\": \"Anda berhasil logout!\"}",
                );
            }
            Reply::Error(error) => return error.encode(out),
        }
        out.extend_from_slice(REPLY_TERMINATOR);
    }

    /// The reply's exact bytes, terminator included: what the tests compare
    /// (the server encodes into its connection's buffer instead).
    #[cfg(test)]
    pub(crate) fn to_bytes(&self, users: &UserDirectory) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(users, &mut out);
        out
    }
}

impl ErrorReply {
    /// Appends the error reply's exact bytes, terminator included.
    pub fn encode(self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"status\": \"ERROR\", \"message\": ");
        write_str(out, self.message());
        out.push(b'}');
        out.extend_from_slice(REPLY_TERMINATOR);
    }

    /// The error reply's exact bytes, terminator included.
    pub(crate) fn to_bytes(self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

impl Inbox {
    /// Writes `{"sender": [{"msg_from": …, "msg_to": …, "msg": …}, …], …}`:
    /// senders in the order of their oldest pending message, each sender's
    /// messages in send order.
    ///
    /// Linear in the number of messages, and lean, since an inbox can hold
    /// millions: with one sender (the common case) the messages are written
    /// straight from the mailbox with no allocation but the output's; with
    /// several, they are put in sender order by a counting sort (a rank and
    /// an index per message). The part of a message that depends only on its sender
    /// (`{"msg_from": …, "msg_to": …, "msg": `) is encoded once per sender
    /// and copied, and the output is reserved up front.
    fn encode(&self, users: &UserDirectory, out: &mut Vec<u8>) {
        let Some(first) = self.mail.first() else {
            out.extend_from_slice(b"{}");
            return;
        };
        let text_bytes = self.mail.text_bytes();
        let one_sender = self.mail.iter().all(|message| message.from == first.from);
        out.push(b'{');
        if one_sender {
            let messages = self.mail.iter();
            self.write_group(users, out, first.from, self.mail.len(), text_bytes, messages);
            out.push(b'}');
            return;
        }

        // Senders in order of first appearance; per sender, how many
        // messages and how many bytes of text.
        let mut senders: Vec<UserId> = Vec::new();
        let mut groups: Vec<(usize, usize)> = Vec::new();
        let mut rank_of: HashMap<UserId, usize> = HashMap::new();
        // Ranks fit in u32: there are fewer senders than `UserId`s.
        let mut ranks: Vec<u32> = Vec::with_capacity(self.mail.len());
        for message in self.mail.iter() {
            let rank = *rank_of.entry(message.from).or_insert_with(|| {
                senders.push(message.from);
                groups.push((0, 0));
                senders.len() - 1
            });
            groups[rank].0 += 1;
            groups[rank].1 += message.text.len();
            ranks.push(rank as u32);
        }
        // The messages, grouped by sender, each group in order.
        let mut next: Vec<usize> = Vec::with_capacity(groups.len());
        let mut at = 0;
        for &(count, _) in &groups {
            next.push(at);
            at += count;
        }
        let starts = next.clone();
        let mut order = vec![Message { from: first.from, text: "" }; self.mail.len()];
        for (message, &rank) in self.mail.iter().zip(&ranks) {
            let rank = rank as usize;
            order[next[rank]] = message;
            next[rank] += 1;
        }
        drop(ranks);
        for (rank, &sender) in senders.iter().enumerate() {
            if rank > 0 {
                out.extend_from_slice(b", ");
            }
            let (count, text_bytes) = groups[rank];
            let group = &order[starts[rank]..starts[rank] + count];
            self.write_group(users, out, sender, count, text_bytes, group.iter().copied());
        }
        out.push(b'}');
    }

    /// Writes one sender's `"username": [{…}, …]`.
    fn write_group<'a>(
        &self,
        users: &UserDirectory,
        out: &mut Vec<u8>,
        sender: UserId,
        count: usize,
        text_bytes: usize,
        messages: impl Iterator<Item = Message<'a>>,
    ) {
        let from = users.json(sender);
        out.extend_from_slice(&from.username);
        out.extend_from_slice(b": [");
        let head_start = out.len();
        out.extend_from_slice(b"{\"msg_from\": ");
        out.extend_from_slice(&from.name);
        out.extend_from_slice(b", \"msg_to\": ");
        out.extend_from_slice(&users.json(self.recipient).name);
        out.extend_from_slice(b", \"msg\": ");
        let head = head_start..out.len();
        // At least this much: texts that need escapes only make it longer.
        out.reserve(count * (head.len() + 5) + text_bytes + 1);
        for (j, message) in messages.enumerate() {
            if j > 0 {
                out.extend_from_slice(b", ");
                out.extend_from_within(head.clone());
            }
            write_str(out, message.text);
            out.push(b'}');
        }
        out.push(b']');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The previous encoder (a map from sender to texts), kept as the
    /// reference the present one must match byte for byte.
    fn encode_with_map(users: &UserDirectory, inbox: &Inbox, out: &mut Vec<u8>) {
        let mut senders: Vec<UserId> = Vec::new();
        let mut by_sender: HashMap<UserId, Vec<&str>> = HashMap::new();
        for message in inbox.mail.iter() {
            by_sender
                .entry(message.from)
                .or_insert_with(|| {
                    senders.push(message.from);
                    Vec::new()
                })
                .push(message.text);
        }
        let to_name = &users.get(inbox.recipient).name;
        out.push(b'{');
        for (i, sender) in senders.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b", ");
            }
            let from = users.get(*sender);
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

    #[test]
    fn list_entries_are_encoded_as_one_string() {
        let users = UserDirectory::builtin();
        let online = Online { online: vec![UserId(1), UserId(0)] };
        let mut want = b"{\"status\": \"OK\", \"messages\": [".to_vec();
        for (i, id) in online.online.iter().enumerate() {
            if i > 0 {
                want.extend_from_slice(b", ");
            }
            let user = users.get(*id);
            write_str(&mut want, &format!("{} - {}", user.username, user.name));
        }
        want.extend_from_slice(b"]}\r\n\r\n");
        assert_eq!(
            String::from_utf8(Reply::List(online).to_bytes(&users)).unwrap(),
            String::from_utf8(want).unwrap()
        );
    }

    #[test]
    fn inbox_encoding_matches_the_map_based_encoder() {
        let users = UserDirectory::builtin();
        let texts = ["  hallo \r\n", "", " \"kutip\" \\ é ☕ 😀\r\n", " x"];
        let mut next = crate::protocol::xorshift::xorshift(0x9e37_79b9_7f4a_7c15);
        for round in 0..500 {
            let len = if round == 0 { 0 } else { next(40) as usize };
            // Some rounds have a single sender, the fast path.
            let senders = 1 + next(3) as u32;
            let mail = (0..len)
                .map(|_| Message {
                    from: UserId(next(u64::from(senders)) as u32),
                    text: texts[next(texts.len() as u64) as usize],
                })
                .collect();
            let inbox = Inbox { recipient: UserId(2), mail };
            let (mut got, mut want) = (Vec::new(), Vec::new());
            inbox.encode(&users, &mut got);
            encode_with_map(&users, &inbox, &mut want);
            assert_eq!(String::from_utf8(got).unwrap(), String::from_utf8(want).unwrap());
        }
    }
}
