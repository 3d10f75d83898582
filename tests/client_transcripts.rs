//! Every example transcript of the assignment, replayed through the real
//! `progjar-chat client` against a real `progjar-chat server`.
//!
//! Each example runs twice, plainly and with `--trace` (the assignment's
//! transcripts were taken from a client that printed those debug lines), and
//! each run is stored as a snapshot in the top-level `snapshots/` directory,
//! named after the assignment's section and example. A snapshot reads like
//! the assignment: the client does not echo what it reads, so the renderer
//! puts each typed line back right after the prompt that read it, as a
//! terminal would show it.
//!
//! Some examples need state the assignment does not show (a logged-in user,
//! a message waiting). Those lines are typed into the same client first and
//! left out of the snapshot, which starts at the example's own first prompt;
//! the snapshot's description lists them.
//!
//! Finally, [`plain_snapshots_show_the_seed_lines`] holds every plain
//! snapshot against the assignment's text, quoted below verbatim, so that the
//! two can be read side by side.

mod support;

use std::path::Path;
use std::time::Duration;

use support::filters::{INSTA_FILTERS, TOKEN};
use support::ServerProcess;

/// How long one client run may take before the test fails.
const TIMEOUT: Duration = Duration::from_secs(20);

/// One example transcript of the assignment.
struct Example {
    /// The snapshot name: section number, command, example number, topic.
    name: &'static str,
    /// The assignment's heading for the example.
    title: &'static str,
    /// Typed before the example begins, and not shown.
    setup: &'static [&'static str],
    /// The example's own typed lines.
    typed: &'static [&'static str],
    /// The assignment's transcript, verbatim.
    seed: &'static str,
    /// The assignment's text doubles every backslash in section 3 (a
    /// formatting artefact: the bytes on the wire have single ones, as in
    /// the other sections).
    seed_doubles_backslashes: bool,
}

const AUTH_I: Example = Example {
    name: "seed_1_auth_i_valid",
    title: "1.d.i: valid username and password",
    setup: &[],
    typed: &["auth messi surabaya"],
    seed: r#"Command :auth messi surabaya
diterima dari server b'{"status": "OK", "tokenid": "4c908ff6-3c15-4052-a98a-095d2454cf9"}\r\n\r\n'
end of string
username messi logged in, token 4c908ff6-3c15-4052-a98a-095d2454cf93
Command 4c908ff6-3c15-4052-a98a-095d2454cf93:"#,
    seed_doubles_backslashes: false,
};

const AUTH_II: Example = Example {
    name: "seed_1_auth_ii_unknown_user",
    title: "1.d.ii: unknown username",
    setup: &[],
    typed: &["auth pogba surabaya"],
    seed: r#"Command :auth pogba surabaya
diterima dari server b'{"status": "ERROR", "message": "User Tidak Ada"}\r\n\r\n'
end of string
Error, User Tidak Ada
Command :"#,
    seed_doubles_backslashes: false,
};

const AUTH_III: Example = Example {
    name: "seed_1_auth_iii_wrong_password",
    title: "1.d.iii: valid username, wrong password",
    setup: &[],
    typed: &["auth messi jakarta"],
    seed: r#"Command :auth messi jakarta
diterima dari server b'{"status": "ERROR", "message": "Password Salah"}\r\n\r\n'
end of string
Error, Password Salah
Command :"#,
    seed_doubles_backslashes: false,
};

const AUTH_IV: Example = Example {
    name: "seed_1_auth_iv_missing_parameter",
    title: "1.d.iv: command without all its parameters",
    setup: &[],
    typed: &["auth messi"],
    seed: r#"Command :auth messi
-Maaf, command tidak benar
Command :"#,
    seed_doubles_backslashes: false,
};

const SEND_I: Example = Example {
    name: "seed_2_send_i_valid",
    title: "2.d.i: valid recipient and a message",
    setup: &["auth messi surabaya"],
    typed: &["send henderson hallo"],
    seed: r#"Command ed38ea1e-8eda-4ba3-8bc6-747a09223390:send henderson hallo
send ed38ea1e-8eda-4ba3-8bc6-747a09223390 henderson hallo

diterima dari server b'{"status": "OK", "message": "Message Sent"}\r\n\r\n'
end of string
message sent to henderson
Command ed38ea1e-8eda-4ba3-8bc6-747a09223390:"#,
    seed_doubles_backslashes: false,
};

