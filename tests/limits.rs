//! The server's limits, through the real binary and its flags: each one,
//! when hit, gives its documented error (or documented close), and other
//! clients are unaffected. Defaults and texts: spec/PROTOCOL.md §12 and
//! src/protocol/limits.rs.

mod support;

use std::time::{Duration, Instant};

use support::msg::{
    MAILBOX_FULL, RECIPIENT_NOT_FOUND, SERVER_FULL, TOO_LONG, UNKNOWN_TOKEN, WRONG_PASSWORD,
};
use support::{
    binary, empty_inbox, error_reply, inbox_reply, list_reply, logged_out, message_sent,
    scratch_file, ServerProcess,
};

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
        assert_eq!(c.ask(format!("send {messi} lineker m{i}\r\n").as_bytes()), message_sent());
    }
    assert_eq!(c.ask(format!("send {messi} lineker m3\r\n").as_bytes()), error_reply(MAILBOX_FULL));
    assert_eq!(c.ask(format!("send {messi} henderson other\r\n").as_bytes()), message_sent());
    let mut l = server.connect();
    let lineker = l.login("lineker", "surabaya");
    assert_eq!(
        inbox_texts(&l.ask(format!("inbox {lineker}\r\n").as_bytes())),
        [" m0\r\n", " m1\r\n", " m2\r\n"]
    );
    assert_eq!(c.ask(format!("send {messi} lineker m4\r\n").as_bytes()), message_sent());
    assert_eq!(inbox_texts(&l.ask(format!("inbox {lineker}\r\n").as_bytes())), [" m4\r\n"]);
    // The check comes after the token's and the recipient's.
    for _ in 0..3 {
        c.ask(format!("send {messi} messi x\r\n").as_bytes());
    }
    assert_eq!(c.ask(b"send bogus messi x\r\n"), error_reply(UNKNOWN_TOKEN));
    assert_eq!(
        c.ask(format!("send {messi} pogba x\r\n").as_bytes()),
        error_reply(RECIPIENT_NOT_FOUND)
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
    assert_eq!(c.ask(format!("send {messi} lineker 1234567890\r\n").as_bytes()), message_sent());
    assert_eq!(
        c.ask(format!("send {messi} lineker 1234567890\r\n").as_bytes()),
        error_reply(MAILBOX_FULL)
    );
    assert_eq!(
        c.ask(format!("send {messi} lineker 12345\r\n").as_bytes()),
        error_reply(MAILBOX_FULL)
    );
    assert_eq!(c.ask(format!("send {messi} lineker 1234\r\n").as_bytes()), message_sent());
    assert_eq!(c.ask(format!("send {messi} henderson 1234567890\r\n").as_bytes()), message_sent());
    let lineker = c.login("lineker", "surabaya");
    assert_eq!(
        inbox_texts(&c.ask(format!("inbox {lineker}\r\n").as_bytes())),
        [" 1234567890\r\n", " 1234\r\n"]
    );
    assert_eq!(c.ask(format!("send {messi} lineker 1234567890\r\n").as_bytes()), message_sent());
}

