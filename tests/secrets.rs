//! Secrets: passwords, tokens and other users' mail stay where they
//! belong.
//!
//! - no password (right, wrong, plain or hashed) and no token reaches the
//!   logs, even at `RUST_LOG=trace`;
//! - passwords are compared in full: a wrong password of any length is
//!   rejected (the comparison itself runs in constant time, see
//!   `constant_time_eq` in src/protocol/users.rs);
//! - a users file may hold argon2 hashes made by `progjar-chat
//!   hash-password` instead of passwords;
//! - tokens are random UUIDs version 4, drawn from the operating system's
//!   random source (the `uuid` crate's `new_v4`, through `getrandom`);
//! - `list` shows usernames and full names only: never a token, a
//!   password or anyone's mail, and `inbox` shows only the caller's mail;
//! - listening beyond loopback prints a warning that the protocol is
//!   plaintext.

mod support;

use std::collections::HashSet;
use std::io::Write;
use std::process::{Command, Stdio};

use progjar_chat::protocol::users::UserDirectory;
use progjar_chat::users_file::hash_password;
use support::msg::{UNKNOWN_COMMAND, UNKNOWN_TOKEN, USER_NOT_FOUND, WRONG_PASSWORD};
use support::{
    binary, error_reply, list_reply, logged_out, message_sent, scratch_file, token_from_auth_reply,
    ServerProcess,
};

const PLAIN_SECRET: &str = "Pl41n-s3cret-pw";
const HASHED_SECRET: &str = "H4shed-s3cret-pw";
const WRONG_GUESSES: [&str; 3] = ["wr0ng-guess-1", "Pl41n-s3cret-p", "Pl41n-s3cret-pwX"];

/// `progjar-chat hash-password`, fed `password` on standard input.
fn hash_with_the_binary(password: &str) -> String {
    let mut child = Command::new(binary())
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hash-password");
    child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(!stdout.contains(password), "the hash shows the password");
    assert!(!String::from_utf8_lossy(&output.stderr).contains(password));
    let hash = stdout.trim_end().to_string();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert_eq!(stdout, format!("{hash}\n"), "one line: the hash");
    hash
}

/// A users file with a plain-password user and a hashed-password user.
fn users_file(test: &str, hash: &str) -> std::path::PathBuf {
    scratch_file(
        test,
        "users.json",
        &format!(
            r#"{{"users": [
                {{"username": "alice", "name": "Alice Plain", "password": "{PLAIN_SECRET}"}},
                {{"username": "bob", "name": "Bob Hashed", "password_hash": "{hash}"}}
            ]}}"#
        ),
    )
}

