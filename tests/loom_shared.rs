//! loom models of `SharedChat`: two or three threads doing `send`, `inbox`,
//! `logout` and `auth` on one shared state, every interleaving of their
//! lock operations explored (up to `LOOM_MAX_PREEMPTIONS` preemptions,
//! default 5). They check that no message is lost or delivered twice, that
//! no interleaving deadlocks (loom fails any execution in which every thread
//! is blocked), and that no request is authorised by a token after its
//! `logout` has completed.
//!
//! Run them with `.ci/loom.sh`, i.e.
//! `RUSTFLAGS="--cfg chat_loom" cargo test --release --test loom_shared`
//! (in a target directory of its own): under `chat_loom` the crate's one sync
//! module, `src/sync.rs`, hands `SharedChat` loom's `Mutex`.
#![cfg(chat_loom)]

use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;
use progjar_chat::protocol::token::TokenSource;
use progjar_chat::protocol::users::UserDirectory;
use progjar_chat::shared::SharedChat;
use serde_json::Value;

/// Tokens that differ between threads: thread `t` issues
/// `0000000t-0000-4000-8000-00000000000n`.
struct ThreadTokens {
    thread: u32,
    issued: u64,
}

impl TokenSource for ThreadTokens {
    fn new_token(&mut self) -> String {
        self.issued += 1;
        format!("{:08x}-0000-4000-8000-{:012x}", self.thread, self.issued)
    }
}

fn tokens(thread: u32) -> ThreadTokens {
    ThreadTokens { thread, issued: 0 }
}

/// One request, its reply parsed.
fn ask(chat: &SharedChat, line: &str, tokens: &mut ThreadTokens) -> Value {
    let mut out = Vec::new();
    chat.handle_line(format!("{line}\r\n").as_bytes(), tokens, &mut out);
    let json = out.strip_suffix(b"\r\n\r\n").expect("a reply ends with its terminator");
    serde_json::from_slice(json).expect("a reply is JSON")
}

/// Requests handled as one batch (`SharedChat::batch`), their replies
/// parsed in order.
fn ask_batch(chat: &SharedChat, lines: &[String], tokens: &mut ThreadTokens) -> Vec<Value> {
    let mut out = Vec::new();
    let mut batch = chat.batch();
    for line in lines {
        batch.handle_line(format!("{line}\r\n").as_bytes(), tokens, &mut out);
    }
    drop(batch);
    out.split(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"{"))
        .map(|l| serde_json::from_slice(l.strip_suffix(b"\r").unwrap_or(l)).expect("JSON"))
        .collect()
}

fn ok(reply: &Value) -> bool {
    reply["status"] == "OK"
}

fn login(chat: &SharedChat, user: &str, tokens: &mut ThreadTokens) -> String {
    let reply = ask(chat, &format!("auth {user} surabaya"), tokens);
    reply["tokenid"].as_str().expect("auth succeeds").to_string()
}

/// A fresh chat with `users` logged in by the main thread: the chat, the
/// main thread's token supply, and the users' tokens in order.
fn logged_in<const N: usize>(users: [&str; N]) -> (Arc<SharedChat>, ThreadTokens, [String; N]) {
    let chat = Arc::new(SharedChat::new(UserDirectory::builtin()));
    let mut main_tokens = tokens(0);
    let tokens = users.map(|user| login(&chat, user, &mut main_tokens));
    (chat, main_tokens, tokens)
}

/// The texts an inbox reply delivered from `sender`, in order.
fn texts_from(reply: &Value, sender: &str) -> Vec<String> {
    assert!(ok(reply), "inbox failed: {reply}");
    match reply["messages"].get(sender) {
        Some(list) => list
            .as_array()
            .expect("a list")
            .iter()
            .map(|m| m["msg"].as_str().expect("a string").to_string())
            .collect(),
        None => Vec::new(),
    }
}

