//! Exhaustive bounded check: EVERY sequence of abstract actions up to
//! [`DEPTH`] long, over an alphabet of [`alphabet`] actions (every command,
//! right and wrong passwords, an unknown user and recipient, live, dead,
//! never-issued and mangled tokens, malformed, non-UTF-8 and over-long lines,
//! and a request split across two writes on a second connection), is run on
//! the core as the server runs it (`Connection` + `Batch::answer`) and on the reference model
//! (`tests/model`), and every reply must be the model's, byte for byte.
//!
//! Pruning. The search is breadth-first and visits each distinct model state
//! (sessions, tokens issued, pending mail, each connection's unfinished
//! bytes) once per depth: two sequences that reach the same model state have
//! the same future, because every reply and every next state of the protocol
//! is a function of that state and the request alone (the spec has no clock,
//! no randomness the model does not fix, and no hidden state). So checking
//! every action from every distinct state reached within the first
//! `DEPTH - 1` steps covers every sequence of `DEPTH` steps, while running
//! only a fraction of them. The core is rebuilt for each state by replaying
//! the first sequence that reached it, and its session and message counts are
//! compared with the model's at each state as well.

mod model;

use std::collections::HashMap;

use model::{py_dumps, reply_bytes, sequential_token, ModelServer};
use progjar_chat::protocol::connection::Connection;
use progjar_chat::protocol::token::SequentialTokens;
use progjar_chat::protocol::users::UserDirectory;
use progjar_chat::shared::SharedChat;

/// How many steps every sequence has (at least). `PROGJAR_EXHAUSTIVE_DEPTH`
/// raises it for long runs.
const DEPTH: usize = 6;
/// Connections: `C1` sends whole requests, `C2` also splits one.
const CONNECTIONS: usize = 2;
/// A small line limit, so that an over-long line is short.
const MAX_LINE: usize = 64;

/// One abstract action: what to write on which connection. Tokens are
/// named by their order of issue (`T0` is the first token ever issued), so
/// an action can name a token that is live, logged out, or not issued yet.
#[derive(Clone, Copy, Debug)]
enum Act {
    Auth(&'static str, &'static str),
    /// `send Tk TO TEXT`, where the text numbers the message in its
    /// recipient's mailbox so that a reordering shows.
    Send(usize, &'static str),
    Inbox(usize),
    List(usize),
    Logout(usize),
    /// `inbox` with a `0` appended to the first token.
    InboxSuffixed,
    /// `send T0` with no recipient.
    SendNoRecipient,
    /// An unknown command.
    Unknown,
    /// Not UTF-8.
    NotUtf8,
    /// A line one byte over the limit.
    Overlong,
    /// `list T0\r` on `C2`: a request without its final `\n`.
    Partial,
    /// `\n` on `C2`.
    Finish,
}

fn alphabet() -> Vec<Act> {
    let mut acts = vec![
        Act::Auth("messi", "surabaya"),
        Act::Auth("henderson", "surabaya"),
        Act::Auth("lineker", "surabaya"),
        Act::Auth("messi", "jakarta"),
        Act::Auth("pogba", "surabaya"),
    ];
    for k in 0..3 {
        acts.extend([Act::Send(k, "messi"), Act::Send(k, "henderson"), Act::Send(k, "lineker")]);
    }
    acts.push(Act::Send(0, "pogba"));
    for k in 0..3 {
        acts.extend([Act::Inbox(k), Act::List(k), Act::Logout(k)]);
    }
    acts.extend([
        Act::InboxSuffixed,
        Act::SendNoRecipient,
        Act::Unknown,
        Act::NotUtf8,
        Act::Overlong,
        Act::Partial,
        Act::Finish,
    ]);
    acts
}

/// The connection and bytes of an action in a given model state. Both sides
/// name tokens as the core's `SequentialTokens` does, so the bytes are the
/// same for both.
fn render(act: Act, state: &ModelServer) -> (usize, Vec<u8>) {
    let t = |k: usize| sequential_token(k);
    let line = match act {
        Act::Auth(user, password) => format!("auth {user} {password}\r\n"),
        Act::Send(k, to) => {
            let n = model::USERS.iter().position(|u| u.username == to).map_or(0, |u| {
                state.chat.mail[u].iter().map(|(_, texts)| texts.len()).sum::<usize>()
            });
            format!("send {} {to} m{n} \r\n", t(k))
        }
        Act::Inbox(k) => format!("inbox {}\r\n", t(k)),
        Act::List(k) => format!("list {} \r\n", t(k)),
        Act::Logout(k) => format!("logout {}\r\n", t(k)),
        Act::InboxSuffixed => format!("inbox {}0\r\n", t(0)),
        Act::SendNoRecipient => format!("send {}\r\n", t(0)),
        Act::Unknown => "foo bar\r\n".into(),
        Act::NotUtf8 => return (0, b"auth \xff\xfe surabaya\r\n".to_vec()),
        Act::Overlong => format!("send {} messi {}\r\n", t(0), "x".repeat(MAX_LINE)),
        Act::Partial => return (1, format!("list {}\r", t(0)).into_bytes()),
        Act::Finish => return (1, b"\n".to_vec()),
    };
    (0, line.into_bytes())
}

/// The system under test: the core as the server wires it, one
/// `Connection` per connection and one `SharedChat`, each read one batch.
struct Core {
    chat: SharedChat,
    conns: Vec<Connection>,
    tokens: SequentialTokens,
}

impl Core {
    fn new() -> Self {
        Self {
            chat: SharedChat::new(UserDirectory::builtin()),
            conns: (0..CONNECTIONS).map(|_| Connection::new(MAX_LINE)).collect(),
            tokens: SequentialTokens::default(),
        }
    }

