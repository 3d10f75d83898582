//! How bytes are cut into writes must not change what the server answers.
//!
//! TCP delivers a byte stream: the same requests may arrive in one read or
//! in many, with a cut anywhere — inside a field, inside a UTF-8 character,
//! between the `\r` and `\n` of a terminator, inside an over-long line. The
//! properties here send a random session (logins with real tokens, sends,
//! inboxes, lists, logouts, malformed and over-long lines) once whole and
//! once cut at random points, and require the same reply bytes.
//!
//! * Against the sans-I/O core (`Connection` + `Chat` with
//!   `SequentialTokens`, so tokens are predictable and both runs can be
//!   compared byte for byte), with an oracle that handles each line on its
//!   own, bypassing framing altogether.
//! * Over real TCP against the in-process server (fewer cases): tokens are
//!   random there, so they are normalised before comparing, and both runs
//!   are also compared with the sans-I/O model.

mod support;

use std::time::Duration;

use progjar_chat::protocol::connection::Connection;
use progjar_chat::protocol::frame::FrameError;
use progjar_chat::protocol::frame::REPLY_TERMINATOR as TERMINATOR;
use progjar_chat::protocol::limits::Limits;
use progjar_chat::protocol::token::{SequentialTokens, TokenSource};
use progjar_chat::protocol::users::UserDirectory;
use progjar_chat::shared::SharedChat;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use support::token::normalize_tokens;
use support::{find, InProcessServer};

/// A small line limit, so over-long lines and lines right at the limit
/// come up often (tokens are 36 bytes; a `send` is about 50).
const MAX_LINE: usize = 96;

/// Three real users and one unknown.
const USERS: [&str; 4] = ["messi", "henderson", "lineker", "pogba"];

/// Which token a request carries.
#[derive(Debug, Clone)]
enum Who {
    /// The n-th token issued so far (modulo how many there are).
    Session(usize),
    /// A token no session ever held.
    Bogus,
}

/// One request, before it is written with real tokens.
#[derive(Debug, Clone)]
enum Op {
    Auth {
        user: usize,
        right_password: bool,
        trailing_space: bool,
    },
    Send {
        who: Who,
        to: usize,
        text: Option<String>,
    },
    Inbox(Who),
    List(Who),
    Logout(Who),
    /// A `send` padded with `pad` bytes: around `MAX_LINE`, so it is
    /// either accepted or answered `--Request Terlalu Panjang`.
    Padded {
        who: Who,
        pad: usize,
    },
    /// Any bytes (no `\r\n` inside): unknown commands, missing fields,
    /// invalid UTF-8, bare `\r` and `\n`.
    Raw(Vec<u8>),
}

/// Replaces every `\r\n` inside a line so it stays one request.
fn without_crlf(mut bytes: Vec<u8>) -> Vec<u8> {
    while let Some(at) = find(&bytes, b"\r\n") {
        bytes.insert(at + 1, b' ');
    }
    bytes
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![9 => (0..8usize).prop_map(Who::Session), 1 => Just(Who::Bogus)]
}

fn text() -> impl Strategy<Value = Option<String>> {
    let piece = prop::sample::select(vec![
        "a", "hallo", " ", "  ", "é", "😀", "\t", "\"", "\\", "\r", "\n", "/", "\u{7f}", "\u{1}",
    ]);
    proptest::option::weighted(
        0.85,
        prop::collection::vec(piece, 0..8).prop_map(|pieces| {
            String::from_utf8(without_crlf(pieces.concat().into_bytes())).unwrap()
        }),
    )
}

fn raw() -> impl Strategy<Value = Vec<u8>> {
    let head = prop::sample::select(vec![
        "", "auth", "auth ", "send", "send ", "inbox", "list ", "logout", "AUTH ", " auth", "foo",
    ]);
    let byte = prop::sample::select(vec![b'a', b' ', b'\r', b'\n', b'\t', 0xff, 0xc3, 0xa9, b'x']);
    (head, prop::collection::vec(byte, 0..16)).prop_map(|(head, tail)| {
        let mut bytes = head.as_bytes().to_vec();
        bytes.extend(tail);
        without_crlf(bytes)
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..4usize, prop::bool::weighted(0.8), any::<bool>()).prop_map(
            |(user, right_password, trailing_space)| Op::Auth { user, right_password, trailing_space }
        ),
        5 => (who(), 0..4usize, text()).prop_map(|(who, to, text)| Op::Send { who, to, text }),
        3 => who().prop_map(Op::Inbox),
        2 => who().prop_map(Op::List),
        1 => who().prop_map(Op::Logout),
        1 => (who(), 20..MAX_LINE).prop_map(|(who, pad)| Op::Padded { who, pad }),
        2 => raw().prop_map(Op::Raw),
    ]
}

