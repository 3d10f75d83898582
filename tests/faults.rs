//! Faults, against the real `progjar-chat server` binary: clients that die
//! in the middle of a request, a client that never reads its replies, and
//! SIGTERM while the server is busy.
//!
//! State is in memory by design (the assignment: messages last "as long as
//! the server keeps running"), so these tests check what the server does
//! while it runs and how it stops, not what survives it.

mod support;

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{
    empty_inbox, inbox_reply, list_reply, message_sent, scratch_file, Conn, ServerProcess,
};

/// Clients that end in the middle of a request, in every way a client can
/// end: a close (FIN), a reset (SO_LINGER 0), and a process killed with
/// SIGKILL with its socket open. The partial requests have no effect, a
/// message acknowledged before survives, and the server keeps serving.
#[test]
fn a_client_killed_mid_request_has_no_effect() {
    let server = ServerProcess::start(&[], &[]);
    let mut a = server.connect();
    let messi = a.login("messi", "surabaya");
    assert_eq!(a.ask(format!("send {messi} henderson before\r\n").as_bytes()), message_sent());

    let partial_send = format!("send {messi} henderson partial");
    let partials: [&[u8]; 4] =
        [partial_send.as_bytes(), b"auth henderson sura", b"logout ", b"send x henderson caf\xc3"];
    let mut survived = 0;
    for partial in partials {
        // Closed with a FIN.
        let mut c = server.connect();
        c.send(partial);
        std::thread::sleep(Duration::from_millis(20));
        drop(c);
        survived += 1;
        // Reset with an RST.
        let c = socket2_reset(server.addr, partial);
        drop(c);
        survived += 1;
    }

    // A process killed with its socket open and a request half written.
    let script = format!(
        "exec 3<>/dev/tcp/127.0.0.1/{}; printf '%s' '{partial_send}' >&3; sleep 30",
        server.addr.port()
    );
    let mut killed = Command::new("bash")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn bash");
    std::thread::sleep(Duration::from_millis(300));
    killed.kill().expect("SIGKILL the client");
    killed.wait().unwrap();
    survived += 1;
    std::thread::sleep(Duration::from_millis(50));

    // The server still serves: A's connection, and a new one.
    assert_eq!(
        a.ask(format!("list {messi}\r\n").as_bytes()),
        list_reply(&["messi - Lionel Messi"])
    );
    let mut b = server.connect();
    let henderson = b.login("henderson", "surabaya");
    assert_eq!(
        b.ask(format!("inbox {henderson}\r\n").as_bytes()),
        inbox_reply("messi", "Lionel Messi", "Jordan Henderson", &[" before\r\n"]),
        "the acknowledged message, once, and nothing of the partial requests"
    );
    assert_eq!(
        b.ask(format!("list {henderson}\r\n").as_bytes()),
        list_reply(&["messi - Lionel Messi", "henderson - Jordan Henderson"]),
        "no partial auth opened a session"
    );
    println!(
        "faults: {survived} clients killed mid-request; the server kept serving, nothing lost"
    );
    drop((a, b));
    let (status, _, stderr) = server.terminate();
    assert_eq!(status.code(), Some(0), "{stderr}");
}

/// Connects, writes `partial`, and returns the stream set to reset on
/// close (SO_LINGER 0).
fn socket2_reset(addr: std::net::SocketAddr, partial: &[u8]) -> TcpStream {
    let mut c = Conn::connect(addr);
    c.send(partial);
    std::thread::sleep(Duration::from_millis(20));
    // std has no SO_LINGER setter; go through tokio's, on a runtime-free
    // conversion.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap();
    let _guard = runtime.enter();
    c.stream.set_nonblocking(true).unwrap();
    let stream = tokio::net::TcpStream::from_std(c.stream).unwrap();
    stream.set_zero_linger().expect("SO_LINGER 0");
    let std = stream.into_std().unwrap();
    std.set_nonblocking(false).unwrap();
    std
}

