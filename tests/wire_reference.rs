//! The wire protocol, byte for byte, over real sockets.
//!
//! Each test drives an in-process server (`server::run` on `127.0.0.1:0`)
//! with raw request bytes and compares the reply bytes exactly. The rows of
//! "Exact replies (observed)" in `shared/reference-behaviour.md` each have a
//! test named `row_…`; where this implementation deliberately differs from
//! the original (`inbox` after a read, `list`, `logout`, pipelining, bad
//! UTF-8, over-long lines) the test pins *our* choice and says so.
//!
//! Tokens are random, so each is captured from its `auth` reply, checked to
//! be a lowercase UUIDv4, and substituted into the expected bytes.

mod support;

use progjar_chat::protocol::limits::Limits;
use progjar_chat::protocol::users::UserDirectory;
use support::msg::{
    MISSING_FIELDS, NOT_UTF8, RECIPIENT_NOT_FOUND, TOO_LONG, UNKNOWN_COMMAND, UNKNOWN_TOKEN,
    USER_NOT_FOUND, WRONG_PASSWORD,
};
use support::{
    empty_inbox, error_reply, list_reply, logged_out, message_sent, token_from_auth_reply,
    InProcessServer,
};

// ---------------------------------------------------------------- auth rows

/// Row `auth messi surabaya \r\n`: the original client's own form (trailing
/// space) logs in and returns a fresh lowercase UUIDv4 under `tokenid`.
#[tokio::test]
async fn row_auth_with_trailing_space_returns_uuid4_token() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    let reply = c.ask(b"auth messi surabaya \r\n").await;
    let token = token_from_auth_reply(&reply);
    assert_eq!(reply, format!("{{\"status\": \"OK\", \"tokenid\": \"{token}\"}}\r\n\r\n"));
}

/// Row `auth messi surabaya\r\n`: strip removes the terminator from the last
/// field, so this form works too; every login gets a distinct token.
#[tokio::test]
async fn row_auth_without_trailing_space_returns_token() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    let mut tokens = Vec::new();
    for _ in 0..20 {
        let reply = c.ask(b"auth messi surabaya\r\n").await;
        tokens.push(token_from_auth_reply(&reply));
    }
    let mut unique = tokens.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), tokens.len(), "tokens repeat: {tokens:?}");
}

/// Row `auth pogba surabaya \r\n`: unknown user.
#[tokio::test]
async fn row_auth_unknown_user() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    assert_eq!(c.ask(b"auth pogba surabaya \r\n").await, error_reply(USER_NOT_FOUND));
}

/// Row `auth messi jakarta \r\n`: wrong password.
#[tokio::test]
async fn row_auth_wrong_password() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    assert_eq!(c.ask(b"auth messi jakarta \r\n").await, error_reply(WRONG_PASSWORD));
}

/// Row `auth messi \r\n`: the password field exists but is empty after
/// strip, so it is a wrong password, not a missing field.
#[tokio::test]
async fn row_auth_empty_password_field_is_wrong_password() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    assert_eq!(c.ask(b"auth messi \r\n").await, error_reply(WRONG_PASSWORD));
}

/// Row `auth messi\r\n`: no password field at all is a protocol error with
/// the `--` prefix (missing fields).
#[tokio::test]
async fn row_auth_without_password_field_is_missing_fields() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    assert_eq!(c.ask(b"auth messi\r\n").await, error_reply(MISSING_FIELDS));
    assert_eq!(c.ask(b"auth\r\n").await, error_reply(MISSING_FIELDS));
}

/// Row `auth  messi surabaya\r\n`: two spaces make an empty username field
/// (Python `split(" ")`), and no user is called "".
#[tokio::test]
async fn row_auth_two_spaces_make_an_empty_username() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    assert_eq!(c.ask(b"auth  messi surabaya\r\n").await, error_reply(USER_NOT_FOUND));
}

/// Row `AUTH …`, ` auth …`, tab-separated: commands are case-sensitive and
/// only single spaces separate fields, so none of these is a command.
#[tokio::test]
async fn row_commands_are_case_sensitive_and_space_separated() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    for line in [
        &b"AUTH messi surabaya\r\n"[..],
        b"Auth messi surabaya\r\n",
        b" auth messi surabaya\r\n",
        b"auth\tmessi\tsurabaya\r\n",
    ] {
        assert_eq!(
            c.ask(line).await,
            error_reply(UNKNOWN_COMMAND),
            "{:?}",
            String::from_utf8_lossy(line)
        );
    }
}

