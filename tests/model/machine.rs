//! The state-machine test shared by `state_machine` (the core in process)
//! and `state_machine_tcp` (the real server over TCP).
//!
//! proptest generates random [`Step`]s from the reference model's state (any
//! token ever issued, live or dead, mangled tokens, wrong passwords, unknown
//! users, malformed and over-long lines, pipelined and split writes, on
//! several connections); the [`Harness`] sends each step to the system under
//! test, compares every reply byte for byte with the model's, and after every
//! step checks three invariants of its own, kept in a [`Ledger`] built from
//! the replies alone (not from the model):
//!
//! - every acknowledged message is delivered exactly once, in send order per
//!   sender (checked at each `inbox`, and by draining every mailbox at the
//!   end of each case);
//! - `list` equals the users with live sessions;
//! - a logged-out token never works again.
//!
//! A failure panics with the whole exchange so far as a transcript in the
//! spec's example format (section 1 of `spec/PROTOCOL.md`), so that the
//! shrunk case proptest reports can be pasted into the spec as an example.
//!
//! Tokens: the model names its k-th token [`ref_token`]`(k)`; the system
//! under test hands out its own (predictable in process, random over TCP),
//! which the harness maps to the model's by order of issue.

// Each test crate uses a different transport.
#![allow(dead_code)]

use std::fmt;
use std::marker::PhantomData;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};
use serde_json::Value;

use crate::model::{self, escape_request, is_uuid_v4, py_dumps, reply_bytes, ModelServer, USERS};

/// Connections the clients use (`C1`..`C3`); one more (`C4`) carries the
/// harness's own probes.
pub const CONNECTIONS: usize = 3;
pub const PROBE: usize = CONNECTIONS;
/// The longest request line the system under test is configured to accept:
/// small, so that over-long lines are cheap to generate.
pub const MAX_LINE: usize = 128;

/// The proptest configuration: `PROGJAR_PROPTEST_CASES` (default 256) cases,
/// failures persisted under `tests/regressions/`, and shrinking bounded to
/// [`MAX_SHRINK_TIME`].
pub fn config(regressions: &'static str) -> Config {
    Config {
        cases: env_number("PROGJAR_PROPTEST_CASES", 256) as u32,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        max_shrink_time: MAX_SHRINK_TIME.as_millis() as u32,
        ..Config::default()
    }
}

/// The most time spent shrinking a failing case before it is reported as
/// it stands. A failure must show within about a minute, not as a CI
/// timeout: over TCP, a case that loses a reply waits out a read timeout at
/// every shrinking step, and unbounded shrinking of a broken pipeline once
/// ran for more than 8 minutes.
pub const MAX_SHRINK_TIME: std::time::Duration = std::time::Duration::from_secs(30);

/// The most steps in one case: `PROGJAR_PROPTEST_STEPS` (default 50).
pub fn max_steps() -> usize {
    env_number("PROGJAR_PROPTEST_STEPS", 50)
}

fn env_number(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// The model's name for its k-th token: UUIDv4-shaped, lowercase, with
/// letters, so that an upper-cased token is a different string.
pub fn ref_token(k: usize) -> String {
    format!("7e57c0de-0000-4000-8000-{:012x}", k + 1)
}

/// What a step sends for the k-th token when it was not issued before the
/// step began (after shrinking removed its `auth`, or when the `auth` is
/// pipelined in the same write): well-formed, and held by nobody on either
/// side, ever.
pub fn unissued_token(k: usize) -> String {
    format!("7e57c0de-0000-4000-9000-{:012x}", k + 1)
}

// ---------------------------------------------------------------------------
// Abstract requests

/// A username in a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Name {
    /// One of the built-in users.
    User(usize),
    /// A name no user has.
    Unknown,
    /// A known name in the wrong case.
    Upper(usize),
    /// The empty field.
    Empty,
}

