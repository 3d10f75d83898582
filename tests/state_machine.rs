//! proptest state machine, in process: random request sequences from several
//! clients on several connections, through `Connection` and `SharedChat`
//! (one batch per write) exactly as the server wires them, compared reply by reply with the
//! reference model (`tests/model`), with the invariants of
//! `tests/model/machine.rs` checked after every step.
//!
//! `PROGJAR_PROPTEST_CASES` and `PROGJAR_PROPTEST_STEPS` raise the number of
//! cases (default 256) and steps per case (default 50) for long runs.
//! Failures are kept in `tests/regressions/state_machine.txt` and rerun
//! first.

#[path = "model/machine.rs"]
mod machine;
mod model;

use machine::{take_replies, Transport, CONNECTIONS, MAX_LINE};
use progjar_chat::protocol::connection::Connection;
use progjar_chat::protocol::reply::{ErrorReply, Reply};
use progjar_chat::protocol::token::SequentialTokens;
use progjar_chat::protocol::users::UserDirectory;
use progjar_chat::shared::SharedChat;

/// The core without sockets: one `Connection` per client connection and
/// one `SharedChat`, with predictable tokens.
struct InProcess {
    chat: SharedChat,
    conns: Vec<Connection>,
    tokens: SequentialTokens,
}

impl Transport for InProcess {
    fn start() -> Self {
        Self {
            chat: SharedChat::new(UserDirectory::builtin()),
            conns: (0..=CONNECTIONS).map(|_| Connection::new(MAX_LINE)).collect(),
            tokens: SequentialTokens::default(),
        }
    }

    fn exchange(&mut self, conn: usize, writes: &[Vec<u8>], _replies: usize) -> Vec<Vec<u8>> {
        let Self { chat, conns, tokens } = self;
        let mut out = Vec::new();
        for write in writes {
            // As the server does: the requests of one read form one batch.
            let mut batch = chat.batch();
            conns[conn].handle_bytes(write, |request| match request {
                Ok(line) => {
                    batch.handle_line(line, tokens, &mut out);
                }
                Err(_) => ErrorReply::LineTooLong.encode(&mut out),
            });
        }
        let replies = take_replies(&mut out);
        assert!(out.is_empty(), "a reply without its terminator: {out:?}");
        replies
    }

    fn counts(&mut self) -> Option<(usize, usize)> {
        Some(self.chat.with(|chat| (chat.session_count(), chat.pending_count())))
    }

    fn stop(self) {}
}

#[test]
fn core_in_process_agrees_with_the_model() {
    machine::run::<InProcess>("core in process", "tests/regressions/state_machine.txt");
}

// Edges the random steps do not reach. Each of these kills a mutant that
// survived the rest of the suite (see tests/MUTANTS.md).

/// Spec §12: the reference server accepts request lines of up to 1 MiB,
/// terminator included, and answers a longer one as too long.
#[test]
fn the_default_line_limit_is_one_mebibyte() {
    use progjar_chat::protocol::frame::{parse_frame, Frame, FrameError};
    use progjar_chat::protocol::limits::DEFAULT_MAX_LINE;
    const MIB: usize = 1 << 20;
    assert_eq!(DEFAULT_MAX_LINE, MIB);
    let mut line = b"send t messi ".to_vec();
    line.resize(MIB - 2, b'x');
    line.extend_from_slice(b"\r\n");
    assert_eq!(parse_frame(&line), Ok(Frame::Complete { len: MIB }));
    let mut got = Vec::new();
    Connection::default().handle_bytes(&line, |r| got.push(r.map(<[u8]>::len)));
    assert_eq!(got, [Ok(MIB)]);

    line.insert(0, b'x');
    assert_eq!(parse_frame(&line), Err(FrameError::LineTooLong { limit: MIB }));
    let mut got = Vec::new();
    Connection::default().handle_bytes(&line, |r| got.push(r.map(<[u8]>::len)));
    assert_eq!(got, [Err(FrameError::LineTooLong { limit: MIB })]);
}

/// The server logs a framing error by its `Display`.
#[test]
fn a_frame_error_says_what_went_wrong() {
    use progjar_chat::protocol::frame::FrameError;
    assert_eq!(
        FrameError::LineTooLong { limit: 8 }.to_string(),
        "request line longer than 8 bytes"
    );
}

/// What the server logs of each request: the command (never a field) and
/// the outcome, as `SharedChat::handle_line` reports them, and the text of a
/// request error.
#[test]
fn each_request_is_logged_by_its_command_and_outcome() {
    use progjar_chat::protocol::request::RequestError;
    let chat = SharedChat::new(UserDirectory::builtin());
    let mut tokens = SequentialTokens::default();
    let mut out = Vec::new();
    let token = "00000000-0000-4000-8000-000000000001";
    let cases = [
        ("auth messi surabaya\r\n".to_string(), "auth", "OK"),
        (format!("send {token} lineker hi\r\n"), "send", "OK"),
        (format!("inbox {token}\r\n"), "inbox", "OK"),
        ("list bogus\r\n".to_string(), "list", "Informasi tidak ditemukan"),
        (format!("logout {token}\r\n"), "logout", "OK"),
        ("foo\r\n".to_string(), "-", "**Protocol Tidak Benar"),
    ];
    for (line, command, outcome) in cases {
        let handled = chat.handle_line(line.as_bytes(), &mut tokens, &mut out);
        assert_eq!((handled.command, handled.outcome), (command, outcome), "{line:?}");
    }
    assert!(Reply::MessageSent.is_ok() && Reply::LoggedOut.is_ok());
    assert!(!Reply::Error(ErrorReply::UnknownToken).is_ok());
    assert_eq!(RequestError::NotUtf8.to_string(), "request is not valid UTF-8");
    assert_eq!(RequestError::UnknownCommand.to_string(), "unknown command");
    assert_eq!(RequestError::MissingFields.to_string(), "missing fields");
}