/// Fields beyond those a command uses are ignored (reference: "Parsing a
/// request").
#[tokio::test]
async fn extra_fields_are_ignored() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    let reply = c.ask(b"auth messi surabaya extra fields here\r\n").await;
    let token = token_from_auth_reply(&reply);
    assert_eq!(c.ask(format!("inbox {token} extra\r\n").as_bytes()).await, empty_inbox());
    assert_eq!(
        c.ask(format!("list {token} extra\r\n").as_bytes()).await,
        list_reply(&["messi - Lionel Messi"])
    );
}

// ---------------------------------------------------------------- send rows

/// Row `send TOKEN lineker  halo \r\n`: accepted.
#[tokio::test]
async fn row_send_to_known_user_is_sent() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    let token = c.login("messi", "surabaya").await;
    assert_eq!(c.ask(format!("send {token} lineker  halo \r\n").as_bytes()).await, message_sent());
    assert_eq!(server.state.with(|chat| chat.pending_count()), 1);
}

/// Row `send TOKEN pogba hallo \r\n`: unknown recipient; nothing is stored.
#[tokio::test]
async fn row_send_to_unknown_user() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    let token = c.login("messi", "surabaya").await;
    assert_eq!(
        c.ask(format!("send {token} pogba hallo \r\n").as_bytes()).await,
        error_reply(RECIPIENT_NOT_FOUND)
    );
    assert_eq!(server.state.with(|chat| chat.pending_count()), 0);
}

/// Row `send TOKEN lineker\r\n`: no text field at all is still a send, and
/// the stored text is the empty string (seen through lineker's inbox).
#[tokio::test]
async fn row_send_without_text_stores_empty_text() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    let messi = c.login("messi", "surabaya").await;
    let lineker = c.login("lineker", "surabaya").await;
    assert_eq!(c.ask(format!("send {messi} lineker\r\n").as_bytes()).await, message_sent());
    assert_eq!(
        c.ask(format!("inbox {lineker} \r\n").as_bytes()).await,
        "{\"status\": \"OK\", \"messages\": {\"messi\": [{\"msg_from\": \"Lionel Messi\", \
         \"msg_to\": \"Gary Lineker\", \"msg\": \"\"}]}}\r\n\r\n"
    );
}

/// Row `send bogus lineker hi\r\n`: a token no session holds.
#[tokio::test]
async fn row_send_with_unknown_token() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    assert_eq!(c.ask(b"send bogus lineker hi\r\n").await, error_reply(UNKNOWN_TOKEN));
}

/// Row `send\r\n`: missing fields.
#[tokio::test]
async fn row_send_without_fields() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    assert_eq!(c.ask(b"send\r\n").await, error_reply(MISSING_FIELDS));
}

/// `send`'s checks run in the original's order: missing fields first (even
/// with a bogus token), then the token (even with a bogus recipient), then
/// the recipient.
#[tokio::test]
async fn send_checks_fields_then_token_then_recipient() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    assert_eq!(c.ask(b"send bogus\r\n").await, error_reply(MISSING_FIELDS));
    assert_eq!(c.ask(b"send bogus pogba hi\r\n").await, error_reply(UNKNOWN_TOKEN));
    let token = c.login("messi", "surabaya").await;
    assert_eq!(c.ask(format!("send {token}\r\n").as_bytes()).await, error_reply(MISSING_FIELDS));
    assert_eq!(
        c.ask(format!("send {token} pogba hi\r\n").as_bytes()).await,
        error_reply(RECIPIENT_NOT_FOUND)
    );
    assert_eq!(server.state.with(|chat| chat.pending_count()), 0);
}

/// Sending to oneself is allowed and lands in one's own inbox, with the
/// same full name as sender and recipient.
#[tokio::test]
async fn messages_to_self_are_allowed() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    let token = c.login("messi", "surabaya").await;
    assert_eq!(c.ask(format!("send {token} messi note\r\n").as_bytes()).await, message_sent());
    assert_eq!(
        c.ask(format!("inbox {token}\r\n").as_bytes()).await,
        r#"{"status": "OK", "messages": {"messi": [{"msg_from": "Lionel Messi", "msg_to": "Lionel Messi", "msg": " note\r\n"}]}}"#
            .to_owned()
            + "\r\n\r\n"
    );
}

