//! Load and soak: many clients send at once while others drain, and every
//! acknowledged message must be delivered exactly once, in send order per
//! sender.
//!
//! 200 sender clients, each logged in as one of 20 users, each send 500
//! messages (pipelined, 50 requests per write) to recipients drawn at
//! random; meanwhile one drainer per user keeps taking that user's inbox.
//! Every message text names its sender client and sequence number
//! (`c17-42`), so that afterwards each acknowledged message can be looked
//! for among what the drainers took: found exactly once, with the right
//! `msg_from` and `msg_to`, and per (sender client, recipient) in
//! increasing sequence. Nothing that was not acknowledged may appear.
//!
//! The test prints its figures (connections, messages, duration). The same
//! test at ten times the size (2,000 sender clients, 1,000,000 messages) is
//! not run in CI; run it with
//!
//! ```sh
//! PROGJAR_SOAK_SCALE=10 cargo test --release --test load_soak -- --nocapture
//! ```
//!
//! `PROGJAR_SOAK_SCALE` multiplies the number of sender clients (default 1).

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use progjar_chat::protocol::frame::REPLY_TERMINATOR as TERMINATOR;
use progjar_chat::protocol::limits::Limits;
use progjar_chat::protocol::users::{Password, User, UserDirectory};
use support::{message_sent, AsyncConn, InProcessServer};
use tokio::io::AsyncWriteExt;

const USERS: usize = 20;
const SENDERS: usize = 200;
const MESSAGES_PER_SENDER: usize = 500;
const PIPELINE: usize = 50;
const PASSWORD: &str = "pw";

const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

fn username(i: usize) -> String {
    format!("u{i:02}")
}

fn full_name(i: usize) -> String {
    format!("User Number {i}")
}

fn directory() -> UserDirectory {
    UserDirectory::new(
        (0..USERS)
            .map(|i| User {
                username: username(i),
                name: full_name(i),
                password: Password::Plain(PASSWORD.into()),
            })
            .collect(),
    )
    .expect("a valid directory")
}

/// A small deterministic generator, so that a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// What a sender client was told: for each sequence number, the recipient
/// and whether the message was acknowledged.
struct Sent {
    client: usize,
    user: usize,
    to: Vec<usize>,
    acked: Vec<bool>,
}

async fn sender(addr: SocketAddr, client: usize, messages: usize) -> Sent {
    let user = client % USERS;
    let mut conn = AsyncConn::connect(addr).await.with_timeout(REPLY_TIMEOUT);
    let token = conn.login(&username(user), PASSWORD).await;
    let mut random = XorShift(0x9e37_79b9_7f4a_7c15 ^ ((client as u64 + 1) * 0x2545_f491));
    let to: Vec<usize> = (0..messages).map(|_| random.below(USERS)).collect();
    let mut acked = Vec::with_capacity(messages);
    let message_sent = message_sent();
    let mut batch = Vec::new();
    for start in (0..messages).step_by(PIPELINE) {
        let end = (start + PIPELINE).min(messages);
        batch.clear();
        for (seq, &recipient) in to.iter().enumerate().take(end).skip(start) {
            let line = format!("send {token} {} c{client}-{seq}\r\n", username(recipient));
            batch.extend_from_slice(line.as_bytes());
        }
        conn.stream.write_all(&batch).await.expect("write a batch");
        for _ in start..end {
            let reply = conn.reply_bytes().await;
            // Only `Message Sent` acknowledges; any error reply (a full
            // mailbox, say) means the message must not be delivered.
            acked.push(reply == message_sent.as_bytes());
        }
    }
    Sent { client, user, to, acked }
}

/// One message as a drainer took it.
struct Taken {
    from_user: String,
    from_name: String,
    to_name: String,
    text: String,
}

