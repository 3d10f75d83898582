//! `progjar-chat conform client` against clients that are right and
//! clients that are wrong on purpose.
//!
//! The reference client passes every case (through the command line here;
//! `spec_examples` runs it through the library too). The Python port of
//! the original client passes every case, its debug lines set aside. Each
//! deliberately broken Python client fails exactly the cases its breakage
//! touches, with the expected verdict.

mod support;

use support::conform::{bin, conform, have_python, python_client, verdicts};

#[test]
fn the_reference_client_passes_every_case() {
    let run = conform(&["client", "--", bin(), "client", "--connect", "127.0.0.1:{port}"]);
    assert_eq!(run.code, 0, "{}", run.show());
    assert!(run.not_ok().is_empty(), "{}", run.show());
    assert!(run.verdicts().len() >= 10, "{}", run.show());
}

#[test]
fn the_original_client_passes_and_its_debug_lines_are_set_aside() {
    if !have_python() {
        return;
    }
    let argv = python_client(&[]);
    let mut args = vec!["client", "--"];
    args.extend(argv.iter().map(String::as_str));
    let run = conform(&args);
    assert_eq!(run.code, 0, "{}", run.show());
    assert!(run.not_ok().is_empty(), "{}", run.show());
    let transcript = run.case("CLI-7.1")["transcript"].as_array().unwrap().clone();
    let set_aside: Vec<&str> = transcript
        .iter()
        .filter(|e| e["tag"] == "U ·")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(set_aside.iter().any(|t| t.starts_with("diterima dari server b'")), "{set_aside:?}");
    assert!(set_aside.contains(&"end of string"), "{set_aside:?}");
    assert!(
        set_aside.iter().any(|t| t.starts_with("send ") && t.ends_with(r"hallo \r")),
        "{set_aside:?}"
    );
    // The client's own traffic with the server is recorded too.
    assert!(
        transcript.iter().any(|e| e["tag"] == "wire >"
            && e["text"].as_str().unwrap().contains("henderson  hallo \\r\\n")),
        "{transcript:?}"
    );
}

/// Runs the broken Python client on some cases.
fn broken(breaks: &[&str], cases: &str, extra: &[&str]) -> Option<support::conform::Run> {
    if !have_python() {
        return None;
    }
    let argv = python_client(breaks);
    let mut args = vec!["client", "--case", cases];
    args.extend(extra);
    args.push("--");
    args.extend(argv.iter().map(String::as_str));
    Some(conform(&args))
}

#[test]
fn a_client_that_prompts_only_on_a_terminal_fails_cli_1_and_blocks_the_rest() {
    let Some(run) = broken(&["no-prompt"], "CLI-1.1,CLI-3.1", &["--timeout", "0.5"]) else {
        return;
    };
    assert_eq!(
        run.not_ok(),
        verdicts(&[("CLI-1.1", "FAILED"), ("CLI-3.1", "BLOCKED")]),
        "{}",
        run.show()
    );
    assert!(run.message("CLI-1.1").contains("showed no prompt"), "{}", run.show());
    assert_eq!(run.case("CLI-3.1")["blocked_by"], "CLI-1");
    assert_eq!(run.code, 1);
}

#[test]
fn a_client_slower_to_start_than_the_timeout_is_not_failed_for_it() {
    // Its first prompt comes after a second; --timeout is half that. The
    // start-up's wait covers the first prompt (as a server's listening),
    // so that a busy machine's slow starts are never a verdict.
    let Some(run) = broken(&["slow-start"], "CLI-1.1,CLI-3.1", &["--timeout", "0.5"]) else {
        return;
    };
    assert_eq!(run.not_ok(), verdicts(&[]), "{}", run.show());
    assert_eq!(run.code, 0, "{}", run.show());
}

#[test]
fn a_missing_trailing_space_is_non_strict() {
    let Some(run) = broken(&["no-trailing-space"], "CLI-2.1,CLI-3.1", &[]) else { return };
    assert_eq!(run.not_ok(), verdicts(&[("CLI-2.1", "NON-STRICT")]), "{}", run.show());
    assert_eq!(run.code, 0);
    assert!(run.message("CLI-2.1").contains("white space"), "{}", run.show());
}

#[test]
fn printing_python_reprs_fails() {
    let Some(run) = broken(&["repr"], "CLI-7,CLI-8,CLI-9,CLI-10", &[]) else { return };
    assert_eq!(
        run.not_ok(),
        verdicts(&[("CLI-8.1", "FAILED"), ("CLI-9.1", "FAILED"), ("CLI-10.1", "FAILED")]),
        "{}",
        run.show()
    );
    assert!(run.message("CLI-9.1").contains("repr"), "{}", run.show());
    let diff = run.case("CLI-8.1")["diff"].to_string();
    assert!(diff.contains(r#"+ {'messi': "#), "{diff}");
}

#[test]
fn sending_without_a_login_fails() {
    let Some(run) = broken(&["no-auth-check"], "CLI-6,CLI-4", &[]) else { return };
    // One example per command, so each is told apart.
    let failed: Vec<(&str, &str)> =
        ["CLI-6.1", "CLI-6.2", "CLI-6.3", "CLI-6.4"].iter().map(|id| (*id, "FAILED")).collect();
    assert_eq!(run.not_ok(), verdicts(&failed), "{}", run.show());
    let case = run.case("CLI-6.1");
    assert_eq!(case["expected"], "Error, not authorized");
    assert_eq!(case["actual"], "Error, Informasi tidak ditemukan");
}

#[test]
fn a_client_without_debug_lines_passes_too() {
    let Some(run) = broken(&["quiet"], "CLI-7.1,CLI-8.1", &[]) else { return };
    assert_eq!(run.code, 0, "{}", run.show());
    assert!(run.not_ok().is_empty(), "{}", run.show());
}

#[test]
fn a_client_with_a_hard_coded_port_gets_its_server_there() {
    if !have_python() {
        return;
    }
    let port = support::conform::free_port().to_string();
    let run = support::conform::conform_fixed_port_client(&port, "CLI-2.1,CLI-3.1", &[]);
    assert_eq!(run.code, 0, "{}", run.show());
    assert_eq!(run.verdicts().len(), 2);
    assert!(run.not_ok().is_empty(), "{}", run.show());
}

#[test]
fn a_client_that_dies_is_an_error() {
    // Never the default port 8889: someone may be running a server there.
    let port = support::conform::free_port().to_string();
    let run = conform(&[
        "client",
        "--port",
        &port,
        "--case",
        "CLI-3.1",
        "--",
        "sh",
        "-c",
        "printf 'Command :'; echo 'Traceback: boom' >&2; exit 3",
    ]);
    assert_eq!(run.not_ok(), verdicts(&[("CLI-3.1", "ERROR")]), "{}", run.show());
    assert!(run.message("CLI-3.1").contains("exited with status 3"), "{}", run.show());
    assert!(
        run.case("CLI-3.1")["transcript"].to_string().contains("Traceback: boom"),
        "{}",
        run.show()
    );
    assert_eq!(run.code, 1);
}