/// The stored text is the raw rest of the line after the recipient field,
/// separating space and `\r\n` included: the original client's
/// `send TOKEN henderson  hallo \r\n` stores `"  hallo \r\n"`, and the
/// inbox shows it JSON-escaped (`\r\n` as the two escapes).
#[tokio::test]
async fn client_style_send_round_trips_text_with_json_escaping() {
    let server = InProcessServer::start();
    let mut messi_conn = server.connect_async().await;
    let messi = messi_conn.login("messi", "surabaya").await;
    assert_eq!(
        messi_conn.ask(format!("send {messi} henderson  hallo \r\n").as_bytes()).await,
        message_sent()
    );
    let mut henderson_conn = server.connect_async().await;
    let henderson = henderson_conn.login("henderson", "surabaya").await;
    let reply = henderson_conn.ask(format!("inbox {henderson} \r\n").as_bytes()).await;
    assert_eq!(
        reply,
        r#"{"status": "OK", "messages": {"messi": [{"msg_from": "Lionel Messi", "msg_to": "Jordan Henderson", "msg": "  hallo \r\n"}]}}"#
            .to_owned()
            + "\r\n\r\n"
    );
    // The JSON value, decoded, is exactly the stored text.
    let value: serde_json::Value = serde_json::from_str(reply.trim_end()).unwrap();
    assert_eq!(value["messages"]["messi"][0]["msg"], "  hallo \r\n");
}

/// Reply text is `json.dumps` with `ensure_ascii=True`: short escapes for
/// `\t` `\b` `\f` `\r` `\n`, `\u00XX` for other controls and DEL,
/// non-ASCII as `\uXXXX` (a surrogate pair beyond the BMP), `"` and `\`
/// escaped, `/` left alone. A bare `\r` or `\n` inside a line is text.
#[tokio::test]
async fn message_text_is_escaped_like_python_json_dumps() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    let token = c.login("lineker", "surabaya").await;
    let text = "\"é\t/\\😀\u{7f}\u{1}\u{8}\u{c}a\rb\nc";
    let reply = c.ask(format!("send {token} lineker {text}\r\n").as_bytes()).await;
    assert_eq!(reply, message_sent());
    assert_eq!(
        c.ask(format!("inbox {token}\r\n").as_bytes()).await,
        r#"{"status": "OK", "messages": {"lineker": [{"msg_from": "Gary Lineker", "msg_to": "Gary Lineker", "msg": " \"\u00e9\t/\\\ud83d\ude00\u007f\u0001\b\fa\rb\nc\r\n"}]}}"#
            .to_owned()
            + "\r\n\r\n"
    );
}

// --------------------------------------------------------------- inbox rows

/// Row `inbox TOKEN \r\n` with nothing ever received: an empty object.
#[tokio::test]
async fn row_inbox_nothing_received_is_empty_object() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    let token = c.login("lineker", "surabaya").await;
    assert_eq!(c.ask(format!("inbox {token} \r\n").as_bytes()).await, empty_inbox());
}

/// Row `inbox TOKEN \r\n` with mail pending: the seed's exact reply. The
/// message was sent while lineker was offline and waited for him.
#[tokio::test]
async fn row_inbox_pending_is_the_seed_reply() {
    let server = InProcessServer::start();
    let mut messi_conn = server.connect_async().await;
    let messi = messi_conn.login("messi", "surabaya").await;
    assert_eq!(
        messi_conn.ask(format!("send {messi} lineker  halo \r\n").as_bytes()).await,
        message_sent()
    );
    let mut c = server.connect_async().await;
    let lineker = c.login("lineker", "surabaya").await;
    assert_eq!(
        c.ask(format!("inbox {lineker} \r\n").as_bytes()).await,
        r#"{"status": "OK", "messages": {"messi": [{"msg_from": "Lionel Messi", "msg_to": "Gary Lineker", "msg": "  halo \r\n"}]}}"#
            .to_owned()
            + "\r\n\r\n"
    );
}

/// Row `inbox TOKEN \r\n` again — OUR CHOICE differs from the original:
/// read messages are removed and a sender with nothing pending is omitted,
/// so the second inbox is `{}` (the original kept `{"messi": []}`).
#[tokio::test]
async fn row_inbox_again_is_empty_object_our_choice() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    let messi = c.login("messi", "surabaya").await;
    let lineker = c.login("lineker", "surabaya").await;
    assert_eq!(c.ask(format!("send {messi} lineker  halo \r\n").as_bytes()).await, message_sent());
    let first = c.ask(format!("inbox {lineker} \r\n").as_bytes()).await;
    assert!(first.contains("\"messi\": [{"), "{first}");
    assert_eq!(c.ask(format!("inbox {lineker} \r\n").as_bytes()).await, empty_inbox());
    assert_eq!(server.state.with(|chat| chat.pending_count()), 0);
}