/// A whole session at `RUST_LOG=trace` (logins that work and fail, for a
/// plain and a hashed user; a password sent as a message, as a token, as a
/// username; pipelined requests; logouts), then a search of everything the
/// server printed for every password, the hash, and every token, whole or
/// as a prefix of 8 characters or more.
#[test]
fn no_password_or_token_reaches_the_logs_at_trace() {
    let hash = hash_with_the_binary(HASHED_SECRET);
    let users = users_file("secrets-logs", &hash);
    let server =
        ServerProcess::start(&["--users", users.to_str().unwrap()], &[("RUST_LOG", "trace")]);
    let mut tokens = Vec::new();
    let mut c = server.connect();
    let alice = c.login("alice", PLAIN_SECRET);
    let bob = c.login("bob", HASHED_SECRET);
    tokens.extend([alice.clone(), bob.clone()]);
    for guess in WRONG_GUESSES {
        assert_eq!(
            c.ask(format!("auth alice {guess}\r\n").as_bytes()),
            error_reply(WRONG_PASSWORD)
        );
        assert_eq!(c.ask(format!("auth bob {guess}\r\n").as_bytes()), error_reply(WRONG_PASSWORD));
    }
    // The other user's password, the hash itself, and passwords in the
    // wrong fields.
    assert_eq!(
        c.ask(format!("auth bob {PLAIN_SECRET}\r\n").as_bytes()),
        error_reply(WRONG_PASSWORD)
    );
    assert_eq!(c.ask(format!("auth bob {hash}\r\n").as_bytes()), error_reply(WRONG_PASSWORD));
    assert_eq!(
        c.ask(format!("auth {PLAIN_SECRET} {PLAIN_SECRET}\r\n").as_bytes()),
        error_reply(USER_NOT_FOUND)
    );
    assert_eq!(c.ask(format!("inbox {HASHED_SECRET}\r\n").as_bytes()), error_reply(UNKNOWN_TOKEN));
    assert_eq!(c.ask(format!("send {alice} bob {PLAIN_SECRET}\r\n").as_bytes()), message_sent());
    let inbox = c.ask(format!("inbox {bob}\r\n").as_bytes());
    assert!(inbox.contains(PLAIN_SECRET), "the message itself is delivered");
    // Pipelined, over a second connection, and logged out again.
    let mut d = server.connect();
    d.send(
        format!("auth bob {HASHED_SECRET}\r\nauth alice {PLAIN_SECRET}\r\nlist {alice}\r\n")
            .as_bytes(),
    );
    let bob2 = token_from_auth_reply(&d.reply());
    let alice2 = token_from_auth_reply(&d.reply());
    d.reply();
    tokens.extend([bob2.clone(), alice2.clone()]);
    for token in [&alice, &bob, &bob2, &alice2] {
        assert_eq!(d.ask(format!("logout {token}\r\n").as_bytes()), logged_out());
    }
    drop((c, d));

    let (status, stdout, stderr) = server.terminate();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.lines().filter(|l| l.contains(" request ")).count() >= 20,
        "the trace log is not empty:\n{stderr}"
    );
    let mut secrets: Vec<(&str, String)> = vec![
        ("the plain password", PLAIN_SECRET.to_string()),
        ("the hashed user's password", HASHED_SECRET.to_string()),
        ("the hash", hash.clone()),
        ("the hash's salt and digest", hash.rsplit('$').take(2).collect::<Vec<_>>().join("$")),
    ];
    for guess in WRONG_GUESSES {
        secrets.push(("a wrong password", guess.to_string()));
    }
    for token in &tokens {
        secrets.push(("a token's first 8 characters", token[..8].to_string()));
        secrets.push(("a token's last 12 characters", token[24..].to_string()));
    }
    for (what, secret) in &secrets {
        assert!(!stderr.contains(secret.as_str()), "stderr shows {what} {secret:?}:\n{stderr}");
        assert!(!stdout.contains(secret.as_str()), "stdout shows {what} {secret:?}:\n{stdout}");
    }
    println!(
        "secrets: searched {} lines of trace log for {} secrets: none found",
        stderr.lines().count(),
        secrets.len()
    );
}

