//! `--inbox-drain N`: fill one mailbox with N messages, then take them all
//! with one `inbox` and time that one reply.
//!
//! The recipient is the last user of `--users`; `-c` connections send the
//! messages (in batches of `--pipeline`). The reply is checked: valid JSON,
//! status `OK`, and exactly as many messages as were sent. With
//! `--server-pid` the server's memory is read before the fill, after it, and
//! at its peak during the drain; the peak over the reply's size is the
//! figure of merit (the messages and the reply are both in memory then).

use std::fmt;
use std::time::{Duration, Instant};

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use super::conn::BenchConn;
use super::load::Plan;
use super::sys::{self, RssSampler};
use super::wire;
use crate::protocol::frame::REPLY_TERMINATOR;

/// The longest wait between two reads of the drain's reply.
const DRAIN_READ_LIMIT: Duration = Duration::from_secs(300);

/// One fill and drain.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DrainResult {
    /// Messages sent to the mailbox.
    pub messages: u64,
    pub fill_seconds: f64,
    /// Sends answered with an error (they left no message).
    pub fill_errors: u64,
    /// From writing `inbox` to the end of its reply.
    pub drain_seconds: f64,
    pub ns_per_message: f64,
    pub reply_bytes: u64,
    /// Counted in the reply.
    pub messages_in_reply: Option<u64>,
    /// Valid JSON, status `OK`, every message there.
    pub correct: bool,
    pub server_memory: Option<DrainMemory>,
}

/// The server's memory around a drain, in KiB.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct DrainMemory {
    pub before_fill_kib: u64,
    pub after_fill_kib: u64,
    /// The peak from the start of the fill to the end of the drain.
    pub peak_kib: u64,
    pub after_drain_kib: u64,
    /// `(peak - before_fill) / reply_bytes`.
    pub peak_over_reply: f64,
}

/// Fills and drains a mailbox of `messages` messages.
pub(crate) async fn run(plan: &Plan, messages: u64) -> Result<DrainResult, String> {
    let recipient = plan.users.last().ok_or("no users")?.clone();
    let (mut inbox_conn, token) = open(plan, &recipient).await?;
    // Start from an empty mailbox.
    let inbox_line = format!("inbox {token}\r\n");
    inbox_conn.send(inbox_line.as_bytes()).await.map_err(|e| e.to_string())?;
    inbox_conn.reply_within(DRAIN_READ_LIMIT).await.map_err(|e| e.to_string())?;

    let pid = plan.server_pid;
    if let Some(pid) = pid {
        sys::reset_peak(pid);
    }
    let before = pid.and_then(sys::memory);
    let senders = plan.connections.max(1);
    let mut fill = JoinSet::new();
    let fill_started = Instant::now();
    for i in 0..senders {
        let share = messages / senders as u64 + u64::from((i as u64) < messages % senders as u64);
        let user = plan.users[i % plan.users.len()].clone();
        let plan = plan.clone();
        let recipient = recipient.clone();
        fill.spawn(async move {
            let (mut conn, token) = open(&plan, &user).await?;
            let line = format!("send {token} {recipient} {}\r\n", plan.text);
            let mut errors = 0;
            let mut left = share;
            let mut out = Vec::new();
            while left > 0 {
                let batch = left.min(plan.pipeline as u64);
                out.clear();
                for _ in 0..batch {
                    out.extend_from_slice(line.as_bytes());
                }
                conn.send(&out).await.map_err(|e| e.to_string())?;
                for _ in 0..batch {
                    let reply = conn.reply_within(plan.timeout).await.map_err(|e| e.to_string())?;
                    errors += u64::from(wire::is_error(reply));
                }
                left -= batch;
            }
            Ok::<_, String>((conn, token, errors))
        });
    }
    let mut fill_errors = 0;
    let mut fillers = Vec::new();
    while let Some(joined) = fill.join_next().await {
        let (conn, token, errors) = joined.map_err(|e| e.to_string())??;
        fill_errors += errors;
        fillers.push((conn, token));
    }
    let fill_seconds = fill_started.elapsed().as_secs_f64();
    let filled = pid.and_then(sys::memory);

    let sampler = pid.map(RssSampler::start);
    let started = Instant::now();
    inbox_conn.send(inbox_line.as_bytes()).await.map_err(|e| e.to_string())?;
    let reply = inbox_conn.reply_within(DRAIN_READ_LIMIT).await.map_err(|e| e.to_string())?;
    let drain_seconds = started.elapsed().as_secs_f64();
    let sampled_peak = sampler.map(RssSampler::finish);
    let peak = pid.and_then(sys::memory);

    let reply_bytes = reply.len() as u64;
    let body = &reply[..reply.len() - REPLY_TERMINATOR.len()];
    let (status_ok, messages_in_reply) = match serde_json::from_slice::<Top>(body) {
        Ok(top) => (top.status.as_deref() == Some("OK"), top.messages),
        Err(_) => (false, None),
    };
    let correct = status_ok && messages_in_reply == Some(messages - fill_errors);

    let logout = format!("logout {token}\r\n");
    let _ = inbox_conn.request(logout.as_bytes(), plan.timeout).await;
    for (mut conn, token) in fillers {
        let _ = conn.request(format!("logout {token}\r\n").as_bytes(), plan.timeout).await;
    }
    let server_memory = match (before, filled, peak) {
        (Some(before), Some(filled), Some(peak)) => {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let after = pid.and_then(sys::memory).map_or(0, |m| m.rss_kib);
            let peak_kib = peak.peak_kib.max(sampled_peak.unwrap_or(0));
            Some(DrainMemory {
                before_fill_kib: before.rss_kib,
                after_fill_kib: filled.rss_kib,
                peak_kib,
                after_drain_kib: after,
                peak_over_reply: peak_kib.saturating_sub(before.rss_kib) as f64 * 1024.0
                    / reply_bytes as f64,
            })
        }
        _ => None,
    };
    Ok(DrainResult {
        messages,
        fill_seconds,
        fill_errors,
        drain_seconds,
        ns_per_message: drain_seconds * 1e9 / messages.max(1) as f64,
        reply_bytes,
        messages_in_reply,
        correct,
        server_memory,
    })
}

