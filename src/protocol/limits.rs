//! The reference server's limits: what one client can make it hold.
//!
//! Each limit has a default, a `progjar-chat server` flag, and a documented
//! outcome (spec/PROTOCOL.md §12). Every one of them, and its default, is
//! here and nowhere else: the values live in [`Limits`], the checks are
//! small pure methods of it, so the core ([`super::chat`]) and the server
//! ([`crate::server`]) apply the same numbers. What needs a clock or a
//! counter shared between threads (the idle timer, the count of open
//! connections) is the server's.
//!
//! | limit | flag | default | when it is hit |
//! |---|---|---|---|
//! | longest request line | `--max-line` | 1 MiB ([`DEFAULT_MAX_LINE`]) | `--Request Terlalu Panjang`, the line is skipped to its `\r\n` |
//! | messages waiting per recipient | `--max-pending` | 100,000 | `send` gets `Inbox Penuh`, nothing is stored |
//! | bytes of text waiting per recipient | `--max-pending-bytes` | 64 MiB | `send` gets `Inbox Penuh`, nothing is stored |
//! | sessions per user | `--max-sessions-per-user` | 1,000 | `auth` ends that user's least recently used session and opens the new one |
//! | open connections | `--max-connections` | 10,000 | a new connection gets `Server Penuh` and is closed |
//! | idle connection | `--idle-timeout SECS` | off | the connection is closed, with no reply |
//! | replies held for one connection | `--max-pending-output` | 1 MiB ([`DEFAULT_MAX_PENDING_OUTPUT`]) | the server handles no more of its requests until they are written |
//!
//! No limit locks a user out: at the session limit the least recently used
//! session gives way, since expiring idle sessions would not be enough
//! (whoever holds the sessions can keep them all busy).
//!
//! These are properties of the reference server, not of the protocol: a
//! conforming server may choose others.

use std::time::Duration;

/// The longest request line accepted by default, terminator included.
///
/// Large enough for a 100 KB message with room to spare, small enough that a
/// client cannot make the server buffer without bound.
pub const DEFAULT_MAX_LINE: usize = 1024 * 1024;

/// Messages that may wait for one recipient, by default.
pub(crate) const DEFAULT_MAX_PENDING: usize = 100_000;

/// Bytes of message text that may wait for one recipient, by default.
pub(crate) const DEFAULT_MAX_PENDING_BYTES: usize = 64 * 1024 * 1024;

/// Connections a server keeps open at once, by default.
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// Live sessions one user may hold at once, by default.
pub(crate) const DEFAULT_MAX_SESSIONS_PER_USER: usize = 1_000;

/// Bytes of replies a server holds for one connection, by default, before
/// it handles no more of that connection's requests until they are
/// written (applied by [`crate::server`]; see [`Limits::may_handle_more`]).
///
/// 1 MiB, as much as the longest request line: far more than ordinary
/// pipelining needs (a whole 64 KiB read of `send` requests is answered in
/// at most 64 KiB, a `Message Sent` being no longer than the shortest
/// `send`), and a client that meets it loses nothing (the rest of its read
/// is handled once the replies are written); yet small enough that a
/// client that does not read makes the server hold about 1 MiB, not the
/// tens of MB that the replies to one 64 KiB read of `list` requests come
/// to with 1,000 users online (30 KB a reply).
pub(crate) const DEFAULT_MAX_PENDING_OUTPUT: usize = 1024 * 1024;

