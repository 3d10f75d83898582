//! `progjar-chat conform server` against servers that are right and
//! servers that are wrong on purpose.
//!
//! The reference server passes every case, spawned afresh per case and
//! on one long-running instance (twice in a row, with mail left behind).
//! The Python port of the original passes every MUST case and fails
//! exactly the SHOULD cases where the spec decided against the original.
//! Each deliberately broken Python server fails exactly the cases its
//! breakage touches, with the verdict the spec's grading gives.

mod support;

use std::time::{Duration, Instant};

use support::conform::{
    bin, conform, conform_within, have_python, python_server, verdicts, without_list,
};
use support::{logged_out, message_sent, token_from_auth_reply, ServerProcess};

#[test]
fn the_reference_server_passes_every_case_when_spawned() {
    let cmd = format!("{} server --listen 127.0.0.1:{{port}}", bin());
    let run = conform(&["server", "--spawn", &cmd]);
    assert_eq!(run.code, 0, "{}", run.show());
    assert!(run.not_ok().is_empty(), "{}", run.show());
    assert!(run.verdicts().len() >= 34, "{}", run.show());
    assert!(run.stdout.contains("Result: CONFORMS: "), "{}", run.show());
}

/// Leaves a message for `to` on a running server, from messi.
fn leave_mail(server: &ServerProcess, to: &str) {
    let mut s = server.connect();
    let token = token_from_auth_reply(&s.ask(b"auth messi surabaya \r\n"));
    assert_eq!(s.ask(format!("send {token} {to}  left over \r\n").as_bytes()), message_sent());
    assert_eq!(s.ask(format!("logout {token} \r\n").as_bytes()), logged_out());
}

#[test]
fn connect_mode_starts_every_case_from_a_clean_state() {
    let server = ServerProcess::builtin();
    let addr = server.addr.to_string();
    leave_mail(&server, "henderson");
    leave_mail(&server, "lineker");
    for round in 1..=2 {
        let run = conform(&["server", "--connect", &addr]);
        assert_eq!(run.code, 0, "round {round}: {}", run.show());
        assert!(run.not_ok().is_empty(), "round {round}: {}", run.show());
        // The setup is in the transcript, marked as such.
        let transcript = run.case("INBOX-2.1")["transcript"].as_array().unwrap().clone();
        assert!(
            transcript
                .iter()
                .any(|e| e["setup"] == true && e["text"].as_str().unwrap().starts_with("inbox ")),
            "round {round}: {transcript:?}"
        );
        assert!(transcript.iter().any(|e| e["setup"].is_null() && e["tag"] == "C1 >"));
    }
}

#[test]
fn the_original_passes_every_must_case_and_fails_where_the_spec_decided_against_it() {
    if !have_python() {
        return;
    }
    let run = conform(&["server", "--spawn", &python_server(&["original"])]);
    assert_eq!(
        run.not_ok(),
        verdicts(&[
            ("TRANS-3.1", "FAILED"),
            ("TRANS-3.2", "FAILED"),
            ("TRANS-6.1", "FAILED"),
            ("INBOX-3.1", "NON-STRICT"),
            ("INBOX-3.2", "NON-STRICT"),
            ("INBOX-4.2", "NON-STRICT")
        ]),
        "{}",
        run.show()
    );
    assert_eq!(run.code, 0, "only SHOULD cases fail: {}", run.show());
    assert!(
        run.message("TRANS-3.1").contains("answered 1 of the 2 requests"),
        "{}",
        run.message("TRANS-3.1")
    );
    assert!(
        run.message("TRANS-6.1").contains("closed the connection"),
        "{}",
        run.message("TRANS-6.1")
    );
    assert!(run.message("INBOX-3.1").contains("nothing in it"), "{}", run.message("INBOX-3.1"));
}