const SEND_II: Example = Example {
    name: "seed_2_send_ii_unknown_user",
    title: "2.d.ii: unknown recipient",
    setup: &["auth messi surabaya"],
    typed: &["send pogba hallo"],
    seed: r#"Command ed38ea1e-8eda-4ba3-8bc6-747a09223390:send pogba hallo
send ed38ea1e-8eda-4ba3-8bc6-747a09223390 pogba hallo

diterima dari server b'{"status": "ERROR", "message": "User Tidak Ditemukan"}\r\n\r\n'
end of string
Error, User Tidak Ditemukan
Command ed38ea1e-8eda-4ba3-8bc6-747a09223390:"#,
    seed_doubles_backslashes: false,
};

const SEND_III: Example = Example {
    name: "seed_2_send_iii_missing_parameter",
    title: "2.d.iii: command without all its parameters",
    setup: &["auth messi surabaya"],
    typed: &["send"],
    seed: r#"Command ed38ea1e-8eda-4ba3-8bc6-747a09223390:send
-Maaf, command tidak benar
Command ed38ea1e-8eda-4ba3-8bc6-747a09223390:"#,
    seed_doubles_backslashes: false,
};

const SEND_IV: Example = Example {
    name: "seed_2_send_iv_not_logged_in",
    title: "2.d.iv: sending without logging in",
    setup: &[],
    typed: &["send messi hallo"],
    seed: r#"Command :send messi hallo
Error, not authorized
Command :"#,
    seed_doubles_backslashes: false,
};

const INBOX_I: Example = Example {
    name: "seed_3_inbox_i_messages",
    title: "3.d (first): messages from another user",
    setup: &["auth messi surabaya", "send lineker halo", "auth lineker surabaya"],
    typed: &["inbox"],
    seed: r#"Command 31cf21da-996e-45e5-b65a-f265d588ad74:inbox
diterima dari server b'{"status": "OK", "messages": {"messi": [{"msg_from": "Lionel Mes'
diterima dari server b'si", "msg_to": "Gary Lineker", "msg": "  halo \\r\\n"}]}}\\r\\n\\r\\n'
end of string
{"messi": [{"msg_from": "Lionel Messi", "msg_to": "Gary Lineker", "msg": "  halo \\r\\n"}]}
Command 31cf21da-996e-45e5-b65a-f265d588ad74:"#,
    seed_doubles_backslashes: true,
};

const INBOX_II: Example = Example {
    name: "seed_3_inbox_ii_empty",
    title: "3.d (second): no messages",
    setup: &["auth henderson surabaya"],
    typed: &["inbox"],
    seed: r#"Command d11cb77b-3c8c-4453-8acf-77c2d764a1c8:inbox
diterima dari server b'{"status": "OK", "messages": {}}\\r\\n\\r\\n'
end of string
{}
Command d11cb77b-3c8c-4453-8acf-77c2d764a1c8:"#,
    seed_doubles_backslashes: true,
};

const INBOX_III: Example = Example {
    name: "seed_3_inbox_iii_not_logged_in",
    title: "3.d (third): inbox without logging in",
    setup: &[],
    typed: &["inbox"],
    seed: r#"Command :inbox
Error, not authorized
Command :"#,
    seed_doubles_backslashes: true,
};

const LIST_I: Example = Example {
    name: "seed_4_list_i_online",
    title: "4.d (first): the users logged in",
    setup: &["auth messi surabaya", "auth henderson surabaya"],
    typed: &["list"],
    seed: r#"Command c396ebce-ab2d-4fb4-8148-4853e9fa3c51:list
diterima dari server b'{"status": "OK", "messages": ["messi - Lionel Messi", "henderson"
diterima dari server b' - Jordan Henderson"]}\r\n\r\n'
end of string
["messi - Lionel Messi", "henderson - Jordan Henderson"]
Command c396ebce-ab2d-4fb4-8148-4853e9fa3c51:"#,
    seed_doubles_backslashes: false,
};

const LIST_II: Example = Example {
    name: "seed_4_list_ii_not_logged_in",
    title: "4.d (second): list without logging in",
    setup: &[],
    typed: &["list"],
    seed: r#"Command :list
Error, not authorized
Command :"#,
    seed_doubles_backslashes: false,
};

