//! The runner's command line: listing and selecting cases, usage errors,
//! exit codes, `--strict`, `--expect`, the reports and the rerun command.

mod support;

use std::process::Command;

use serde_json::Value;
use support::conform::{
    bin, conform, have_python, own_networks, python_server, temp_path, verdicts, without_list,
};
use support::ServerProcess;

fn reference_spawn() -> String {
    format!("{} server --listen 127.0.0.1:{{port}}", bin())
}

/// `progjar-chat ARGS` without the harness's `--json`.
fn plain(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin()).args(args).output().expect("run progjar-chat");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn list_and_dump_cases() {
    let (code, out, _) = plain(&["conform", "server", "--list"]);
    assert_eq!(code, 0);
    assert!(out.lines().any(|l| l.starts_with("AUTH-1.1    MUST    spec/PROTOCOL.md:")), "{out}");
    assert!(!out.contains("CLI-1.1"), "client cases are listed under `conform client`");
    let (code, out, _) = plain(&["conform", "client", "--list"]);
    assert_eq!(code, 0);
    assert!(out.contains("CLI-1.1"), "{out}");

    let (code, out, _) = plain(&["conform", "server", "--dump-cases"]);
    assert_eq!(code, 0);
    let cases: Vec<Value> = serde_json::from_str(&out).expect("--dump-cases prints JSON");
    assert!(cases.len() >= 34);
    let auth = cases.iter().find(|c| c["id"] == "AUTH-1.1").unwrap();
    assert_eq!(auth["level"], "MUST");
    assert_eq!(auth["rule"], "AUTH-1");
    assert!(auth["rule_text"].as_str().unwrap().starts_with("A known username with its password"));
    assert!(auth["spec_line"].as_u64().unwrap() > 100);
    assert!(auth["steps"][0]["step"].as_str().unwrap().starts_with("C1> auth messi surabaya"));
}

#[test]
fn cases_are_selected_by_glob_prefix_id_and_level() {
    let ids = |args: &[&str]| -> Vec<String> {
        let mut full = vec!["conform", "server", "--dump-cases"];
        full.extend(args);
        let (code, out, err) = plain(&full);
        assert_eq!(code, 0, "{err}");
        let cases: Vec<Value> = serde_json::from_str(&out).unwrap();
        cases.iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
    };
    let auth = ids(&["--case", "AUTH-*"]);
    assert!(auth.len() >= 5 && auth.iter().all(|id| id.starts_with("AUTH-")), "{auth:?}");
    assert_eq!(ids(&["--case", "auth"]), auth, "a prefix, case-insensitive");
    assert_eq!(ids(&["--case", "SEND-4.1"]), vec!["SEND-4.1"]);
    assert_eq!(ids(&["--case", "AUTH-3"]), vec!["AUTH-3.1", "AUTH-3.2"]);
    assert_eq!(ids(&["--case", "AUTH-3", "--level", "must"]), vec!["AUTH-3.1"]);
    assert_eq!(
        ids(&["--case", "AUTH-3.1,LIST-*", "--case", "ERR-1.1"]),
        vec![
            "AUTH-3.1", "LIST-1.1", "LIST-1.2", "LIST-2.1", "LIST-2.2", "LIST-3.1", "LIST-4.1",
            "ERR-1.1"
        ]
    );
    let should = ids(&["--level", "should"]);
    let must = ids(&["--level", "must"]);
    assert_eq!(should.len() + must.len(), ids(&[]).len());
}

#[test]
fn the_runner_says_when_it_cannot_work_and_exits_2() {
    let port = support::conform::free_port().to_string();
    let nowhere = format!("127.0.0.1:{port}");
    let cases: &[(&[&str], &str)] = &[
        (&["conform", "server"], "--connect HOST:PORT or --spawn"),
        (&["conform", "client"], "after `--`"),
        (&["conform", "server", "--connect", "127.0.0.1:1", "--spawn", "x"], "cannot be used with"),
        (&["conform", "server", "--connect", &nowhere], "nothing is listening"),
        (&["conform", "server", "--connect", "no-colon"], "cannot resolve"),
        (&["conform", "server", "--list", "--case", "NOPE-*"], "no server case matches NOPE-*"),
        (&["conform", "server", "--list", "--level", "may"], "invalid value 'may'"),
        (&["conform", "server", "--timeout", "soon", "--list"], "`soon` is not a duration"),
        (&["conform", "client", "--", "no-such-program-here"], "cannot find the program"),
        (&["conform", "server", "--spec", "no/such/file.md", "--list"], "cannot read"),
        (&["conform"], "say what to test"),
        (
            &["conform", "server", "--spawn", "x", "--json", "no/such/dir/r.json"],
            "cannot write the report",
        ),
        (&["server", "--listen", "8889"], "write --listen 127.0.0.1:8889"),
        (&["conform", "server", "--spawn", "x", "--user", "budi"], "NAME:PASSWORD:FULL NAME"),
    ];
    for (args, message) in cases {
        let (code, out, err) = plain(args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(message), "{args:?}: expected {message:?} in:\n{err}");
    }
}