    fn write(&mut self, conn: usize, bytes: &[u8]) -> Vec<u8> {
        let Self { chat, conns, tokens } = self;
        let mut out = Vec::new();
        let mut batch = chat.batch();
        conns[conn].handle_bytes(bytes, |request| {
            batch.answer(request, tokens, &mut out);
        });
        drop(batch);
        out
    }
}

/// A failing sequence, as a transcript in the spec's example format.
fn transcript(path: &[Act], last_got: &[u8]) -> String {
    let mut model = ModelServer::new(CONNECTIONS, MAX_LINE);
    let mut lines = Vec::new();
    for &act in path {
        let (conn, bytes) = render(act, &model);
        lines.push(format!("C{}> {}", conn + 1, model::escape_request(&bytes)));
        for reply in model.write(conn, &bytes, sequential_token) {
            lines.push(format!("C{}< {}", conn + 1, py_dumps(&reply).replace('$', "$$")));
        }
    }
    lines.push(format!(
        "# ^ the core's bytes for the last step: {}",
        model::escape_request(last_got)
    ));
    lines.join("\n")
}

/// Runs `path` on a fresh core and a fresh model, checking every reply;
/// returns both, in the state the path leads to.
fn replay(path: &[Act]) -> (Core, ModelServer) {
    let mut core = Core::new();
    let mut model = ModelServer::new(CONNECTIONS, MAX_LINE);
    for (i, &act) in path.iter().enumerate() {
        step(&mut core, &mut model, act, &path[..=i]);
    }
    (core, model)
}

/// One action on both sides; panics with a transcript if they disagree.
fn step(core: &mut Core, model: &mut ModelServer, act: Act, path: &[Act]) {
    let (conn, bytes) = render(act, model);
    let got = core.write(conn, &bytes);
    let want: Vec<u8> =
        model.write(conn, &bytes, sequential_token).iter().flat_map(reply_bytes).collect();
    if got != want {
        panic!(
            "the core and the model disagree after {} steps:\n\n```example XXX-0.0 SHOULD\n{}\n```\n",
            path.len(),
            transcript(path, &got)
        );
    }
}

#[test]
fn every_sequence_up_to_the_depth_agrees_with_the_model() {
    let depth: usize = std::env::var("PROGJAR_EXHAUSTIVE_DEPTH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEPTH);
    let acts = alphabet();
    let started = std::time::Instant::now();
    // The states first reached at the current depth, each with the first
    // path that reached it.
    let mut frontier: Vec<(Vec<Act>, ModelServer)> =
        vec![(Vec::new(), ModelServer::new(CONNECTIONS, MAX_LINE))];
    let mut seen: HashMap<ModelServer, usize> = HashMap::new();
    seen.insert(frontier[0].1.clone(), 0);
    let mut transitions = 0u64;
    for d in 0..depth {
        let mut next: HashMap<ModelServer, Vec<Act>> = HashMap::new();
        for (path, state) in &frontier {
            let (mut core, mut model) = replay(path);
            assert_eq!(&model, state);
            let counts = core.chat.with(|chat| (chat.session_count(), chat.pending_count()));
            assert_eq!(counts, (state.chat.sessions.len(), state.chat.pending()), "after {path:?}");
            let mut fresh = true;
            for &act in &acts {
                if !fresh {
                    (core, model) = replay(path);
                }
                let mut longer = path.clone();
                longer.push(act);
                step(&mut core, &mut model, act, &longer);
                transitions += 1;
                // A step that leaves the model state as it was (an error,
                // `list`, an empty `inbox`) needs no replay for the next one.
                fresh = model == *state;
                if !seen.contains_key(&model) {
                    next.entry(model.clone()).or_insert(longer);
                }
            }
        }
        frontier = next.into_iter().map(|(state, path)| (path, state)).collect();
        for (_, state) in &frontier {
            seen.insert(state.clone(), d + 1);
        }
        // Visit the new states in a fixed order, so that a failure is the
        // same on every run.
        frontier.sort_by(|a, b| format!("{:?}", a.0).cmp(&format!("{:?}", b.0)));
    }
    let all: u128 = (acts.len() as u128).pow(depth as u32);
    println!(
        "exhaustive: {} actions, depth {depth}: all {all} sequences of {depth} steps (and every \
         shorter one) covered through {} distinct states, {transitions} transitions checked byte \
         for byte, in {:.1?}",
        acts.len(),
        seen.len(),
        started.elapsed()
    );
}