const LOGOUT_I: Example = Example {
    name: "seed_5_logout_i_valid",
    title: "5.d (first): logging out",
    setup: &["auth messi surabaya"],
    typed: &["logout"],
    seed: r#"Command 96010646-d351-4e7a-9025-4f45fbb6717b:logout
diterima dari server b'{"status": "OK", "messages": "Anda berhasil logout!"}\r\n\r\n'
end of string
"Anda berhasil logout!"
Command :█"#,
    seed_doubles_backslashes: false,
};

const LOGOUT_II: Example = Example {
    name: "seed_5_logout_ii_not_logged_in",
    title: "5.d (second): logout without logging in",
    setup: &[],
    typed: &["logout"],
    seed: r#"Command :logout
Error, not authorized
Command :█"#,
    seed_doubles_backslashes: false,
};

/// Every example, in the assignment's order.
const EXAMPLES: [&Example; 15] = [
    &AUTH_I, &AUTH_II, &AUTH_III, &AUTH_IV, &SEND_I, &SEND_II, &SEND_III, &SEND_IV, &INBOX_I,
    &INBOX_II, &INBOX_III, &LIST_I, &LIST_II, &LOGOUT_I, &LOGOUT_II,
];

/// A `progjar-chat client` command connecting to `addr`.
fn client(addr: &str) -> assert_cmd::Command {
    let mut command = assert_cmd::Command::cargo_bin("progjar-chat").expect("the binary is built");
    command.args(["client", "--connect", addr]).env("RUST_LOG", "warn").timeout(TIMEOUT);
    command
}

/// Types `lines` into a client against a fresh server and returns its
/// stdout, checking that it ended cleanly.
fn run_client(trace: bool, lines: &[&str]) -> String {
    let server = ServerProcess::builtin();
    let mut command = client(&server.addr.to_string());
    if trace {
        command.arg("--trace");
    }
    let input: String = lines.iter().map(|line| format!("{line}\n")).collect();
    let output = command.write_stdin(input).output().expect("run the client");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "client failed: {:?}\n{stderr}", output.status);
    assert!(stderr.is_empty(), "client wrote to stderr:\n{stderr}");
    String::from_utf8(output.stdout).expect("client output is UTF-8")
}

/// The length of the prompt at the start of `line`, if it starts with one:
/// `Command :` or `Command TOKEN:`.
fn prompt_len(line: &str) -> Option<usize> {
    let token = line.strip_prefix("Command ")?;
    let colon = token.find(':')?;
    let is_token = token[..colon].chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    is_token.then_some("Command ".len() + colon + 1)
}

/// Renders a client's stdout as a terminal shows the session: the typed
/// line `i` right after the `i`-th prompt, and `\r\n` (the end of the echoed
/// `send` request in trace mode) as a plain line end. Starts at the prompt
/// that read `typed[from]`.
fn render(stdout: &str, typed: &[&str], from: usize) -> String {
    let stdout = stdout.replace("\r\n", "\n");
    let mut out = String::new();
    let mut start = None;
    let mut prompts = 0;
    for line in stdout.split_inclusive('\n') {
        let Some(len) = prompt_len(line) else {
            out.push_str(line);
            continue;
        };
        if prompts == from {
            start = Some(out.len());
        }
        out.push_str(&line[..len]);
        if let Some(typed) = typed.get(prompts) {
            out.push_str(typed);
            out.push('\n');
        }
        out.push_str(&line[len..]);
        prompts += 1;
    }
    assert_eq!(
        prompts,
        typed.len() + 1,
        "one prompt per typed line plus one at the end:\n{stdout}"
    );
    out.split_off(start.expect("the example's first prompt"))
}

/// Snapshots one run of an example.
fn assert_transcript(example: &Example, trace: bool) {
    let lines: Vec<&str> = example.setup.iter().chain(example.typed).copied().collect();
    let stdout = run_client(trace, &lines);
    let transcript = render(&stdout, &lines, example.setup.len());
    let (name, mode) = match trace {
        true => (format!("{}_trace", example.name), "--trace"),
        false => (example.name.to_owned(), "plain"),
    };
    let setup = match example.setup {
        [] => String::new(),
        setup => format!("; typed first, not shown: {}", setup.join(" / ")),
    };
    insta::with_settings!({
        snapshot_path => "../snapshots",
        prepend_module_to_snapshot => false,
        omit_expression => true,
        description => format!("Assignment example {} ({mode}){setup}", example.title),
        filters => INSTA_FILTERS.iter().copied(),
    }, {
        insta::assert_snapshot!(name, transcript);
    });
}

