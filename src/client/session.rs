//! The client's sans-I/O core: typed lines in, wire requests and output
//! lines out.
//!
//! [`ClientSession`] holds the only state the original client has, the
//! token of the last successful `auth`, and reproduces that client's rules:
//! how a typed line is split, which checks run locally and in which order,
//! the exact request it writes and the exact line it prints for each reply.
//! No sockets and no runtime are involved, so every rule is unit-tested
//! here; [`super::main`] only moves bytes between the terminal, the socket
//! and this type.

use serde_json::Value;

use crate::protocol::frame::find_reply_end;
use crate::protocol::json;
use crate::protocol::pyrepr::bytes_repr;
use crate::protocol::pystr::strip;

/// The original reads replies with `recv(64)` and traces every chunk, so a
/// trace shows a reply in pieces of this many bytes.
pub(crate) const TRACE_CHUNK: usize = 64;

/// A command word the client does not know (the original's text).
pub(crate) const UNKNOWN_COMMAND: &str = "*Maaf, command tidak benar";
/// A command with fewer fields than it needs (the original's text).
pub(crate) const MISSING_FIELDS: &str = "-Maaf, command tidak benar";
/// A command that needs a token, typed before a successful `auth`.
pub(crate) const NOT_AUTHORIZED: &str = "Error, not authorized";
/// A typed line that is not UTF-8. The original crashes on such input; the
/// protocol is text, so nothing is sent and the session goes on.
pub(crate) const NOT_UTF8: &str = "Error, command is not valid UTF-8";

/// What one typed line leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Print this line; nothing goes on the wire.
    Print(String),
    /// Send a request and hand its reply to [`ClientSession::reply`].
    Send(Request),
}

/// A request ready for the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    /// In trace mode, a line to print before sending: the original echoes
    /// the wire line of every `send` (with its `\r\n`, so the terminal shows
    /// an empty line after it).
    pub echo: Option<String>,
    /// The exact request bytes, `\r\n` included.
    pub wire: String,
    /// How to read the reply.
    pub expect: Expect,
}

/// Which command a reply answers, with what its success line needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expect {
    /// `auth`: on success remember the token and greet `username`.
    Auth { username: String },
    /// `send`: on success confirm delivery to `to`.
    Send { to: String },
    /// `inbox`: print the pending messages as JSON.
    Inbox,
    /// `list`: print the online users as JSON.
    List,
    /// `logout`: forget the token and print the farewell as JSON.
    Logout,
}

/// The state of one interactive client.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClientSession {
    /// The token of the last successful `auth`, until a successful `logout`.
    token: Option<String>,
    /// Whether to print the original's debug lines.
    trace: bool,
}

impl ClientSession {
    /// A session that is not logged in.
    pub(crate) fn new(trace: bool) -> Self {
        Self { token: None, trace }
    }

    /// The token in use, if logged in.
    pub(crate) fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The prompt printed before every line is read: `Command TOKEN:`, or
    /// `Command :` when not logged in. There is no space after the colon,
    /// as in the original.
    pub(crate) fn prompt(&self) -> String {
        format!("Command {}:", self.token().unwrap_or(""))
    }