impl Name {
    fn text(self) -> String {
        match self {
            Name::User(u) => USERS[u].username.into(),
            Name::Unknown => "pogba".into(),
            Name::Upper(u) => USERS[u].username.to_uppercase(),
            Name::Empty => String::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Password {
    Right,
    Wrong,
    Empty,
    /// A prefix of the right one.
    Prefix,
}

impl Password {
    fn text(self) -> &'static str {
        match self {
            Password::Right => "surabaya",
            Password::Wrong => "jakarta",
            Password::Empty => "",
            Password::Prefix => "surabay",
        }
    }
}

/// A token in a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tok {
    /// The k-th token issued (live or logged out; if not issued yet, a
    /// well-formed token nobody holds).
    Issued(usize),
    /// The k-th token, altered so that it names no session.
    Mangled(usize, Mangle),
    /// Never a token.
    Bogus,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mangle {
    /// Its last character dropped (a prefix of a real one).
    Truncated,
    /// A `0` appended (ERR-3.2).
    Suffixed,
    /// Upper-cased (or, for a token with no letters, truncated).
    Uppercased,
}

fn mangle(token: &str, how: Mangle) -> String {
    match how {
        Mangle::Truncated => token[..token.len() - 1].to_string(),
        Mangle::Suffixed => format!("{token}0"),
        Mangle::Uppercased if token.to_uppercase() != token => token.to_uppercase(),
        Mangle::Uppercased => mangle(token, Mangle::Truncated),
    }
}

/// What follows the last field of a request before `\r\n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tail {
    None,
    /// One space, as the original client sends.
    Space,
    /// Fields the command does not use (FIELD-3).
    Extra,
    /// White space only Python strips (FIELD-2).
    Odd(char),
}

impl Tail {
    fn text(self) -> String {
        match self {
            Tail::None => String::new(),
            Tail::Space => " ".into(),
            Tail::Extra => " and more".into(),
            Tail::Odd(c) => c.to_string(),
        }
    }
}

/// One request line.
#[derive(Clone, PartialEq, Eq)]
pub enum Action {
    Auth {
        user: Name,
        password: Password,
        tail: Tail,
    },
    /// `send TOKEN TO` and, when `text` is some, a space and the text.
    Send {
        token: Tok,
        to: Name,
        text: Option<String>,
    },
    Inbox {
        token: Tok,
        tail: Tail,
    },
    List {
        token: Tok,
        tail: Tail,
    },
    Logout {
        token: Tok,
        tail: Tail,
    },
    /// `send TOKEN` (a missing field).
    SendNoRecipient {
        token: Tok,
    },
    /// Any line (no `\r\n` inside; the terminator is added).
    Junk(Vec<u8>),
    /// A line `extra + 1` bytes over [`MAX_LINE`].
    Overlong(u8),
}

impl Action {
    /// The wire line, with `token` naming the k-th token.
    pub fn render(&self, token: &dyn Fn(usize) -> String) -> Vec<u8> {
        let tok = |t: Tok| match t {
            Tok::Issued(k) => token(k),
            Tok::Mangled(k, how) => mangle(&token(k), how),
            Tok::Bogus => "bogus".to_string(),
        };
        let line = match self {
            Action::Auth { user, password, tail } => {
                format!("auth {} {}{}\r\n", user.text(), password.text(), tail.text())
            }
            Action::Send { token, to, text: None } => {
                format!("send {} {}\r\n", tok(*token), to.text())
            }
            Action::Send { token, to, text: Some(text) } => {
                format!("send {} {} {text}\r\n", tok(*token), to.text())
            }
            Action::Inbox { token, tail } => format!("inbox {}{}\r\n", tok(*token), tail.text()),
            Action::List { token, tail } => format!("list {}{}\r\n", tok(*token), tail.text()),
            Action::Logout { token, tail } => format!("logout {}{}\r\n", tok(*token), tail.text()),
            Action::SendNoRecipient { token } => format!("send {}\r\n", tok(*token)),
            Action::Junk(bytes) => {
                let mut line = bytes.clone();
                line.extend_from_slice(b"\r\n");
                return line;
            }
            Action::Overlong(extra) => {
                let mut line = b"send ".to_vec();
                line.resize(MAX_LINE - 1 + usize::from(*extra), b'x');
                line.extend_from_slice(b"\r\n");
                return line;
            }
        };
        line.into_bytes()
    }

