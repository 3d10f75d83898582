//! The bad-input battery: malformed, hostile and odd requests against a
//! live server, each one checked for its exact reply (or its documented
//! close), for leaving the server able to serve others, and for losing no
//! message that was acknowledged before it.
//!
//! Every case runs the same frame (see [`run_case`]) on a fresh in-process
//! server:
//!
//! 1. client A (messi) sends B (henderson) a message naming the case and
//!    gets `Message Sent`;
//! 2. the case does its bad input on connections of its own, asserting every
//!    reply;
//! 3. A's connection, still open, is answered as before, and a new client
//!    logs in and gets a correct `list`;
//! 4. B's inbox holds A's message exactly once and nothing else;
//! 5. the server shuts down cleanly.
//!
//! All cases run in one test, concurrently, and the test names every case
//! that failed (each failure's panic message is printed above the summary).

mod support;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use progjar_chat::protocol::frame::REPLY_TERMINATOR as TERMINATOR;
use support::msg::{
    MISSING_FIELDS, NOT_UTF8, RECIPIENT_NOT_FOUND, TOO_LONG, UNKNOWN_COMMAND, UNKNOWN_TOKEN,
    USER_NOT_FOUND, WRONG_PASSWORD,
};
use support::{
    empty_inbox, error_reply, find, inbox_reply, list_reply, logged_out, message_sent,
    token_from_auth_reply, AsyncConn, InProcessServer, TIMEOUT,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The reference server's default longest request line.
const MAX_LINE: usize = progjar_chat::protocol::limits::DEFAULT_MAX_LINE;

/// How long a whole case may take before it counts as hung.
const CASE_TIMEOUT: Duration = Duration::from_secs(60);

/// `head` followed by raw bytes (which a Rust string could not hold).
fn cat(head: &str, tail: &[u8]) -> Vec<u8> {
    let mut bytes = head.as_bytes().to_vec();
    bytes.extend_from_slice(tail);
    bytes
}

/// The `list` reply while the frame's messi and a case's lineker are online.
fn online() -> String {
    list_reply(&["messi - Lionel Messi", "lineker - Gary Lineker"])
}

/// The texts of an `inbox` reply: `(sender username, text)` in reply order,
/// after checking that the reply is ASCII JSON of the documented shape.
fn inbox_texts(reply: &str) -> Vec<(String, String)> {
    assert!(reply.is_ascii(), "replies are ASCII: {reply:?}");
    let body = reply.strip_suffix("\r\n\r\n").expect("terminator");
    let value: serde_json::Value = serde_json::from_str(body).expect("an inbox reply is JSON");
    assert_eq!(value["status"], "OK", "{reply}");
    let mut texts = Vec::new();
    for (sender, messages) in value["messages"].as_object().expect("messages is an object") {
        for message in messages.as_array().expect("a list per sender") {
            texts.push((sender.clone(), message["msg"].as_str().expect("msg").to_string()));
        }
    }
    texts
}

/// Lineker's own mail, read by `conn` with `token`: exactly `want`, in order.
async fn assert_own_mail(conn: &mut AsyncConn, token: &str, want: &[&str]) {
    let reply = conn.ask(format!("inbox {token}\r\n").as_bytes()).await;
    let got = inbox_texts(&reply);
    let want: Vec<(String, String)> =
        want.iter().map(|t| ("lineker".to_string(), t.to_string())).collect();
    assert_eq!(got, want, "inbox reply {reply:?}");
}

// ------------------------------------------------------------------- cases

type CaseFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
type Case = fn(SocketAddr) -> CaseFuture;

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        &[$((stringify!($name), (|addr| Box::pin($name(addr))) as Case)),*]
    };
}