#[test]
fn the_command_line_takes_what_people_type() {
    // One duration syntax everywhere, level names in any case, `--list`
    // without a target, and a version.
    for args in [
        &["conform", "server", "--list", "--timeout", "500ms", "--level", "MUST"][..],
        &["conform", "server", "--list", "--timeout", "2", "--startup-timeout", "1m"],
        &["conform", "client", "--list", "--level", "Should"],
        &["conform", "--list"],
        &["conform", "--version"],
        &["bench", "--help"],
    ] {
        let (code, out, err) = plain(args);
        assert_eq!(code, 0, "{args:?}: {out}{err}");
    }
    let (_, all, _) = plain(&["conform", "--list"]);
    assert!(all.contains("AUTH-1.1") && all.contains("CLI-1.1"), "server and client cases: {all}");
    let (_, must, _) = plain(&["conform", "server", "--list", "--level", "MUST"]);
    assert!(must.contains("AUTH-1.1") && !must.contains("AUTH-3.2"), "{must}");
}

#[test]
fn a_port_in_use_stops_the_run_before_it_starts_unless_the_program_has_its_own_network() {
    // Unknown without the `unshare` program: then nothing is checked.
    let Some(own) = own_networks() else { return };
    let server = ServerProcess::builtin();
    let port = server.addr.port().to_string();
    let (code, _, err) = plain(&["conform", "server", "--spawn", "true", "--port", &port]);
    assert_eq!(code, 2, "{err}");
    let (client_code, _, client_err) = plain(&["conform", "client", "--port", &port, "--", "true"]);
    assert_eq!(client_code, 2, "{client_err}");
    if own {
        // The port is free in there: what stops the run is `true` itself.
        assert!(err.contains("exited with status 0 before it accepted connections"), "{err}");
        assert!(client_err.contains("exited with status 0"), "{client_err}");
    } else {
        assert!(err.contains(&format!("something already listens on port {port}")), "{err}");
        assert!(client_err.contains(&format!("cannot listen on port {port}")), "{client_err}");
    }
}

#[test]
fn a_broken_spec_is_reported_with_its_lines() {
    let path = temp_path(".md");
    std::fs::write(
        &path,
        "**A-1** (MUST; x) Rule.\n\n```example A-1.1 MUST\nC1> auth ${T}\\r\\n\nC1<-\n```\n",
    )
    .unwrap();
    let (code, _, err) = plain(&["conform", "server", "--spec", path.to_str().unwrap(), "--list"]);
    assert_eq!(code, 2);
    assert!(err.contains("line 4: example A-1.1: ${T} is used before any line binds it"), "{err}");
}

#[test]
fn failure_output_is_actionable_and_plain_when_piped() {
    if !have_python() {
        return;
    }
    let cmd = python_server(&["error-text"]);
    let run = conform(&["server", "--spawn", &cmd, "--case", "AUTH-2.1,TRANS-2.1", "--strict"]);
    assert_eq!(run.code, 1, "--strict: NON-STRICT counts as FAILED: {}", run.show());
    let out = &run.stdout;
    assert!(!out.contains('\x1b'), "no terminal escapes when stdout is not a terminal");
    for needle in [
        "FAILED*     AUTH-2.1    MUST",
        "---- AUTH-2.1 (MUST) FAILED (NON-STRICT counted as FAILED, --strict) ----",
        "Rule AUTH-2 (MUST; seed §1.d.ii), spec/PROTOCOL.md line",
        "An unknown username:",
        "NON-STRICT at line",
        r#".message: message text differs: expected "User Tidak Ada", got "Unknown user""#,
        "expected (-) vs actual (+):",
        r#"    -   "message": "User Tidak Ada""#,
        r#"    +   "message": "Unknown user""#,
        "Transcript (",
        r"C1 >  auth pogba surabaya \r\n",
        r#"C1 <  {"status": "ERROR", "message": "Unknown user"}\r\n\r\n"#,
        "Rerun just this case:  progjar-chat conform server --spawn",
        "Result: DOES NOT CONFORM",
    ] {
        // Columns are aligned with runs of spaces whose width depends on
        // the widest tag (a `stderr` line of the server's widens them).
        let squeeze =
            |t: &str| t.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ");
        assert!(squeeze(out).contains(&squeeze(needle)), "missing {needle:?} in:\n{out}");
    }
    // The rerun command runs exactly that case.
    let rerun = out
        .lines()
        .find(|l| l.starts_with("Rerun just this case:  ") && l.ends_with("AUTH-2.1"))
        .unwrap();
    let rerun =
        rerun.trim_start_matches("Rerun just this case:  ").replacen("progjar-chat", bin(), 1);
    assert!(rerun.ends_with("--strict --case AUTH-2.1"), "{rerun}");
    let again = Command::new("sh")
        .arg("-c")
        .arg(&rerun)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let again = String::from_utf8_lossy(&again.stdout);
    assert!(again.contains("against 1 case(s)"), "{again}");
    assert!(again.contains("FAILED*     AUTH-2.1"), "{again}");
}