    /// Turns one typed line (its `\n` or `\r\n` included or not) into an
    /// action. The session changes only when a reply arrives.
    ///
    /// As in the original, the line is split on single spaces (two spaces
    /// make an empty field), the fields a command names are stripped, the
    /// field count is checked before the login state, and fields beyond
    /// those a command uses are ignored.
    pub(crate) fn command(&self, line: &[u8]) -> Action {
        let Ok(line) = std::str::from_utf8(line) else {
            return Action::Print(NOT_UTF8.to_owned());
        };
        let line = match line.strip_suffix('\n') {
            Some(rest) => rest.strip_suffix('\r').unwrap_or(rest),
            None => line,
        };
        let fields: Vec<&str> = line.split(' ').collect();
        let field = |i: usize| fields.get(i).map(|f| strip(f));
        let command = field(0).unwrap_or("");
        match command {
            "auth" => {
                let (Some(username), Some(password)) = (field(1), field(2)) else {
                    return Action::Print(MISSING_FIELDS.to_owned());
                };
                self.request(
                    format!("auth {username} {password} \r\n"),
                    Expect::Auth { username: username.to_owned() },
                )
            }
            "send" => {
                let Some(to) = field(1) else {
                    return Action::Print(MISSING_FIELDS.to_owned());
                };
                let Some(token) = self.token() else {
                    return Action::Print(NOT_AUTHORIZED.to_owned());
                };
                // The original builds the text as `message = "{} {}".format(
                // message, w)` over the raw (unstripped) fields from the
                // third on, so it starts with a space, and then puts one more
                // space in front of it on the wire.
                let message: String = fields.iter().skip(2).map(|w| format!(" {w}")).collect();
                self.request(
                    format!("send {token} {to} {message} \r\n"),
                    Expect::Send { to: to.to_owned() },
                )
            }
            "inbox" | "list" | "logout" => {
                let Some(token) = self.token() else {
                    return Action::Print(NOT_AUTHORIZED.to_owned());
                };
                let expect = match command {
                    "inbox" => Expect::Inbox,
                    "list" => Expect::List,
                    _ => Expect::Logout,
                };
                self.request(format!("{command} {token} \r\n"), expect)
            }
            _ => Action::Print(UNKNOWN_COMMAND.to_owned()),
        }
    }

    fn request(&self, wire: String, expect: Expect) -> Action {
        // Only `send` is echoed: the original prints the line in
        // `sendmessage` and nowhere else.
        let echo = (self.trace && matches!(expect, Expect::Send { .. })).then(|| wire.clone());
        Action::Send(Request { echo, wire, expect })
    }

    /// Handles one whole reply (terminator included) to a request made for
    /// `expect`, and returns the lines to print: in trace mode first the
    /// reply in [`TRACE_CHUNK`]-byte pieces and `end of string`, then the
    /// outcome.
    pub(crate) fn reply(&mut self, expect: &Expect, reply: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        if self.trace {
            for chunk in reply.chunks(TRACE_CHUNK) {
                lines.push(format!("diterima dari server {}", bytes_repr(chunk)));
            }
            lines.push("end of string".to_owned());
        }
        lines.push(self.outcome(expect, reply));
        lines
    }

    /// The line the original prints for a reply. Where the original would
    /// crash on a malformed reply (not JSON, a missing key), this gives an
    /// `Error, …` line instead.
    fn outcome(&mut self, expect: &Expect, reply: &[u8]) -> String {
        let value: Value = match serde_json::from_slice(reply) {
            Ok(value) => value,
            Err(error) => return format!("Error, malformed reply from server: not JSON ({error})"),
        };
        let Some(status) = value.get("status") else {
            return missing("status");
        };
        if status.as_str() != Some("OK") {
            return match value.get("message") {
                Some(Value::String(message)) => format!("Error, {message}"),
                Some(other) => format!("Error, {}", json::to_string(other)),
                None => missing("message"),
            };
        }
        match expect {
            Expect::Auth { username } => match value.get("tokenid") {
                Some(Value::String(token)) => {
                    // The original means "not logged in" by an empty token.
                    self.token = Some(token.clone()).filter(|t| !t.is_empty());
                    format!("username {username} logged in, token {token} ")
                }
                _ => missing("tokenid"),
            },
            Expect::Send { to } => format!("message sent to {to}"),
            Expect::Inbox | Expect::List => messages(&value),
            Expect::Logout => {
                // The server has ended the session whatever else the reply
                // holds.
                self.token = None;
                messages(&value)
            }
        }
    }
}

/// `json.dumps(reply["messages"])`, as the original prints it.
fn messages(reply: &Value) -> String {
    match reply.get("messages") {
        Some(messages) => json::to_string(messages),
        None => missing("messages"),
    }
}

fn missing(key: &str) -> String {
    format!("Error, malformed reply from server: no \"{key}\"")
}