fn check(example: &Example) {
    assert_transcript(example, false);
    assert_transcript(example, true);
}

#[test]
fn seed_1_auth_i_valid() {
    check(&AUTH_I);
}

#[test]
fn seed_1_auth_ii_unknown_user() {
    check(&AUTH_II);
}

#[test]
fn seed_1_auth_iii_wrong_password() {
    check(&AUTH_III);
}

#[test]
fn seed_1_auth_iv_missing_parameter() {
    check(&AUTH_IV);
}

#[test]
fn seed_2_send_i_valid() {
    check(&SEND_I);
}

#[test]
fn seed_2_send_ii_unknown_user() {
    check(&SEND_II);
}

#[test]
fn seed_2_send_iii_missing_parameter() {
    check(&SEND_III);
}

#[test]
fn seed_2_send_iv_not_logged_in() {
    check(&SEND_IV);
}

#[test]
fn seed_3_inbox_i_messages() {
    check(&INBOX_I);
}

#[test]
fn seed_3_inbox_ii_empty() {
    check(&INBOX_II);
}

#[test]
fn seed_3_inbox_iii_not_logged_in() {
    check(&INBOX_III);
}

#[test]
fn seed_4_list_i_online() {
    check(&LIST_I);
}

#[test]
fn seed_4_list_ii_not_logged_in() {
    check(&LIST_II);
}

#[test]
fn seed_5_logout_i_valid() {
    check(&LOGOUT_I);
}

#[test]
fn seed_5_logout_ii_not_logged_in() {
    check(&LOGOUT_II);
}

