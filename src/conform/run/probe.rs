//! Which commands the server under test has at all.
//!
//! The course's original server knows `auth`, `send` and `inbox` only, and
//! many students' servers lack `list` or `logout`. Such a server answers a
//! well-formed `list TOKEN` the way it answers a command that cannot exist,
//! whatever its wording. Once per run, the probe logs in and sends each
//! command well-formed, then a made-up one (`xyzzy TOKEN`); a command
//! answered exactly like the made-up one (the same reply with the command
//! word left out, or the same silence or close) is not implemented. Its
//! cases are then reported once, as NOT-IMPLEMENTED, instead of failing
//! one by one under other rules.
//!
//! Each request goes on a connection of its own, closed after its reply,
//! so that a server serving one connection at a time is probed too.

use crate::conform::endpoint::Endpoint;
use std::time::Duration;

use serde_json::Value;

/// The made-up command the others are compared with.
pub(crate) const MADE_UP: &str = "xyzzy";

/// How the server answered one probe request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    /// A reply, as JSON when it parses, with the command word blanked out
    /// of its strings (`Unknown command: list` and `Unknown command:
    /// xyzzy` are the same answer).
    Reply(Value),
    /// A reply that is not JSON, bytes as received, command word blanked.
    Bytes(Vec<u8>),
    /// The connection closed without a reply.
    Closed,
    /// Nothing within the wait.
    Silent,
    /// The connection could not be opened.
    Refused,
}

impl Answer {
    /// Whether this answer tells nothing about the command (the probe
    /// could not talk to the server).
    fn is_unknown(&self) -> bool {
        matches!(self, Answer::Refused)
    }
}

/// Blanks `word` out of every string in a reply.
fn blank(value: Value, word: &str) -> Value {
    match value {
        Value::String(s) => Value::String(s.replace(word, "…")),
        Value::Array(items) => Value::Array(items.into_iter().map(|v| blank(v, word)).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, blank(v, word))).collect())
        }
        other => other,
    }
}

/// Makes an answer out of the bytes a request got.
pub(crate) fn answer_of(bytes: &[u8], word: &str) -> Answer {
    let body = bytes.strip_suffix(b"\r\n\r\n").unwrap_or(bytes);
    match serde_json::from_slice::<Value>(body.trim_ascii()) {
        Ok(value) => Answer::Reply(blank(value, word)),
        Err(_) => {
            let text = String::from_utf8_lossy(bytes).replace(word, "…");
            Answer::Bytes(text.into_bytes())
        }
    }
}

/// The commands among `probes` whose answer is the made-up command's.
/// `probes` pairs each command with its answer; `made_up` is the answer
/// to [`MADE_UP`].
pub(crate) fn missing(probes: &[(&str, Answer)], made_up: &Answer) -> Vec<String> {
    if made_up.is_unknown() {
        return Vec::new();
    }
    probes
        .iter()
        .filter(|(_, answer)| answer == made_up)
        .map(|(command, _)| (*command).to_owned())
        .collect()
}

/// Sends one request on a fresh connection and reads one reply.
async fn ask(addr: &Endpoint, request: &str, wait: Duration) -> (Answer, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(Ok(mut stream)) = tokio::time::timeout(wait, addr.connect()).await else {
        return (Answer::Refused, Vec::new());
    };
    let _ = stream.set_nodelay(true);
    if stream.write_all(request.as_bytes()).await.is_err() {
        return (Answer::Closed, Vec::new());
    }
    let word = request.split(' ').next().unwrap_or("");
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = [0u8; 4096];
    loop {
        if got.ends_with(b"\r\n\r\n") {
            return (answer_of(&got, word), got);
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) if got.is_empty() => return (Answer::Closed, got),
            Ok(Ok(0)) | Ok(Err(_)) => return (answer_of(&got, word), got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) if got.is_empty() => return (Answer::Silent, got),
            // A whole object without the terminator is still an answer.
            Err(_) => return (answer_of(&got, word), got),
        }
    }
}