/// Bytes received from the server, cut into whole replies.
///
/// A reply ends at the first `\r\n\r\n`: JSON escapes CR and LF inside
/// strings, so that sequence cannot occur within a reply. Bytes after it
/// are kept for the next reply.
#[derive(Debug, Default)]
pub(crate) struct ReplyBuffer {
    buf: Vec<u8>,
    /// How much of `buf` is known to hold no terminator, so that a reply
    /// arriving in many reads is not searched from the start each time.
    scanned: usize,
}

impl ReplyBuffer {
    /// Appends bytes just read.
    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Takes the next whole reply, terminator included, if one has arrived.
    pub(crate) fn next_reply(&mut self) -> Option<Vec<u8>> {
        match find_reply_end(&self.buf, 0, self.scanned) {
            Some(end) => {
                self.scanned = 0;
                Some(self.buf.drain(..end).collect())
            }
            None => {
                self.scanned = self.buf.len();
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "4c908ff6-3c15-4052-a98a-095d2454cf93";

    fn logged_in(trace: bool) -> ClientSession {
        ClientSession { token: Some(TOKEN.to_owned()), trace }
    }

    fn print(line: &str) -> Action {
        Action::Print(line.to_owned())
    }

    fn wire(session: &ClientSession, line: &str) -> String {
        match session.command(line.as_bytes()) {
            Action::Send(request) => request.wire,
            other => panic!("{line:?} sends nothing: {other:?}"),
        }
    }

    /// The outcome line of a reply, without trace lines.
    fn outcome(session: &mut ClientSession, expect: Expect, reply: &str) -> String {
        let mut lines = session.reply(&expect, reply.as_bytes());
        assert_eq!(lines.len(), 1, "{lines:?}");
        lines.remove(0)
    }

    #[test]
    fn prompt_shows_the_token_without_a_space_after_the_colon() {
        assert_eq!(ClientSession::new(false).prompt(), "Command :");
        assert_eq!(logged_in(false).prompt(), format!("Command {TOKEN}:"));
    }

    #[test]
    fn unknown_commands_are_refused_locally() {
        let session = logged_in(false);
        for line in [
            "",
            "\n",
            "foo",
            "AUTH messi surabaya",
            " auth messi surabaya",
            "auth\tmessi\tsurabaya",
            "Inbox",
        ] {
            assert_eq!(session.command(line.as_bytes()), print(UNKNOWN_COMMAND), "{line:?}");
        }
    }

    #[test]
    fn the_command_word_is_stripped() {
        let session = logged_in(false);
        assert_eq!(wire(&session, "inbox\t"), format!("inbox {TOKEN} \r\n"));
        assert_eq!(wire(&session, "auth\u{b} a b"), "auth a b \r\n");
    }

    #[test]
    fn too_few_fields_are_refused_before_the_login_check() {
        for session in [ClientSession::new(false), logged_in(false)] {
            for line in ["auth", "auth messi", "auth messi\n", "send", "send\r\n"] {
                assert_eq!(session.command(line.as_bytes()), print(MISSING_FIELDS), "{line:?}");
            }
        }
    }

    #[test]
    fn commands_needing_a_token_are_refused_when_logged_out() {
        let session = ClientSession::new(false);
        for line in ["send messi hallo", "send henderson", "inbox", "list", "logout", "list extra"]
        {
            assert_eq!(session.command(line.as_bytes()), print(NOT_AUTHORIZED), "{line:?}");
        }
    }

    #[test]
    fn invalid_utf8_is_refused_locally() {
        assert_eq!(logged_in(false).command(b"send messi \xff\n"), print(NOT_UTF8));
    }

    #[test]
    fn auth_wire_line_has_a_space_before_the_terminator() {
        let session = ClientSession::new(false);
        assert_eq!(wire(&session, "auth messi surabaya"), "auth messi surabaya \r\n");
        assert_eq!(wire(&session, "auth messi surabaya\n"), "auth messi surabaya \r\n");
        assert_eq!(wire(&session, "auth messi surabaya\r\n"), "auth messi surabaya \r\n");
        assert_eq!(wire(&session, "auth messi surabaya extra fields"), "auth messi surabaya \r\n");
        // A trailing space makes an empty password field, which is sent.
        assert_eq!(wire(&session, "auth messi "), "auth messi  \r\n");
        assert_eq!(
            session.command(b"auth messi surabaya"),
            Action::Send(Request {
                echo: None,
                wire: "auth messi surabaya \r\n".to_owned(),
                expect: Expect::Auth { username: "messi".to_owned() },
            })
        );
    }

    #[test]
    fn send_text_is_built_like_the_original() {
        let session = logged_in(false);
        assert_eq!(
            wire(&session, "send henderson hallo"),
            format!("send {TOKEN} henderson  hallo \r\n")
        );
        assert_eq!(
            wire(&session, "send lineker halo dunia\n"),
            format!("send {TOKEN} lineker  halo dunia \r\n")
        );
        // Fields of the text are not stripped; an empty field adds a space.
        assert_eq!(
            wire(&session, "send lineker a  b\t"),
            format!("send {TOKEN} lineker  a  b\t \r\n")
        );
        // The recipient is stripped; no text at all is fine.
        assert_eq!(wire(&session, "send henderson"), format!("send {TOKEN} henderson  \r\n"));
        assert_eq!(wire(&session, "send henderson\t"), format!("send {TOKEN} henderson  \r\n"));
        assert_eq!(
            session.command(b"send henderson hallo"),
            Action::Send(Request {
                echo: None,
                wire: format!("send {TOKEN} henderson  hallo \r\n"),
                expect: Expect::Send { to: "henderson".to_owned() },
            })
        );
    }

    #[test]
    fn token_commands_put_the_token_in_the_second_field() {
        let session = logged_in(false);
        for (line, expect) in
            [("inbox", Expect::Inbox), ("list", Expect::List), ("logout", Expect::Logout)]
        {
            assert_eq!(
                session.command(format!("{line} ignored fields\n").as_bytes()),
                Action::Send(Request { echo: None, wire: format!("{line} {TOKEN} \r\n"), expect })
            );
        }
    }

    #[test]
    fn trace_echoes_the_wire_line_of_send_only() {
        let session = logged_in(true);
        let Action::Send(request) = session.command(b"send henderson hallo") else {
            panic!("send sends");
        };
        assert_eq!(request.echo.as_deref(), Some(request.wire.as_str()));
        for line in ["auth messi surabaya", "inbox", "list", "logout"] {
            let Action::Send(request) = session.command(line.as_bytes()) else {
                panic!("{line} sends");
            };
            assert_eq!(request.echo, None, "{line}");
        }
    }

    #[test]
    fn auth_ok_remembers_the_token_and_greets_with_a_trailing_space() {
        let mut session = ClientSession::new(false);
        let reply = format!("{{\"status\": \"OK\", \"tokenid\": \"{TOKEN}\"}}\r\n\r\n");
        let line = outcome(&mut session, Expect::Auth { username: "messi".to_owned() }, &reply);
        assert_eq!(line, format!("username messi logged in, token {TOKEN} "));
        assert_eq!(session.token(), Some(TOKEN));
        assert_eq!(session.prompt(), format!("Command {TOKEN}:"));
    }

    #[test]
    fn auth_error_keeps_the_previous_token() {
        let mut session = logged_in(false);
        let reply = "{\"status\": \"ERROR\", \"message\": \"Password Salah\"}\r\n\r\n";
        let line = outcome(&mut session, Expect::Auth { username: "messi".to_owned() }, reply);
        assert_eq!(line, "Error, Password Salah");
        assert_eq!(session.token(), Some(TOKEN));
    }

    #[test]
    fn send_ok_names_the_recipient() {
        let mut session = logged_in(false);
        let reply = "{\"status\": \"OK\", \"message\": \"Message Sent\"}\r\n\r\n";
        let line = outcome(&mut session, Expect::Send { to: "henderson".to_owned() }, reply);
        assert_eq!(line, "message sent to henderson");
    }

    #[test]
    fn inbox_and_list_print_messages_as_python_json() {
        let mut session = logged_in(false);
        let reply =
            "{\"status\": \"OK\", \"messages\": {\"messi\": [{\"msg_from\": \"Lionel Messi\", \
                     \"msg_to\": \"Gary Lineker\", \"msg\": \"  halo \\r\\n\"}]}}\r\n\r\n";
        assert_eq!(
            outcome(&mut session, Expect::Inbox, reply),
            r#"{"messi": [{"msg_from": "Lionel Messi", "msg_to": "Gary Lineker", "msg": "  halo \r\n"}]}"#
        );
        let reply = "{\"status\": \"OK\", \"messages\": {}}\r\n\r\n";
        assert_eq!(outcome(&mut session, Expect::Inbox, reply), "{}");
        let reply = "{\"status\": \"OK\", \"messages\": [\"messi - Lionel Messi\", \
                     \"henderson - Jordan Henderson\"]}\r\n\r\n";
        assert_eq!(
            outcome(&mut session, Expect::List, reply),
            r#"["messi - Lionel Messi", "henderson - Jordan Henderson"]"#
        );
    }

    #[test]
    fn messages_keep_key_order_and_python_escapes() {
        let mut session = logged_in(false);
        let reply = "{\"status\": \"OK\", \"messages\": {\"z\": [], \"a\": \"\\u00e9/\"}}\r\n\r\n";
        assert_eq!(outcome(&mut session, Expect::Inbox, reply), r#"{"z": [], "a": "\u00e9/"}"#);
    }

    #[test]
    fn logout_ok_prints_the_quoted_farewell_and_forgets_the_token() {
        let mut session = logged_in(false);
        let reply = "{\"status\": \"OK\", \"messages\": \"Anda berhasil logout!\"}\r\n\r\n";
        assert_eq!(outcome(&mut session, Expect::Logout, reply), "\"Anda berhasil logout!\"");
        assert_eq!(session.token(), None);
        assert_eq!(session.prompt(), "Command :");
    }

    #[test]
    fn logout_error_keeps_the_token() {
        let mut session = logged_in(false);
        let reply = "{\"status\": \"ERROR\", \"message\": \"Informasi tidak ditemukan\"}\r\n\r\n";
        assert_eq!(
            outcome(&mut session, Expect::Logout, reply),
            "Error, Informasi tidak ditemukan"
        );
        assert_eq!(session.token(), Some(TOKEN));
    }

    #[test]
    fn every_error_reply_prints_its_message() {
        for expect in [
            Expect::Auth { username: "pogba".to_owned() },
            Expect::Send { to: "pogba".to_owned() },
            Expect::Inbox,
            Expect::List,
            Expect::Logout,
        ] {
            let mut session = logged_in(false);
            let reply = "{\"status\": \"ERROR\", \"message\": \"User Tidak Ada\"}\r\n\r\n";
            assert_eq!(outcome(&mut session, expect, reply), "Error, User Tidak Ada");
        }
    }

    #[test]
    fn malformed_replies_give_an_error_line() {
        let mut session = logged_in(false);
        let auth = || Expect::Auth { username: "messi".to_owned() };
        let line = outcome(&mut session, Expect::Inbox, "<html>\r\n\r\n");
        assert!(line.starts_with("Error, malformed reply from server: not JSON ("), "{line}");
        let line = outcome(&mut session, Expect::Inbox, "\u{0}\u{ff}");
        assert!(line.starts_with("Error, malformed reply from server: not JSON ("), "{line}");
        for (expect, reply, key) in [
            (Expect::Inbox, "[1, 2]\r\n\r\n", "status"),
            (Expect::Inbox, "{}\r\n\r\n", "status"),
            (Expect::Inbox, "{\"status\": \"ERROR\"}\r\n\r\n", "message"),
            (Expect::Inbox, "{\"status\": \"OK\"}\r\n\r\n", "messages"),
            (Expect::List, "{\"status\": \"OK\"}\r\n\r\n", "messages"),
            (auth(), "{\"status\": \"OK\"}\r\n\r\n", "tokenid"),
            (auth(), "{\"status\": \"OK\", \"tokenid\": 7}\r\n\r\n", "tokenid"),
        ] {
            assert_eq!(
                outcome(&mut session, expect, reply),
                format!("Error, malformed reply from server: no \"{key}\""),
                "{reply:?}"
            );
        }
        assert_eq!(session.token(), Some(TOKEN));
    }

    #[test]
    fn a_status_other_than_ok_is_an_error() {
        let mut session = logged_in(false);
        let reply = "{\"status\": \"ok\", \"message\": [1]}\r\n\r\n";
        assert_eq!(outcome(&mut session, Expect::Send { to: "x".to_owned() }, reply), "Error, [1]");
    }

    #[test]
    fn trace_prints_the_reply_in_64_byte_chunks_then_end_of_string() {
        let mut session = logged_in(true);
        let reply = "{\"status\": \"OK\", \"message\": \"Message Sent\", \"pad\": \"abcdefghijkl\"}\r\n\r\n";
        assert_eq!(reply.len(), 70);
        let lines = session.reply(&Expect::Send { to: "henderson".to_owned() }, reply.as_bytes());
        assert_eq!(
            lines,
            [
                r#"diterima dari server b'{"status": "OK", "message": "Message Sent", "pad": "abcdefghijkl'"#,
                r#"diterima dari server b'"}\r\n\r\n'"#,
                "end of string",
                "message sent to henderson",
            ]
        );
    }

    #[test]
    fn trace_splits_the_auth_reply_inside_the_token_as_the_seed_shows() {
        let mut session = ClientSession::new(true);
        let reply = format!("{{\"status\": \"OK\", \"tokenid\": \"{TOKEN}\"}}\r\n\r\n");
        let lines = session.reply(&Expect::Auth { username: "messi".to_owned() }, reply.as_bytes());
        assert_eq!(
            lines,
            [
                r#"diterima dari server b'{"status": "OK", "tokenid": "4c908ff6-3c15-4052-a98a-095d2454cf9'"#,
                r#"diterima dari server b'3"}\r\n\r\n'"#,
                "end of string",
                &format!("username messi logged in, token {TOKEN} "),
            ]
        );
    }

    #[test]
    fn trace_of_a_short_reply_is_one_chunk() {
        let mut session = ClientSession::new(true);
        let reply = b"{\"status\": \"ERROR\", \"message\": \"User Tidak Ada\"}\r\n\r\n";
        let lines = session.reply(&Expect::Auth { username: "pogba".to_owned() }, reply);
        assert_eq!(
            lines,
            [
                r#"diterima dari server b'{"status": "ERROR", "message": "User Tidak Ada"}\r\n\r\n'"#,
                "end of string",
                "Error, User Tidak Ada",
            ]
        );
    }

    #[test]
    fn reply_buffer_cuts_at_the_first_terminator() {
        let mut buffer = ReplyBuffer::default();
        assert_eq!(buffer.next_reply(), None);
        buffer.extend(b"{\"a\": 1}\r\n\r\n{\"b\"");
        assert_eq!(buffer.next_reply().as_deref(), Some(&b"{\"a\": 1}\r\n\r\n"[..]));
        assert_eq!(buffer.next_reply(), None);
        buffer.extend(b": 2}\r\n\r\n");
        assert_eq!(buffer.next_reply().as_deref(), Some(&b"{\"b\": 2}\r\n\r\n"[..]));
        assert_eq!(buffer.next_reply(), None);
    }

    #[test]
    fn reply_buffer_finds_a_terminator_split_across_reads() {
        let reply = b"{\"status\": \"OK\"}\r\n\r\n";
        for split in 0..=reply.len() {
            let mut buffer = ReplyBuffer::default();
            buffer.extend(&reply[..split]);
            let early = buffer.next_reply();
            buffer.extend(&reply[split..]);
            let whole = early.or_else(|| buffer.next_reply());
            assert_eq!(whole.as_deref(), Some(&reply[..]), "split at {split}");
        }
        let mut buffer = ReplyBuffer::default();
        for &byte in reply {
            assert_eq!(buffer.next_reply(), None);
            buffer.extend(&[byte]);
        }
        assert_eq!(buffer.next_reply().as_deref(), Some(&reply[..]));
    }
}