/// The limits of one server. `Limits::default()` is what
/// `progjar-chat server` runs with when given no flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest request line accepted, terminator included; a longer
    /// one is answered `Request Terlalu Panjang` and skipped.
    pub max_line: usize,
    /// Messages that may wait for one recipient user.
    pub max_pending: usize,
    /// Bytes of text (UTF-8, as stored) that may wait for one recipient.
    pub max_pending_bytes: usize,
    /// Connections open at once; one more is answered `Server Penuh` and
    /// closed.
    pub max_connections: usize,
    /// Live sessions per user; one more `auth` ends the user's least
    /// recently used session first.
    pub max_sessions_per_user: usize,
    /// Close a connection when, for this long, no request bytes arrive
    /// while it owes no reply, or a reply it owes makes no progress (its
    /// client does not read). `None`: never.
    pub idle_timeout: Option<Duration>,
    /// Bytes of replies held for one connection before the server handles
    /// no more of its requests until they are written.
    pub max_pending_output: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_line: DEFAULT_MAX_LINE,
            max_pending: DEFAULT_MAX_PENDING,
            max_pending_bytes: DEFAULT_MAX_PENDING_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_sessions_per_user: DEFAULT_MAX_SESSIONS_PER_USER,
            idle_timeout: None,
            max_pending_output: DEFAULT_MAX_PENDING_OUTPUT,
        }
    }
}

impl Limits {
    /// Whether a mailbox holding `messages` messages of `bytes` bytes of
    /// text in all has room for one more of `text` bytes.
    pub(crate) fn mailbox_has_room(&self, messages: usize, bytes: usize, text: usize) -> bool {
        messages < self.max_pending && bytes.saturating_add(text) <= self.max_pending_bytes
    }

    /// Whether a user with `live` sessions may open one more without one of
    /// them giving way.
    pub(crate) fn may_open_session(&self, live: usize) -> bool {
        live < self.max_sessions_per_user
    }

    /// Whether a server with `open` connections may take one more.
    pub(crate) fn may_accept(&self, open: usize) -> bool {
        open < self.max_connections
    }

    /// Whether a connection that holds `held` bytes of replies not yet
    /// written may have another request handled before they are. A server
    /// asks after each request it handles, so it holds at most
    /// [`max_pending_output`](Self::max_pending_output) plus one reply.
    pub(crate) fn may_handle_more(&self, held: usize) -> bool {
        held < self.max_pending_output
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let limits = Limits::default();
        assert_eq!(limits.max_pending, 100_000);
        assert_eq!(limits.max_pending_bytes, 64 << 20);
        assert_eq!(limits.max_connections, 10_000);
        assert_eq!(limits.max_sessions_per_user, 1_000);
        assert_eq!(limits.idle_timeout, None);
        assert_eq!(limits.max_line, 1 << 20);
        assert_eq!(limits.max_pending_output, 1 << 20);
    }

    #[test]
    fn a_mailbox_is_full_at_either_limit() {
        let limits = Limits { max_pending: 3, max_pending_bytes: 10, ..Limits::default() };
        assert!(limits.mailbox_has_room(0, 0, 10));
        assert!(!limits.mailbox_has_room(0, 0, 11));
        assert!(limits.mailbox_has_room(2, 5, 5));
        assert!(!limits.mailbox_has_room(2, 6, 5));
        assert!(!limits.mailbox_has_room(3, 0, 0));
        assert!(!limits.mailbox_has_room(0, usize::MAX, 1));
    }

    #[test]
    fn sessions_and_connections_stop_at_their_limit() {
        let limits = Limits { max_sessions_per_user: 2, max_connections: 1, ..Limits::default() };
        assert!(limits.may_open_session(1));
        assert!(!limits.may_open_session(2));
        assert!(limits.may_accept(0));
        assert!(!limits.may_accept(1));
    }

    /// A connection's replies are held up to the limit and no further: the
    /// server asks after each request, so it holds at most the limit plus
    /// one reply.
    #[test]
    fn held_replies_stop_the_handling_at_their_limit() {
        let limits = Limits { max_pending_output: 100, ..Limits::default() };
        assert!(limits.may_handle_more(0));
        assert!(limits.may_handle_more(99));
        assert!(!limits.may_handle_more(100));
        assert!(!limits.may_handle_more(101));
    }