    /// The text a `send` stores, as the spec defines it for lines like this
    /// one: the raw rest of the line after the recipient field.
    fn sent_text(&self) -> Option<String> {
        match self {
            Action::Send { text: None, .. } => Some(String::new()),
            Action::Send { text: Some(text), .. } => Some(format!(" {text}\r\n")),
            _ => None,
        }
    }
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = self.render(&|k| format!("${{T{}}}", k + 1));
        f.write_str(&escape_request(&line).replace("$${", "${"))
    }
}

/// One step: one write (or two, split at `split`) of one or two request
/// lines on one connection, then one reply per line.
#[derive(Clone)]
pub struct Step {
    pub conn: usize,
    pub actions: Vec<Action>,
    pub split: Option<u16>,
}

impl Step {
    /// The bytes written, one entry per write.
    pub fn writes(&self, token: &dyn Fn(usize) -> String) -> Vec<Vec<u8>> {
        let bytes: Vec<u8> = self.actions.iter().flat_map(|a| a.render(token)).collect();
        match self.split {
            Some(at) if bytes.len() >= 2 => {
                let at = 1 + usize::from(at) % (bytes.len() - 1);
                vec![bytes[..at].to_vec(), bytes[at..].to_vec()]
            }
            _ => vec![bytes],
        }
    }
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "C{}>", self.conn + 1)?;
        for action in &self.actions {
            write!(f, " {action:?}")?;
        }
        if let Some(at) = self.split {
            write!(f, " (split {at})")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Generation: the reference state machine

/// The model's state, plus what the last step wrote and should get back.
#[derive(Clone, Debug)]
pub struct RefState {
    pub server: ModelServer,
    pub last_writes: Vec<Vec<u8>>,
    pub last_replies: Vec<Value>,
}

pub struct Reference;

fn name_strategy() -> impl Strategy<Value = Name> {
    prop_oneof![
        12 => (0..USERS.len()).prop_map(Name::User),
        1 => Just(Name::Unknown),
        1 => (0..USERS.len()).prop_map(Name::Upper),
        1 => Just(Name::Empty),
    ]
}

fn tail_strategy() -> impl Strategy<Value = Tail> {
    prop_oneof![
        6 => Just(Tail::None),
        6 => Just(Tail::Space),
        1 => Just(Tail::Extra),
        1 => prop::sample::select(vec!['\t', '\u{b}', '\u{c}', '\u{1c}', '\u{1f}', '\u{85}', '\u{a0}', '\u{3000}'])
            .prop_map(Tail::Odd),
    ]
}

fn token_strategy(model: &model::Model) -> BoxedStrategy<Tok> {
    let issued = model.issued.len();
    let live: Vec<usize> =
        (0..issued).filter(|&k| model.session_user(&ref_token(k)).is_some()).collect();
    let mangles =
        prop_oneof![Just(Mangle::Truncated), Just(Mangle::Suffixed), Just(Mangle::Uppercased)];
    let any_issued = 0..issued.max(1);
    let mut choices: Vec<(u32, BoxedStrategy<Tok>)> = vec![
        (3, any_issued.clone().prop_map(Tok::Issued).boxed()),
        (1, (any_issued, mangles).prop_map(|(k, m)| Tok::Mangled(k, m)).boxed()),
        (1, Just(Tok::Bogus).boxed()),
    ];
    if !live.is_empty() {
        choices.push((12, prop::sample::select(live).prop_map(Tok::Issued).boxed()));
    }
    proptest::strategy::Union::new_weighted(choices).boxed()
}

/// Message text: letters, spaces, characters JSON escapes, non-ASCII, and
/// bare `\r` or `\n` (never the pair, which would end the line).
fn text_strategy() -> impl Strategy<Value = String> {
    let chars = prop_oneof![
        8 => prop::char::range('a', 'z'),
        4 => Just(' '),
        1 => prop::sample::select(vec![
            '"', '\\', '/', '$', '{', '\t', '\r', '\n', '\u{0}', '\u{7f}', '\u{85}', '\u{a0}', 'é',
            '\u{2028}', '\u{ffff}', '😀', '\u{10ffff}',
        ]),
    ];
    prop::collection::vec(chars, 0..12).prop_map(|chars| {
        let mut text = String::new();
        for c in chars {
            if !(c == '\n' && text.ends_with('\r')) {
                text.push(c);
            }
        }
        text
    })
}

fn junk_strategy() -> impl Strategy<Value = Vec<u8>> {
    let fixed: Vec<&'static [u8]> = vec![
        b"",
        b"foo",
        b"AUTH messi surabaya",
        b" auth messi surabaya",
        b"auth\tmessi\tsurabaya",
        b"auth \xff\xfe surabaya",
        b"foo\nbar",
        b"inbox",
        b"list",
        b"logout",
        b"send",
        b"auth",
        b"auth messi",
        b"\x00",
        b"inbox \xc3",
        b"\r",
    ];
    prop_oneof![
        2 => prop::sample::select(fixed).prop_map(<[u8]>::to_vec),
        1 => prop::collection::vec(any::<u8>(), 0..24).prop_map(|bytes| {
            let mut line = Vec::new();
            for b in bytes {
                if !(b == b'\n' && line.last() == Some(&b'\r')) {
                    line.push(b);
                }
            }
            line
        }),
    ]
}

