//! `progjar-chat client` at a real terminal: line editing, history, Ctrl-R,
//! Ctrl-C and Ctrl-D, driven the way a person would, through tmux.
//!
//! Each test runs the client in a detached tmux session on a private tmux
//! socket, against a real `progjar-chat server`, types with `send-keys` and
//! reads the screen with `capture-pane`. What the server did is checked too:
//! a recalled line must reach it, so its effect (a message delivered twice)
//! is read back with a second, piped client.
//!
//! Without tmux these tests print a notice and pass: install tmux (Debian:
//! `apt-get install tmux`) to run them. Piped input is covered, unchanged, by
//! `client_transcripts.rs` and `spec_examples.rs`.

mod support;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::ServerProcess;

/// How long the screen may take to show what a step waits for.
const TIMEOUT: Duration = Duration::from_secs(15);

const BIN: &str = env!("CARGO_BIN_EXE_progjar-chat");

/// The reply to `list` when only messi is logged in.
const LIST_MESSI: &str = r#"["messi - Lionel Messi"]"#;

fn tmux_available() -> bool {
    let found = Command::new("tmux")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        // Past the test harness's capture, so that the notice shows in a
        // passing run too.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: tmux is not installed; the client's terminal tests did not run"
        );
    }
    found
}

/// A client running in a detached 120x30 tmux pane, on a tmux server of its
/// own (killed, and its socket removed, on drop).
struct Pane {
    socket: PathBuf,
}

impl Pane {
    /// Starts `progjar-chat client ARGS` in a new pane. When the client ends,
    /// the pane shows `[client exited STATUS]` and stays open.
    fn client(args: &[&str]) -> Self {
        let mut command = shell_quote(BIN) + " client";
        for arg in args {
            command = command + " " + &shell_quote(arg);
        }
        Self::shell(&command)
    }

    /// Runs the shell command `command` in a new pane, as [`Pane::client`]
    /// does.
    fn shell(command: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let socket = std::env::temp_dir().join(format!("progjar-tmux-{}-{n}", std::process::id()));
        let pane = Pane { socket };
        pane.tmux(&["-f", "/dev/null", "new-session", "-d", "-s", "c", "-x", "120", "-y", "30"])
            .unwrap_or_else(|output| panic!("cannot start tmux: {output:?}"));
        // The same terminal type whatever the test runs under (CI has no
        // TERM at all).
        let _ = pane.tmux(&["set-option", "-g", "default-terminal", "screen"]);
        let script = format!("{command}; echo \"[client exited $?]\"; sleep 600");
        pane.tmux(&["respawn-pane", "-k", "-t", "c", &script])
            .unwrap_or_else(|output| panic!("cannot start the client: {output:?}"));
        pane
    }

    fn tmux(&self, args: &[&str]) -> Result<Output, Output> {
        let output = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("run tmux");
        if output.status.success() {
            Ok(output)
        } else {
            Err(output)
        }
    }

