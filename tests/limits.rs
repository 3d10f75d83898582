//! The server's limits, through the real binary and its flags: each one,
//! when hit, gives its documented error (or documented close), and other
//! clients are unaffected. Defaults and texts: spec/PROTOCOL.md §12 and
//! src/protocol/limits.rs.

mod server_process;

use std::time::{Duration, Instant};

use server_process::{
    error_reply, list_reply, ServerProcess, EMPTY_INBOX, LOGGED_OUT, MESSAGE_SENT,
};

const MAILBOX_FULL: &str = "Inbox Penuh";
const TOO_MANY_SESSIONS: &str = "Sesi Terlalu Banyak";
const SERVER_FULL: &str = "Server Penuh";
const TOO_LONG: &str = "--Request Terlalu Panjang";

fn inbox_texts(reply: &str) -> Vec<String> {
    let value: serde_json::Value = serde_json::from_str(reply.trim_end()).expect("JSON");
    assert_eq!(value["status"], "OK", "{reply}");
    let mut texts = Vec::new();
    for (_, messages) in value["messages"].as_object().unwrap() {
        for m in messages.as_array().unwrap() {
            texts.push(m["msg"].as_str().unwrap().to_string());
        }
    }
    texts
}

/// `--max-pending 3`: the fourth message waiting for one user is refused
/// with `Inbox Penuh` and not stored; other mailboxes take mail; once the
/// recipient reads, there is room again.
#[test]
fn a_full_mailbox_refuses_more_mail() {
    let server = ServerProcess::start(&["--max-pending", "3"], &[]);
    let mut c = server.connect();
    let messi = c.login("messi", "surabaya");
    for i in 0..3 {
        assert_eq!(c.ask(format!("send {messi} lineker m{i}\r\n").as_bytes()), MESSAGE_SENT);
    }
    assert_eq!(c.ask(format!("send {messi} lineker m3\r\n").as_bytes()), error_reply(MAILBOX_FULL));
    assert_eq!(c.ask(format!("send {messi} henderson other\r\n").as_bytes()), MESSAGE_SENT);
    let mut l = server.connect();
    let lineker = l.login("lineker", "surabaya");
    assert_eq!(
        inbox_texts(&l.ask(format!("inbox {lineker}\r\n").as_bytes())),
        [" m0\r\n", " m1\r\n", " m2\r\n"]
    );
    assert_eq!(c.ask(format!("send {messi} lineker m4\r\n").as_bytes()), MESSAGE_SENT);
    assert_eq!(inbox_texts(&l.ask(format!("inbox {lineker}\r\n").as_bytes())), [" m4\r\n"]);
    // The check comes after the token's and the recipient's.
    for _ in 0..3 {
        c.ask(format!("send {messi} messi x\r\n").as_bytes());
    }
    assert_eq!(c.ask(b"send bogus messi x\r\n"), error_reply("Informasi tidak ditemukan"));
    assert_eq!(
        c.ask(format!("send {messi} pogba x\r\n").as_bytes()),
        error_reply("User Tidak Ditemukan")
    );
    assert_eq!(c.ask(format!("send {messi} messi x\r\n").as_bytes()), error_reply(MAILBOX_FULL));
}

/// `--max-pending-bytes 20`: texts (as stored, `\r\n` included) may add up
/// to 20 bytes per recipient; one that would pass it is refused.
#[test]
fn a_mailbox_full_of_bytes_refuses_more_mail() {
    let server = ServerProcess::start(&["--max-pending-bytes", "20"], &[]);
    let mut c = server.connect();
    let messi = c.login("messi", "surabaya");
    // " 1234567890\r\n" is 13 bytes; " 12345\r\n" is 8.
    assert_eq!(c.ask(format!("send {messi} lineker 1234567890\r\n").as_bytes()), MESSAGE_SENT);
    assert_eq!(
        c.ask(format!("send {messi} lineker 1234567890\r\n").as_bytes()),
        error_reply(MAILBOX_FULL)
    );
    assert_eq!(
        c.ask(format!("send {messi} lineker 12345\r\n").as_bytes()),
        error_reply(MAILBOX_FULL)
    );
    assert_eq!(c.ask(format!("send {messi} lineker 1234\r\n").as_bytes()), MESSAGE_SENT);
    assert_eq!(c.ask(format!("send {messi} henderson 1234567890\r\n").as_bytes()), MESSAGE_SENT);
    let lineker = c.login("lineker", "surabaya");
    assert_eq!(
        inbox_texts(&c.ask(format!("inbox {lineker}\r\n").as_bytes())),
        [" 1234567890\r\n", " 1234\r\n"]
    );
    assert_eq!(c.ask(format!("send {messi} lineker 1234567890\r\n").as_bytes()), MESSAGE_SENT);
}

/// `--max-sessions-per-user 2`: a third `auth` for the same user gets
/// `Sesi Terlalu Banyak`; other users log in; a logout makes room.
#[test]
fn too_many_sessions_for_one_user_are_refused() {
    let server = ServerProcess::start(&["--max-sessions-per-user", "2"], &[]);
    let mut c = server.connect();
    let first = c.login("messi", "surabaya");
    c.login("messi", "surabaya");
    assert_eq!(c.ask(b"auth messi surabaya\r\n"), error_reply(TOO_MANY_SESSIONS));
    // A wrong password is still a wrong password.
    assert_eq!(c.ask(b"auth messi jakarta\r\n"), error_reply("Password Salah"));
    let henderson = c.login("henderson", "surabaya");
    c.login("henderson", "surabaya");
    assert_eq!(
        c.ask(format!("list {henderson}\r\n").as_bytes()),
        list_reply(&["messi - Lionel Messi", "henderson - Jordan Henderson"])
    );
    assert_eq!(c.ask(format!("logout {first}\r\n").as_bytes()), LOGGED_OUT);
    c.login("messi", "surabaya");
    assert_eq!(c.ask(b"auth messi surabaya\r\n"), error_reply(TOO_MANY_SESSIONS));
}