/// Inboxes larger than the random steps make: long texts, many messages
/// from several senders (more than a batch encodes under the lock), through
/// a batch as the server runs them, byte for byte as the model says.
#[test]
fn large_inboxes_are_the_models() {
    use model::{reply_bytes, sequential_token, ModelServer};
    use progjar_chat::protocol::limits::DEFAULT_MAX_LINE;
    let mut expected = ModelServer::new(1, DEFAULT_MAX_LINE);
    let mut lines: Vec<String> = ["messi", "henderson", "lineker"]
        .iter()
        .map(|u| format!("auth {u} surabaya\r\n"))
        .collect();
    let (messi, henderson, lineker) =
        (sequential_token(0), sequential_token(1), sequential_token(2));
    for n in 0..40 {
        let from = [&messi, &henderson, &lineker][n % 3];
        let text = "é\"x".repeat(n % 4 * 10);
        lines.push(format!("send {from} messi {n} {text}\r\n"));
    }
    lines.push(format!("inbox {messi}\r\n"));
    for n in 0..20 {
        lines.push(format!("send {henderson} lineker {}\r\n", "y".repeat(n * 3)));
    }
    lines.push(format!("inbox {lineker}\r\n"));
    lines.push(format!("inbox {lineker}\r\n"));
    let stream: Vec<u8> = lines.concat().into_bytes();
    let chat = SharedChat::new(UserDirectory::builtin());
    let mut tokens = SequentialTokens::default();
    let mut out = Vec::new();
    let mut batch = chat.batch();
    Connection::default().handle_bytes(&stream, |line| {
        batch.handle_line(line.expect("no line is too long"), &mut tokens, &mut out);
    });
    drop(batch);
    let got = take_replies(&mut out);
    let want: Vec<Vec<u8>> =
        expected.write(0, &stream, sequential_token).iter().map(reply_bytes).collect();
    assert_eq!(got.len(), want.len());
    for (got, want) in got.iter().zip(&want) {
        assert_eq!(String::from_utf8_lossy(got), String::from_utf8_lossy(want));
    }
}

/// A directory always holds a user (the model's three are the built-in ones).
#[test]
fn the_builtin_directory_is_the_models() {
    let users = UserDirectory::builtin();
    assert!(!users.is_empty());
    assert_eq!(users.len(), model::USERS.len());
}

/// What the server says about its users: a password never shows in a
/// `Debug` (which may reach a log), and each users-file problem has a line
/// of its own for the command line to print.
#[test]
fn users_and_their_errors_display_as_documented() {
    use progjar_chat::protocol::users::{DirectoryError, Password};
    use progjar_chat::users_file::HashError;
    assert_eq!(format!("{:?}", Password::Plain("surabaya".into())), "Plain(…)");
    assert_eq!(format!("{:?}", Password::Argon2("$argon2id$x".into())), "Argon2(…)");
    assert_eq!(DirectoryError::NoUsers.to_string(), "the file lists no users");
    assert_eq!(HashError::NoRandomness.to_string(), "the system's random source failed");
    let missing = std::path::Path::new("no/such/users.json");
    let error = UserDirectory::load(missing).expect_err("no such file");
    assert!(
        error.to_string().starts_with("cannot read users file no/such/users.json: "),
        "{error}"
    );
}

/// The model itself, on the spec's own examples it is built from (here
/// once, not in every test binary that includes the model).
#[test]
fn the_model_follows_the_spec_examples_it_is_built_from() {
    let mut m = model::Model::new();
    let t = |line: &str, m: &mut model::Model| {
        model::py_dumps(&m.handle_line(line.as_bytes(), model::sequential_token))
    };
    assert_eq!(
        t("auth messi surabaya \r\n", &mut m),
        r#"{"status": "OK", "tokenid": "00000000-0000-4000-8000-000000000001"}"#
    );
    let tok = model::sequential_token(0);
    assert_eq!(
        t(&format!("send {tok} messi caf\u{e9} \u{1f600} \"q\" \\ / \u{7f}\r\n"), &mut m),
        r#"{"status": "OK", "message": "Message Sent"}"#
    );
    assert_eq!(
        t(&format!("inbox {tok} \r\n"), &mut m),
        r#"{"status": "OK", "messages": {"messi": [{"msg_from": "Lionel Messi", "msg_to": "Lionel Messi", "msg": " caf\u00e9 \ud83d\ude00 \"q\" \\ / \u007f\r\n"}]}}"#
    );
    assert_eq!(
        t("auth  messi surabaya\r\n", &mut m),
        r#"{"status": "ERROR", "message": "User Tidak Ada"}"#
    );
    assert_eq!(t("auth messi \r\n", &mut m), r#"{"status": "ERROR", "message": "Password Salah"}"#);
    assert_eq!(
        t("auth\tmessi\tsurabaya\r\n", &mut m),
        r#"{"status": "ERROR", "message": "**Protocol Tidak Benar"}"#
    );
    assert_eq!(
        t("send x\r\n", &mut m),
        r#"{"status": "ERROR", "message": "--Protocol Tidak Benar"}"#
    );
}