/// Explores `f` and prints how many executions that took.
fn explore(name: &str, f: impl Fn() + Sync + Send + 'static) {
    // Counted outside the model: a std atomic, which loom does not see.
    let executions = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&executions);
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(5);
    }
    let bound = builder.preemption_bound;
    builder.check(move || {
        counter.fetch_add(1, StdOrdering::SeqCst);
        f();
    });
    println!(
        "loom {name}: {} executions explored (preemption bound {bound:?})",
        executions.load(StdOrdering::SeqCst)
    );
}

/// A sender and a reader race; whatever the interleaving, the two messages
/// are delivered exactly once, in send order, over the reader's two inboxes
/// and one last inbox after both threads are done.
#[test]
fn no_message_is_lost_or_delivered_twice() {
    explore("send vs inbox", || {
        let (chat, mut main_tokens, [messi, henderson]) = logged_in(["messi", "henderson"]);

        let sender = {
            let chat = Arc::clone(&chat);
            thread::spawn(move || {
                let mut t = tokens(1);
                for text in ["one", "two"] {
                    assert!(ok(&ask(&chat, &format!("send {messi} henderson {text}"), &mut t)));
                }
            })
        };
        let reader = {
            let chat = Arc::clone(&chat);
            let henderson = henderson.clone();
            thread::spawn(move || {
                let mut t = tokens(2);
                let mut got =
                    texts_from(&ask(&chat, &format!("inbox {henderson}"), &mut t), "messi");
                got.extend(texts_from(&ask(&chat, &format!("inbox {henderson}"), &mut t), "messi"));
                got
            })
        };
        sender.join().expect("sender");
        let mut delivered = reader.join().expect("reader");
        delivered.extend(texts_from(
            &ask(&chat, &format!("inbox {henderson}"), &mut main_tokens),
            "messi",
        ));
        assert_eq!(
            delivered,
            [" one\r\n", " two\r\n"],
            "every message exactly once, in send order"
        );
        assert_eq!(chat.with(|c| c.pending_count()), 0);
    });
}

/// Two readers of one mailbox (two sessions of one user) race a sender: each
/// message goes to exactly one of them.
#[test]
fn two_readers_never_get_the_same_message() {
    explore("two inboxes vs send", || {
        let (chat, mut main_tokens, [messi, lineker_a]) = logged_in(["messi", "lineker"]);
        let lineker_b = login(&chat, "lineker", &mut main_tokens);
        assert!(ok(&ask(&chat, &format!("send {messi} lineker first"), &mut main_tokens)));

        let sender = {
            let chat = Arc::clone(&chat);
            thread::spawn(move || {
                let mut t = tokens(1);
                assert!(ok(&ask(&chat, &format!("send {messi} lineker second"), &mut t)));
            })
        };
        let reader = {
            let chat = Arc::clone(&chat);
            thread::spawn(move || {
                let mut t = tokens(2);
                texts_from(&ask(&chat, &format!("inbox {lineker_a}"), &mut t), "messi")
            })
        };
        let mut by_main =
            texts_from(&ask(&chat, &format!("inbox {lineker_b}"), &mut main_tokens), "messi");
        sender.join().expect("sender");
        let by_reader = reader.join().expect("reader");
        by_main.extend(texts_from(
            &ask(&chat, &format!("inbox {lineker_b}"), &mut main_tokens),
            "messi",
        ));
        let mut all: Vec<String> = by_reader.iter().chain(&by_main).cloned().collect();
        all.sort();
        assert_eq!(all, [" first\r\n", " second\r\n"], "reader {by_reader:?}, main {by_main:?}");
        // Whoever read "second" read "first" too, or "first" was read before.
        if let Some(at) = by_reader.iter().position(|t| t == " second\r\n") {
            assert!(
                by_reader[..at].contains(&" first\r\n".to_string())
                    || by_main.contains(&" first\r\n".to_string())
            );
        }
    });
}