fn action_strategy(model: &model::Model) -> BoxedStrategy<Action> {
    let tok = token_strategy(model);
    let password = prop_oneof![
        12 => Just(Password::Right),
        1 => Just(Password::Wrong),
        1 => Just(Password::Empty),
        1 => Just(Password::Prefix),
    ];
    prop_oneof![
        6 => (name_strategy(), password, tail_strategy())
            .prop_map(|(user, password, tail)| Action::Auth { user, password, tail }),
        8 => (tok.clone(), name_strategy(), prop::option::weighted(0.9, text_strategy()))
            .prop_map(|(token, to, text)| Action::Send { token, to, text }),
        5 => (tok.clone(), tail_strategy()).prop_map(|(token, tail)| Action::Inbox { token, tail }),
        3 => (tok.clone(), tail_strategy()).prop_map(|(token, tail)| Action::List { token, tail }),
        3 => (tok.clone(), tail_strategy()).prop_map(|(token, tail)| Action::Logout { token, tail }),
        1 => tok.prop_map(|token| Action::SendNoRecipient { token }),
        2 => junk_strategy().prop_map(Action::Junk),
        1 => any::<u8>().prop_map(Action::Overlong),
    ]
    .boxed()
}

impl ReferenceStateMachine for Reference {
    type State = RefState;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<RefState> {
        Just(RefState {
            server: ModelServer::new(CONNECTIONS, MAX_LINE),
            last_writes: Vec::new(),
            last_replies: Vec::new(),
        })
        .boxed()
    }

    fn transitions(state: &RefState) -> BoxedStrategy<Step> {
        let action = action_strategy(&state.server.chat);
        (
            0..CONNECTIONS,
            prop_oneof![9 => prop::collection::vec(action.clone(), 1..=1), 1 => prop::collection::vec(action, 2..=2)],
            prop::option::weighted(0.25, any::<u16>()),
        )
            .prop_map(|(conn, actions, split)| Step { conn, actions, split })
            .boxed()
    }

    fn apply(mut state: RefState, step: &Step) -> RefState {
        let issued = state.server.chat.issued.len();
        let writes = step.writes(&|k| if k < issued { ref_token(k) } else { unissued_token(k) });
        state.last_replies.clear();
        for write in &writes {
            let replies = state.server.write(step.conn, write, ref_token);
            state.last_replies.extend(replies);
        }
        state.last_writes = writes;
        state
    }
}

// ---------------------------------------------------------------------------
// The systems under test