/// `--max-sessions-per-user 2`: the right password always logs in. A
/// third `auth` of messi opens a session, and the least recently used of
/// his two (the one a request named longest ago) ends: its token is then
/// `Informasi tidak ditemukan` everywhere, the others work. Using a token
/// keeps its session: the other one gives way instead. Other users are
/// unaffected, a wrong password is still wrong, a logout makes room.
#[test]
fn at_the_session_limit_the_least_recently_used_session_gives_way() {
    let server = ServerProcess::start(&["--max-sessions-per-user", "2"], &[]);
    let mut c = server.connect();
    let unknown = error_reply(UNKNOWN_TOKEN);
    let first = c.login("messi", "surabaya");
    let second = c.login("messi", "surabaya");
    let henderson = c.login("henderson", "surabaya");
    // Neither used since it opened: the older one gives way.
    let third = c.login("messi", "surabaya");
    assert_eq!(c.ask(format!("inbox {first}\r\n").as_bytes()), unknown);
    assert_eq!(c.ask(format!("logout {first}\r\n").as_bytes()), unknown);
    assert_eq!(c.ask(format!("inbox {second}\r\n").as_bytes()), empty_inbox());
    assert_eq!(c.ask(format!("inbox {third}\r\n").as_bytes()), empty_inbox());
    // From another connection too, and with a `send` as the use.
    let mut other = server.connect();
    assert_eq!(other.ask(format!("send {first} lineker x\r\n").as_bytes()), unknown);
    assert_eq!(other.ask(format!("send {second} lineker x\r\n").as_bytes()), message_sent());
    // `second` was used after `third`: a fourth login ends `third`.
    let fourth = c.login("messi", "surabaya");
    assert_eq!(c.ask(format!("list {third}\r\n").as_bytes()), unknown);
    assert_eq!(
        c.ask(format!("list {second}\r\n").as_bytes()),
        list_reply(&["messi - Lionel Messi", "henderson - Jordan Henderson"])
    );
    // Now `fourth` is the least recently used (opened, never named).
    let fifth = c.login("messi", "surabaya");
    assert_eq!(c.ask(format!("inbox {fourth}\r\n").as_bytes()), unknown);
    assert_eq!(c.ask(format!("inbox {second}\r\n").as_bytes()), empty_inbox());
    assert_eq!(c.ask(format!("inbox {fifth}\r\n").as_bytes()), empty_inbox());
    // A wrong password is still a wrong password, and ends nothing.
    assert_eq!(c.ask(b"auth messi jakarta\r\n"), error_reply(WRONG_PASSWORD));
    assert_eq!(c.ask(format!("inbox {second}\r\n").as_bytes()), empty_inbox());
    // henderson's session is untouched by messi's.
    assert_eq!(c.ask(format!("inbox {henderson}\r\n").as_bytes()), empty_inbox());
    // A logout makes room: the next login ends nothing.
    assert_eq!(c.ask(format!("logout {second}\r\n").as_bytes()), logged_out());
    let sixth = c.login("messi", "surabaya");
    assert_eq!(c.ask(format!("inbox {fifth}\r\n").as_bytes()), empty_inbox());
    assert_eq!(c.ask(format!("inbox {sixth}\r\n").as_bytes()), empty_inbox());
    // The one message sent went to lineker, once.
    let lineker = c.login("lineker", "surabaya");
    assert_eq!(inbox_texts(&c.ask(format!("inbox {lineker}\r\n").as_bytes())), [" x\r\n"]);
}

/// `--max-sessions-per-user 0` is accepted and acts as 1 (the rule of §12
/// read literally, and `open_session` in src/protocol/chat.rs: the new
/// session opens even once the user has none left to give way): every login
/// succeeds and ends that user's previous session, so each user holds only
/// the newest one; other users are untouched, and a user with no session
/// still logs in. Guards the loop that makes sessions give way: if it did
/// not stop once the user had none left, the first login would never be
/// answered.
#[test]
fn a_session_limit_of_0_keeps_only_the_newest_session_of_each_user() {
    let server = ServerProcess::start(&["--max-sessions-per-user", "0"], &[]);
    let mut c = server.connect();
    let unknown = error_reply(UNKNOWN_TOKEN);
    let first = c.login("messi", "surabaya");
    assert_eq!(c.ask(format!("inbox {first}\r\n").as_bytes()), empty_inbox());
    let henderson = c.login("henderson", "surabaya");
    let second = c.login("messi", "surabaya");
    assert_eq!(c.ask(format!("inbox {first}\r\n").as_bytes()), unknown);
    assert_eq!(c.ask(format!("send {second} lineker x\r\n").as_bytes()), message_sent());
    assert_eq!(
        c.ask(format!("list {henderson}\r\n").as_bytes()),
        list_reply(&["henderson - Jordan Henderson", "messi - Lionel Messi"])
    );
    // After a logout messi has no session, and still logs in.
    assert_eq!(c.ask(format!("logout {second}\r\n").as_bytes()), logged_out());
    let third = c.login("messi", "surabaya");
    assert_eq!(c.ask(format!("inbox {third}\r\n").as_bytes()), empty_inbox());
    assert_eq!(c.ask(format!("inbox {second}\r\n").as_bytes()), unknown);
    assert_eq!(c.ask(format!("inbox {henderson}\r\n").as_bytes()), empty_inbox());
}