/// Row `inbox bogus \r\n`: unknown token; `inbox\r\n` misses its field.
#[tokio::test]
async fn row_inbox_with_unknown_token() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    assert_eq!(c.ask(b"inbox bogus \r\n").await, error_reply(UNKNOWN_TOKEN));
    assert_eq!(c.ask(b"inbox\r\n").await, error_reply(MISSING_FIELDS));
}

/// Inbox groups by sender username, senders in the order of their first
/// pending message, each sender's messages in send order.
#[tokio::test]
async fn inbox_groups_by_sender_in_first_message_order() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    let messi = c.login("messi", "surabaya").await;
    let henderson = c.login("henderson", "surabaya").await;
    let lineker = c.login("lineker", "surabaya").await;
    for (from, text) in [(&henderson, "a"), (&messi, "b"), (&henderson, "c"), (&messi, "d")] {
        assert_eq!(
            c.ask(format!("send {from} lineker {text}\r\n").as_bytes()).await,
            message_sent()
        );
    }
    assert_eq!(
        c.ask(format!("inbox {lineker}\r\n").as_bytes()).await,
        concat!(
            r#"{"status": "OK", "messages": {"henderson": ["#,
            r#"{"msg_from": "Jordan Henderson", "msg_to": "Gary Lineker", "msg": " a\r\n"}, "#,
            r#"{"msg_from": "Jordan Henderson", "msg_to": "Gary Lineker", "msg": " c\r\n"}], "#,
            r#""messi": ["#,
            r#"{"msg_from": "Lionel Messi", "msg_to": "Gary Lineker", "msg": " b\r\n"}, "#,
            r#"{"msg_from": "Lionel Messi", "msg_to": "Gary Lineker", "msg": " d\r\n"}]}}"#,
            "\r\n\r\n"
        )
    );
}

/// Mail belongs to the user, not the session: whichever of the user's
/// sessions asks first takes it, the other then sees `{}`.
#[tokio::test]
async fn mail_is_taken_by_the_first_session_that_asks() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    let first = c.login("henderson", "surabaya").await;
    let second = c.login("henderson", "surabaya").await;
    assert_eq!(c.ask(format!("send {first} henderson x\r\n").as_bytes()).await, message_sent());
    let reply = c.ask(format!("inbox {second}\r\n").as_bytes()).await;
    assert!(reply.contains("\"msg\": \" x\\r\\n\""), "{reply}");
    assert_eq!(c.ask(format!("inbox {first}\r\n").as_bytes()).await, empty_inbox());
}

// ------------------------------------------------------------ unknown lines

/// Rows `foo\r\n` and `\r\n`: not a command.
#[tokio::test]
async fn row_unknown_command_and_empty_line() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    assert_eq!(c.ask(b"foo\r\n").await, error_reply(UNKNOWN_COMMAND));
    assert_eq!(c.ask(b"\r\n").await, error_reply(UNKNOWN_COMMAND));
    assert_eq!(c.ask(b"foo bar baz\r\n").await, error_reply(UNKNOWN_COMMAND));
}

// ------------------------------------------------------------- list, logout

/// `list TOKEN` names the users with a live session as `USERNAME - FULL
/// NAME`, each once, in the order of their earliest live session.
#[tokio::test]
async fn row_list_names_online_users_in_order_of_earliest_session() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    let messi = c.login("messi", "surabaya").await;
    assert_eq!(
        c.ask(format!("list {messi}\r\n").as_bytes()).await,
        list_reply(&["messi - Lionel Messi"])
    );
    let henderson = c.login("henderson", "surabaya").await;
    let _messi_again = c.login("messi", "surabaya").await;
    let expected = list_reply(&["messi - Lionel Messi", "henderson - Jordan Henderson"]);
    assert_eq!(c.ask(format!("list {henderson} \r\n").as_bytes()).await, expected);
    assert_eq!(
        expected,
        "{\"status\": \"OK\", \"messages\": [\"messi - Lionel Messi\", \
         \"henderson - Jordan Henderson\"]}\r\n\r\n",
        "the seed's exact list reply"
    );
}