/// Replaces every UUID-shaped run in the assignment's text with [`TOKEN`],
/// as the first snapshot filter does. The assignment quotes whole tokens
/// only outside the debug lines, so this is all its plain lines need.
fn redact_seed_tokens(text: &str) -> String {
    const SHAPE: &[u8; 36] = b"xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
    let fits = |window: &[u8]| {
        window.iter().zip(SHAPE).all(|(&b, &shape)| match shape {
            b'-' => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
    };
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut at = 0;
    while at + SHAPE.len() <= bytes.len() {
        if fits(&bytes[at..at + SHAPE.len()]) {
            out.push_str(&text[copied..at]);
            out.push_str(TOKEN);
            at += SHAPE.len();
            copied = at;
        } else {
            at += 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// The lines of the assignment's transcript that a plain (untraced) client
/// prints: without the debug lines (`diterima dari server …`, `end of
/// string`, the echoed `send` request and the empty line its `\r\n` makes),
/// without the terminal cursor `█` that ends section 5, with section 3's
/// doubled backslashes undone and tokens redacted. Trailing spaces are
/// dropped, since the assignment's text lost them (the client prints
/// `username messi logged in, token TOKEN ` with one).
fn seed_plain_lines(example: &Example) -> Vec<String> {
    let seed = match example.seed_doubles_backslashes {
        true => example.seed.replace(r"\\", r"\"),
        false => example.seed.to_owned(),
    };
    let seed = redact_seed_tokens(&seed.replace('█', ""));
    let mut lines = Vec::new();
    let mut after_echo = false;
    for line in seed.lines() {
        let echo_end = std::mem::take(&mut after_echo) && line.is_empty();
        if line.starts_with("send ") {
            after_echo = true;
        } else if !(echo_end
            || line.starts_with("diterima dari server ")
            || line == "end of string")
        {
            lines.push(line.trim_end().to_owned());
        }
    }
    lines
}

#[test]
fn plain_snapshots_show_the_seed_lines() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots");
    for example in EXAMPLES {
        let path = dir.join(format!("{}.snap", example.name));
        let snapshot = insta::Snapshot::from_file(&path)
            .unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
        let text = snapshot.contents().as_text().expect("a text snapshot").to_string();
        let snapshot_lines: Vec<&str> = text.lines().map(str::trim_end).collect();
        assert_eq!(snapshot_lines, seed_plain_lines(example), "{}", example.name);
    }
}

#[test]
fn seed_lines_are_normalised_as_documented() {
    assert_eq!(
        seed_plain_lines(&SEND_I),
        ["Command [TOKEN]:send henderson hallo", "message sent to henderson", "Command [TOKEN]:"]
    );
    assert_eq!(
        seed_plain_lines(&INBOX_I)[1],
        r#"{"messi": [{"msg_from": "Lionel Messi", "msg_to": "Gary Lineker", "msg": "  halo \r\n"}]}"#
    );
    assert_eq!(seed_plain_lines(&LOGOUT_II)[2], "Command :");
    assert_eq!(redact_seed_tokens("a 4c908ff6-3c15-4052-a98a-095d2454cf93:"), "a [TOKEN]:");
    assert_eq!(
        redact_seed_tokens("4c908ff6-3c15-4052-a98a-095d2454cf9"),
        "4c908ff6-3c15-4052-a98a-095d2454cf9"
    );
}

#[test]
fn render_puts_typed_lines_after_their_prompts() {
    let stdout = "Command :username a logged in, token t \nCommand 0a-1:Error, x\nCommand 0a-1:\n";
    assert_eq!(
        render(stdout, &["auth a b", "inbox"], 0),
        "Command :auth a b\nusername a logged in, token t \nCommand 0a-1:inbox\nError, x\nCommand 0a-1:\n"
    );
    assert_eq!(
        render(stdout, &["auth a b", "inbox"], 1),
        "Command 0a-1:inbox\nError, x\nCommand 0a-1:\n"
    );
    assert_eq!(
        render("Command :send 1 x  y \r\n\nok\nCommand :\n", &["send x y"], 0),
        "Command :send x y\nsend 1 x  y \n\nok\nCommand :\n"
    );
}

#[test]
fn end_of_input_prints_a_newline_and_exits_0() {
    let server = ServerProcess::builtin();
    let output = client(&server.addr.to_string()).write_stdin("").output().expect("run the client");
    assert!(output.status.success(), "{:?}", output.status);
    assert_eq!(String::from_utf8_lossy(&output.stdout), "Command :\n");
    assert!(output.stderr.is_empty(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn a_last_line_without_newline_is_still_handled() {
    let server = ServerProcess::builtin();
    let output =
        client(&server.addr.to_string()).write_stdin("list").output().expect("run the client");
    assert!(output.status.success(), "{:?}", output.status);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "Command :Error, not authorized\nCommand :\n"
    );
}

/// A port on which nothing listens: bound once by the OS, then released.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").to_string()
}

#[test]
fn unreachable_server_is_one_error_line_and_exit_1() {
    let addr = closed_port();
    let output =
        client(&addr).write_stdin("auth messi surabaya\n").output().expect("run the client");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(output.stdout.is_empty(), "{}", String::from_utf8_lossy(&output.stdout));
    assert!(
        stderr.starts_with(&format!("progjar-chat: error: cannot connect to {addr}: ")),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A one-connection server that reads one request and answers `reply`
/// (closing the connection right after, or at once when `reply` is empty).
fn fake_server(reply: &'static [u8]) -> (String, std::thread::JoinHandle<()>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local_addr").to_string();
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let mut reader = BufReader::new(stream);
        let mut request = Vec::new();
        reader.read_until(b'\n', &mut request).expect("read a request");
        reader.get_mut().write_all(reply).expect("write the reply");
    });
    (addr, handle)
}

#[test]
fn server_closing_mid_session_is_an_error_and_exit_1() {
    let (addr, server) = fake_server(b"");
    let output = client(&addr).write_stdin("auth messi surabaya\ninbox\n").output().expect("run");
    server.join().expect("fake server");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr, "progjar-chat: error: the server closed the connection\n");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "Command :");
}

#[test]
fn a_reply_that_is_not_json_is_an_error_line() {
    let (addr, server) = fake_server(b"<html>\r\n\r\n");
    let output = client(&addr).write_stdin("auth messi surabaya\n").output().expect("run");
    server.join().expect("fake server");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{:?}", output.status);
    assert!(
        stdout.starts_with("Command :Error, malformed reply from server: not JSON ("),
        "{stdout}"
    );
    assert!(stdout.ends_with(")\nCommand :\n"), "{stdout}");
    assert!(!String::from_utf8_lossy(&output.stderr).contains("panicked"));
}