    /// Types `text` literally (no key names).
    fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "c", "-l", text]).expect("send-keys");
    }

    /// Presses keys by tmux name: `Enter`, `Up`, `Left`, `BSpace`, `C-r`…
    fn press(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "c"];
        args.extend_from_slice(keys);
        self.tmux(&args).expect("send-keys");
    }

    /// The visible screen, lines the terminal wrapped joined again and
    /// trailing blank lines dropped.
    fn screen(&self) -> String {
        let output = self.tmux(&["capture-pane", "-p", "-J", "-t", "c"]).expect("capture-pane");
        String::from_utf8_lossy(&output.stdout).trim_end().to_owned()
    }

    /// Waits until the screen satisfies `ready`, and returns it.
    fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            if start.elapsed() > TIMEOUT {
                panic!("timed out waiting for {what}; the screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Waits until the screen shows `n` prompts and the cursor sits at the
    /// last one with nothing typed yet, so that keys go to the line editor
    /// and not to a terminal still in cooked mode.
    fn wait_for_prompt(&self, n: usize) -> String {
        self.wait_for(&format!("prompt {n}"), |screen| {
            let last = screen.lines().last().unwrap_or("");
            prompts(screen) == n && last.starts_with("Command ") && last.ends_with(':')
        })
    }

    /// Types a whole command and Enter, then waits for prompt `n`.
    fn command(&self, line: &str, n: usize) -> String {
        self.type_text(line);
        self.press(&["Enter"]);
        self.wait_for_prompt(n)
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
        let _ = std::fs::remove_file(&self.socket);
    }
}

fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// How many prompts the screen shows.
fn prompts(screen: &str) -> usize {
    screen.lines().filter(|line| line.starts_with("Command ")).count()
}

fn last_line(screen: &str) -> &str {
    screen.lines().last().unwrap_or("")
}

/// What a piped client prints for `lines`.
fn piped_client(server: &ServerProcess, lines: &str) -> String {
    let mut child = Command::new(BIN)
        .args(["client", "--connect", &server.addr.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn a piped client");
    child.stdin.take().expect("piped").write_all(lines.as_bytes()).expect("write stdin");
    let output = child.wait_with_output().expect("piped client");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// A server, and a client on a terminal logged in as messi at its second
/// prompt; `None` (after the notice) without tmux.
fn messi_logged_in() -> Option<(ServerProcess, Pane)> {
    if !tmux_available() {
        return None;
    }
    let server = ServerProcess::builtin();
    let pane = Pane::client(&["--connect", &server.addr.to_string()]);
    pane.wait_for_prompt(1);
    pane.command("auth messi surabaya", 2);
    Some((server, pane))
}

#[test]
fn up_recalls_a_line_that_is_sent_again_and_can_be_edited() {
    if !tmux_available() {
        return;
    }
    let server = ServerProcess::builtin();
    let pane = Pane::client(&["--connect", &server.addr.to_string()]);

    // The first prompt, exactly as the plain client prints it.
    let screen = pane.wait_for_prompt(1);
    assert_eq!(screen, "Command :");

    let screen = pane.command("auth messi surabaya", 2);
    assert!(screen.contains("username messi logged in, token "), "{screen}");
    pane.command("send henderson hallo", 3);

    // Up recalls the last line; Enter sends it again.
    pane.press(&["Up"]);
    let screen =
        pane.wait_for("the recalled send", |s| last_line(s).ends_with(":send henderson hallo"));
    assert_eq!(prompts(&screen), 3, "{screen}");
    pane.press(&["Enter"]);
    let screen = pane.wait_for_prompt(4);
    assert_eq!(screen.matches("message sent to henderson").count(), 2, "{screen}");

    // A repeated line is kept once: Up, Up reaches the auth line. Edit it
    // into another user's login: Left over "surabaya", Backspace "messi ".
    pane.press(&["Up", "Up"]);
    pane.wait_for("the recalled auth", |s| last_line(s).ends_with(":auth messi surabaya"));
    pane.press(&["Left"; 8]);
    pane.press(&["BSpace"; 6]);
    pane.type_text("henderson ");
    pane.wait_for("the edited line", |s| last_line(s).ends_with(":auth henderson surabaya"));
    pane.press(&["Enter"]);
    let screen = pane.wait_for_prompt(5);
    assert!(screen.contains("username henderson logged in, token "), "{screen}");

    // Henderson's inbox holds both messages: the recalled line reached the
    // server.
    let screen = pane.command("inbox", 6);
    let inbox = screen.lines().rev().nth(1).expect("the inbox reply");
    assert_eq!(inbox.matches(r#""msg": "  hallo \r\n""#).count(), 2, "{screen}");
    assert!(inbox.starts_with(r#"{"messi": [{"msg_from": "Lionel Messi""#), "{screen}");
}

#[test]
fn ctrl_r_finds_an_earlier_line() {
    let Some((_server, pane)) = messi_logged_in() else { return };
    pane.command("list", 3);
    pane.command("inbox", 4);

    pane.press(&["C-r"]);
    pane.type_text("lis");
    pane.wait_for("the reverse search", |s| last_line(s).contains("`lis': list"));
    pane.press(&["Enter"]);
    let screen = pane.wait_for_prompt(5);
    assert_eq!(screen.matches(LIST_MESSI).count(), 2, "{screen}");
    // The search line is gone: the screen shows the prompt and the line.
    assert!(!screen.contains("reverse-i-search"), "{screen}");
    assert_eq!(screen.lines().filter(|l| l.ends_with(":list")).count(), 2, "{screen}");
}

#[test]
fn ctrl_d_on_an_empty_line_ends_the_client() {
    let Some((_server, pane)) = messi_logged_in() else { return };
    pane.press(&["C-d"]);
    let screen = pane.wait_for("the end", |s| s.contains("[client exited"));
    let lines: Vec<&str> = screen.lines().collect();
    // The last prompt's line is ended, with no blank line after it.
    assert!(lines[lines.len() - 2].starts_with("Command "), "{screen}");
    assert!(lines[lines.len() - 2].ends_with(':'), "{screen}");
    assert_eq!(lines[lines.len() - 1], "[client exited 0]", "{screen}");
}

#[test]
fn ctrl_c_at_the_prompt_ends_the_client_without_sending_the_line() {
    let Some((server, pane)) = messi_logged_in() else { return };
    pane.type_text("send henderson never");
    pane.wait_for("the typed line", |s| last_line(s).ends_with(":send henderson never"));
    pane.press(&["C-c"]);
    let screen = pane.wait_for("the end", |s| s.contains("[client exited"));
    assert_eq!(last_line(&screen), "[client exited 0]", "{screen}");
    assert!(!screen.contains("message sent"), "{screen}");
    drop(pane);
    let piped = piped_client(&server, "auth henderson surabaya\ninbox\n");
    assert!(piped.contains(":{}\nCommand "), "{piped}");
}

/// With stdout redirected the client reads plainly even from a terminal:
/// the file gets exactly what a piped run prints, with no editor escapes.
#[test]
fn redirected_output_keeps_the_plain_client() {
    if !tmux_available() {
        return;
    }
    let server = ServerProcess::builtin();
    let out =
        std::env::temp_dir().join(format!("progjar-client-terminal-{}.txt", std::process::id()));
    let _ = std::fs::remove_file(&out);
    let pane = Pane::shell(&format!(
        "{} client --connect {} > {}",
        shell_quote(BIN),
        shell_quote(&server.addr.to_string()),
        shell_quote(&out.to_string_lossy()),
    ));
    let written = || std::fs::read_to_string(&out).unwrap_or_default();
    let wait_for_prompts = |n: usize| {
        let start = Instant::now();
        while prompts(&written()) < n {
            assert!(start.elapsed() < TIMEOUT, "no prompt {n} in {:?}", written());
            std::thread::sleep(Duration::from_millis(25));
        }
    };
    wait_for_prompts(1);
    pane.type_text("auth messi surabaya");
    pane.press(&["Enter"]);
    wait_for_prompts(2);
    pane.press(&["C-d"]);
    pane.wait_for("the end", |s| s.contains("[client exited 0]"));
    let text = written();
    let _ = std::fs::remove_file(&out);
    assert!(!text.contains('\u{1b}'), "escape sequences in {text:?}");
    // A piped client's output, with its token swapped for this one's.
    let expected = piped_client(&server, "auth messi surabaya\n");
    let token = |s: &str| s.split("token ").nth(1).and_then(|t| t.get(..36)).unwrap().to_owned();
    assert_eq!(text, expected.replace(&token(&expected), &token(&text)));
}