/// Takes `user`'s inbox until `done` is set and one more `inbox` after it
/// comes back empty. Returns the messages in the order they were taken.
async fn drainer(addr: SocketAddr, user: usize, done: Arc<AtomicBool>) -> (Vec<Taken>, usize) {
    let mut conn = AsyncConn::connect(addr).await.with_timeout(REPLY_TIMEOUT);
    let token = conn.login(&username(user), PASSWORD).await;
    let request = format!("inbox {token}\r\n");
    let mut taken = Vec::new();
    let mut inboxes = 0;
    loop {
        // Read `done` before asking: an empty inbox after all senders were
        // done means nothing more can come.
        let finished = done.load(Ordering::Acquire);
        conn.stream.write_all(request.as_bytes()).await.expect("write");
        let reply = conn.reply_bytes().await;
        inboxes += 1;
        let body = reply.strip_suffix(TERMINATOR).expect("terminator");
        let value: serde_json::Value = serde_json::from_slice(body).expect("inbox JSON");
        assert_eq!(value["status"], "OK", "{}", String::from_utf8_lossy(&reply));
        let mailbox = value["messages"].as_object().expect("a mailbox");
        let before = taken.len();
        for (from_user, messages) in mailbox {
            for message in messages.as_array().expect("a list per sender") {
                let field = |key: &str| message[key].as_str().expect("a string field").to_string();
                taken.push(Taken {
                    from_user: from_user.clone(),
                    from_name: field("msg_from"),
                    to_name: field("msg_to"),
                    text: field("msg"),
                });
            }
        }
        if taken.len() == before {
            if finished {
                return (taken, inboxes);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

#[test]
fn every_acknowledged_message_is_delivered_once_in_order() {
    let scale: usize = std::env::var("PROGJAR_SOAK_SCALE")
        .ok()
        .map(|s| s.parse().expect("PROGJAR_SOAK_SCALE is a whole number"))
        .unwrap_or(1);
    let senders = SENDERS * scale;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let server = InProcessServer::start_with(directory(), Limits::default());
        let addr = server.addr;
        let started = Instant::now();
        let done = Arc::new(AtomicBool::new(false));
        let drainers: Vec<_> = (0..USERS)
            .map(|user| tokio::spawn(drainer(addr, user, Arc::clone(&done))))
            .collect();
        let senders_running: Vec<_> = (0..senders)
            .map(|client| tokio::spawn(sender(addr, client, MESSAGES_PER_SENDER)))
            .collect();
        let mut sent = Vec::with_capacity(senders);
        for task in senders_running {
            sent.push(task.await.expect("a sender panicked"));
        }
        let sending = started.elapsed();
        done.store(true, Ordering::Release);
        let mut taken_by_user = Vec::with_capacity(USERS);
        let mut inbox_requests = 0;
        for task in drainers {
            let (taken, inboxes) = task.await.expect("a drainer panicked");
            taken_by_user.push(taken);
            inbox_requests += inboxes;
        }
        let elapsed = started.elapsed();
        let pending_left = server.state.with(|chat| chat.pending_count());
        server.stop().await;

        // Index what was sent: (client, seq) → recipient, acknowledged.
        let acked_total: usize = sent.iter().map(|s| s.acked.iter().filter(|&&a| a).count()).sum();
        let sent_total = senders * MESSAGES_PER_SENDER;
        let by_client: HashMap<usize, &Sent> = sent.iter().map(|s| (s.client, s)).collect();
        let mut seen: HashMap<(usize, usize), usize> = HashMap::new();
        let mut delivered = 0;
        for (recipient, taken) in taken_by_user.iter().enumerate() {
            // Per sender client, the last sequence number seen here.
            let mut last: HashMap<usize, usize> = HashMap::new();
            for message in taken {
                delivered += 1;
                let tag = message
                    .text
                    .strip_prefix(" c")
                    .and_then(|t| t.strip_suffix("\r\n"))
                    .unwrap_or_else(|| panic!("a text that was never sent: {:?}", message.text));
                let (client, seq) = tag.split_once('-').expect("c<client>-<seq>");
                let (client, seq): (usize, usize) = (client.parse().unwrap(), seq.parse().unwrap());
                let origin = by_client[&client];
                assert!(origin.acked[seq], "c{client}-{seq} was delivered but never acknowledged");
                assert_eq!(origin.to[seq], recipient, "c{client}-{seq} reached the wrong user");
                assert_eq!(message.from_user, username(origin.user), "c{client}-{seq} sender key");
                assert_eq!(message.from_name, full_name(origin.user), "c{client}-{seq} msg_from");
                assert_eq!(message.to_name, full_name(recipient), "c{client}-{seq} msg_to");
                *seen.entry((client, seq)).or_default() += 1;
                if let Some(&before) = last.get(&client) {
                    assert!(
                        seq > before,
                        "to {}: c{client}-{seq} came after c{client}-{before}",
                        username(recipient)
                    );
                }
                last.insert(client, seq);
            }
        }
        let duplicated: Vec<_> = seen.iter().filter(|(_, &n)| n > 1).collect();
        assert!(duplicated.is_empty(), "delivered more than once: {duplicated:?}");
        let mut lost = Vec::new();
        for s in &sent {
            for (seq, &acked) in s.acked.iter().enumerate() {
                if acked && !seen.contains_key(&(s.client, seq)) {
                    lost.push(format!("c{}-{seq}", s.client));
                }
            }
        }
        assert!(lost.is_empty(), "{} acknowledged messages lost, e.g. {:?}", lost.len(), &lost[..lost.len().min(10)]);
        assert_eq!(delivered, acked_total);
        assert_eq!(pending_left, 0, "messages left in mailboxes after the final drain");

        println!(
            "load_soak: scale {scale}: {} connections ({senders} senders + {USERS} drainers), \
             {USERS} users; {sent_total} messages sent, {acked_total} acknowledged, \
             {delivered} delivered exactly once in order, {} lost; {inbox_requests} inbox requests; \
             sending took {:.2} s, all {:.2} s ({:.0} messages/s)",
            senders + USERS,
            acked_total - delivered,
            sending.as_secs_f64(),
            elapsed.as_secs_f64(),
            acked_total as f64 / elapsed.as_secs_f64(),
        );
        assert_eq!(acked_total, sent_total, "with default limits every message is acknowledged");
    });
}