/// `--max-connections 2`: a third connection gets `Server Penuh` and is
/// closed; the two open ones are served; when one closes, a new one is
/// served again.
#[test]
fn connections_over_the_limit_get_server_full_and_are_closed() {
    let server = ServerProcess::start(&["--max-connections", "2"], &[]);
    let mut a = server.connect();
    let mut b = server.connect();
    let messi = a.login("messi", "surabaya");
    b.login("henderson", "surabaya");
    let mut third = server.connect();
    assert_eq!(third.reply(), error_reply(SERVER_FULL));
    assert_eq!(third.read_to_end(), b"", "closed after the one reply");
    assert_eq!(a.ask(format!("send {messi} henderson hi\r\n").as_bytes()), MESSAGE_SENT);
    drop(b);
    // The closed connection's slot comes back as soon as the server sees
    // the close.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut c = loop {
        let mut c = server.connect();
        c.send(b"auth lineker surabaya\r\n");
        match c.try_reply() {
            Some(reply) if reply.contains("tokenid") => break c,
            Some(reply) => assert_eq!(reply, error_reply(SERVER_FULL)),
            None => {}
        }
        assert!(Instant::now() < deadline, "no room after a connection closed");
        std::thread::sleep(Duration::from_millis(20));
    };
    let henderson = c.login("henderson", "surabaya");
    assert_eq!(
        c.ask(format!("inbox {henderson}\r\n").as_bytes()),
        "{\"status\": \"OK\", \"messages\": {\"messi\": [{\"msg_from\": \"Lionel Messi\", \
         \"msg_to\": \"Jordan Henderson\", \"msg\": \" hi\\r\\n\"}]}}\r\n\r\n"
    );
}

/// `--idle-timeout 0.5`: a connection that sends nothing, one stuck in the
/// middle of a request, and one that never reads its replies are closed
/// (with no reply); a connection that keeps talking is not; sessions
/// outlive their connections.
#[test]
fn idle_connections_are_closed() {
    let server = ServerProcess::start(&["--idle-timeout", "0.5"], &[]);
    let started = Instant::now();
    let mut idle = server.connect();
    let mut partial = server.connect();
    partial.send(b"auth messi sura");
    let token = server.connect().login("messi", "surabaya");
    let mut stuck = server.connect();
    stuck.stream.set_write_timeout(Some(Duration::from_millis(200))).unwrap();
    let flood = format!("list {token}\r\n").repeat(2000);
    while std::io::Write::write(&mut stuck.stream, flood.as_bytes()).is_ok() {
        assert!(started.elapsed() < Duration::from_secs(10), "the flood never stalled");
    }
    // Talk every 200 ms for 1.2 s: well past the timeout in all.
    let mut busy = server.connect();
    let talking = Instant::now();
    while talking.elapsed() < Duration::from_millis(1200) {
        assert_eq!(busy.ask(format!("inbox {token}\r\n").as_bytes()), EMPTY_INBOX);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(idle.read_to_end(), b"", "an idle connection is closed without a reply");
    assert_eq!(partial.read_to_end(), b"", "a half-sent request gets no reply");
    // The stuck one got some replies, then was closed.
    let got = stuck.read_to_end();
    assert!(!got.is_empty() && got.len() < flood.len() * 64, "{} bytes", got.len());
    // The session outlives its connection.
    let mut later = server.connect();
    assert_eq!(
        later.ask(format!("list {token}\r\n").as_bytes()),
        list_reply(&["messi - Lionel Messi"])
    );
    let (status, _, stderr) = server.terminate();
    assert_eq!(status.code(), Some(0), "{stderr}");
}

/// `--max-line 64`: a longer line is answered once and skipped to its
/// `\r\n`, the same connection goes on, and another client is unaffected.
#[test]
fn an_over_long_line_is_refused_and_the_connection_resynchronised() {
    let server = ServerProcess::start(&["--max-line", "64"], &[]);
    let mut c = server.connect();
    let mut other = server.connect();
    let token = other.login("lineker", "surabaya");
    c.send(format!("send {token} lineker {}", "x".repeat(200)).as_bytes());
    assert_eq!(c.reply(), error_reply(TOO_LONG));
    assert_eq!(other.ask(format!("send {token} lineker short\r\n").as_bytes()), MESSAGE_SENT);
    c.send(format!("{}\r\nlist {token}\r\n", "y".repeat(100)).as_bytes());
    assert_eq!(c.reply(), list_reply(&["lineker - Gary Lineker"]));
    assert_eq!(inbox_texts(&other.ask(format!("inbox {token}\r\n").as_bytes())), [" short\r\n"]);
}

/// Limit flags take positive numbers; a bad value is a usage error (exit 2).
#[test]
fn bad_limit_values_are_usage_errors() {
    for args in [
        ["--idle-timeout", "0"],
        ["--idle-timeout", "soon"],
        ["--max-connections", "-1"],
        ["--max-pending", "many"],
    ] {
        let output = std::process::Command::new(server_process::binary())
            .args(["server", "--listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?} started a server");
    }
}