/// A way to reach a server: in process or over TCP.
pub trait Transport: Sized {
    /// A fresh server with the built-in users and a line limit of
    /// [`MAX_LINE`], and `CONNECTIONS + 1` connections to it.
    fn start() -> Self;
    /// Writes each chunk in turn on connection `conn`, then reads `replies`
    /// replies (fewer if the server does not send them).
    fn exchange(&mut self, conn: usize, writes: &[Vec<u8>], replies: usize) -> Vec<Vec<u8>>;
    /// Counts the server can report directly: (live sessions, pending
    /// messages). `None` when it cannot be looked into.
    fn counts(&mut self) -> Option<(usize, usize)> {
        None
    }
    fn stop(self);
}

/// What the replies so far say the state is, kept independently of the
/// model, in the system under test's own tokens.
#[derive(Default)]
pub struct Ledger {
    /// Live sessions: (token, user).
    live: Vec<(String, usize)>,
    /// Tokens logged out.
    dead: Vec<String>,
    /// Per recipient: acknowledged and not yet delivered (sender, text), in
    /// send order.
    outstanding: Vec<Vec<(usize, String)>>,
    /// Counters for the summary.
    delivered: usize,
}

impl Ledger {
    fn user_of(&self, token: &str) -> Option<usize> {
        self.live.iter().find(|(t, _)| t == token).map(|&(_, u)| u)
    }

    /// Checks an inbox reply against what was acknowledged for `user`.
    fn deliver(&mut self, user: usize, reply: &Value) -> Result<(), String> {
        let messages =
            reply["messages"].as_object().ok_or("inbox reply without a messages object")?;
        let mut got: Vec<(usize, String)> = Vec::new();
        for (sender, list) in messages {
            let from = USERS
                .iter()
                .position(|u| u.username == sender)
                .ok_or_else(|| format!("inbox names an unknown sender {sender:?}"))?;
            for item in list.as_array().ok_or("a sender's mail is not a list")? {
                if item["msg_from"] != USERS[from].name || item["msg_to"] != USERS[user].name {
                    return Err(format!("wrong msg_from/msg_to in {item}"));
                }
                let text = item["msg"].as_str().ok_or("msg is not a string")?;
                got.push((from, text.to_string()));
            }
        }
        let want = std::mem::take(&mut self.outstanding[user]);
        for (sender, from) in USERS.iter().enumerate() {
            let g: Vec<&String> =
                got.iter().filter(|(s, _)| *s == sender).map(|(_, t)| t).collect();
            let w: Vec<&String> =
                want.iter().filter(|(s, _)| *s == sender).map(|(_, t)| t).collect();
            if g != w {
                return Err(format!(
                    "messages from {} to {}: acknowledged {w:?} (in send order), delivered {g:?}",
                    from.username, USERS[user].username
                ));
            }
        }
        self.delivered += got.len();
        Ok(())
    }
}

/// The system under test, with the token map, the ledger and the transcript.
pub struct Harness<T: Transport> {
    transport: T,
    /// `real[k]`: the system's token for the model's k-th.
    real: Vec<String>,
    ledger: Ledger,
    /// The exchange so far, in the spec's example format.
    transcript: Vec<String>,
    steps: usize,
}

impl<T: Transport> Harness<T> {
    fn real_token(&self, k: usize) -> String {
        self.real.get(k).cloned().unwrap_or_else(|| unissued_token(k))
    }

    /// Model-space text with the tokens bound so far as `${Tk}`.
    fn vars(&self, text: &str) -> String {
        let mut text = text.to_string();
        for k in 0..self.real.len() {
            text = text.replace(&ref_token(k), &format!("${{T{}}}", k + 1));
        }
        text
    }

    /// System-space bytes in model space.
    fn to_model_space(&self, bytes: &[u8]) -> String {
        let mut text = String::from_utf8_lossy(bytes).into_owned();
        for (k, real) in self.real.iter().enumerate() {
            text = text.replace(real.as_str(), &ref_token(k));
        }
        text
    }