#[test]
fn expectations_separate_known_new_and_unexpected() {
    if !have_python() {
        return;
    }
    let expect = temp_path(".expect");
    std::fs::write(
        &expect,
        "# our server has no list command yet\nLIST-1.1   list is not implemented\nAUTH-1.1   copied from a classmate by mistake\nNOPE-9.9   a typo\n",
    )
    .unwrap();
    let junit = temp_path(".xml");
    let cmd = python_server(&["no-list"]);
    let cases = "LIST-1,LIST-2.1,AUTH-1.1";
    let run = conform(&[
        "server",
        "--spawn",
        &cmd,
        "--case",
        cases,
        "--expect",
        expect.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(run.not_ok(), without_list(), "{}", run.show());
    assert_eq!(run.code, 0, "the only MUST failure is expected: {}", run.show());
    for needle in [
        "known failures:    LIST-1.1",
        "new failures:      LIST-1.2, LIST-2.1",
        "unexpected passes: AUTH-1.1",
        "[expected to fail]",
    ] {
        assert!(run.stdout.contains(needle), "missing {needle:?}:\n{}", run.stdout);
    }
    assert!(run.stderr.contains("`NOPE-9.9` matches no case"), "{}", run.stderr);
    let summary = &run.report()["summary"];
    assert_eq!(summary["known_failures"], serde_json::json!(["LIST-1.1"]));
    assert_eq!(summary["new_failures"], serde_json::json!(["LIST-1.2", "LIST-2.1"]));
    assert_eq!(summary["unexpected_passes"], serde_json::json!(["AUTH-1.1"]));
    assert_eq!(run.case("LIST-1.1")["expected_to_fail"], "list is not implemented");

    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(r#"<skipped message="expected to fail: list is not implemented"/>"#),
        "{xml}"
    );
    assert!(xml.contains(r#"type="NOT-IMPLEMENTED""#), "{xml}");
    assert!(xml.contains("`list`"), "the failure names the missing command: {xml}");
    assert_eq!(xml.matches("<testcase ").count(), 4);
    let parsed = Command::new("python3")
        .args([
            "-c",
            "import sys, xml.dom.minidom as m; m.parse(sys.argv[1])",
            junit.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(parsed.success(), "the JUnit file is well-formed XML");

    // Without the expectations, the MUST failure decides.
    let run = conform(&["server", "--spawn", &cmd, "--case", cases]);
    assert_eq!(run.code, 1, "{}", run.show());
}

#[test]
fn the_json_report_has_what_a_tool_needs() {
    let server = ServerProcess::builtin();
    let addr = server.addr.to_string();
    let run = conform(&["server", "--connect", &addr, "--case", "AUTH-2.1"]);
    assert_eq!(run.code, 0, "{}", run.show());
    let report = run.report();
    assert_eq!(report["target"], "server");
    assert_eq!(report["summary"]["by_level"]["MUST"]["OK"], 1);
    let case = run.case("AUTH-2.1");
    for key in [
        "id",
        "level",
        "verdict",
        "expected",
        "actual",
        "transcript",
        "duration_ms",
        "rule_text",
        "spec_line",
        "rerun",
    ] {
        assert!(case.get(key).is_some(), "no {key} in {case}");
    }
    assert_eq!(case["verdict"], "OK");
    let transcript = case["transcript"].as_array().unwrap();
    assert!(transcript
        .iter()
        .any(|e| e["tag"] == "C1 <" && e["text"].as_str().unwrap().contains("User Tidak Ada")));
    assert!(case["rerun"]
        .as_str()
        .unwrap()
        .ends_with(&format!("--connect {} --case AUTH-2.1", server.addr)));
}

#[test]
fn should_cases_count_only_with_strict() {
    if !have_python() {
        return;
    }
    let cmd = python_server(&["merge-pipelined"]);
    let run = conform(&["server", "--spawn", &cmd, "--case", "TRANS-3.1", "--timeout", "0.5"]);
    assert_eq!(
        (run.code, run.not_ok()),
        (0, verdicts(&[("TRANS-3.1", "FAILED")])),
        "{}",
        run.show()
    );
    let run = conform(&[
        "server",
        "--spawn",
        &cmd,
        "--case",
        "TRANS-3.1",
        "--timeout",
        "0.5",
        "--strict",
    ]);
    assert_eq!(run.code, 1, "{}", run.show());
    assert_eq!(run.case("TRANS-3.1")["counted_as_level"], "MUST");
}

#[test]
fn the_reference_server_passes_through_the_cli_too() {
    let run = conform(&["server", "--spawn", &reference_spawn(), "--level", "must"]);
    assert_eq!(run.code, 0, "{}", run.show());
    assert!(run.report()["summary"]["by_level"].get("SHOULD").is_none());
}