/// The default session limit (1000) locks no one out either: 1001 logins
/// of one user all succeed, and only the first session (never used) ends.
#[test]
fn a_thousand_and_one_logins_all_succeed() {
    let server = ServerProcess::start(&[], &[]);
    let mut c = server.connect();
    let tokens: Vec<String> = (0..1001).map(|_| c.login("lineker", "surabaya")).collect();
    assert_eq!(c.ask(format!("inbox {}\r\n", tokens[0]).as_bytes()), error_reply(UNKNOWN_TOKEN));
    for token in [&tokens[1], &tokens[500], &tokens[1000]] {
        assert_eq!(c.ask(format!("inbox {token}\r\n").as_bytes()), empty_inbox());
    }
}

/// A users file of `n` users `u0000`, `u0001`, … (password `pw`) whose
/// names are about 60 bytes, so that with all of them online a `list`
/// reply is about 70 bytes a user.
fn many_users(n: usize) -> String {
    let users: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"username": "u{i:04}", "name": "User Number {i:04} {}", "password": "pw"}}"#,
                "x".repeat(44)
            )
        })
        .collect();
    format!(r#"{{"users": [{}]}}"#, users.join(", "))
}

/// A line of /proc/PID/status, in KiB (`VmRSS`, `VmHWM`).
fn status_kib(server: &ServerProcess, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no {key} line"))
}