/// The battery. Each entry is an `async fn(SocketAddr)` below.
const CASES: &[(&str, Case)] = cases![
    invalid_utf8_bytes,
    overlong_utf8_encodings,
    utf8_encoded_surrogate,
    utf8_above_the_last_code_point,
    utf8_cut_short_before_the_line_end,
    utf8_lone_continuation_byte,
    invalid_utf8_inside_a_pipelined_batch,
    multibyte_characters_split_across_reads,
    nul_bytes,
    ten_megabyte_line,
    over_long_line_with_its_crlf_split_across_reads,
    line_of_exactly_the_limit_is_accepted,
    line_one_byte_over_the_limit_is_refused,
    bare_cr_inside_lines,
    bare_lf_line_ends,
    crlf_split_across_reads,
    ten_thousand_requests_in_one_write,
    one_byte_every_50_ms,
    half_closed_socket_after_requests,
    reset_in_the_middle_of_a_request,
    tab_separated_fields,
    upper_case_commands,
    a_thousand_fields,
    a_thousand_empty_fields,
    token_of_a_logged_out_session,
    token_that_is_a_prefix_of_a_live_one,
    very_long_token,
    empty_and_blank_lines,
    missing_fields,
    quotes_and_backslashes_in_text,
    control_characters_in_text,
    emoji_in_text,
    json_in_fields,
    odd_recipients,
    unicode_whitespace_around_fields,
    many_connections_opened_and_dropped,
];

/// `\xff\xfe` is not UTF-8: the documented error, and the connection stays
/// usable.
async fn invalid_utf8_bytes(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    assert_eq!(c.ask(b"auth \xff\xfe surabaya\r\n").await, error_reply(NOT_UTF8));
    assert_eq!(c.ask(b"\xfe\xff\r\n").await, error_reply(NOT_UTF8));
    c.login("lineker", "surabaya").await;
}

/// Overlong encodings (`/` as `C0 AF`, NUL as `C0 80`, `E0 80 AF`) are
/// invalid UTF-8, in any field, and store nothing.
async fn overlong_utf8_encodings(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    assert_eq!(c.ask(b"\xc0\xaf\r\n").await, error_reply(NOT_UTF8));
    let token = c.login("lineker", "surabaya").await;
    assert_eq!(
        c.ask(&cat(&format!("send {token} lineker a"), b"\xc0\x80b\r\n")).await,
        error_reply(NOT_UTF8)
    );
    assert_eq!(
        c.ask(&cat(&format!("send {token} lineker "), b"\xe0\x80\xaf\r\n")).await,
        error_reply(NOT_UTF8)
    );
    assert_own_mail(&mut c, &token, &[]).await;
}

/// A UTF-16 surrogate encoded as UTF-8 (`ED A0 80`) is invalid.
async fn utf8_encoded_surrogate(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    assert_eq!(c.ask(b"auth lineker \xed\xa0\x80\r\n").await, error_reply(NOT_UTF8));
    let token = c.login("lineker", "surabaya").await;
    assert_eq!(
        c.ask(&cat(&format!("send {token} lineker "), b"\xed\xbf\xbf\r\n")).await,
        error_reply(NOT_UTF8)
    );
    assert_own_mail(&mut c, &token, &[]).await;
}

/// `F4 90 80 80` would be U+110000, past the last code point; `F8…` and
/// `FF` never start a character.
async fn utf8_above_the_last_code_point(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    assert_eq!(c.ask(b"\xf4\x90\x80\x80\r\n").await, error_reply(NOT_UTF8));
    assert_eq!(c.ask(b"list \xf8\x88\x80\x80\x80\r\n").await, error_reply(NOT_UTF8));
    assert_eq!(c.ask(b"inbox \xff\r\n").await, error_reply(NOT_UTF8));
}

/// A character cut short by the line's end (`caf` + `C3` + `\r\n`) is
/// invalid, and nothing is stored.
async fn utf8_cut_short_before_the_line_end(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    let token = c.login("lineker", "surabaya").await;
    assert_eq!(
        c.ask(&cat(&format!("send {token} lineker caf"), b"\xc3\r\n")).await,
        error_reply(NOT_UTF8)
    );
    assert_eq!(
        c.ask(&cat(&format!("send {token} lineker "), b"\xf0\x9f\x98\r\n")).await,
        error_reply(NOT_UTF8)
    );
    assert_own_mail(&mut c, &token, &[]).await;
}

/// A continuation byte with no lead byte is invalid.
async fn utf8_lone_continuation_byte(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    assert_eq!(c.ask(b"list \x80\r\n").await, error_reply(NOT_UTF8));
    assert_eq!(c.ask(b"\xbf\xbf\xbf\r\n").await, error_reply(NOT_UTF8));
}

