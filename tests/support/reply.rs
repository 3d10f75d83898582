//! The exact bytes of the replies the tests expect, as text. Every text
//! comes from the reference model (`tests/model`), which is written from
//! the spec alone and shares no code with `src/`: so a test that compares a
//! server's reply with these compares the implementation with an
//! independent reading of the spec, and a reply text changed in `src/`
//! fails it.

use serde_json::{json, Map, Value};

use super::model::{self, ok};

pub use super::model::msg;

fn text(v: &Value) -> String {
    String::from_utf8(model::reply_bytes(v)).expect("replies are ASCII")
}

/// The exact error reply carrying `message` (one of [`msg`]).
pub fn error_reply(message: &str) -> String {
    text(&model::error(message))
}

/// `{"status": "OK", "message": "Message Sent"}` and the terminator.
pub fn message_sent() -> String {
    text(&json!({"status": "OK", "message": ok::MESSAGE_SENT}))
}

/// `{"status": "OK", "messages": "Anda berhasil logout!"}` and the
/// terminator.
pub fn logged_out() -> String {
    text(&json!({"status": "OK", "messages": ok::LOGGED_OUT}))
}

/// The `inbox` reply with no mail.
pub fn empty_inbox() -> String {
    text(&json!({"status": "OK", "messages": {}}))
}

/// A `list` reply with these entries (`"username - Full Name"`).
pub fn list_reply(entries: &[&str]) -> String {
    text(&json!({"status": "OK", "messages": entries}))
}

/// An `inbox` reply holding mail from one sender (`sender` is the
/// username, `from` and `to` the full names): `texts` as stored (the
/// leading space and the `\r\n` kept), escaped as the model escapes them.
pub fn inbox_reply(sender: &str, from: &str, to: &str, texts: &[&str]) -> String {
    let mail: Vec<Value> =
        texts.iter().map(|msg| json!({"msg_from": from, "msg_to": to, "msg": msg})).collect();
    let mut messages = Map::new();
    messages.insert(sender.to_string(), Value::Array(mail));
    text(&json!({"status": "OK", "messages": messages}))
}