async fn open(plan: &Plan, user: &str) -> Result<(BenchConn, String), String> {
    let mut conn = BenchConn::connect(plan.addr).await.map_err(|e| format!("connect: {e}"))?;
    let line = format!("auth {user} {}\r\n", plan.password);
    let reply = conn.request(line.as_bytes(), plan.timeout).await.map_err(|e| e.to_string())?;
    let token = wire::token(reply).ok_or("auth reply without a token")?;
    Ok((conn, token))
}

/// One line for the text report.
pub(crate) fn line(result: &DrainResult) -> String {
    let mut line = format!(
        "{:>9} messages: drained in {:.3} s ({:.0} ns/message, {} reply bytes), filled in {:.2} s, {}",
        super::thousands::thousands(result.messages as f64),
        result.drain_seconds,
        result.ns_per_message,
        super::thousands::thousands(result.reply_bytes as f64),
        result.fill_seconds,
        if result.correct { "reply correct" } else { "REPLY WRONG" },
    );
    if let Some(m) = &result.server_memory {
        line += &format!(
            "\n      server RSS KiB: before fill {} after fill {} peak {} after drain {}; peak growth / reply = {:.2}",
            m.before_fill_kib, m.after_fill_kib, m.peak_kib, m.after_drain_kib, m.peak_over_reply
        );
    }
    line
}

/// The parts of an inbox reply that are checked; messages are counted
/// without being kept.
struct Top {
    status: Option<String>,
    messages: Option<u64>,
}

impl<'de> Deserialize<'de> for Top {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TopVisitor;
        impl<'de> Visitor<'de> for TopVisitor {
            type Value = Top;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a reply object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
                let mut top = Top { status: None, messages: None };
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "status" => top.status = Some(map.next_value()?),
                        "messages" => top.messages = Some(map.next_value::<CountMail>()?.0),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(top)
            }
        }
        deserializer.deserialize_map(TopVisitor)
    }
}

/// The number of messages in `{"sender": [{…}, …], …}`.
struct CountMail(u64);

impl<'de> Deserialize<'de> for CountMail {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MailVisitor;
        impl<'de> Visitor<'de> for MailVisitor {
            type Value = CountMail;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("messages grouped by sender")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CountMail, A::Error> {
                let mut total = 0;
                while map.next_key::<IgnoredAny>()?.is_some() {
                    total += map.next_value::<CountList>()?.0;
                }
                Ok(CountMail(total))
            }
        }
        deserializer.deserialize_map(MailVisitor)
    }
}

/// The length of a list, its items only checked for syntax.
struct CountList(u64);

impl<'de> Deserialize<'de> for CountList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = CountList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of messages")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CountList, A::Error> {
                let mut n = 0;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(CountList(n))
            }
        }
        deserializer.deserialize_seq(ListVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_messages_of_an_inbox_reply() {
        let reply = br#"{"status": "OK", "messages": {"messi": [{"msg": "a"}, {"msg": "b"}], "lineker": [{"msg": "c"}]}}"#;
        let top: Top = serde_json::from_slice(reply).unwrap();
        assert_eq!(top.status.as_deref(), Some("OK"));
        assert_eq!(top.messages, Some(3));
        let empty: Top = serde_json::from_slice(br#"{"status": "OK", "messages": {}}"#).unwrap();
        assert_eq!(empty.messages, Some(0));
        assert!(serde_json::from_slice::<Top>(br#"{"status": "OK", "messages": {"a": [}"#).is_err());
    }
}