/// Wrong passwords of every length from 0 to 64 are rejected: every
/// prefix and extension of the right one, the right length with any one
/// byte changed, and other strings; for a plain and a hashed user.
#[test]
fn wrong_passwords_of_every_length_are_rejected() {
    let users = UserDirectory::builtin();
    let messi = users.find("messi").unwrap();
    let right = "surabaya";
    assert!(users.password_matches(messi, right));
    let mut wrong: Vec<String> = Vec::new();
    for len in 0..=64 {
        wrong.push(right.chars().cycle().take(len).collect());
        wrong.push("x".repeat(len));
        wrong.push("\0".repeat(len));
    }
    for at in 0..right.len() {
        let mut bytes = right.as_bytes().to_vec();
        for flip in [1u8, 0x20, 0x80] {
            bytes[at] ^= flip;
            if let Ok(s) = String::from_utf8(bytes.clone()) {
                wrong.push(s);
            }
            bytes[at] ^= flip;
        }
    }
    wrong.push(format!("{right}\0"));
    wrong.push(format!("\0{right}"));
    wrong.push(right.to_uppercase());
    let mut checked = 0;
    for w in wrong.iter().filter(|w| w.as_str() != right) {
        assert!(!users.password_matches(messi, w), "{w:?} matched");
        assert!(users.check_login("messi", w).is_err(), "{w:?} logged in");
        checked += 1;
    }
    // The same through an argon2 hash (fewer: each check takes a while).
    let hash = hash_password(right).unwrap();
    let path = scratch_file(
        "secrets-lengths",
        "users.json",
        &format!(r#"{{"users": [{{"username": "h", "name": "H", "password_hash": "{hash}"}}]}}"#),
    );
    let hashed = UserDirectory::load(&path).unwrap();
    assert!(hashed.check_login("h", right).is_ok());
    for w in ["", "surabay", "surabayaa", &hash] {
        assert!(hashed.check_login("h", w).is_err(), "{w:?} logged in");
        checked += 1;
    }
    println!("secrets: {checked} wrong passwords rejected");
}

/// A users file with a hash from `progjar-chat hash-password`: the password
/// logs in through the real server; a wrong one, the other user's, and the
/// hash itself do not.
#[test]
fn a_hashed_password_from_the_binary_logs_in() {
    let hash = hash_with_the_binary(HASHED_SECRET);
    assert_ne!(hash, hash_with_the_binary(HASHED_SECRET), "a fresh salt every time");
    let users = users_file("secrets-hashed", &hash);
    let server = ServerProcess::start(&["--users", users.to_str().unwrap()], &[]);
    let mut c = server.connect();
    let bob = c.login("bob", HASHED_SECRET);
    for wrong in [PLAIN_SECRET, &hash, "H4shed-s3cret-p"] {
        assert_eq!(
            c.ask(format!("auth bob {wrong}\r\n").as_bytes()),
            error_reply(WRONG_PASSWORD),
            "{wrong}"
        );
    }
    let alice = c.login("alice", PLAIN_SECRET);
    assert_eq!(
        c.ask(format!("list {bob}\r\n").as_bytes()),
        list_reply(&["bob - Bob Hashed", "alice - Alice Plain"])
    );
    assert_eq!(c.ask(format!("send {alice} bob hi\r\n").as_bytes()), message_sent());
    drop(c);
    let (status, _, stderr) = server.terminate();
    assert_eq!(status.code(), Some(0), "{stderr}");
}

/// 1,000 tokens from a real server: all different, all lowercase UUIDs of
/// version 4 and the RFC 4122 variant, and their 122 random bits look
/// random (each hex digit position is far from constant, and the digits
/// overall are close to uniform).
#[test]
fn tokens_are_random_uuid_v4() {
    const N: usize = 1000;
    let server = ServerProcess::start(&[], &[]);
    let mut c = server.connect();
    let users = ["messi", "henderson", "lineker"];
    let batch: String = (0..N).map(|i| format!("auth {} surabaya\r\n", users[i % 3])).collect();
    c.send(batch.as_bytes());
    let tokens: Vec<String> = (0..N).map(|_| token_from_auth_reply(&c.reply())).collect();
    let unique: HashSet<&String> = tokens.iter().collect();
    assert_eq!(unique.len(), N, "tokens repeat");
    let mut counts = [0usize; 16];
    for token in &tokens {
        let parsed = uuid::Uuid::parse_str(token).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 4, "{token}");
        assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122, "{token}");
        assert_eq!(token, &parsed.hyphenated().to_string(), "lowercase hyphenated");
        for (i, ch) in token.chars().enumerate() {
            // Skip the hyphens and the fixed version and variant digits.
            if [8, 13, 14, 18, 19, 23].contains(&i) {
                continue;
            }
            counts[ch.to_digit(16).unwrap() as usize] += 1;
        }
    }
    // 30 random digits per token: each of the 16 values is expected 1875
    // times in 30,000; a bias of a tenth would be far outside chance.
    let expected = (N * 30 / 16) as f64;
    for (digit, &count) in counts.iter().enumerate() {
        let off = (count as f64 - expected).abs() / expected;
        assert!(off < 0.1, "hex digit {digit:x} appears {count} times, expected about {expected}");
    }
    // Consecutive tokens share no long prefix (they are not a counter).
    for pair in tokens.windows(2) {
        assert_ne!(pair[0][..8], pair[1][..8], "{} then {}", pair[0], pair[1]);
    }
    drop(c);
    let (status, _, _) = server.terminate();
    assert_eq!(status.code(), Some(0));
}