    /// The core applies the mailbox limits with the documented replies,
    /// after the token and recipient checks, and the session limit by
    /// ending the least recently used session.
    #[test]
    fn the_core_applies_the_mailbox_and_session_limits() {
        use crate::protocol::token::SequentialTokens;
        use crate::protocol::users::UserDirectory;
        use crate::shared::SharedChat;

        let limits = Limits {
            max_pending: 2,
            max_pending_bytes: 12,
            max_sessions_per_user: 2,
            ..Limits::default()
        };
        let mut chat = SharedChat::with_limits(UserDirectory::builtin(), limits);
        let mut tokens = SequentialTokens::default();
        let mut ask = |chat: &mut SharedChat, line: &str| {
            let mut out = Vec::new();
            chat.handle_line(line.as_bytes(), &mut tokens, &mut out);
            String::from_utf8(out).unwrap()
        };
        let error = |message: &str| {
            format!("{{\"status\": \"ERROR\", \"message\": \"{message}\"}}\r\n\r\n")
        };
        let sent = "{\"status\": \"OK\", \"message\": \"Message Sent\"}\r\n\r\n";
        let t1 = "00000000-0000-4000-8000-000000000001";
        let t2 = "00000000-0000-4000-8000-000000000002";
        assert!(ask(&mut chat, "auth messi surabaya\r\n").contains(t1));
        assert!(ask(&mut chat, "auth messi surabaya\r\n").contains(t2));
        assert_eq!(ask(&mut chat, "auth messi jakarta\r\n"), error("Password Salah"));
        assert!(ask(&mut chat, "auth lineker surabaya\r\n").contains("tokenid"));
        // t1 was used after t2: a third session of messi ends t2, not t1.
        assert!(ask(&mut chat, &format!("list {t1}\r\n")).contains("\"OK\""));
        assert!(ask(&mut chat, "auth messi surabaya\r\n").contains("tokenid"));
        assert_eq!(ask(&mut chat, &format!("inbox {t2}\r\n")), error("Informasi tidak ditemukan"));
        assert_eq!(chat.with(|c| c.session_count()), 3);
        // Two messages; a third is one too many. " ab\r\n" is 5 bytes.
        assert_eq!(ask(&mut chat, &format!("send {t1} henderson ab\r\n")), sent);
        assert_eq!(ask(&mut chat, &format!("send {t1} henderson ab\r\n")), sent);
        assert_eq!(ask(&mut chat, &format!("send {t1} henderson ab\r\n")), error("Inbox Penuh"));
        assert_eq!(
            ask(&mut chat, "send bogus henderson ab\r\n"),
            error("Informasi tidak ditemukan")
        );
        assert_eq!(
            ask(&mut chat, &format!("send {t1} pogba ab\r\n")),
            error("User Tidak Ditemukan")
        );
        // Bytes: 5 + 5 fit in 12; 5 + 8 do not.
        assert_eq!(ask(&mut chat, &format!("send {t1} lineker ab\r\n")), sent);
        assert_eq!(ask(&mut chat, &format!("send {t1} lineker abcde\r\n")), error("Inbox Penuh"));
        assert_eq!(ask(&mut chat, &format!("send {t1} lineker a\r\n")), sent);
        assert_eq!(chat.with(|c| c.pending_count()), 4);
        // A logout makes room for another session: t1 stays.
        let t4 = "00000000-0000-4000-8000-000000000004";
        assert_eq!(
            ask(&mut chat, &format!("logout {t4}\r\n")),
            "{\"status\": \"OK\", \"messages\": \"Anda berhasil logout!\"}\r\n\r\n"
        );
        assert!(ask(&mut chat, "auth messi surabaya\r\n").contains("tokenid"));
        assert!(ask(&mut chat, &format!("list {t1}\r\n")).contains("\"OK\""));
        assert_eq!(chat.with(|c| c.session_count()), 3);
        // Reading empties the mailbox, and its byte count with it: 12 bytes
        // fit again.
        let lineker = "00000000-0000-4000-8000-000000000003";
        assert!(ask(&mut chat, &format!("inbox {lineker}\r\n")).contains(" ab\\r\\n"));
        assert_eq!(ask(&mut chat, &format!("send {t1} lineker abcdefghi\r\n")), sent);
    }
}