/// 20 users, password `pw`: with all of them logged in, a `list` reply is
/// about 16 times its request, so a client that pipelines `list` and never
/// reads would make the server buffer fast if it kept reading.
fn twenty_users() -> String {
    let users: Vec<String> = (0..20)
        .map(|i| {
            format!(r#"{{"username": "u{i:02}", "name": "User Number {i:02}", "password": "pw"}}"#)
        })
        .collect();
    format!(r#"{{"users": [{}]}}"#, users.join(", "))
}

/// A client pipelines `list` requests and never reads a reply. The server
/// answers until the socket buffers are full, then stops reading from that
/// socket: the client's writes stall after a bounded amount, the server's
/// memory stays bounded, and every other client is served normally.
#[test]
fn a_client_that_never_reads_is_not_buffered_without_bound() {
    let users = scratch_file("faults", "users-20.json", &twenty_users());
    let server = ServerProcess::start(&["--users", users.to_str().unwrap()], &[]);
    let mut helper = server.connect();
    let mut tokens = Vec::new();
    for i in 0..20 {
        tokens.push(helper.login(&format!("u{i:02}"), "pw"));
    }
    let list_len = helper.ask(format!("list {}\r\n", tokens[0]).as_bytes()).len();
    let rss_before = server.rss_kib();

    let mut stuck = server.connect();
    stuck.stream.set_write_timeout(Some(Duration::from_millis(500))).unwrap();
    let request = format!("list {}\r\n", tokens[1]);
    let chunk = request.repeat(64 * 1024 / request.len());
    let offered: usize = 256 * 1024 * 1024;
    let mut written = 0;
    let started = Instant::now();
    while written < offered {
        use std::io::Write;
        match stuck.stream.write(chunk.as_bytes()) {
            Ok(n) => written += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(e) => panic!("write failed: {e}"),
        }
        assert!(started.elapsed() < Duration::from_secs(30), "writes never stalled");
    }
    assert!(written < offered, "the server read all {offered} bytes: it never stopped reading");
    // Still stalled a moment later: the server is not reading.
    std::thread::sleep(Duration::from_millis(300));
    let later = {
        use std::io::Write;
        stuck.stream.write(chunk.as_bytes()).unwrap_or(0)
    };
    let rss_after = server.rss_kib();

    // Everyone else is served as usual.
    let mut other = server.connect();
    let u05 = other.login("u05", "pw");
    assert_eq!(other.ask(format!("send {u05} u06 hello\r\n").as_bytes()), message_sent());
    assert_eq!(
        other.ask(format!("inbox {}\r\n", tokens[6]).as_bytes()),
        inbox_reply("u05", "User Number 05", "User Number 06", &[" hello\r\n"])
    );
    assert_eq!(helper.ask(format!("list {}\r\n", tokens[0]).as_bytes()).len(), list_len);
    let requests = written / request.len();
    println!(
        "faults: a client that never reads wrote {:.1} MiB ({requests} requests, \
         replies {:.0}x larger) before the server stopped reading; {later} bytes more after 300 ms; \
         server RSS {} KiB -> {} KiB",
        written as f64 / (1024.0 * 1024.0),
        list_len as f64 / request.len() as f64,
        rss_before,
        rss_after
    );
    // The kernel's socket buffers take some megabytes; the server holds at
    // most the replies to one read.
    assert!(written < 64 * 1024 * 1024, "{written} bytes accepted from a client that never reads");
    assert!(later < 1024 * 1024, "the server kept reading: {later} bytes more");
    assert!(
        rss_after < rss_before + 32 * 1024,
        "server RSS grew from {rss_before} KiB to {rss_after} KiB"
    );

    // The stuck client goes away; the server notices and still serves.
    drop(stuck);
    assert_eq!(helper.ask(format!("inbox {}\r\n", tokens[0]).as_bytes()), empty_inbox());
    let (status, _, stderr) = server.terminate();
    assert_eq!(status.code(), Some(0), "{stderr}");
}

/// One load client's record: for each pipelined batch, when its write
/// completed and how many of its replies arrived.
#[derive(Default)]
struct LoadRecord {
    batches: Vec<(Instant, usize, usize)>,
    bad_replies: Vec<String>,
}

/// SIGTERM while 16 clients pipeline requests, one client never reads its
/// replies, one sits idle and one is in the middle of a request: the
/// server stops accepting at once, answers every request that reached it
/// before the signal, closes every connection, and exits 0 within 5 s.
#[test]
fn sigterm_under_load_answers_what_is_in_flight_and_exits_0() {
    const CLIENTS: usize = 16;
    const BATCH: usize = 8;
    let mut server = ServerProcess::start(&[], &[]);
    let addr = server.addr;
    let users = ["messi", "henderson", "lineker"];
    let stop = Arc::new(AtomicBool::new(false));
    let records: Vec<Arc<Mutex<LoadRecord>>> = (0..CLIENTS).map(|_| Arc::default()).collect();
    let mut threads = Vec::new();
    for k in 0..CLIENTS {
        let stop = Arc::clone(&stop);
        let record = Arc::clone(&records[k]);
        threads.push(std::thread::spawn(move || {
            let mut c = Conn::connect(addr);
            let token = c.login(users[k % 3], "surabaya");
            let to = users[(k + 1) % 3];
            let mut i = 0;
            // Write a batch, read its replies; stop writing once told to.
            while !stop.load(Ordering::Acquire) {
                let mut batch = String::new();
                for _ in 0..BATCH {
                    if i % 5 == 4 {
                        batch.push_str(&format!("inbox {token}\r\n"));
                    } else {
                        batch.push_str(&format!("send {token} {to} c{k}-{i}\r\n"));
                    }
                    i += 1;
                }
                use std::io::Write;
                if c.stream.write_all(batch.as_bytes()).is_err() {
                    break;
                }
                let written = Instant::now();
                let mut answered = 0;
                for _ in 0..BATCH {
                    match c.try_reply() {
                        Some(reply) => {
                            if reply != message_sent()
                                && !reply.starts_with("{\"status\": \"OK\", \"messages\": {")
                            {
                                record.lock().unwrap().bad_replies.push(reply);
                            }
                            answered += 1;
                        }
                        None => break,
                    }
                }
                record.lock().unwrap().batches.push((written, BATCH, answered));
                if answered < BATCH {
                    break;
                }
            }
        }));
    }

    // A client that never reads, with the server blocked writing to it.
    let mut stuck = server.connect();
    let stuck_token = stuck.login("lineker", "surabaya");
    stuck.stream.set_write_timeout(Some(Duration::from_millis(300))).unwrap();
    let flood = format!("list {stuck_token}\r\n").repeat(1000);
    loop {
        use std::io::Write;
        if stuck.stream.write(flood.as_bytes()).is_err() {
            break;
        }
    }
    // An idle client, and one in the middle of a request.
    let mut idle = server.connect();
    let mut partial = server.connect();
    partial.send(b"auth messi sura");

    std::thread::sleep(Duration::from_millis(500));
    let signalled = Instant::now();
    stop.store(true, Ordering::Release);
    server.sigterm();

    // New connections are refused while the server drains.
    let refused_after = loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                break signalled.elapsed()
            }
            _ => {}
        }
        assert!(signalled.elapsed() < Duration::from_secs(5), "still accepting 5 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    };
    let status = server.wait_at_most(Duration::from_secs(5));
    let exited_after = signalled.elapsed();
    let status = status.unwrap_or_else(|| panic!("the server did not exit within 5 s of SIGTERM"));
    for thread in threads {
        thread.join().expect("a load client panicked");
    }
    assert_eq!(idle.read_to_end(), b"", "the idle connection is closed, with nothing sent");
    assert_eq!(partial.read_to_end(), b"", "a partial request gets no reply");
    drop(stuck);
    let (_, stderr) = server.outputs();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let mut requests = 0;
    let mut answered = 0;
    let mut lost_before_signal = 0;
    for record in &records {
        let record = record.lock().unwrap();
        assert!(record.bad_replies.is_empty(), "bad replies: {:?}", record.bad_replies);
        for &(written, sent, got) in &record.batches {
            requests += sent;
            answered += got;
            if written < signalled {
                lost_before_signal += sent - got;
            }
        }
    }
    println!(
        "faults: SIGTERM under load: {CLIENTS} clients, {requests} requests, {answered} answered, \
         {lost_before_signal} written before the signal and unanswered; refused new connections \
         after {refused_after:?}, exited 0 after {exited_after:?}"
    );
    assert_eq!(
        lost_before_signal, 0,
        "requests that reached the server before SIGTERM went unanswered"
    );
    assert!(answered > 0);
}

/// Ctrl-C (SIGINT) stops the server as SIGTERM does: a request that
/// reached it is answered, the open connection is closed, and it exits 0
/// within 5 s, saying so on stderr (a server that ignored SIGINT would
/// still be running).
#[test]
fn sigint_stops_the_server_like_sigterm() {
    let mut server = ServerProcess::start(&[], &[("RUST_LOG", "info")]);
    let mut c = server.connect();
    let token = c.login("messi", "surabaya");
    c.send(format!("send {token} messi hi\r\n").as_bytes());
    assert_eq!(c.reply(), message_sent());
    let signalled = Instant::now();
    server.signal("INT");
    let status =
        server.wait_at_most(Duration::from_secs(5)).expect("the server exits after SIGINT");
    assert!(status.success(), "{status:?}");
    assert!(signalled.elapsed() < Duration::from_secs(5));
    assert!(c.read_to_end().is_empty(), "the connection is closed with nothing more");
    let (_, stderr) = server.outputs();
    assert!(stderr.contains("shutting down"), "{stderr}");
    assert!(stderr.contains("all connections closed"), "{stderr}");
}