/// Runs the broken Python server on a few cases.
fn broken(breaks: &[&str], cases: &str, extra: &[&str]) -> Option<support::conform::Run> {
    if !have_python() {
        return None;
    }
    let cmd = python_server(breaks);
    let mut args = vec!["server", "--spawn", &cmd, "--case", cases];
    args.extend(extra);
    Some(conform(&args))
}

#[test]
fn a_wrong_error_text_is_non_strict_and_conforms_only_except_wording() {
    let Some(run) = broken(&["error-text"], "AUTH-2.1,AUTH-3.1,TRANS-2.1", &[]) else { return };
    // The text's own rule is charged; TRANS-2.1 reads the same reply for
    // its bytes and does not count the wording again.
    assert_eq!(run.not_ok(), verdicts(&[("AUTH-2.1", "NON-STRICT")]), "{}", run.show());
    assert_eq!(run.code, 1, "a MUST text the seed shows is worded otherwise: {}", run.show());
    assert!(run.stdout.contains("Result: CONFORMS EXCEPT WORDING"), "{}", run.show());
    assert_eq!(run.report()["summary"]["result"], "conforms-except-wording");
    let accepted =
        broken(&["error-text"], "AUTH-2.1,AUTH-3.1,TRANS-2.1", &["--accept-wording"]).unwrap();
    assert_eq!(accepted.code, 0, "{}", accepted.show());
    assert!(accepted.stdout.contains("CONFORMS EXCEPT WORDING"), "{}", accepted.show());
    assert_eq!(
        run.message("AUTH-2.1"),
        r#".message: message text differs: expected "User Tidak Ada", got "Unknown user""#
    );
}

