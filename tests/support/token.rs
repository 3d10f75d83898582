//! The one check of a successful `auth` reply, and token normalising.

use super::model::{self, is_uuid_v4};

/// Panics unless `token` is a UUID version 4 in lowercase hyphenated form
/// (`4c908ff6-3c15-4052-a98a-095d2454cf93`), as the original sends (AUTH-4).
pub fn assert_uuid4(token: &str) {
    assert!(is_uuid_v4(token), "token {token:?} is not a lowercase hyphenated UUID version 4");
}

/// Checks that `reply` is exactly `{"status": "OK", "tokenid": "<uuid4>"}`
/// plus terminator, and returns the token. The one strict token helper:
/// every test that logs in goes through it.
pub fn token_from_auth_reply(reply: &str) -> String {
    const HEAD: &str = "{\"status\": \"OK\", \"tokenid\": \"";
    let token = reply
        .strip_prefix(HEAD)
        .and_then(|rest| rest.get(..36))
        .unwrap_or_else(|| panic!("not a successful auth reply: {reply:?}"));
    assert_uuid4(token);
    let want = model::reply_bytes(&serde_json::json!({"status": "OK", "tokenid": token}));
    assert_eq!(reply.as_bytes(), want, "not exactly the auth reply: {reply:?}");
    token.to_string()
}

/// Whether `s[at..]` starts with something shaped like a token
/// (8-4-4-4-12 lowercase hex).
fn token_at(s: &[u8], at: usize) -> bool {
    let Some(candidate) = s.get(at..at + 36) else { return false };
    candidate.iter().enumerate().all(|(i, &b)| {
        if [8, 13, 18, 23].contains(&i) {
            b == b'-'
        } else {
            b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
        }
    })
}

/// Replaces every token-shaped string by `<T0>`, `<T1>`, … in order of first
/// appearance, so that runs with different (random or sequential) tokens
/// can be compared byte for byte.
pub fn normalize_tokens(bytes: &[u8]) -> String {
    let mut seen: Vec<Vec<u8>> = Vec::new();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if token_at(bytes, i) {
            let token = bytes[i..i + 36].to_vec();
            let n = match seen.iter().position(|t| *t == token) {
                Some(n) => n,
                None => {
                    seen.push(token);
                    seen.len() - 1
                }
            };
            out.extend_from_slice(format!("<T{n}>").as_bytes());
            i += 36;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
