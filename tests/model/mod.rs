//! The reference model of the Progjar chat protocol: the *expected* side of
//! every check in `state_machine`, `state_machine_tcp`, `exhaustive` and the
//! `session` fuzz target.
//!
//! It is written from `spec/PROTOCOL.md` alone and shares no code with
//! `src/`: if the model and the core were built from the same parts, a bug
//! in a shared part would agree with itself and no check would see it. So it
//! is deliberately shaped as the *smallest, most literal* reading of the spec
//! and of the original Python server, and never for speed:
//!
//! - a request is split exactly as Python's `line.split(" ")` does, each
//!   field used is `.strip()`ped with Python's own list of white space, and a
//!   missing field is the original's `IndexError`;
//! - the text of a `send` is rebuilt as the original builds it, word by word
//!   (`message = "{} {}".format(message, w)` for every field from the
//!   fourth on), not cut out of the line as the core does;
//! - the state is three plain lists: the live sessions in the order they were
//!   opened, the tokens ever issued, and, per recipient, the pending mail
//!   grouped per sender in the order of each sender's oldest pending message;
//! - `list` walks the live sessions oldest first and keeps each user once;
//! - each reply is a `serde_json::Value` built in the key order of the spec,
//!   and [`py_dumps`] spells it the way Python's `json.dumps` does, with a
//!   few lines per JSON kind (`char::encode_utf16` for `\uXXXX`), so replies
//!   can be compared with the core's *bytes*, the strongest comparison;
//! - framing ([`ModelConn`]) keeps every byte of the unfinished line and
//!   looks for the first `\r\n`, with no resumable search and no discarding.
//!
//! Tokens are random in the protocol; here they come from the caller (the
//! `token_name` argument), so that the same model can follow a core that uses
//! predictable tokens byte for byte, or a real server whose random tokens the
//! caller maps to the model's by order of issue.

// Each test crate that includes the model uses a different part of it.
#![allow(dead_code)]

use serde_json::{json, Map, Value};

/// One user of the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelUser {
    pub username: &'static str,
    pub name: &'static str,
    pub password: &'static str,
}

/// The reference server's built-in users (spec §5), in the order the spec
/// lists them.
pub const USERS: [ModelUser; 3] = [
    ModelUser { username: "messi", name: "Lionel Messi", password: "surabaya" },
    ModelUser { username: "henderson", name: "Jordan Henderson", password: "surabaya" },
    ModelUser { username: "lineker", name: "Gary Lineker", password: "surabaya" },
];

/// The reply terminator (TRANS-2).
pub const TERMINATOR: &[u8] = b"\r\n\r\n";

/// The error messages of the spec.
pub mod msg {
    pub const UNKNOWN_COMMAND: &str = "**Protocol Tidak Benar";
    pub const MISSING_FIELDS: &str = "--Protocol Tidak Benar";
    pub const NOT_UTF8: &str = "--Request Bukan UTF-8";
    pub const TOO_LONG: &str = "--Request Terlalu Panjang";
    pub const USER_NOT_FOUND: &str = "User Tidak Ada";
    pub const WRONG_PASSWORD: &str = "Password Salah";
    pub const RECIPIENT_NOT_FOUND: &str = "User Tidak Ditemukan";
    pub const UNKNOWN_TOKEN: &str = "Informasi tidak ditemukan";
    /// The reference server's limits (spec §12), which the model does not
    /// model: a full mailbox and a server at its connection limit.
    pub const MAILBOX_FULL: &str = "Inbox Penuh";
    pub const SERVER_FULL: &str = "Server Penuh";
}

/// The fixed texts of the successful replies of `send` and `logout`.
pub mod ok {
    pub const MESSAGE_SENT: &str = "Message Sent";
    pub const LOGGED_OUT: &str = "Anda berhasil logout!";
}

/// The whole protocol state, as plainly as it can be written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Model {
    /// Live sessions, oldest first: (token, index into [`USERS`]).
    pub sessions: Vec<(String, usize)>,
    /// Every token ever issued, in order of issue (live or not).
    pub issued: Vec<String>,
    /// Per recipient (index into [`USERS`]): per sender, in the order of the
    /// sender's oldest pending message, the pending texts in send order.
    pub mail: Vec<Vec<(usize, Vec<String>)>>,
}

impl Default for Model {
    fn default() -> Self {
        Self::new()
    }
}

/// An error reply.
pub fn error(message: &str) -> Value {
    json!({"status": "ERROR", "message": message})
}

impl Model {
    /// A server at start: no sessions, no mail.
    pub fn new() -> Self {
        Self { sessions: Vec::new(), issued: Vec::new(), mail: vec![Vec::new(); USERS.len()] }
    }