/// `logout` races requests that use the same token. Once the logout has
/// returned (signalled through an atomic the other thread reads before
/// each request), the token authorises nothing; a send it did authorise is
/// delivered; and a token that failed once never works again.
#[test]
fn no_request_is_authorised_after_its_logout() {
    explore("logout vs send/list", || {
        let (chat, mut main_tokens, [lineker, messi]) = logged_in(["lineker", "messi"]);
        let logged_out = Arc::new(AtomicBool::new(false));

        let quitter = {
            let (chat, lineker, logged_out) =
                (Arc::clone(&chat), lineker.clone(), Arc::clone(&logged_out));
            thread::spawn(move || {
                let mut t = tokens(1);
                assert!(ok(&ask(&chat, &format!("logout {lineker}"), &mut t)));
                logged_out.store(true, Ordering::SeqCst);
            })
        };
        let user = {
            let (chat, logged_out) = (Arc::clone(&chat), Arc::clone(&logged_out));
            thread::spawn(move || {
                let mut t = tokens(2);
                let mut outcomes = Vec::new();
                for line in [format!("send {lineker} messi hi"), format!("list {lineker}")] {
                    let after_logout = logged_out.load(Ordering::SeqCst);
                    let reply = ask(&chat, &line, &mut t);
                    assert!(
                        !(after_logout && ok(&reply)),
                        "{line:?} worked after its logout returned: {reply}"
                    );
                    outcomes.push(ok(&reply));
                }
                assert!(outcomes[0] || !outcomes[1], "a dead token came back to life");
                outcomes[0]
            })
        };
        quitter.join().expect("quitter");
        let sent = user.join().expect("user");
        let inbox = ask(&chat, &format!("inbox {messi}"), &mut main_tokens);
        let expected: &[&str] = if sent { &[" hi\r\n"] } else { &[] };
        assert_eq!(texts_from(&inbox, "lineker"), expected);
        assert_eq!(chat.with(|c| c.session_count()), 1, "only messi is left");
    });
}

/// Three threads: one sends twice, one reads, one logs the sender out and
/// back in and sends with the new token. Every acknowledged message is
/// delivered exactly once, each sender's in send order, and a send with the
/// old token after its logout returned is refused.
#[test]
fn three_threads_send_read_and_relogin() {
    explore("send vs inbox vs logout+auth", || {
        let (chat, mut main_tokens, [messi, henderson]) = logged_in(["messi", "henderson"]);
        let logged_out = Arc::new(AtomicBool::new(false));

        let sender = {
            let (chat, messi, logged_out) =
                (Arc::clone(&chat), messi.clone(), Arc::clone(&logged_out));
            thread::spawn(move || {
                let mut t = tokens(1);
                let mut sent = Vec::new();
                for text in ["a", "b"] {
                    let after_logout = logged_out.load(Ordering::SeqCst);
                    let reply = ask(&chat, &format!("send {messi} henderson {text}"), &mut t);
                    assert!(
                        !(after_logout && ok(&reply)),
                        "a send worked after its token's logout returned"
                    );
                    if ok(&reply) {
                        sent.push(format!(" {text}\r\n"));
                    }
                }
                sent
            })
        };
        let reader = {
            let (chat, henderson) = (Arc::clone(&chat), henderson.clone());
            thread::spawn(move || {
                let mut t = tokens(2);
                texts_from(&ask(&chat, &format!("inbox {henderson}"), &mut t), "messi")
            })
        };
        let relogin = {
            let (chat, logged_out) = (Arc::clone(&chat), Arc::clone(&logged_out));
            thread::spawn(move || {
                let mut t = tokens(3);
                assert!(ok(&ask(&chat, &format!("logout {messi}"), &mut t)));
                logged_out.store(true, Ordering::SeqCst);
                let again = login(&chat, "messi", &mut t);
                assert!(ok(&ask(&chat, &format!("send {again} henderson c"), &mut t)));
            })
        };
        let mut sent = sender.join().expect("sender");
        relogin.join().expect("relogin");
        let mut delivered = reader.join().expect("reader");
        delivered.extend(texts_from(
            &ask(&chat, &format!("inbox {henderson}"), &mut main_tokens),
            "messi",
        ));
        // "c" was sent after both "a" and "b" were either sent or refused
        // (it needs the logout, which refuses the rest); all three come from
        // messi, so send order is a, b (those that went through), c.
        sent.push(" c\r\n".into());
        assert_eq!(delivered, sent, "every acknowledged message exactly once, in send order");
        assert_eq!(chat.with(|c| c.pending_count()), 0);
    });
}