    fn reply_line(&self, conn: usize, expected: &Value) -> String {
        let json = py_dumps(expected).replace('$', "$$");
        let json = match expected.get("tokenid").and_then(Value::as_str) {
            // The reply that binds a token.
            Some(token) => json.replace(token, &format!("${{T{}:uuid}}", self.real.len())),
            None => self.vars(&json),
        };
        format!("C{}< {json}", conn + 1)
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "{what}\n\nThe exchange, in the spec's example format ({} steps; `C4` is the harness's probe):\n\n\
             ```example XXX-0.0 SHOULD\n{}\n```\n",
            self.steps,
            self.transcript.join("\n")
        );
    }

    /// Compares one actual reply with the model's; learns the token of a
    /// successful `auth`.
    fn check_reply(&mut self, conn: usize, expected: &Value, actual: Option<&Vec<u8>>) -> Value {
        let Some(actual) = actual else {
            self.transcript.push(format!("# C{} got no reply; expected:", conn + 1));
            self.transcript.push(self.reply_line(conn, expected));
            self.fail("the system under test sent fewer replies than requests");
        };
        if let Some(model_token) = expected.get("tokenid").and_then(Value::as_str) {
            let k = self.real.len();
            assert_eq!(model_token, ref_token(k), "the model issues tokens in order");
            let got: Option<String> = serde_json::from_slice::<Value>(strip_terminator(actual))
                .ok()
                .and_then(|v| v.get("tokenid").and_then(Value::as_str).map(str::to_string));
            match got {
                Some(token) if is_uuid_v4(&token) && !self.real.contains(&token) => {
                    self.real.push(token)
                }
                Some(token) => {
                    self.transcript
                        .push(format!("# got the token {token:?}: not a fresh lowercase UUIDv4"));
                    self.fail("a token is not fresh or not a lowercase UUIDv4 (AUTH-4)");
                }
                None => {} // The comparison below reports it.
            }
        }
        let want = String::from_utf8(reply_bytes(expected)).expect("ASCII");
        let got = self.to_model_space(actual);
        if got != want {
            let line = self.reply_line(conn, expected);
            self.transcript.push(line);
            self.transcript.push(format!(
                "# ^ expected exactly: {}",
                self.vars(&escape_request(want.as_bytes()))
            ));
            self.transcript.push(format!(
                "#   but got:          {}",
                self.vars(&escape_request(got.as_bytes()))
            ));
            self.fail("a reply differs from the model's");
        }
        let line = self.reply_line(conn, expected);
        self.transcript.push(line);
        serde_json::from_slice(strip_terminator(actual))
            .expect("a reply equal to the model's is JSON")
    }

    /// Updates the ledger from a request and its (already checked) reply.
    fn record(&mut self, action: &Action, real_line: &[u8], reply: &Value) {
        if reply["status"] != "OK" {
            return;
        }
        let line = String::from_utf8_lossy(real_line);
        let token_field = || line.split(' ').nth(1).map(model::py_strip).unwrap_or("").to_string();
        match action {
            Action::Auth { user: Name::User(u), .. } => {
                let token = reply["tokenid"].as_str().expect("checked").to_string();
                self.ledger.live.push((token, *u));
            }
            Action::Send { to: Name::User(to), .. } => {
                let from =
                    self.ledger.user_of(&token_field()).expect("send worked, so the token is live");
                let text = action.sent_text().expect("a send");
                self.ledger.outstanding[*to].push((from, text));
            }
            Action::Inbox { .. } => {
                let user = self
                    .ledger
                    .user_of(&token_field())
                    .expect("inbox worked, so the token is live");
                if let Err(problem) = self.ledger.deliver(user, reply) {
                    self.fail(&format!("invariant broken: {problem}"));
                }
            }
            Action::Logout { .. } => {
                let token = token_field();
                self.ledger.live.retain(|(t, _)| *t != token);
                self.ledger.dead.push(token);
            }
            _ => {}
        }
    }

    /// The invariants, probed on the system under test through `C4`.
    fn check_invariants(&mut self) {
        // A logged-out token never works again: `list` with each must fail.
        if !self.ledger.dead.is_empty() {
            let probes: Vec<u8> = self
                .ledger
                .dead
                .iter()
                .flat_map(|t| format!("list {t}\r\n").into_bytes())
                .collect();
            let replies = self.transport.exchange(PROBE, &[probes], self.ledger.dead.len());
            let want = reply_bytes(&model::error(model::msg::UNKNOWN_TOKEN));
            for (i, token) in self.ledger.dead.clone().iter().enumerate() {
                if replies.get(i) != Some(&want) {
                    let shown = self.vars(&self.to_model_space(token.as_bytes()));
                    self.transcript.push(format!("C4> list {shown}\\r\\n"));
                    self.transcript.push(format!(
                        "C4< {}",
                        py_dumps(&model::error(model::msg::UNKNOWN_TOKEN))
                    ));
                    let got = replies
                        .get(i)
                        .map(|r| self.vars(&escape_request(self.to_model_space(r).as_bytes())));
                    self.transcript.push(format!("# ^ got: {got:?}"));
                    self.fail("invariant broken: a logged-out token still works");
                }
            }
        }
        // `list` equals the users with live sessions, each once.
        if let Some((token, _)) = self.ledger.live.first().cloned() {
            let replies =
                self.transport.exchange(PROBE, &[format!("list {token}\r\n").into_bytes()], 1);
            let listed: Option<Vec<String>> = replies
                .first()
                .and_then(|r| serde_json::from_slice::<Value>(strip_terminator(r)).ok())
                .and_then(|v| v["messages"].as_array().cloned())
                .map(|items| items.iter().map(|i| i.as_str().unwrap_or("?").to_string()).collect());
            let mut want: Vec<String> = Vec::new();
            for &(_, u) in &self.ledger.live {
                let line = format!("{} - {}", USERS[u].username, USERS[u].name);
                if !want.contains(&line) {
                    want.push(line);
                }
            }
            let ok = listed.as_ref().is_some_and(|l| {
                let mut sorted = l.clone();
                sorted.sort();
                sorted.dedup();
                let mut w = want.clone();
                w.sort();
                sorted.len() == l.len() && sorted == w
            });
            if !ok {
                let shown = self.vars(&self.to_model_space(token.as_bytes()));
                self.transcript.push(format!("C4> list {shown}\\r\\n"));
                self.transcript.push(format!(
                    "C4<~ {{\"status\": \"OK\", \"messages\": {}}}",
                    py_dumps(&Value::from(want))
                ));
                self.transcript.push(format!("# ^ got: {listed:?}"));
                self.fail("invariant broken: list is not the users with live sessions");
            }
        }
        if let Some((sessions, pending)) = self.transport.counts() {
            let outstanding: usize = self.ledger.outstanding.iter().map(Vec::len).sum();
            if (sessions, pending) != (self.ledger.live.len(), outstanding) {
                self.fail(&format!(
                    "invariant broken: the server holds {sessions} sessions and {pending} messages, \
                     the replies say {} and {outstanding}",
                    self.ledger.live.len()
                ));
            }
        }
    }

    /// At the end of a case every acknowledged message must still be
    /// deliverable: log each user in once more and drain their inbox.
    fn drain(&mut self) {
        for (user, u) in USERS.iter().enumerate() {
            let auth = format!("auth {} {}\r\n", u.username, u.password).into_bytes();
            let replies = self.transport.exchange(PROBE, &[auth], 1);
            let token = replies
                .first()
                .and_then(|r| serde_json::from_slice::<Value>(strip_terminator(r)).ok())
                .and_then(|v| v["tokenid"].as_str().map(str::to_string));
            let Some(token) = token else { self.fail("drain: auth failed") };
            let replies =
                self.transport.exchange(PROBE, &[format!("inbox {token}\r\n").into_bytes()], 1);
            let reply = replies
                .first()
                .and_then(|r| serde_json::from_slice::<Value>(strip_terminator(r)).ok());
            let Some(reply) = reply else { self.fail("drain: inbox gave no JSON reply") };
            if let Err(problem) = self.ledger.deliver(user, &reply) {
                self.transcript
                    .push(format!("# (end of case: {} logs in and reads the inbox)", u.username));
                self.fail(&format!("invariant broken at the end of the case: {problem}"));
            }
            self.transport.exchange(PROBE, &[format!("logout {token}\r\n").into_bytes()], 1);
        }
    }
}