    /// The reply to one request line (terminator included). When the
    /// request opens a session, its token is `token_name(n)`, `n` being how
    /// many tokens were issued before.
    pub fn handle_line(&mut self, line: &[u8], token_name: impl Fn(usize) -> String) -> Value {
        let Ok(line) = std::str::from_utf8(line) else {
            return error(msg::NOT_UTF8);
        };
        // Python: `j = line.split(" ")`; `j[i].strip()` for each field used.
        let j: Vec<&str> = line.split(' ').collect();
        let field = |i: usize| j.get(i).map(|f| py_strip(f));
        match field(0).unwrap_or("") {
            "auth" => match (field(1), field(2)) {
                (Some(username), Some(password)) => self.auth(username, password, token_name),
                _ => error(msg::MISSING_FIELDS),
            },
            "send" => match (field(1), field(2)) {
                (Some(token), Some(to)) => {
                    let mut message = String::new();
                    for w in &j[3..] {
                        message = format!("{message} {w}");
                    }
                    self.send(token, to, message)
                }
                _ => error(msg::MISSING_FIELDS),
            },
            "inbox" => match field(1) {
                Some(token) => self.inbox(token),
                None => error(msg::MISSING_FIELDS),
            },
            "list" => match field(1) {
                Some(token) => self.list(token),
                None => error(msg::MISSING_FIELDS),
            },
            "logout" => match field(1) {
                Some(token) => self.logout(token),
                None => error(msg::MISSING_FIELDS),
            },
            _ => error(msg::UNKNOWN_COMMAND),
        }
    }

    fn find_user(username: &str) -> Option<usize> {
        USERS.iter().position(|u| u.username == username)
    }

    /// The user of a live session.
    pub fn session_user(&self, token: &str) -> Option<usize> {
        self.sessions.iter().find(|(t, _)| t == token).map(|&(_, user)| user)
    }

    fn auth(
        &mut self,
        username: &str,
        password: &str,
        token_name: impl Fn(usize) -> String,
    ) -> Value {
        let Some(user) = Self::find_user(username) else {
            return error(msg::USER_NOT_FOUND);
        };
        if USERS[user].password != password {
            return error(msg::WRONG_PASSWORD);
        }
        let token = token_name(self.issued.len());
        assert!(!self.issued.contains(&token), "the token supply repeated {token:?}");
        self.issued.push(token.clone());
        self.sessions.push((token.clone(), user));
        json!({"status": "OK", "tokenid": token})
    }

    fn send(&mut self, token: &str, to: &str, message: String) -> Value {
        let Some(from) = self.session_user(token) else {
            return error(msg::UNKNOWN_TOKEN);
        };
        let Some(to) = Self::find_user(to) else {
            return error(msg::RECIPIENT_NOT_FOUND);
        };
        let mailbox = &mut self.mail[to];
        match mailbox.iter_mut().find(|(sender, _)| *sender == from) {
            Some((_, texts)) => texts.push(message),
            None => mailbox.push((from, vec![message])),
        }
        json!({"status": "OK", "message": ok::MESSAGE_SENT})
    }

    fn inbox(&mut self, token: &str) -> Value {
        let Some(me) = self.session_user(token) else {
            return error(msg::UNKNOWN_TOKEN);
        };
        let mut messages = Map::new();
        for (from, texts) in std::mem::take(&mut self.mail[me]) {
            let list: Vec<Value> = texts
                .into_iter()
                .map(|text| json!({"msg_from": USERS[from].name, "msg_to": USERS[me].name, "msg": text}))
                .collect();
            messages.insert(USERS[from].username.to_string(), Value::Array(list));
        }
        json!({"status": "OK", "messages": messages})
    }

    fn list(&self, token: &str) -> Value {
        if self.session_user(token).is_none() {
            return error(msg::UNKNOWN_TOKEN);
        }
        json!({"status": "OK", "messages": self.online_lines()})
    }

    /// `"username - Full Name"` of each user with a live session, in the
    /// order of their earliest live session (LIST-1, LIST-2).
    pub fn online_lines(&self) -> Vec<String> {
        let mut users: Vec<usize> = Vec::new();
        for &(_, user) in &self.sessions {
            if !users.contains(&user) {
                users.push(user);
            }
        }
        users.iter().map(|&u| format!("{} - {}", USERS[u].username, USERS[u].name)).collect()
    }

    fn logout(&mut self, token: &str) -> Value {
        match self.sessions.iter().position(|(t, _)| t == token) {
            Some(at) => {
                self.sessions.remove(at);
                json!({"status": "OK", "messages": ok::LOGGED_OUT})
            }
            None => error(msg::UNKNOWN_TOKEN),
        }
    }

