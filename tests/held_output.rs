//! The bound on the replies a server holds for one connection
//! ([`Limits::max_pending_output`], the server's
//! `--max-pending-output`), in the tokio server run in-process: whatever the
//! bound, even one byte (every request's reply written before the next
//! request is handled), a pipelining client gets the same replies, in the
//! same order, as with no bound to speak of; requests a read brought in
//! but not yet handled are neither lost, nor reordered, nor handled twice,
//! also when the client closes its side right after its last request.
//! `tests/limits.rs` checks the bound itself, through the server's memory.

mod support;

use std::io::Write;
use std::net::Shutdown;
use std::time::Duration;

use progjar_chat::protocol::limits::Limits;
use progjar_chat::protocol::users::UserDirectory;
use progjar_chat::shared::SharedChat;
use proptest::prelude::Rng;
use proptest::test_runner::{RngAlgorithm, TestRng};
use support::msg::UNKNOWN_TOKEN;
use support::{error_reply, logged_out, token_from_auth_reply, InProcessServer};

const TIMEOUT: Duration = Duration::from_secs(20);
const MAX_LINE: usize = 200;

/// A server of its own, holding at most `max_output` bytes of replies per
/// connection.
fn server(max_output: usize) -> InProcessServer {
    let limits = Limits { max_line: MAX_LINE, max_pending_output: max_output, ..Limits::default() };
    InProcessServer::start_with_state(SharedChat::with_limits(UserDirectory::builtin(), limits))
}

/// One request, one reply, on a fresh connection.
fn ask(server: &InProcessServer, request: &str) -> String {
    let mut c = server.connect().with_timeout(TIMEOUT);
    c.send(request.as_bytes());
    c.stream.shutdown(Shutdown::Write).unwrap();
    String::from_utf8(c.read_to_end()).unwrap()
}

fn login(server: &InProcessServer, user: &str) -> String {
    token_from_auth_reply(&ask(server, &format!("auth {user} surabaya\r\n")))
}

/// A deterministic stream of `n` requests over the tokens `M`, `H` and `L`
/// (messi's, henderson's, lineker's): mail in all directions, `inbox`es
/// that take it, `list`s, errors of every kind, over-long lines, a few
/// requests split by a `\r\n` across the stream's writes, and at the end
/// a `logout` after which the token is unknown.
fn requests(n: usize) -> Vec<String> {
    let mut rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
    let mut next = move |n: u64| rng.next_u64() % n;
    let tokens = ["M", "H", "L"];
    let users = ["messi", "henderson", "lineker", "pogba"];
    let mut out: Vec<String> = (0..n)
        .map(|i| {
            let t = tokens[next(3) as usize];
            match next(12) {
                0..=4 => format!("send {t} {} text {i} \"q\" é\r\n", users[next(4) as usize]),
                5 | 6 => format!("inbox {t}\r\n"),
                7 => format!("list {t}\r\n"),
                8 => format!("inbox bogus{i}\r\n"),
                9 => "auth messi jakarta\r\n".into(),
                10 => format!("frobnicate {i}\r\n"),
                _ => format!("send {t} lineker {}\r\n", "y".repeat(MAX_LINE)),
            }
        })
        .collect();
    out.push("logout H\r\n".into());
    out.push("inbox H\r\n".into());
    out
}

/// Sends `requests` (tokens filled in) in writes of random sizes from one
/// thread, then closes the write side, while this thread reads every reply
/// to the end; returns them all.
fn exchange(server: &InProcessServer, requests: &[String]) -> Vec<u8> {
    let (m, h, l) = (login(server, "messi"), login(server, "henderson"), login(server, "lineker"));
    let stream: String = requests
        .iter()
        .map(|r| {
            let mut fields: Vec<String> = r.split(' ').map(str::to_string).collect();
            if let Some(token) = fields.get_mut(1) {
                let trimmed = token.trim_end_matches("\r\n");
                let real = match trimmed {
                    "M" => &m,
                    "H" => &h,
                    "L" => &l,
                    _ => return r.clone(),
                };
                *token = token.replacen(trimmed, real, 1);
            }
            fields.join(" ")
        })
        .collect();
    let mut conn = server.connect().with_timeout(TIMEOUT);
    let mut writer = conn.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let bytes = stream.as_bytes();
        let mut rng = TestRng::deterministic_rng(RngAlgorithm::XorShift);
        let mut at = 0;
        while at < bytes.len() {
            let size = 1 + (rng.next_u64() % 100_000) as usize;
            let end = (at + size).min(bytes.len());
            writer.write_all(&bytes[at..end]).expect("write the requests");
            at = end;
        }
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let replies = conn.read_to_end();
    sender.join().unwrap();
    replies
}

fn count_replies(replies: &[u8]) -> usize {
    replies.windows(4).filter(|w| w == b"\r\n\r\n").count()
}

/// Whatever the bound, the same replies in the same order, one per request,
/// and the connection closed only after the last.
#[test]
fn every_bound_gives_the_same_replies_in_the_same_order() {
    let requests = requests(20_000);
    let reference = exchange(&server(usize::MAX), &requests);
    assert_eq!(count_replies(&reference), requests.len());
    let text = String::from_utf8_lossy(&reference);
    for kind in ["Message Sent", "msg_from", "lineker - Gary Lineker", "Terlalu Panjang"] {
        assert!(text.contains(kind), "no {kind:?} among the replies");
    }
    assert!(text.ends_with(&format!("{}{}", logged_out(), error_reply(UNKNOWN_TOKEN))));
    // 1 byte: one request at a time; the others stop part-way through
    // reads, at different places.
    for max_output in [1, 100, 4096, 64 * 1024] {
        let replies = exchange(&server(max_output), &requests);
        assert_eq!(count_replies(&replies), requests.len(), "bound {max_output}");
        if replies != reference {
            let at = replies.iter().zip(&reference).position(|(a, b)| a != b);
            panic!("bound {max_output}: the replies differ from byte {at:?} on");
        }
    }
}