fn strip_terminator(reply: &[u8]) -> &[u8] {
    reply.strip_suffix(model::TERMINATOR).unwrap_or(reply)
}

/// Splits a byte stream into replies (each ends with `\r\n\r\n`); returns
/// the complete ones and leaves the rest in `buf`.
pub fn take_replies(buf: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut replies = Vec::new();
    while let Some(at) = buf.windows(4).position(|w| w == model::TERMINATOR) {
        replies.push(buf.drain(..at + 4).collect());
    }
    replies
}

/// The [`StateMachineTest`] over a transport.
pub struct Machine<T>(PhantomData<T>);

impl<T: Transport> StateMachineTest for Machine<T> {
    type SystemUnderTest = Harness<T>;
    type Reference = Reference;

    fn init_test(_: &RefState) -> Harness<T> {
        Harness {
            transport: T::start(),
            real: Vec::new(),
            ledger: Ledger { outstanding: vec![Vec::new(); USERS.len()], ..Ledger::default() },
            transcript: Vec::new(),
            steps: 0,
        }
    }

    fn apply(mut h: Harness<T>, ref_state: &RefState, step: Step) -> Harness<T> {
        h.steps += 1;
        let writes = step.writes(&|k| h.real_token(k));
        let real_lines: Vec<Vec<u8>> =
            step.actions.iter().map(|a| a.render(&|k| h.real_token(k))).collect();
        for write in &ref_state.last_writes {
            let line = format!("C{}> {}", step.conn + 1, h.vars(&escape_request(write)));
            h.transcript.push(line);
        }
        let replies = h.transport.exchange(step.conn, &writes, step.actions.len());
        assert_eq!(ref_state.last_replies.len(), step.actions.len(), "one model reply per line");
        for (i, action) in step.actions.iter().enumerate() {
            let reply = h.check_reply(step.conn, &ref_state.last_replies[i], replies.get(i));
            h.record(action, &real_lines[i], &reply);
        }
        if replies.len() > step.actions.len() {
            h.fail("the system under test sent more replies than requests");
        }
        // The invariants are probed here rather than in `check_invariants`:
        // probing writes to the system, which needs `&mut`.
        h.check_invariants();
        h
    }