/// Writes the requests as wire lines. `pool` holds the tokens issued so
/// far; `issued` predicts the token a successful `auth` gets (`None` when
/// it cannot be known in advance, and then later requests use the pool).
fn render(
    ops: &[Op],
    pool: &mut Vec<String>,
    mut issued: impl FnMut() -> Option<String>,
) -> Vec<Vec<u8>> {
    let token = |pool: &Vec<String>, who: &Who| match who {
        Who::Session(n) if !pool.is_empty() => pool[n % pool.len()].clone(),
        _ => "bogus-token".to_string(),
    };
    let mut lines = Vec::with_capacity(ops.len());
    for op in ops {
        let line = match op {
            Op::Auth { user, right_password, trailing_space } => {
                let password = if *right_password { "surabaya" } else { "jakarta" };
                if *user < 3 && *right_password {
                    if let Some(new) = issued() {
                        pool.push(new);
                    }
                }
                let space = if *trailing_space { " " } else { "" };
                format!("auth {} {password}{space}\r\n", USERS[*user]).into_bytes()
            }
            Op::Send { who, to, text: None } => {
                format!("send {} {}\r\n", token(pool, who), USERS[*to]).into_bytes()
            }
            Op::Send { who, to, text: Some(text) } => {
                format!("send {} {} {text}\r\n", token(pool, who), USERS[*to]).into_bytes()
            }
            Op::Inbox(who) => format!("inbox {}\r\n", token(pool, who)).into_bytes(),
            Op::List(who) => format!("list {} \r\n", token(pool, who)).into_bytes(),
            Op::Logout(who) => format!("logout {}\r\n", token(pool, who)).into_bytes(),
            Op::Padded { who, pad } => {
                format!("send {} messi {}\r\n", token(pool, who), "p".repeat(*pad)).into_bytes()
            }
            Op::Raw(bytes) => {
                let mut line = bytes.clone();
                line.extend_from_slice(b"\r\n");
                line
            }
        };
        lines.push(line);
    }
    lines
}

/// The core as the server runs it, with deterministic tokens.
struct Model {
    chat: SharedChat,
    tokens: SequentialTokens,
    conn: Connection,
}

impl Model {
    fn new() -> Self {
        Self {
            chat: SharedChat::new(UserDirectory::builtin()),
            tokens: SequentialTokens::default(),
            conn: Connection::new(MAX_LINE),
        }
    }

    /// Feeds one read's bytes through framing, appending the replies.
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        let Self { chat, tokens, conn } = self;
        let mut batch = chat.batch();
        conn.handle_bytes(bytes, |request| {
            batch.answer(request, tokens, out);
        });
    }

    /// The oracle: each line handled on its own, no framing involved; a
    /// line over the limit gets the over-long error.
    fn answer_line(&mut self, line: &[u8], out: &mut Vec<u8>) {
        let request = if line.len() > MAX_LINE {
            Err(FrameError::LineTooLong { limit: MAX_LINE })
        } else {
            Ok(line)
        };
        self.chat.batch().answer(request, &mut self.tokens, out);
    }
}

/// Cuts `bytes` at the given points (any order, duplicates allowed).
fn pieces(bytes: &[u8], mut cuts: Vec<usize>) -> Vec<&[u8]> {
    cuts.push(0);
    cuts.push(bytes.len());
    cuts.sort_unstable();
    cuts.dedup();
    cuts.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
}

/// Cut points: some anywhere, some right between a `\r` and its `\n`.
fn cut_points(bytes: &[u8], anywhere: &[Index], at_crlf: &[Index]) -> Vec<usize> {
    let mut cuts: Vec<usize> = anywhere.iter().map(|i| i.index(bytes.len() + 1)).collect();
    let crlf_middles: Vec<usize> =
        (1..bytes.len()).filter(|&i| bytes[i - 1] == b'\r' && bytes[i] == b'\n').collect();
    if !crlf_middles.is_empty() {
        cuts.extend(at_crlf.iter().map(|i| crlf_middles[i.index(crlf_middles.len())]));
    }
    cuts
}