/// With mail pending for several users and several sessions live (two for
/// one user), `list` names each logged-in user once, as "username - Full
/// Name", and holds no token, no password and no message; each `inbox`
/// holds only its own user's mail.
#[test]
fn list_never_returns_tokens_passwords_or_mail() {
    let server = ServerProcess::start(&[], &[]);
    let mut c = server.connect();
    let messi = c.login("messi", "surabaya");
    let messi2 = c.login("messi", "surabaya");
    let henderson = c.login("henderson", "surabaya");
    let lineker = c.login("lineker", "surabaya");
    let mail = [
        (&messi, "henderson", "for-henderson-only"),
        (&henderson, "lineker", "for-lineker-only"),
        (&lineker, "messi", "for-messi-only"),
        (&messi2, "lineker", "also-for-lineker"),
    ];
    for (from, to, text) in mail {
        assert_eq!(c.ask(format!("send {from} {to} {text}\r\n").as_bytes()), message_sent());
    }
    let want = list_reply(&[
        "messi - Lionel Messi",
        "henderson - Jordan Henderson",
        "lineker - Gary Lineker",
    ]);
    let tokens = [&messi, &messi2, &henderson, &lineker];
    for token in tokens {
        let list = c.ask(format!("list {token}\r\n").as_bytes());
        assert_eq!(list, want);
        for secret in tokens {
            assert!(!list.contains(&secret[..8]), "list shows a token");
        }
        assert!(
            !list.contains("surabaya") && !list.contains("for-") && !list.contains("msg"),
            "{list}"
        );
    }
    // Each inbox holds its own user's mail and no one else's.
    for (token, own, others) in [
        (
            &henderson,
            vec!["for-henderson-only"],
            vec!["for-lineker-only", "for-messi-only", "also-for-lineker"],
        ),
        (
            &lineker,
            vec!["for-lineker-only", "also-for-lineker"],
            vec!["for-henderson-only", "for-messi-only"],
        ),
        (
            &messi2,
            vec!["for-messi-only"],
            vec!["for-henderson-only", "for-lineker-only", "also-for-lineker"],
        ),
    ] {
        let inbox = c.ask(format!("inbox {token}\r\n").as_bytes());
        for text in own {
            assert_eq!(inbox.matches(text).count(), 1, "{inbox}");
        }
        for text in others {
            assert!(!inbox.contains(text), "{inbox}");
        }
        for secret in tokens {
            assert!(!inbox.contains(&secret[..8]), "inbox shows a token");
        }
    }
    drop(c);
    let (status, _, _) = server.terminate();
    assert_eq!(status.code(), Some(0));
}

/// `--listen 0.0.0.0:0` (every interface) prints a warning that the
/// protocol is plaintext; loopback does not. Only loopback traffic is sent.
#[test]
fn listening_beyond_loopback_warns_that_the_protocol_is_plaintext() {
    let wide = ServerProcess::start_listening("0.0.0.0:0", &[], &[]);
    assert!(
        wide.first_line.starts_with("progjar-chat server listening on 0.0.0.0:"),
        "{}",
        wide.first_line
    );
    let mut c = wide.connect();
    assert_eq!(c.ask(b"foo\r\n"), error_reply(UNKNOWN_COMMAND));
    drop(c);
    let (status, _, stderr) = wide.terminate();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let warning: Vec<&str> = stderr.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warning.len(), 1, "{stderr}");
    assert!(warning[0].contains("plaintext") && warning[0].contains("passwords"), "{stderr}");

    let narrow = ServerProcess::start(&[], &[]);
    let (status, _, stderr) = narrow.terminate();
    assert_eq!(status.code(), Some(0));
    assert!(!stderr.contains("plaintext"), "a loopback server warns: {stderr}");
}