/// The replies a server holds for a client that does not read are bounded
/// (`--max-pending-output`, 1 MiB by default): with 1,000 users online a
/// `list` reply is about 70 KB, and a client pipelines 2,000 `list`s (and
/// a `send` every 50th request) without reading. One 64 KiB read of them
/// is 1,500 requests, 100 MB of replies; the server handles a read's
/// requests only while it holds less than the limit, so its peak memory
/// grows by a few MiB at most. Once the client reads, it gets every reply,
/// in order, and every `send` happened once, in order.
#[test]
fn the_replies_held_for_a_client_that_does_not_read_are_bounded() {
    const USERS: usize = 1000;
    const REQUESTS: usize = 2000;
    const SEND_EVERY: usize = 50;
    let users = scratch_file("limits", "users-1000.json", &many_users(USERS));
    let server = ServerProcess::start(&["--users", users.to_str().unwrap()], &[]);
    let mut helper = server.connect();
    let tokens: Vec<String> = (0..USERS).map(|i| helper.login(&format!("u{i:04}"), "pw")).collect();
    let list = helper.ask(format!("list {}\r\n", tokens[0]).as_bytes());
    assert!(list.len() > 60 * USERS, "a list reply of {} bytes", list.len());

    let requests: Vec<String> = (0..REQUESTS)
        .map(|i| match i % SEND_EVERY {
            x if x == SEND_EVERY - 1 => format!("send {} u0001 m{i}\r\n", tokens[0]),
            _ => format!("list {}\r\n", tokens[0]),
        })
        .collect();
    let sent = message_sent();
    let expected: Vec<&[u8]> = requests
        .iter()
        .map(|r| if r.starts_with("send") { sent.as_bytes() } else { list.as_bytes() })
        .collect();
    let flood = requests.concat();
    assert!(flood.len() > 64 * 1024, "more than one read of requests");

    let rss_before = status_kib(&server, "VmRSS");
    let hwm_before = status_kib(&server, "VmHWM");
    let mut c = server.connect();
    let mut writer = c.stream.try_clone().unwrap();
    let flood_writer = std::thread::spawn(move || {
        use std::io::Write;
        writer.write_all(flood.as_bytes()).expect("write the requests");
    });
    // Let the server take what it will while nothing is read; the peak
    // of its memory is what it held.
    std::thread::sleep(Duration::from_millis(1500));
    let hwm_after = status_kib(&server, "VmHWM");
    let rss_after = status_kib(&server, "VmRSS");
    println!(
        "limits: a client pipelining {REQUESTS} lists of {} bytes, not reading: server RSS \
         {rss_before} KiB -> {rss_after} KiB, peak {hwm_before} KiB -> {hwm_after} KiB",
        list.len()
    );
    let growth = hwm_after.saturating_sub(rss_before.max(hwm_before));
    assert!(
        growth < 16 * 1024,
        "the server's peak memory grew by {growth} KiB for a client that does not read"
    );

    // Now read: every reply, in order, and nothing more.
    let mut at = (0, 0); // (reply, byte within it)
    let mut chunk = vec![0u8; 256 * 1024];
    while at.0 < expected.len() {
        use std::io::Read;
        let n = c.stream.read(&mut chunk).expect("read the replies");
        assert!(n > 0, "the server closed after {} replies", at.0);
        let mut got = &chunk[..n];
        while !got.is_empty() {
            let want = expected.get(at.0).unwrap_or_else(|| panic!("more than {REQUESTS} replies"));
            let take = (want.len() - at.1).min(got.len());
            assert!(
                got[..take] == want[at.1..at.1 + take],
                "reply {} differs from what request {:?} should get",
                at.0,
                requests[at.0]
            );
            got = &got[take..];
            at = if at.1 + take == want.len() { (at.0 + 1, 0) } else { (at.0, at.1 + take) };
        }
    }
    flood_writer.join().unwrap();
    assert_eq!(c.ask(format!("list {}\r\n", tokens[0]).as_bytes()), list);
    let sent: Vec<String> = (0..REQUESTS)
        .filter(|i| i % SEND_EVERY == SEND_EVERY - 1)
        .map(|i| format!(" m{i}\r\n"))
        .collect();
    assert_eq!(inbox_texts(&c.ask(format!("inbox {}\r\n", tokens[1]).as_bytes())), sent);
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
    assert_eq!(a.ask(format!("send {messi} henderson hi\r\n").as_bytes()), message_sent());
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
        inbox_reply("messi", "Lionel Messi", "Jordan Henderson", &[" hi\r\n"])
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
        assert_eq!(busy.ask(format!("inbox {token}\r\n").as_bytes()), empty_inbox());
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
    assert_eq!(other.ask(format!("send {token} lineker short\r\n").as_bytes()), message_sent());
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
        let output = std::process::Command::new(binary())
            .args(["server", "--listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?} started a server");
    }
}

/// `--max-pending-output` is the server's flag for that bound: with a
/// tiny one, a client that pipelines and reads late still gets every reply,
/// in order.
#[test]
fn a_tiny_output_limit_still_answers_everything_in_order() {
    let server = ServerProcess::start(&["--max-pending-output", "64"], &[]);
    let mut c = server.connect();
    let token = c.login("messi", "surabaya");
    let requests: String =
        (0..200).map(|i| format!("send {token} messi m{i}\r\ninbox {token}\r\n")).collect();
    c.send(requests.as_bytes());
    for i in 0..200 {
        assert_eq!(c.reply(), message_sent(), "reply to send {i}");
        let inbox = c.reply();
        assert!(inbox.contains(&format!("\"msg\": \" m{i}\\r\\n\"")), "inbox {i}: {inbox}");
    }
}