fn count_replies(bytes: &[u8]) -> usize {
    bytes.windows(TERMINATOR.len()).filter(|w| *w == TERMINATOR).count()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Sans-I/O: whole, cut at random points (including inside `\r\n`), and
    /// the line-by-line oracle all give the same reply bytes, one reply per
    /// request.
    #[test]
    fn core_replies_do_not_depend_on_how_bytes_are_cut(
        ops in prop::collection::vec(op(), 1..40),
        anywhere in prop::collection::vec(any::<Index>(), 0..32),
        at_crlf in prop::collection::vec(any::<Index>(), 0..6),
    ) {
        let mut predicted = SequentialTokens::default();
        let lines = render(&ops, &mut Vec::new(), || Some(predicted.new_token()));
        let all: Vec<u8> = lines.concat();

        let mut oracle = Model::new();
        let mut expected = Vec::new();
        for line in &lines {
            oracle.answer_line(line, &mut expected);
        }

        let mut whole_model = Model::new();
        let mut whole = Vec::new();
        whole_model.feed(&all, &mut whole);

        let mut split_model = Model::new();
        let mut split = Vec::new();
        let cuts = cut_points(&all, &anywhere, &at_crlf);
        for piece in pieces(&all, cuts) {
            split_model.feed(piece, &mut split);
        }

        prop_assert_eq!(count_replies(&expected), lines.len());
        prop_assert_eq!(
            String::from_utf8_lossy(&whole),
            String::from_utf8_lossy(&expected),
            "whole stream vs line-by-line oracle"
        );
        prop_assert_eq!(
            String::from_utf8_lossy(&split),
            String::from_utf8_lossy(&whole),
            "split stream vs whole stream"
        );
        prop_assert_eq!(whole_model.conn.buffered(), 0);
        prop_assert_eq!(split_model.conn.buffered(), 0);
        let counts = |model: &Model| model.chat.with(|chat| (chat.session_count(), chat.pending_count()));
        prop_assert_eq!(counts(&split_model), counts(&oracle));
    }
}

/// The extreme cut: every byte its own read. A fixed session that touches
/// every command, a UTF-8 character, bare `\r`/`\n` and an over-long line.
#[test]
fn core_replies_are_the_same_when_fed_one_byte_at_a_time() {
    let ops = vec![
        Op::Auth { user: 0, right_password: true, trailing_space: true },
        Op::Auth { user: 2, right_password: true, trailing_space: false },
        Op::Send { who: Who::Session(0), to: 2, text: Some(" h\u{e9}llo\r\t\n😀 ".into()) },
        Op::Padded { who: Who::Session(0), pad: MAX_LINE },
        Op::Raw(b"auth \xff\r".to_vec()),
        Op::Inbox(Who::Session(1)),
        Op::List(Who::Session(1)),
        Op::Logout(Who::Session(0)),
        Op::Send { who: Who::Session(0), to: 2, text: None },
        Op::Inbox(Who::Bogus),
    ];
    let mut predicted = SequentialTokens::default();
    let all = render(&ops, &mut Vec::new(), || Some(predicted.new_token())).concat();
    let mut whole = Vec::new();
    Model::new().feed(&all, &mut whole);
    let mut bytewise = Vec::new();
    let mut model = Model::new();
    for byte in &all {
        model.feed(std::slice::from_ref(byte), &mut bytewise);
    }
    assert_eq!(String::from_utf8_lossy(&bytewise), String::from_utf8_lossy(&whole));
    assert_eq!(count_replies(&whole), ops.len());
    let text = String::from_utf8(whole).unwrap();
    assert!(text.contains("\"msg\": \"  h\\u00e9llo\\r\\t\\n\\ud83d\\ude00 \\r\\n\""), "{text}");
    assert!(text.contains("--Request Terlalu Panjang"), "{text}");
    assert!(text.contains("--Request Bukan UTF-8"), "{text}");
}

// ---------------------------------------------------------------- over TCP

/// How long one TCP run may take; loopback replies take microseconds, so
/// running out means a reply was lost (and keeps shrinking fast).
const TCP_RUN_LIMIT: Duration = Duration::from_secs(2);

