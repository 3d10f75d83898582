//! Micro-benchmarks of the sans-I/O core, in time per operation and bytes
//! (or requests) per second: framing, request parsing, the JSON string
//! encoder, a connection's request cutting, the whole work of one request
//! under the lock, and the encoding of a large inbox.
//!
//! Run with `cargo bench --bench core` (add `-- write_str` to pick one).

use std::fmt;
use std::sync::LazyLock;

use divan::counter::{BytesCount, ItemsCount};
use divan::{black_box, Bencher};
use progjar_chat::protocol::connection::Connection;
use progjar_chat::protocol::frame::parse_frame;
use progjar_chat::protocol::json::write_str;
use progjar_chat::protocol::request::parse_request_bytes;
use progjar_chat::protocol::token::SequentialTokens;
use progjar_chat::protocol::users::UserDirectory;
use progjar_chat::shared::SharedChat;

fn main() {
    divan::main();
}

const TOKEN: &str = "4c908ff6-3c15-4052-a98a-095d2454cf93";

/// A named input: divan prints the name, not the bytes.
struct Case {
    name: &'static str,
    data: String,
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

fn case(name: &'static str, data: String) -> Case {
    Case { name, data }
}

/// Request lines as the bench's load sends them, and longer ones.
static LINES: LazyLock<Vec<Case>> = LazyLock::new(|| {
    vec![
        case("auth", "auth messi surabaya\r\n".into()),
        case("send", format!("send {TOKEN} lineker abcdefgh\r\n")),
        case("inbox", format!("inbox {TOKEN}\r\n")),
        case("list", format!("list {TOKEN}\r\n")),
        case("logout", format!("logout {TOKEN}\r\n")),
        case("send_1k", format!("send {TOKEN} lineker {}\r\n", "x".repeat(1024))),
        case("send_64k", format!("send {TOKEN} lineker {}\r\n", "x".repeat(64 * 1024))),
    ]
});

/// Strings as `write_str` meets them in replies.
static STRINGS: LazyLock<Vec<Case>> = LazyLock::new(|| {
    let mixed = "Halo, apa kabar? \"ok\" \\ \r\n".repeat(40);
    vec![
        case("name_12", "Lionel Messi".into()),
        case("token_36", TOKEN.into()),
        case("ascii_1k", "abcdefghijklmnopqrstuvwxyz012345".repeat(32)),
        case("escapes_1k", mixed[..1024].to_owned()),
        case("non_ascii_1k", "Selamat pagi, café ☕ 😀 ".repeat(40).chars().take(780).collect()),
    ]
});

#[divan::bench(args = LINES.iter())]
fn parse_frame_line(bencher: Bencher, line: &Case) {
    let bytes = line.data.as_bytes();
    bencher.counter(BytesCount::of_slice(bytes)).bench(|| parse_frame(black_box(bytes)));
}

#[divan::bench(args = LINES.iter())]
fn parse_request(bencher: Bencher, line: &Case) {
    let bytes = line.data.as_bytes();
    bencher
        .counter(BytesCount::of_slice(bytes))
        .bench(|| parse_request_bytes(black_box(bytes)).is_ok());
}

#[divan::bench(args = STRINGS.iter())]
fn json_write_str(bencher: Bencher, s: &Case) {
    let mut out = Vec::with_capacity(8 * s.data.len() + 2);
    bencher.counter(BytesCount::of_str(&s.data)).bench_local(|| {
        out.clear();
        write_str(&mut out, black_box(&s.data));
        out.len()
    });
}

/// Sixteen pipelined requests arriving in one read, cut into lines.
#[divan::bench]
fn connection_16_pipelined(bencher: Bencher) {
    let read: Vec<u8> = (0..8)
        .flat_map(|_| format!("send {TOKEN} lineker abcdefgh\r\ninbox {TOKEN}\r\n").into_bytes())
        .collect();
    let mut conn = Connection::default();
    bencher.counter(BytesCount::of_slice(&read)).bench_local(|| {
        let mut lines = 0;
        conn.handle_bytes(black_box(&read), |line| lines += usize::from(line.is_ok()));
        lines
    });
}

/// One request arriving in two reads, split inside its token.
#[divan::bench]
fn connection_split_request(bencher: Bencher) {
    let line = format!("inbox {TOKEN}\r\n");
    let (first, second) = line.as_bytes().split_at(20);
    let mut conn = Connection::default();
    bencher.counter(BytesCount::of_str(&line)).bench_local(|| {
        let mut lines = 0;
        conn.handle_bytes(black_box(first), |_| lines += 1);
        conn.handle_bytes(black_box(second), |_| lines += 1);
        lines
    });
}

/// A server state with one session per user; the tokens in user order.
fn chat_with_sessions() -> (SharedChat, Vec<String>) {
    let chat = SharedChat::new(UserDirectory::builtin());
    let mut tokens = SequentialTokens::default();
    let mut out = Vec::new();
    let mut issued = Vec::new();
    for user in ["messi", "henderson", "lineker"] {
        out.clear();
        chat.handle_line(format!("auth {user} surabaya\r\n").as_bytes(), &mut tokens, &mut out);
        let reply = String::from_utf8_lossy(&out);
        let token = reply.split('"').nth(7).expect("a token in the auth reply").to_owned();
        issued.push(token);
    }
    (chat, issued)
}

/// The whole work of the `send,inbox` mix for one pair of requests: parse,
/// lock, update the state, encode the reply.
#[divan::bench]
fn handle_send_then_inbox(bencher: Bencher) {
    let (chat, tokens) = chat_with_sessions();
    let send = format!("send {} messi abcdefgh\r\n", tokens[0]);
    let inbox = format!("inbox {}\r\n", tokens[0]);
    let mut source = SequentialTokens::default();
    let mut out = Vec::with_capacity(1024);
    bencher.counter(ItemsCount::new(2u32)).bench_local(|| {
        out.clear();
        chat.handle_line(black_box(send.as_bytes()), &mut source, &mut out);
        chat.handle_line(black_box(inbox.as_bytes()), &mut source, &mut out);
        out.len()
    });
}

/// `list` with 10,000 live sessions.
#[divan::bench]
fn handle_list_10k_sessions(bencher: Bencher) {
    let (chat, tokens) = chat_with_sessions();
    let mut source = SequentialTokens::default();
    let mut out = Vec::new();
    for i in 0..10_000 {
        out.clear();
        let user = ["messi", "henderson", "lineker"][i % 3];
        chat.handle_line(format!("auth {user} surabaya\r\n").as_bytes(), &mut source, &mut out);
    }
    let list = format!("list {}\r\n", tokens[1]);
    bencher.bench_local(|| {
        out.clear();
        chat.handle_line(black_box(list.as_bytes()), &mut source, &mut out);
        out.len()
    });
}

/// One `inbox` taking `n` pending messages from two senders: the state
/// change and the encoding of the reply, counted in reply bytes.
#[divan::bench(args = [10, 1_000, 100_000])]
fn inbox_drain(bencher: Bencher, n: usize) {
    let (chat, tokens) = chat_with_sessions();
    let sends: Vec<String> =
        (0..2).map(|sender| format!("send {} lineker abcdefgh\r\n", tokens[sender])).collect();
    let inbox = format!("inbox {}\r\n", tokens[2]);
    let mut source = SequentialTokens::default();
    let mut scratch = Vec::new();
    let mut fill = |chat: &SharedChat| {
        for i in 0..n {
            scratch.clear();
            chat.handle_line(sends[i % 2].as_bytes(), &mut source, &mut scratch);
        }
    };
    // The reply's size, for the byte counter.
    fill(&chat);
    let mut out = Vec::new();
    chat.handle_line(inbox.as_bytes(), &mut SequentialTokens::default(), &mut out);
    let reply_bytes = out.len();
    bencher
        .counter(BytesCount::new(reply_bytes))
        .with_inputs(|| {
            fill(&chat);
            Vec::with_capacity(reply_bytes)
        })
        .bench_local_refs(|out: &mut Vec<u8>| {
            chat.handle_line(inbox.as_bytes(), &mut SequentialTokens::default(), out);
        });
}