/// The server handles the requests of one read as one batch, under one
/// acquisition of the lock that is released for an `auth` (its password
/// check) and before a large reply is encoded. Two batches race: one sends
/// and logs out, the other reads a mailbox holding more than a batch encodes
/// under the lock, logs in (dropping the lock mid-batch) and reads again.
/// Every message is still delivered exactly once and in order, and the
/// logout still refuses what comes after it.
#[test]
fn batches_keep_each_request_atomic() {
    explore("batch vs batch", || {
        let (chat, mut main_tokens, [messi, henderson]) = logged_in(["messi", "henderson"]);
        let mut expected = Vec::new();
        for n in 0..20 {
            assert!(ok(&ask(&chat, &format!("send {messi} henderson {n}"), &mut main_tokens)));
            expected.push(format!(" {n}\r\n"));
        }

        let writer = {
            let (chat, messi) = (Arc::clone(&chat), messi.clone());
            thread::spawn(move || {
                let mut t = tokens(1);
                let lines = [
                    format!("send {messi} henderson late"),
                    format!("logout {messi}"),
                    format!("send {messi} henderson refused"),
                ];
                let replies = ask_batch(&chat, &lines, &mut t);
                assert_eq!(replies.iter().map(ok).collect::<Vec<_>>(), [true, true, false]);
            })
        };
        let reader = {
            let (chat, henderson) = (Arc::clone(&chat), henderson.clone());
            thread::spawn(move || {
                let mut t = tokens(2);
                let lines = [
                    format!("inbox {henderson}"),
                    "auth henderson surabaya".to_string(),
                    format!("inbox {henderson}"),
                ];
                let replies = ask_batch(&chat, &lines, &mut t);
                assert_eq!(replies.len(), 3);
                let mut got = texts_from(&replies[0], "messi");
                got.extend(texts_from(&replies[2], "messi"));
                got
            })
        };
        writer.join().expect("writer");
        let mut delivered = reader.join().expect("reader");
        delivered.extend(texts_from(
            &ask(&chat, &format!("inbox {henderson}"), &mut main_tokens),
            "messi",
        ));
        expected.push(" late\r\n".into());
        assert_eq!(delivered, expected, "every message exactly once, in send order");
    });
}

/// Two threads log the same user in while one of them logs out again: the
/// tokens differ, the other session survives, and `list` shows the user
/// once.
#[test]
fn concurrent_auth_and_logout_keep_sessions_apart() {
    explore("auth vs auth+logout", || {
        let chat = Arc::new(SharedChat::new(UserDirectory::builtin()));
        let a = {
            let chat = Arc::clone(&chat);
            thread::spawn(move || {
                let mut t = tokens(1);
                let token = login(&chat, "messi", &mut t);
                assert!(ok(&ask(&chat, &format!("logout {token}"), &mut t)));
                token
            })
        };
        let b = {
            let chat = Arc::clone(&chat);
            thread::spawn(move || {
                let mut t = tokens(2);
                let token = login(&chat, "messi", &mut t);
                let list = ask(&chat, &format!("list {token}"), &mut t);
                assert_eq!(list["messages"], serde_json::json!(["messi - Lionel Messi"]));
                token
            })
        };
        let (ta, tb) = (a.join().expect("a"), b.join().expect("b"));
        assert_ne!(ta, tb);
        let mut t = tokens(0);
        assert!(!ok(&ask(&chat, &format!("inbox {ta}"), &mut t)));
        assert!(ok(&ask(&chat, &format!("inbox {tb}"), &mut t)));
        assert_eq!(chat.with(|c| c.session_count()), 1);
    });
}