/// Once a user's earliest session ends, their place in `list` is that of
/// their earliest *remaining* session.
#[tokio::test]
async fn list_order_follows_earliest_live_session() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    let henderson1 = c.login("henderson", "surabaya").await;
    let messi = c.login("messi", "surabaya").await;
    let _henderson2 = c.login("henderson", "surabaya").await;
    assert_eq!(
        c.ask(format!("list {messi}\r\n").as_bytes()).await,
        list_reply(&["henderson - Jordan Henderson", "messi - Lionel Messi"])
    );
    assert_eq!(c.ask(format!("logout {henderson1}\r\n").as_bytes()).await, logged_out());
    assert_eq!(
        c.ask(format!("list {messi}\r\n").as_bytes()).await,
        list_reply(&["messi - Lionel Messi", "henderson - Jordan Henderson"])
    );
}

/// `list` and `logout` need a live token and their token field.
#[tokio::test]
async fn row_list_and_logout_errors() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    assert_eq!(c.ask(b"list bogus\r\n").await, error_reply(UNKNOWN_TOKEN));
    assert_eq!(c.ask(b"logout bogus\r\n").await, error_reply(UNKNOWN_TOKEN));
    assert_eq!(c.ask(b"list\r\n").await, error_reply(MISSING_FIELDS));
    assert_eq!(c.ask(b"logout\r\n").await, error_reply(MISSING_FIELDS));
}

/// `logout TOKEN` answers `{"status": "OK", "messages": "Anda berhasil
/// logout!"}` (key `messages`, as the seed shows) and the token is dead for
/// every command afterwards, including a second logout.
#[tokio::test]
async fn row_logout_ends_the_session() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    let token = c.login("messi", "surabaya").await;
    assert_eq!(c.ask(format!("logout {token}\r\n").as_bytes()).await, logged_out());
    for line in [
        format!("inbox {token}\r\n"),
        format!("list {token}\r\n"),
        format!("send {token} messi hi\r\n"),
        format!("logout {token}\r\n"),
    ] {
        assert_eq!(c.ask(line.as_bytes()).await, error_reply(UNKNOWN_TOKEN), "{line:?}");
    }
    assert_eq!(server.state.with(|chat| chat.session_count()), 0);
}

/// `logout` ends only the token it names: the same user's other session
/// keeps working and keeps the user in `list`.
#[tokio::test]
async fn logout_ends_only_that_token() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    let one = c.login("messi", "surabaya").await;
    let two = c.login("messi", "surabaya").await;
    assert_eq!(c.ask(format!("logout {one}\r\n").as_bytes()).await, logged_out());
    assert_eq!(c.ask(format!("inbox {two}\r\n").as_bytes()).await, empty_inbox());
    assert_eq!(
        c.ask(format!("list {two}\r\n").as_bytes()).await,
        list_reply(&["messi - Lionel Messi"])
    );
    assert_eq!(c.ask(format!("inbox {one}\r\n").as_bytes()).await, error_reply(UNKNOWN_TOKEN));
}

/// A user may hold several sessions at once, each with its own token, all
/// live; `list` still names the user once.
#[tokio::test]
async fn a_user_may_hold_several_sessions() {
    let server = InProcessServer::start();
    let mut a = server.connect_async().await;
    let mut b = server.connect_async().await;
    let t1 = a.login("henderson", "surabaya").await;
    let t2 = b.login("henderson", "surabaya").await;
    let t3 = a.login("henderson", "surabaya").await;
    assert!(t1 != t2 && t2 != t3 && t1 != t3);
    for token in [&t1, &t2, &t3] {
        assert_eq!(
            a.ask(format!("list {token}\r\n").as_bytes()).await,
            list_reply(&["henderson - Jordan Henderson"])
        );
    }
    assert_eq!(server.state.with(|chat| chat.session_count()), 3);
}

/// A token belongs to the session, not the connection: one obtained on one
/// connection works on another, also after the first is closed.
#[tokio::test]
async fn a_token_works_from_another_connection() {
    let server = InProcessServer::start();
    let mut first = server.connect_async().await;
    let token = first.login("messi", "surabaya").await;
    drop(first);
    let mut second = server.connect_async().await;
    assert_eq!(
        second.ask(format!("send {token} henderson hi\r\n").as_bytes()).await,
        message_sent()
    );
    assert_eq!(
        second.ask(format!("list {token}\r\n").as_bytes()).await,
        list_reply(&["messi - Lionel Messi"])
    );
    assert_eq!(second.ask(format!("logout {token}\r\n").as_bytes()).await, logged_out());
}