    fn teardown(mut h: Harness<T>) {
        h.drain();
        STATS.with(|s| {
            let mut s = s.borrow_mut();
            s.cases += 1;
            s.steps += h.steps;
            s.delivered += h.ledger.delivered;
        });
        h.transport.stop();
    }
}

/// Totals over the cases a test ran, for its closing line.
#[derive(Default, Debug)]
pub struct Stats {
    pub cases: usize,
    pub steps: usize,
    pub delivered: usize,
}

thread_local! {
    pub static STATS: std::cell::RefCell<Stats> = std::cell::RefCell::new(Stats::default());
}

/// Runs the state machine over `T` with [`config`] and [`max_steps`], then
/// prints what it covered.
pub fn run<T: Transport>(what: &str, regressions: &'static str) {
    use proptest::test_runner::{TestError, TestRunner};
    let config = config(regressions);
    let mut runner = TestRunner::new(config.clone());
    let strategy = Reference::sequential_strategy(1..=max_steps());
    let result = runner.run(&strategy, |(initial, transitions, seen)| {
        Machine::<T>::test_sequential(config.clone(), initial, transitions, seen);
        Ok(())
    });
    match result {
        Ok(()) => STATS.with(|s| {
            let s = s.borrow();
            println!(
                "state machine ({what}): {} cases passed, {} steps in all (up to {} per case), \
                 {} messages delivered exactly once",
                config.cases,
                s.steps,
                max_steps(),
                s.delivered
            );
        }),
        Err(TestError::Fail(reason, (_, transitions, _))) => {
            panic!("{reason}\nminimal failing steps: {transitions:#?}")
        }
        Err(TestError::Abort(reason)) => panic!("aborted: {reason}"),
    }
}