/// The token of an OK login, under `tokenid` or any key naming a token.
fn token(bytes: &[u8]) -> Option<String> {
    let body = bytes.strip_suffix(b"\r\n\r\n").unwrap_or(bytes);
    let value: Value = serde_json::from_slice(body.trim_ascii()).ok()?;
    let object = value.as_object()?;
    let token = object.get("tokenid").or_else(|| {
        object.iter().find(|(k, _)| k.to_ascii_lowercase().contains("token")).map(|(_, v)| v)
    })?;
    Some(token.as_str()?.to_owned())
}

/// What the probe found, for the transcript of the run.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Findings {
    /// Commands answered like the made-up one.
    pub missing: Vec<String>,
    /// Why nothing could be learned, when that is so.
    pub inconclusive: Option<String>,
}

/// Probes the server at `addr` as `user`/`password`.
pub(crate) async fn probe(addr: &Endpoint, user: &str, password: &str, wait: Duration) -> Findings {
    let (_, login) = ask(addr, &format!("auth {user} {password} \r\n"), wait).await;
    let Some(t) = token(&login) else {
        return Findings {
            missing: Vec::new(),
            inconclusive: Some(format!("`auth {user} {password}` gave no token")),
        };
    };
    // `logout` last but one: it ends the session the others use; the
    // made-up command last, in case it brings the server down.
    let requests = [
        ("inbox", format!("inbox {t} \r\n")),
        ("send", format!("send {t} {user} probe \r\n")),
        ("inbox", format!("inbox {t} \r\n")),
        ("list", format!("list {t} \r\n")),
        ("logout", format!("logout {t} \r\n")),
    ];
    let mut answers: Vec<(&str, Answer)> = Vec::new();
    for (command, request) in &requests {
        let (answer, _) = ask(addr, request, wait).await;
        answers.push((command, answer));
    }
    let (made_up, _) = ask(addr, &format!("{MADE_UP} {t} \r\n"), wait).await;
    let mut missing = missing(&answers, &made_up);
    missing.dedup();
    let inconclusive = made_up.is_unknown().then(|| "the made-up command got no answer".to_owned());
    Findings { missing, inconclusive }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(text: &str, word: &str) -> Answer {
        answer_of(format!("{text}\r\n\r\n").as_bytes(), word)
    }

    #[test]
    fn a_command_answered_like_the_made_up_one_is_missing() {
        let unknown = r#"{"status": "ERROR", "message": "**Protocol Tidak Benar"}"#;
        let probes = [
            ("inbox", reply(r#"{"status": "OK", "messages": {}}"#, "inbox")),
            ("list", reply(unknown, "list")),
            ("logout", reply(unknown, "logout")),
        ];
        let made_up = reply(unknown, MADE_UP);
        assert_eq!(missing(&probes, &made_up), ["list", "logout"]);
    }

    #[test]
    fn the_wording_does_not_matter_and_the_command_word_is_blanked() {
        let made_up = reply(r#"{"status": "ERROR", "message": "Unknown command: xyzzy"}"#, MADE_UP);
        let list = reply(r#"{"status": "ERROR", "message": "Unknown command: list"}"#, "list");
        let logout = reply(r#"{"status": "ERROR", "message": "Invalid token"}"#, "logout");
        assert_eq!(missing(&[("list", list), ("logout", logout)], &made_up), ["list"]);
    }

    #[test]
    fn silence_and_closes_compare_too() {
        assert_eq!(missing(&[("list", Answer::Silent)], &Answer::Silent), ["list"]);
        assert_eq!(missing(&[("list", Answer::Closed)], &Answer::Silent), Vec::<String>::new());
        // A server the probe could not reach tells nothing.
        assert!(missing(&[("list", Answer::Refused)], &Answer::Refused).is_empty());
    }

    #[test]
    fn tokens_are_found_under_any_token_key() {
        assert_eq!(
            token(b"{\"status\": \"OK\", \"tokenid\": \"abc\"}\r\n\r\n").as_deref(),
            Some("abc")
        );
        assert_eq!(token(b"{\"status\": \"OK\", \"token\": \"xyz\"}").as_deref(), Some("xyz"));
        assert_eq!(token(b"{\"status\": \"ERROR\"}"), None);
    }
}