/// An invalid request between two good ones in one write: three replies
/// in order, the bad one answered alone.
async fn invalid_utf8_inside_a_pipelined_batch(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    let token = c.login("lineker", "surabaya").await;
    let mut batch = format!("list {token}\r\n").into_bytes();
    batch.extend_from_slice(b"send \xff lineker x\r\n");
    batch.extend_from_slice(format!("send {token} lineker ok\r\n").as_bytes());
    c.send(&batch).await;
    assert_eq!(c.reply().await, online());
    assert_eq!(c.reply().await, error_reply(NOT_UTF8));
    assert_eq!(c.reply().await, message_sent());
    assert_own_mail(&mut c, &token, &[" ok\r\n"]).await;
}

/// `é` (2 bytes) and `😀` (4 bytes) each split between two reads: the
/// request is whole once its `\r\n` arrives, and the text intact (the
/// original loses the connection here).
async fn multibyte_characters_split_across_reads(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    let token = c.login("lineker", "surabaya").await;
    let head = cat(&format!("send {token} lineker caf"), b"\xc3");
    c.send_in_pieces(&[&head, b"\xa9 \xf0\x9f", b"\x98", b"\x80\r\n"]).await;
    assert_eq!(c.reply().await, message_sent());
    let reply = c.ask(format!("inbox {token}\r\n").as_bytes()).await;
    assert!(reply.contains(r#""msg": " caf\u00e9 \ud83d\ude00\r\n""#), "{reply}");
    // The auth line itself split inside a character of a wrong password.
    c.send_in_pieces(&[b"auth lineker sura\xe2\x82", b"\xac\r\n"]).await;
    assert_eq!(c.reply().await, error_reply(WRONG_PASSWORD));
}

/// NUL is an ordinary character: not a command, not whitespace (a password
/// with a NUL after it is wrong), kept in a text and sent as `\u0000`.
async fn nul_bytes(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    assert_eq!(c.ask(b"\x00\r\n").await, error_reply(UNKNOWN_COMMAND));
    assert_eq!(c.ask(b"auth\x00lineker surabaya\r\n").await, error_reply(UNKNOWN_COMMAND));
    assert_eq!(c.ask(b"auth lineker surabaya\x00\r\n").await, error_reply(WRONG_PASSWORD));
    assert_eq!(c.ask(b"auth lineker\x00 surabaya\r\n").await, error_reply(USER_NOT_FOUND));
    let token = c.login("lineker", "surabaya").await;
    assert_eq!(
        c.ask(format!("send {token} lineker a\x00b\x00\r\n").as_bytes()).await,
        message_sent()
    );
    let reply = c.ask(format!("inbox {token}\r\n").as_bytes()).await;
    assert!(reply.contains(r#""msg": " a\u0000b\u0000\r\n""#), "{reply}");
}

/// A 10 MB line (ten times the limit) in one write, with a request behind
/// it: answered once with the documented error, skipped up to its `\r\n`,
/// and the next request answered normally.
async fn ten_megabyte_line(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    let token = c.login("lineker", "surabaya").await;
    let mut data = format!("send {token} lineker ").into_bytes();
    data.resize(10_000_000, b'x');
    data.extend_from_slice(b"\r\n");
    data.extend_from_slice(format!("list {token}\r\n").as_bytes());
    c.send(&data).await;
    assert_eq!(c.reply().await, error_reply(TOO_LONG));
    assert_eq!(c.reply().await, online());
    c.silent_for(Duration::from_millis(50)).await;
    assert_own_mail(&mut c, &token, &[]).await;
}

/// An over-long line whose `\r` and `\n` arrive in separate reads: the
/// connection resynchronises exactly at that `\r\n`.
async fn over_long_line_with_its_crlf_split_across_reads(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    let token = c.login("lineker", "surabaya").await;
    let mut long = format!("send {token} lineker ").into_bytes();
    long.resize(2 * MAX_LINE, b'y');
    long.push(b'\r');
    let next = format!("\nlist {token}\r\n");
    c.send_in_pieces(&[&long, next.as_bytes()]).await;
    assert_eq!(c.reply().await, error_reply(TOO_LONG));
    assert_eq!(c.reply().await, online());
    assert_own_mail(&mut c, &token, &[]).await;
}

/// A line of exactly the limit, terminator included, is a request.
async fn line_of_exactly_the_limit_is_accepted(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    let token = c.login("lineker", "surabaya").await;
    let mut line = format!("send {token} lineker ").into_bytes();
    line.resize(MAX_LINE - 2, b'z');
    line.extend_from_slice(b"\r\n");
    assert_eq!(line.len(), MAX_LINE);
    assert_eq!(c.ask(&line).await, message_sent());
    let texts = inbox_texts(&c.ask(format!("inbox {token}\r\n").as_bytes()).await);
    assert_eq!(texts.len(), 1);
    assert_eq!(texts[0].1.len(), MAX_LINE - format!("send {token} lineker").len());
}

/// One byte more than the limit: the error, and nothing stored.
async fn line_one_byte_over_the_limit_is_refused(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    let token = c.login("lineker", "surabaya").await;
    let mut line = format!("send {token} lineker ").into_bytes();
    line.resize(MAX_LINE - 1, b'z');
    line.extend_from_slice(b"\r\n");
    assert_eq!(c.ask(&line).await, error_reply(TOO_LONG));
    assert_own_mail(&mut c, &token, &[]).await;
}

/// A bare `\r` ends nothing: it stays inside the field it is in.
async fn bare_cr_inside_lines(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    // The password field is `surabaya\rlist`.
    assert_eq!(c.ask(b"auth lineker surabaya\rlist x\r\n").await, error_reply(WRONG_PASSWORD));
    assert_eq!(c.ask(b"\r\r\r\n").await, error_reply(UNKNOWN_COMMAND));
    let token = c.login("lineker", "surabaya").await;
    assert_eq!(c.ask(format!("send {token} lineker a\rb\r\n").as_bytes()).await, message_sent());
    assert_own_mail(&mut c, &token, &[" a\rb\r\n"]).await;
}

/// Lines ended by a bare `\n` are not requests yet: no reply until a
/// `\r\n` comes, and then one reply for everything before it.
async fn bare_lf_line_ends(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    c.send(b"auth lineker surabaya\nlist x\n").await;
    c.silent_for(Duration::from_millis(300)).await;
    // The password field is `surabaya\nlist`.
    assert_eq!(c.ask(b"\r\n").await, error_reply(WRONG_PASSWORD));
    c.login("lineker", "surabaya").await;
}

/// `\r` in one read and `\n` in the next still end the request.
async fn crlf_split_across_reads(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    c.send_in_pieces(&[b"auth lineker surabaya\r", b"\n"]).await;
    let token = token_from_auth_reply(&c.reply().await);
    let list = format!("list {token}\r");
    let rest = format!("\nsend {token} lineker x\r");
    c.send_in_pieces(&[list.as_bytes(), rest.as_bytes(), b"\n"]).await;
    assert_eq!(c.reply().await, online());
    assert_eq!(c.reply().await, message_sent());
    assert_own_mail(&mut c, &token, &[" x\r\n"]).await;
}

/// 10,000 requests of four kinds in one write, read while it is written:
/// 10,000 replies, each the right one, in order; and the 2,500 messages
/// among them wait in send order.
async fn ten_thousand_requests_in_one_write(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    let token = c.login("lineker", "surabaya").await;
    let mut batch = Vec::new();
    let mut want = Vec::new();
    let mut texts = Vec::new();
    for i in 0..10_000 {
        match i % 4 {
            0 => {
                batch.extend_from_slice(format!("send {token} lineker n{i}\r\n").as_bytes());
                want.push(message_sent());
                texts.push(format!(" n{i}\r\n"));
            }
            1 => {
                batch.extend_from_slice(format!("list {token}\r\n").as_bytes());
                want.push(online());
            }
            2 => {
                batch.extend_from_slice(format!("foo{i}\r\n").as_bytes());
                want.push(error_reply(UNKNOWN_COMMAND));
            }
            _ => {
                batch.extend_from_slice(b"inbox bogus\r\n");
                want.push(error_reply(UNKNOWN_TOKEN));
            }
        }
    }
    let (mut read, mut write) = c.stream.into_split();
    let writer = tokio::spawn(async move {
        write.write_all(&batch).await.expect("write the batch");
        write
    });
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut seen = 0;
    while seen < want.len() {
        let n = tokio::time::timeout(TIMEOUT, read.read(&mut buf))
            .await
            .expect("replies keep coming")
            .expect("read");
        assert!(n > 0, "closed after {seen} replies");
        got.extend_from_slice(&buf[..n]);
        while let Some(at) = find(&got, TERMINATOR) {
            let rest = got.split_off(at + TERMINATOR.len());
            let reply = String::from_utf8(std::mem::replace(&mut got, rest)).unwrap();
            assert_eq!(reply, want[seen], "reply {seen}");
            seen += 1;
        }
    }
    assert!(got.is_empty(), "extra bytes after 10,000 replies");
    let write = writer.await.unwrap();
    let mut c = AsyncConn::from_stream(read.reunite(write).unwrap());
    let want_texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    assert_own_mail(&mut c, &token, &want_texts).await;
}

/// A short request trickled one byte every 50 ms: no reply before its last
/// byte, then exactly one.
async fn one_byte_every_50_ms(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    let request = b"auth lineker surabaya\r\n";
    for (i, byte) in request.iter().enumerate() {
        if i > 0 {
            c.silent_for(Duration::from_millis(50)).await;
        }
        c.send(&[*byte]).await;
    }
    token_from_auth_reply(&c.reply().await);
}

/// Requests, then a half-close (`shutdown(Write)`): every reply still
/// arrives, then the server closes; what was acknowledged is delivered.
async fn half_closed_socket_after_requests(addr: SocketAddr) {
    let mut first = AsyncConn::connect(addr).await;
    let token = first.login("lineker", "surabaya").await;
    let mut c = AsyncConn::connect(addr).await;
    c.send(format!("list {token}\r\nsend {token} lineker bye\r\n").as_bytes()).await;
    c.stream.shutdown().await.expect("half-close");
    assert_eq!(c.reply().await, online());
    assert_eq!(c.reply().await, message_sent());
    c.expect_eof().await;
    assert_own_mail(&mut first, &token, &[" bye\r\n"]).await;
}

/// A connection reset (SO_LINGER 0) in the middle of a `send` to B: the
/// partial request has no effect (B's inbox is checked by the frame), and
/// the token stays usable elsewhere.
async fn reset_in_the_middle_of_a_request(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    let token = c.login("lineker", "surabaya").await;
    let mut doomed = AsyncConn::connect(addr).await;
    doomed.send(format!("send {token} henderson partial-").as_bytes()).await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    doomed.stream.set_zero_linger().expect("SO_LINGER 0");
    drop(doomed);
    let mut doomed = AsyncConn::connect(addr).await;
    doomed.send(b"auth lineker sura").await;
    doomed.stream.set_zero_linger().expect("SO_LINGER 0");
    drop(doomed);
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(c.ask(format!("list {token}\r\n").as_bytes()).await, online());
}

/// Only a space separates fields, so tabs make unknown commands; a tab
/// around a field is stripped like any whitespace.
async fn tab_separated_fields(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    assert_eq!(c.ask(b"auth\tlineker\tsurabaya\r\n").await, error_reply(UNKNOWN_COMMAND));
    let token = c.login("lineker", "surabaya").await;
    assert_eq!(c.ask(format!("inbox\t{token}\r\n").as_bytes()).await, error_reply(UNKNOWN_COMMAND));
    assert_eq!(c.ask(format!("inbox \t{token}\t\r\n").as_bytes()).await, empty_inbox());
    assert_eq!(
        c.ask(format!("send {token} lineker\tx\r\n").as_bytes()).await,
        error_reply(RECIPIENT_NOT_FOUND)
    );
}

/// Commands are case-sensitive: upper- and mixed-case ones are unknown, and
/// an upper-case `LOGOUT` does not end the session.
async fn upper_case_commands(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    assert_eq!(c.ask(b"AUTH lineker surabaya\r\n").await, error_reply(UNKNOWN_COMMAND));
    assert_eq!(c.ask(b"Auth lineker surabaya\r\n").await, error_reply(UNKNOWN_COMMAND));
    let token = c.login("lineker", "surabaya").await;
    for command in ["INBOX", "LIST", "LOGOUT", "Send", "sEND"] {
        let request = format!("{command} {token} lineker x\r\n");
        assert_eq!(c.ask(request.as_bytes()).await, error_reply(UNKNOWN_COMMAND), "{command}");
    }
    assert_eq!(c.ask(format!("list {token}\r\n").as_bytes()).await, online());
    assert_own_mail(&mut c, &token, &[]).await;
}

/// A thousand fields: extra ones are ignored by `auth`, and are the text of
/// a `send`, kept whole.
async fn a_thousand_fields(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    let extra = " f".repeat(998);
    let reply = c.ask(format!("auth lineker surabaya{extra}\r\n").as_bytes()).await;
    let token = token_from_auth_reply(&reply);
    let words = " w".repeat(1000);
    assert_eq!(c.ask(format!("send {token} lineker{words}\r\n").as_bytes()).await, message_sent());
    assert_own_mail(&mut c, &token, &[&format!("{words}\r\n")]).await;
}

/// A thousand spaces make a thousand empty fields: the username is empty.
async fn a_thousand_empty_fields(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    let spaces = " ".repeat(1000);
    assert_eq!(
        c.ask(format!("auth{spaces}lineker surabaya\r\n").as_bytes()).await,
        error_reply(USER_NOT_FOUND)
    );
    assert_eq!(c.ask(format!("list{spaces}\r\n").as_bytes()).await, error_reply(UNKNOWN_TOKEN));
}

/// After `logout` the token works for nothing, and a `send` with it stores
/// nothing.
async fn token_of_a_logged_out_session(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    let old = c.login("lineker", "surabaya").await;
    assert_eq!(c.ask(format!("logout {old}\r\n").as_bytes()).await, logged_out());
    for request in [
        format!("inbox {old}\r\n"),
        format!("list {old}\r\n"),
        format!("send {old} lineker ghost\r\n"),
        format!("send {old} henderson ghost\r\n"),
        format!("logout {old}\r\n"),
    ] {
        assert_eq!(c.ask(request.as_bytes()).await, error_reply(UNKNOWN_TOKEN), "{request:?}");
    }
    let token = c.login("lineker", "surabaya").await;
    assert_ne!(token, old);
    assert_own_mail(&mut c, &token, &[]).await;
}

/// Tokens compare exactly: a prefix, an extension, another case or one
/// changed digit of a live token is no token, for reading and for sending.
async fn token_that_is_a_prefix_of_a_live_one(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    let token = c.login("lineker", "surabaya").await;
    let mut changed = token.clone().into_bytes();
    changed[0] = if changed[0] == b'0' { b'1' } else { b'0' };
    let changed = String::from_utf8(changed).unwrap();
    for fake in [
        token[..35].to_string(),
        token[..8].to_string(),
        token[..1].to_string(),
        format!("{token}0"),
        token.to_uppercase(),
        token.replace('-', ""),
        changed,
    ] {
        assert_eq!(
            c.ask(format!("inbox {fake}\r\n").as_bytes()).await,
            error_reply(UNKNOWN_TOKEN),
            "{fake}"
        );
        assert_eq!(
            c.ask(format!("send {fake} henderson stolen\r\n").as_bytes()).await,
            error_reply(UNKNOWN_TOKEN),
            "{fake}"
        );
        assert_eq!(
            c.ask(format!("logout {fake}\r\n").as_bytes()).await,
            error_reply(UNKNOWN_TOKEN),
            "{fake}"
        );
    }
    assert_eq!(c.ask(format!("list {token}\r\n").as_bytes()).await, online());
}

/// A 100,000-character token is just an unknown one.
async fn very_long_token(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    let long = "a".repeat(100_000);
    assert_eq!(c.ask(format!("inbox {long}\r\n").as_bytes()).await, error_reply(UNKNOWN_TOKEN));
    assert_eq!(
        c.ask(format!("send {long} henderson x\r\n").as_bytes()).await,
        error_reply(UNKNOWN_TOKEN)
    );
}

/// Empty and blank lines are unknown commands, one reply each.
async fn empty_and_blank_lines(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    c.send(b"\r\n   \r\n\t\r\n\x0b\x0c\r\n").await;
    for _ in 0..4 {
        assert_eq!(c.reply().await, error_reply(UNKNOWN_COMMAND));
    }
    c.silent_for(Duration::from_millis(50)).await;
}

/// Each command without the fields it needs.
async fn missing_fields(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    for request in ["auth", "auth lineker", "send", "send x", "inbox", "list", "logout"] {
        assert_eq!(
            c.ask(format!("{request}\r\n").as_bytes()).await,
            error_reply(MISSING_FIELDS),
            "{request}"
        );
    }
}

/// Quotes and backslashes in a text are escaped in the reply and come
/// back as sent.
async fn quotes_and_backslashes_in_text(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    let token = c.login("lineker", "surabaya").await;
    let text = r#" "q" \" \\ \n \u0041 ' "}"#;
    assert_eq!(c.ask(format!("send {token} lineker{text}\r\n").as_bytes()).await, message_sent());
    let reply = c.ask(format!("inbox {token}\r\n").as_bytes()).await;
    assert!(reply.contains(r#""msg": " \"q\" \\\" \\\\ \\n \\u0041 ' \"}\r\n""#), "{reply}");
    assert_eq!(inbox_texts(&reply), vec![("lineker".into(), format!("{text}\r\n"))]);
}

/// Every control character (none forms `\r\n`), DEL and an ANSI escape
/// sequence: stored as sent, written as JSON escapes, the reply pure ASCII.
async fn control_characters_in_text(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    let token = c.login("lineker", "surabaya").await;
    let mut text: Vec<u8> = b" ".to_vec();
    text.extend(1u8..0x20);
    text.extend_from_slice(b"\x7f\x1b[31mred\x1b[0m");
    let mut request = format!("send {token} lineker").into_bytes();
    request.extend_from_slice(&text);
    request.extend_from_slice(b"\r\n");
    assert_eq!(c.ask(&request).await, message_sent());
    let reply = c.ask(format!("inbox {token}\r\n").as_bytes()).await;
    assert!(
        reply.contains(r#"\u0007\b\t\n\u000b\f\r\u000e"#)
            && reply.contains(r#"\u007f\u001b[31mred"#),
        "{reply}"
    );
    text.extend_from_slice(b"\r\n");
    let text = String::from_utf8(text).unwrap();
    assert_eq!(inbox_texts(&reply), vec![("lineker".into(), text)]);
}

/// Emoji (with a skin-tone modifier and a flag) and CJK: surrogate pairs
/// and `\uXXXX` in the reply, the same characters back.
async fn emoji_in_text(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    let token = c.login("lineker", "surabaya").await;
    let text = " 👍🏽 家族 🇮🇩 ❤️";
    assert_eq!(c.ask(format!("send {token} lineker{text}\r\n").as_bytes()).await, message_sent());
    let reply = c.ask(format!("inbox {token}\r\n").as_bytes()).await;
    assert!(reply.contains(r#"\ud83d\udc4d\ud83c\udffd \u5bb6\u65cf"#), "{reply}");
    assert_eq!(inbox_texts(&reply), vec![("lineker".into(), format!("{text}\r\n"))]);
}

/// JSON in a username or a text is data, never structure: the reply is one
/// object whose text is the JSON as sent.
async fn json_in_fields(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    assert_eq!(c.ask(b"auth {\"status\":\"OK\"} x\r\n").await, error_reply(USER_NOT_FOUND));
    let token = c.login("lineker", "surabaya").await;
    let text = r#" "}, "status": "ERROR", "x": {"a": ["#;
    assert_eq!(c.ask(format!("send {token} lineker{text}\r\n").as_bytes()).await, message_sent());
    assert_own_mail(&mut c, &token, &[&format!("{text}\r\n")]).await;
}

/// Recipients that are not quite a user: another case, a NUL after it, a
/// tab inside, the empty field. Nothing is stored for any.
async fn odd_recipients(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    let token = c.login("lineker", "surabaya").await;
    for to in ["LINEKER", "lineker\x00", "line\tker", "", "lineker\u{200b}"] {
        assert_eq!(
            c.ask(format!("send {token} {to} x\r\n").as_bytes()).await,
            error_reply(RECIPIENT_NOT_FOUND),
            "{to:?}"
        );
    }
    assert_own_mail(&mut c, &token, &[]).await;
}

/// Python's `strip()` also removes Unicode white space and the information
/// separators `\x1c`–`\x1f` around a field; inside a field they are kept.
async fn unicode_whitespace_around_fields(addr: SocketAddr) {
    let mut c = AsyncConn::connect(addr).await;
    let reply = c.ask("auth lineker surabaya\u{3000}\x1f\r\n".as_bytes()).await;
    let token = token_from_auth_reply(&reply);
    assert_eq!(
        c.ask("auth lineker\u{a0}surabaya\r\n".as_bytes()).await,
        error_reply(MISSING_FIELDS)
    );
    assert_eq!(c.ask(format!("list \u{2003}{token}\u{85}\r\n").as_bytes()).await, online());
}

/// 200 connections opened at once, some with a partial request, all
/// dropped without a word.
async fn many_connections_opened_and_dropped(addr: SocketAddr) {
    let mut conns = Vec::new();
    for i in 0..200 {
        let mut c = AsyncConn::connect(addr).await;
        if i % 2 == 0 {
            c.send(b"auth lineker sur").await;
        }
        conns.push(c);
    }
    drop(conns);
    let mut c = AsyncConn::connect(addr).await;
    c.login("lineker", "surabaya").await;
}

// ------------------------------------------------------------------ harness

/// The frame around one case (see the module documentation).
async fn run_case(name: &'static str, case: Case) {
    let server = InProcessServer::start();
    let addr = server.addr;
    let mut a = AsyncConn::connect(addr).await;
    let messi = a.login("messi", "surabaya").await;
    let tag = format!("acked-before-{name}");
    assert_eq!(a.ask(format!("send {messi} henderson {tag}\r\n").as_bytes()).await, message_sent());

    case(addr).await;

    // A's connection, open all along, is served as before.
    assert_eq!(
        a.ask(format!("send {messi} lineker after\r\n").as_bytes()).await,
        message_sent(),
        "A's connection after the case"
    );
    // A second client is served.
    let mut second = AsyncConn::connect(addr).await;
    let lineker = second.login("lineker", "surabaya").await;
    let list = second.ask(format!("list {lineker}\r\n").as_bytes()).await;
    assert!(
        list.starts_with("{\"status\": \"OK\", \"messages\": [")
            && list.contains("\"messi - Lionel Messi\"")
            && list.contains("\"lineker - Gary Lineker\""),
        "list after the case: {list:?}"
    );
    // B finds A's message, exactly once, and nothing else.
    let henderson = second.login("henderson", "surabaya").await;
    assert_eq!(
        second.ask(format!("inbox {henderson}\r\n").as_bytes()).await,
        inbox_reply("messi", "Lionel Messi", "Jordan Henderson", &[&format!(" {tag}\r\n")]),
        "B's inbox after the case"
    );
    assert_eq!(second.ask(format!("inbox {henderson}\r\n").as_bytes()).await, empty_inbox());
    drop(a);
    drop(second);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_is_answered_and_loses_nothing() {
    assert!(CASES.len() >= 30, "the battery has {} cases", CASES.len());
    let mut names = std::collections::HashSet::new();
    assert!(CASES.iter().all(|(name, _)| names.insert(*name)), "case names are unique");

    let mut tasks = tokio::task::JoinSet::new();
    for &(name, case) in CASES {
        tasks.spawn(async move {
            let outcome =
                tokio::spawn(tokio::time::timeout(CASE_TIMEOUT, run_case(name, case))).await;
            let failure = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(_)) => Some(format!("timed out after {CASE_TIMEOUT:?}")),
                Err(error) => Some(panic_message(error)),
            };
            (name, failure)
        });
    }
    let mut failed = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (name, failure) = joined.expect("the case runner itself does not panic");
        if let Some(why) = failure {
            failed.push(format!("{name}: {why}"));
        }
    }
    failed.sort();
    println!("bad inputs tried: {} cases, {} failed", CASES.len(), failed.len());
    assert!(
        failed.is_empty(),
        "{} of {} cases failed:\n{}",
        failed.len(),
        CASES.len(),
        failed.join("\n")
    );
}

fn panic_message(error: tokio::task::JoinError) -> String {
    match error.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panicked".into()),
        Err(error) => error.to_string(),
    }
}
