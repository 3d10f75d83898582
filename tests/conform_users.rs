//! The class's own users (`--users FILE`, `--user NAME:PASSWORD:FULL
//! NAME`): the examples' messi, henderson and lineker become the given
//! users, and a server with other users gets the same verdicts as with
//! the built-in ones.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::conform::{bin, conform_within, have_python, python_server, temp_path, Run};

const CLASS: &str = r#"{"users": [
  {"username": "budi", "name": "Budi Santoso", "password": "rahasia"},
  {"username": "siti", "name": "Siti Aminah", "password": "kunci123"},
  {"username": "andi", "name": "Andi Wijaya", "password": "sandi"}
]}"#;

fn class_file() -> String {
    let path = temp_path("-users.json");
    std::fs::write(&path, CLASS).unwrap();
    path.display().to_string()
}

fn conform(args: &[&str]) -> Run {
    conform_within(args, Duration::from_secs(300))
}

#[test]
fn the_reference_server_with_other_users_passes_every_case() {
    let users = class_file();
    let cmd = format!("{} server --users {users} --listen 127.0.0.1:{{port}}", bin());
    let run = conform(&["server", "--spawn", &cmd, "--users", &users]);
    assert_eq!(run.code, 0, "{}", run.show());
    assert!(run.not_ok().is_empty(), "{}", run.show());
    assert!(run.verdicts().len() >= 70, "{}", run.show());
    // The built-in users are not theirs: without the mapping, most fail.
    let unmapped = conform(&["server", "--spawn", &cmd, "--case", "AUTH-1.1"]);
    assert_eq!(unmapped.code, 1, "{}", unmapped.show());
}

/// Verdicts with the class's users, on a server that has them, against
/// verdicts with the built-in users, on the same server that has those.
fn same_verdicts(breaks: &[&str]) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let users = class_file();
    let builtin = conform(&["server", "--spawn", &python_server(breaks)]);
    let class_cmd = format!("{} --users {users}", python_server(breaks));
    let class = conform(&["server", "--spawn", &class_cmd, "--users", &users]);
    assert_eq!(builtin.code, class.code, "{}\n{}", builtin.show(), class.show());
    (builtin.verdicts(), class.verdicts())
}

#[test]
fn a_broken_server_gets_the_same_verdicts_with_the_class_users() {
    if !have_python() {
        return;
    }
    for breaks in [&["logout-ends-all"][..], &["strip-text"], &["course-original"]] {
        let (builtin, class) = same_verdicts(breaks);
        assert_eq!(builtin, class, "{breaks:?}");
        assert!(builtin.values().any(|v| v != "OK"), "{breaks:?} breaks something");
    }
}

#[test]
fn a_client_with_two_users_says_which_cases_need_a_third() {
    let client = [bin(), "client", "--connect", "127.0.0.1:{port}"];
    let mut args = vec![
        "client",
        "--user",
        "budi:rahasia:Budi Santoso",
        "--user",
        "siti:kunci:Siti Aminah",
        "--",
    ];
    args.extend(client);
    let run = conform(&args);
    let not_ok = run.not_ok();
    assert!(!not_ok.is_empty(), "{}", run.show());
    for (id, verdict) in &not_ok {
        assert_eq!(verdict, "ERROR", "{id}: {}", run.show());
        assert!(run.message(id).contains("needs 3 users"), "{id}: {}", run.message(id));
    }
    // Every other case passes with the two users mapped in.
    assert!(run.verdicts().values().filter(|v| *v == "OK").count() >= 15, "{}", run.show());
    // And the rerun command keeps the users.
    let rerun = run.case(not_ok.keys().next().unwrap())["rerun"].as_str().unwrap().to_owned();
    assert!(rerun.contains("--user 'budi:rahasia:Budi Santoso'"), "{rerun}");
}

#[test]
fn users_the_examples_need_to_be_unknown_are_refused_at_once() {
    let run = conform(&["server", "--spawn", "true", "--user", "pogba:x1:Paul Pogba"]);
    assert_eq!(run.code, 2, "{}", run.show());
    assert!(run.stderr.contains("`pogba`"), "{}", run.stderr);
}