/// Tokens match exactly: a prefix or an upper-cased token is not the token.
#[tokio::test]
async fn tokens_match_exactly() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    let token = c.login("messi", "surabaya").await;
    for bad in [token[..35].to_string(), token.to_uppercase(), format!("{token}x")] {
        assert_eq!(c.ask(format!("inbox {bad}\r\n").as_bytes()).await, error_reply(UNKNOWN_TOKEN));
    }
}

// ------------------------------------------------- framing (our decisions)

/// OUR CHOICE: each `\r\n` ends exactly one request, so requests written
/// together are answered one by one, in order (the original merged them).
#[tokio::test]
async fn pipelined_requests_get_one_reply_each_in_order() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    c.send(b"auth messi surabaya\r\nfoo\r\nauth messi jakarta\r\ninbox bogus\r\n").await;
    let replies = c.replies(4).await;
    token_from_auth_reply(std::str::from_utf8(&replies[0]).unwrap());
    assert_eq!(replies[1], error_reply(UNKNOWN_COMMAND).into_bytes());
    assert_eq!(replies[2], error_reply(WRONG_PASSWORD).into_bytes());
    assert_eq!(replies[3], error_reply(UNKNOWN_TOKEN).into_bytes());
}

/// OUR CHOICE: bytes that are not UTF-8 get `--Request Bukan UTF-8` (the
/// original crashed its thread) and the connection keeps working.
#[tokio::test]
async fn invalid_utf8_gets_its_error_and_the_connection_stays_usable() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    assert_eq!(c.ask(b"auth \xff\xfe surabaya\r\n").await, error_reply(NOT_UTF8));
    assert_eq!(c.ask(b"\xc3\r\n").await, error_reply(NOT_UTF8));
    c.login("messi", "surabaya").await;
}

/// OUR CHOICE: a line longer than `max_line` (terminator included) is
/// answered once with `--Request Terlalu Panjang` — as soon as the limit is
/// passed, even before its `\r\n` arrives — and skipped up to its `\r\n`;
/// the next request is answered normally. A line of exactly the limit is
/// accepted.
#[tokio::test]
async fn over_long_line_is_answered_once_and_skipped() {
    let limits = Limits { max_line: 64, ..Limits::default() };
    let server = InProcessServer::start_with(UserDirectory::builtin(), limits);
    let mut c = server.connect_async().await;

    // Whole line in one write, followed by a good request.
    let mut bytes = vec![b'x'; 100];
    bytes.extend_from_slice(b"\r\nauth messi surabaya\r\n");
    c.send(&bytes).await;
    let replies = c.replies(2).await;
    assert_eq!(replies[0], error_reply(TOO_LONG).into_bytes());
    token_from_auth_reply(std::str::from_utf8(&replies[1]).unwrap());

    // The error comes before the terminator; the rest of the line makes no
    // second reply.
    assert_eq!(c.ask(&[b'y'; 70]).await, error_reply(TOO_LONG));
    c.send(&[b'z'; 200]).await;
    c.send(b"auth messi\r").await;
    // The `\r\n` that ends the skipped line, split over two writes.
    c.send(b"\n").await;
    c.login("messi", "surabaya").await;

    // Exactly 64 bytes with the terminator: accepted (extra fields ignored).
    let mut line = b"auth messi surabaya ".to_vec();
    line.resize(62, b'p');
    line.extend_from_slice(b"\r\n");
    assert_eq!(line.len(), 64);
    token_from_auth_reply(&c.ask(&line).await);
    // 65 bytes: too long.
    line.insert(30, b'q');
    assert_eq!(c.ask(&line).await, error_reply(TOO_LONG));
}

/// A bare `\r` or `\n` does not end a request: only `\r\n` does. Here each
/// stays inside the password field, which is then wrong; had it ended the
/// line, `auth messi surabaya` would have logged in.
#[tokio::test]
async fn bare_cr_or_lf_does_not_end_a_request() {
    let server = InProcessServer::start();
    let mut c = server.connect_async().await;
    assert_eq!(c.ask(b"auth messi surabaya\nfoo\r\n").await, error_reply(WRONG_PASSWORD));
    c.send(b"auth messi surabaya\r").await;
    c.send(b"x\r\n").await;
    assert_eq!(String::from_utf8(c.reply_bytes().await).unwrap(), error_reply(WRONG_PASSWORD));
    // Nothing was left over: the next request gets the next reply.
    assert_eq!(c.ask(b"foo\r\n").await, error_reply(UNKNOWN_COMMAND));
}