/// One TCP run: log in `logins` on a fresh in-process server, then write
/// the rendered `ops` (whole, or cut at `cuts` with a flush and a short
/// pause after each piece so they arrive as separate reads), and return
/// every reply byte in order.
async fn tcp_run(logins: &[usize], ops: &[Op], cuts: Option<&[usize]>) -> Vec<u8> {
    let limits = Limits { max_line: MAX_LINE, ..Limits::default() };
    let server = InProcessServer::start_with(UserDirectory::builtin(), limits);
    let mut client = server.connect_async().await;
    let mut replies = Vec::new();
    let mut pool = Vec::new();
    for &user in logins {
        let reply = client.ask(format!("auth {} surabaya\r\n", USERS[user]).as_bytes()).await;
        pool.push(support::token_from_auth_reply(&reply));
        replies.extend_from_slice(reply.as_bytes());
    }
    // New tokens from `ops` cannot be known before their replies arrive, so
    // later requests use only the tokens from the logins above.
    let lines = render(ops, &mut pool, || None);
    let all = lines.concat();
    match cuts {
        None => client.send(&all).await,
        Some(cuts) => {
            for piece in pieces(&all, cuts.to_vec()) {
                client.send(piece).await;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    for reply in client.replies(lines.len()).await {
        replies.extend(reply);
    }
    drop(client);
    server.stop().await;
    replies
}

/// The same as [`tcp_run`] in the sans-I/O model, for the expected bytes.
fn model_run(logins: &[usize], ops: &[Op]) -> Vec<u8> {
    let mut model = Model::new();
    let mut replies = Vec::new();
    let mut pool = Vec::new();
    for &user in logins {
        let before = replies.len();
        model.answer_line(format!("auth {} surabaya\r\n", USERS[user]).as_bytes(), &mut replies);
        pool.push(support::token_from_auth_reply(std::str::from_utf8(&replies[before..]).unwrap()));
    }
    for line in render(ops, &mut pool, || None) {
        model.answer_line(&line, &mut replies);
    }
    replies
}

/// Splits a reply stream into replies, each checked to be one JSON object
/// with a `status`.
fn parsed_replies(stream: &str) -> Vec<serde_json::Value> {
    stream
        .split_terminator("\r\n\r\n")
        .map(|reply| {
            let value: serde_json::Value = serde_json::from_str(reply)
                .unwrap_or_else(|e| panic!("reply is not JSON ({e}): {reply:?}"));
            assert!(matches!(value["status"].as_str(), Some("OK" | "ERROR")), "{reply}");
            value
        })
        .collect()
}

/// Over real TCP: a session written whole and the same session written in
/// random pieces get the same replies — after normalising the random
/// tokens — and both equal the sans-I/O model's replies.
#[test]
fn tcp_replies_do_not_depend_on_how_writes_are_cut() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let strategy = (
        prop::collection::vec(0..3usize, 1..=3),
        prop::collection::vec(op(), 1..16),
        prop::collection::vec(any::<Index>(), 0..16),
        prop::collection::vec(any::<Index>(), 0..4),
    );
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 48,
        // A lost reply costs a whole `TCP_RUN_LIMIT` per shrink step.
        max_shrink_time: 20_000,
        ..ProptestConfig::default()
    });
    let result = runner.run(&strategy, |(logins, ops, anywhere, at_crlf)| {
        // Cut points chosen on the model's bytes: the TCP runs' lines have
        // the same lengths (tokens are always 36 bytes).
        let mut pool: Vec<String> = (1..=logins.len() as u64)
            .map(|n| format!("00000000-0000-4000-8000-{n:012x}"))
            .collect();
        let all = render(&ops, &mut pool, || None).concat();
        let cuts = cut_points(&all, &anywhere, &at_crlf);

        let bounded = |cuts| {
            runtime.block_on(async {
                tokio::time::timeout(TCP_RUN_LIMIT, tcp_run(&logins, &ops, cuts)).await
            })
        };
        let whole = bounded(None);
        prop_assert!(
            whole.is_ok(),
            "whole run: not every request answered within {:?}",
            TCP_RUN_LIMIT
        );
        let split = bounded(Some(&cuts));
        prop_assert!(
            split.is_ok(),
            "split run: not every request answered within {:?}",
            TCP_RUN_LIMIT
        );
        let (whole, split) = (whole.unwrap(), split.unwrap());
        let model = model_run(&logins, &ops);

        let (whole, split, model) =
            (normalize_tokens(&whole), normalize_tokens(&split), normalize_tokens(&model));
        let parsed = parsed_replies(&whole);
        prop_assert_eq!(parsed.len(), logins.len() + ops.len());
        prop_assert_eq!(parsed, parsed_replies(&split));
        prop_assert_eq!(&split, &whole, "split vs whole over TCP");
        prop_assert_eq!(&whole, &model, "TCP vs sans-I/O model");
        Ok::<(), TestCaseError>(())
    });
    if let Err(error) = result {
        panic!("{error}");
    }
}