#[test]
fn a_reply_without_the_blank_line_fails() {
    let Some(run) = broken(&["no-terminator"], "AUTH-1.1,TRANS-2.1", &[]) else { return };
    // Charged to TRANS-2 only: AUTH-1.1 reads the same replies and checks
    // the rest of them.
    assert_eq!(run.not_ok(), verdicts(&[("TRANS-2.1", "FAILED")]), "{}", run.show());
    assert_eq!(run.code, 1);
    assert!(
        run.message("TRANS-2.1").contains(r#"does not end with \r\n\r\n: it ends with "\r\n""#),
        "{}",
        run.show()
    );
    let transcript = run.case("AUTH-1.1")["transcript"].to_string();
    assert!(transcript.contains("counted under TRANS-2"), "noted in AUTH-1.1: {transcript}");
}

#[test]
fn two_pipelined_requests_answered_as_one_fail_the_pipelining_rule_only() {
    let Some(run) =
        broken(&["merge-pipelined"], "TRANS-3,TRANS-4.1,AUTH-1.1,SEND-4.1", &["--timeout", "0.5"])
    else {
        return;
    };
    assert_eq!(
        run.not_ok(),
        verdicts(&[("TRANS-3.1", "FAILED"), ("TRANS-3.2", "FAILED")]),
        "{}",
        run.show()
    );
    assert_eq!(run.code, 0, "TRANS-3 is a SHOULD rule: {}", run.show());
    assert!(
        run.message("TRANS-3.1").contains("the last write held 2 requests"),
        "{}",
        run.message("TRANS-3.1")
    );
}

#[test]
fn closing_after_an_error_fails() {
    let Some(run) = broken(&["close-after-error"], "TRANS-5.1,TRANS-6.1,AUTH-2.1,SEND-2.1", &[])
    else {
        return;
    };
    assert_eq!(
        run.not_ok(),
        verdicts(&[("TRANS-5.1", "FAILED"), ("TRANS-6.1", "BLOCKED")]),
        "{}",
        run.show()
    );
    assert_eq!(run.code, 0, "TRANS-5 is SHOULD, and no MUST case needs a second request");
    assert!(
        run.message("TRANS-5.1")
            .contains("closed the connection C1 instead of replying, right after an error reply"),
        "{}",
        run.show()
    );
    assert_eq!(run.case("TRANS-6.1")["blocked_by"], "TRANS-5");
}

#[test]
fn compact_json_is_non_strict_where_bytes_are_compared() {
    let Some(run) = broken(&["compact-json"], "JSON-1.1,TRANS-2.1,AUTH-1.1,LIST-1.1", &[]) else {
        return;
    };
    assert_eq!(
        run.not_ok(),
        verdicts(&[("JSON-1.1", "NON-STRICT"), ("TRANS-2.1", "NON-STRICT")]),
        "{}",
        run.show()
    );
    assert_eq!(run.code, 0);
    assert!(run.message("JSON-1.1").contains("separators without spaces"), "{}", run.show());
}

#[test]
fn unescaped_non_ascii_is_non_strict() {
    let Some(run) = broken(&["raw-unicode"], "JSON-2.1,JSON-1.1,SEND-4.1", &[]) else { return };
    assert_eq!(run.not_ok(), verdicts(&[("JSON-2.1", "NON-STRICT")]), "{}", run.show());
    assert!(run.message("JSON-2.1").contains("raw UTF-8"), "{}", run.show());
    let strict = broken(&["raw-unicode"], "JSON-2.1", &["--strict"]).unwrap();
    assert_eq!(
        strict.code,
        1,
        "--strict counts NON-STRICT as FAILED and SHOULD as MUST: {}",
        strict.show()
    );
}

#[test]
fn a_server_without_list_is_reported_once_as_not_implemented() {
    let Some(run) = broken(&["no-list"], "LIST-1,LIST-2.1,AUTH-1.1,LOGOUT-1.1", &[]) else {
        return;
    };
    assert_eq!(run.not_ok(), without_list(), "{}", run.show());
    assert_eq!(run.code, 1, "LIST-1 is MUST");
    assert!(run.message("LIST-1.1").contains("`list`"), "{}", run.show());
    let missing = &run.report()["not_implemented"];
    assert_eq!(missing.as_array().unwrap().len(), 1, "{missing}");
    assert_eq!(missing[0]["command"], "list");
    // Said once, in the rules section, not once per case.
    let lines = run.stdout.lines().filter(|l| l.starts_with("  `list` not implemented:")).count();
    assert_eq!(lines, 1, "{}", run.show());
}

#[test]
fn a_server_that_never_answers_fails_and_does_not_hang() {
    let started = Instant::now();
    let Some(run) = broken(&["silent"], "AUTH-1.1,AUTH-2.1", &["--timeout", "0.3"]) else { return };
    // A live server's silence is FAILED, wherever it happens (§1).
    assert_eq!(
        run.not_ok(),
        verdicts(&[("AUTH-1.1", "FAILED"), ("AUTH-2.1", "FAILED")]),
        "{}",
        run.show()
    );
    assert_eq!(run.code, 1);
    assert!(
        run.message("AUTH-1.1").starts_with("no reply within 0.3 s (--timeout sets the wait)"),
        "{}",
        run.show()
    );
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[test]
fn a_reply_that_is_not_json_fails_trans_2_with_a_hint_and_blocks_the_rest() {
    let Some(run) = broken(&["python-repr"], "AUTH-1.1,TRANS-2.1", &[]) else { return };
    assert_eq!(
        run.not_ok(),
        verdicts(&[("TRANS-2.1", "FAILED"), ("AUTH-1.1", "BLOCKED")]),
        "{}",
        run.show()
    );
    assert!(run.message("TRANS-2.1").contains("not JSON"), "{}", run.show());
    assert!(run.message("TRANS-2.1").contains("json.dumps"), "{}", run.show());
    assert_eq!(run.case("AUTH-1.1")["blocked_by"], "TRANS-2");
}

#[test]
fn a_server_that_crashes_is_an_error_with_its_last_words() {
    let Some(run) = broken(&["crash"], "AUTH-1.1,TRANS-2.1", &[]) else { return };
    assert_eq!(
        run.not_ok(),
        verdicts(&[("AUTH-1.1", "ERROR"), ("TRANS-2.1", "ERROR")]),
        "{}",
        run.show()
    );
    assert_eq!(run.message("AUTH-1.1"), "the server process exited with status 1");
    let transcript = run.case("AUTH-1.1")["transcript"].to_string();
    assert!(
        transcript.contains("pretending to crash"),
        "standard error is in the transcript: {transcript}"
    );
}

#[test]
fn a_server_that_serves_one_connection_at_a_time_fails_the_two_connection_cases() {
    let Some(run) =
        broken(&["single-threaded"], "TRANS-8.1,SEND-3.1,AUTH-1.1", &["--timeout", "0.5"])
    else {
        return;
    };
    assert_eq!(
        run.not_ok(),
        verdicts(&[("TRANS-8.1", "FAILED"), ("SEND-3.1", "BLOCKED")]),
        "{}",
        run.show()
    );
    assert!(
        run.message("TRANS-8.1").contains("serve only one connection at a time"),
        "{}",
        run.show()
    );
    assert_eq!(run.case("SEND-3.1")["blocked_by"], "TRANS-8");
}

#[test]
fn a_fixed_port_is_reused_case_after_case() {
    if !have_python() {
        return;
    }
    let port = support::conform::free_port().to_string();
    let cmd = format!("python3 {} --port {port}", support::conform::fixture("chat_server.py"));
    let run = conform(&[
        "server",
        "--spawn",
        &cmd,
        "--port",
        &port,
        "--case",
        "AUTH-1.1,AUTH-2.1,AUTH-3.1",
    ]);
    assert_eq!(run.code, 0, "{}", run.show());
    assert_eq!(run.verdicts().len(), 3);
    assert!(run.not_ok().is_empty(), "{}", run.show());
}

#[test]
fn servers_that_never_listen_or_exit_at_once_stop_the_run_before_the_cases() {
    // Never the default port 8889: someone may be running a server there.
    // (More in conform_edges.rs: wrong ports, typos, crashes on start.)
    let port = support::conform::free_port().to_string();
    let run = conform_within(
        &[
            "server",
            "--spawn",
            "sleep 30",
            "--port",
            &port,
            "--startup-timeout",
            "0.5",
            "--case",
            "AUTH-1.1",
        ],
        Duration::from_secs(20),
    );
    assert_eq!(run.code, 2, "{}", run.show());
    assert!(run.json.is_none(), "{}", run.show());
    assert!(run.stderr.contains("nothing accepted connections"), "{}", run.show());
    let run = conform(&[
        "server",
        "--spawn",
        "echo starting >&2; exit 7",
        "--port",
        &port,
        "--case",
        "AUTH-1.1",
    ]);
    assert_eq!(run.code, 2, "{}", run.show());
    assert!(
        run.stderr.contains("exited with status 7 before it accepted connections"),
        "{}",
        run.show()
    );
    assert!(run.stderr.contains("stderr | starting"), "{}", run.show());
}

/// Whether a process whose command line contains `marker` is running.
#[cfg(target_os = "linux")]
fn running(marker: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " ").contains(marker))
            .unwrap_or(false)
    })
}

#[cfg(target_os = "linux")]
#[test]
fn the_whole_process_group_is_killed_after_each_case() {
    // The shell starts the reference server and a stray child; both must go.
    let marker = format!("{}", 31_000 + std::process::id() % 1000);
    let cmd = format!("sleep {marker} & {} server --listen 127.0.0.1:{{port}}", bin());
    let run = conform(&["server", "--spawn", &cmd, "--case", "AUTH-1.1"]);
    assert_eq!(run.code, 0, "{}", run.show());
    std::thread::sleep(Duration::from_millis(200));
    assert!(!running(&format!("sleep {marker}")), "the stray `sleep {marker}` survived the case");
}