    /// How many messages wait, over all mailboxes.
    pub fn pending(&self) -> usize {
        self.mail.iter().flatten().map(|(_, texts)| texts.len()).sum()
    }
}

/// One connection's framing (TRANS-2..4 and spec §12): each `\r\n` ends one
/// request; a line longer than `max_line` bytes (terminator included) is
/// answered once with `--Request Terlalu Panjang` and skipped up to its
/// `\r\n`. The reference server answers an over-long line as soon as it holds
/// `max_line` bytes of it with no `\r\n`, so that it never buffers more; the
/// model answers at that same moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ModelConn {
    /// Every byte of the unfinished line.
    pending: Vec<u8>,
    /// The unfinished line was already answered as too long.
    answered: bool,
}

/// What one connection's bytes amount to, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framed {
    /// A whole request line, terminator included.
    Line(Vec<u8>),
    /// A line over the limit.
    TooLong,
}

impl ModelConn {
    /// Takes the bytes of one write.
    pub fn feed(&mut self, data: &[u8], max_line: usize) -> Vec<Framed> {
        self.pending.extend_from_slice(data);
        let mut out = Vec::new();
        while let Some(at) = self.pending.windows(2).position(|w| w == b"\r\n") {
            let line: Vec<u8> = self.pending.drain(..at + 2).collect();
            if std::mem::take(&mut self.answered) {
                continue;
            }
            if line.len() > max_line {
                out.push(Framed::TooLong);
            } else {
                out.push(Framed::Line(line));
            }
        }
        if !self.answered && self.pending.len() >= max_line {
            self.answered = true;
            out.push(Framed::TooLong);
        }
        out
    }

    /// Whether bytes of an unfinished line wait.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && !self.answered
    }
}

/// A whole server: the state and one framing per connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelServer {
    pub chat: Model,
    pub conns: Vec<ModelConn>,
    pub max_line: usize,
}

impl ModelServer {
    pub fn new(connections: usize, max_line: usize) -> Self {
        Self { chat: Model::new(), conns: vec![ModelConn::default(); connections], max_line }
    }

    /// The replies to one write on connection `conn`, in order.
    pub fn write(
        &mut self,
        conn: usize,
        data: &[u8],
        token_name: impl Fn(usize) -> String,
    ) -> Vec<Value> {
        let framed = self.conns[conn].feed(data, self.max_line);
        framed
            .into_iter()
            .map(|f| match f {
                Framed::Line(line) => self.chat.handle_line(&line, &token_name),
                Framed::TooLong => error(msg::TOO_LONG),
            })
            .collect()
    }
}

/// Python's `str.isspace()` for one character: the characters that
/// `str.strip()` removes. Spelled out from Python's `_PyUnicode_IsWhitespace`.
pub fn py_is_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | '\u{1c}'..='\u{1f}' | ' ' | '\u{85}' | '\u{a0}'
            | '\u{1680}' | '\u{2000}'..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}'
            | '\u{205f}' | '\u{3000}'
    )
}

/// Python's `s.strip()`.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(py_is_space)
}

/// Python's `json.dumps(v)` with default arguments, for the values replies
/// are made of (no floats: no reply holds one).
pub fn py_dumps(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            assert!(!n.is_f64(), "the model never builds a float");
            n.to_string()
        }
        Value::String(s) => py_str(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(py_dumps).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let items: Vec<String> =
                map.iter().map(|(k, v)| format!("{}: {}", py_str(k), py_dumps(v))).collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

/// A Python `json.dumps` string (`ensure_ascii=True`).
pub fn py_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// The exact bytes of a reply: `json.dumps(reply)` and the terminator.
pub fn reply_bytes(v: &Value) -> Vec<u8> {
    let mut out = py_dumps(v).into_bytes();
    out.extend_from_slice(TERMINATOR);
    out
}

/// Tokens named the way the core's `SequentialTokens` names them
/// (`00000000-0000-4000-8000-000000000001` for the first): for checks that
/// feed the very same bytes to the core and to the model.
pub fn sequential_token(issued_before: usize) -> String {
    format!("00000000-0000-4000-8000-{:012x}", issued_before + 1)
}

/// Whether `s` is a lowercase hyphenated UUID of version 4 (AUTH-4).
pub fn is_uuid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        })
        && b[14] == b'4'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
}

/// Spec example format (section 1) for the text of a `>` line: `\r`, `\n`,
/// `\t`, `\\`, `\xHH` for every other byte outside printable ASCII, `$$` for
/// `$`, and a trailing space as `\x20`.
pub fn escape_request(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            b'$' => out.push_str("$$"),
            b' '..=b'~' => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    if out.ends_with(' ') {
        out.pop();
        out.push_str("\\x20");
    }
    out
}
