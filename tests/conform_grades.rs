//! The grades are the truth about a submission: every fixture with planted
//! bugs, run through the whole suite as a teacher runs it (`--spawn`, a
//! fresh server per case), is flagged on exactly the rules it breaks, and
//! on no other.
//!
//! "Flagged" is a rule with a case that is not OK, leaving out BLOCKED
//! cases, which say nothing about their own rule: they name the rule that
//! blocked them, and that one is checked too. Each expectation below was
//! reasoned from the fixture's code and the spec's rules, not copied from
//! a run: a rule appears here only if the fixture really breaks it.

mod support;

use std::collections::BTreeMap;

use std::time::Duration;

use support::conform::{conform_within, have_python, python_client, python_server, Run};
use support::known_breaks::{self, Known};

/// A whole suite against a slow or broken fixture on a loaded 2-core
/// machine: generous, but bounded.
const LIMIT: Duration = Duration::from_secs(300);

fn conform(args: &[&str]) -> Run {
    conform_within(args, LIMIT)
}

/// The order verdicts are ranked in, best first.
const RANK: [&str; 6] = ["OK", "NON-STRICT", "NOT-IMPLEMENTED", "BLOCKED", "FAILED", "ERROR"];

fn rank(verdict: &str) -> usize {
    RANK.iter().position(|v| *v == verdict).unwrap_or_else(|| panic!("verdict {verdict}"))
}

/// Rule → worst verdict of its flagged cases; case → blocker.
fn grades(run: &Run) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut flagged: BTreeMap<String, String> = BTreeMap::new();
    let mut blocked = BTreeMap::new();
    for case in run.report()["cases"].as_array().expect("cases") {
        let verdict = case["verdict"].as_str().unwrap();
        let id = case["id"].as_str().unwrap().to_owned();
        match verdict {
            "OK" => {}
            "BLOCKED" => {
                blocked.insert(id, case["blocked_by"].as_str().unwrap_or("?").to_owned());
            }
            _ => {
                let rule = case["rule"].as_str().unwrap().to_owned();
                let worst = flagged.entry(rule).or_insert_with(|| verdict.to_owned());
                if rank(verdict) > rank(worst) {
                    *worst = verdict.to_owned();
                }
            }
        }
    }
    (flagged, blocked)
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

/// Runs the whole server suite against the fixture server with `breaks`
/// and checks the flagged rules, the blocked cases and the exit code.
fn server(breaks: &[&str], flagged: &[(&str, &str)], blocked: &[(&str, &str)], code: i32) {
    server_cases(breaks, &[], flagged, blocked, code);
}

/// [`server`] on some cases only (`extra` arguments, e.g. `--case`).
fn server_cases(
    breaks: &[&str],
    extra: &[&str],
    flagged: &[(&str, &str)],
    blocked: &[(&str, &str)],
    code: i32,
) {
    if !have_python() {
        return;
    }
    let command = python_server(breaks);
    let mut args = vec!["server", "--spawn", &command];
    args.extend(extra);
    let run = conform(&args);
    let (got_flagged, got_blocked) = grades(&run);
    assert_eq!(got_flagged, map(flagged), "flagged rules of {breaks:?}\n{}", run.show());
    assert_eq!(got_blocked, map(blocked), "blocked cases of {breaks:?}\n{}", run.show());
    assert_eq!(run.code, code, "exit code of {breaks:?}\n{}", run.show());
}

/// [`server`] for a fixture whose flags are shared with the class test.
fn server_known(known: &Known) {
    server(known.breaks, known.flagged, &[], known.code);
}

/// [`client`] for a fixture whose flags are shared with the class test.
fn client_known(known: &Known) {
    client(known.breaks, known.flagged, &[], known.code);
}

/// The same for the client suite and the fixture client.
fn client(breaks: &[&str], flagged: &[(&str, &str)], blocked: &[(&str, &str)], code: i32) {
    if !have_python() {
        return;
    }
    let argv = python_client(breaks);
    let mut args = vec!["client", "--"];
    args.extend(argv.iter().map(String::as_str));
    let run = conform(&args);
    let (got_flagged, got_blocked) = grades(&run);
    assert_eq!(got_flagged, map(flagged), "flagged rules of {breaks:?}\n{}", run.show());
    assert_eq!(got_blocked, map(blocked), "blocked cases of {breaks:?}\n{}", run.show());
    assert_eq!(run.code, code, "exit code of {breaks:?}\n{}", run.show());
}

/// The rules flagged in a server with no `logout`: its own, and the parts
/// of ERR-2 and ERR-3 about `logout` (and, in a server with no `list`
/// either, about `list`).
const LACKING_LOGOUT: [(&str, &str); 6] = [
    ("LOGOUT-1", "NOT-IMPLEMENTED"),
    ("LOGOUT-2", "NOT-IMPLEMENTED"),
    ("LOGOUT-3", "NOT-IMPLEMENTED"),
    ("LOGOUT-4", "NOT-IMPLEMENTED"),
    ("ERR-2", "NOT-IMPLEMENTED"),
    ("ERR-3", "NOT-IMPLEMENTED"),
];

#[test]
fn a_right_server_is_flagged_nowhere() {
    server_known(&known_breaks::RIGHT_SERVER);
}

/// The course's own server: auth, send and inbox exact, no list or logout,
/// pipelined requests merged, each 32-byte read decoded on its own, empty
/// senders kept after a read. Every AUTH, SEND and INBOX MUST case is OK;
/// `list` and `logout` are reported as not implemented, not as failures of
/// the rules whose examples happen to use them.
#[test]
fn the_course_original_is_graded_on_what_it_has() {
    let lacking_list = [
        ("LIST-1", "NOT-IMPLEMENTED"),
        ("LIST-2", "NOT-IMPLEMENTED"),
        ("LIST-3", "NOT-IMPLEMENTED"),
        ("LIST-4", "NOT-IMPLEMENTED"),
    ];
    let mut flagged = vec![
        ("TRANS-3", "FAILED"),     // pipelined requests merged
        ("TRANS-6", "FAILED"),     // a request that is not UTF-8 kills the connection
        ("TRANS-7", "FAILED"),     // a character cut by a 32-byte read kills it too
        ("INBOX-3", "NON-STRICT"), // {"messi": []} after a read
        ("INBOX-4", "NON-STRICT"), // senders in the order first ever seen
    ];
    flagged.extend(lacking_list);
    flagged.extend(LACKING_LOGOUT);
    server(&["course-original"], &flagged, &[], 1);
}

#[test]
fn a_logout_that_answers_a_bare_ok_fails_logout_1_only() {
    server_known(&known_breaks::LOGOUT_BARE_OK);
}

#[test]
fn a_logout_that_echoes_the_token_fails_logout_1_only() {
    server(&["logout-echo-token"], &[("LOGOUT-1", "FAILED")], &[], 1);
}

#[test]
fn a_logout_with_an_unknown_token_that_ends_every_session_is_named() {
    // LOGOUT-4: no other session may end; ERR-3.4: the reply to it.
    server(&["logout-ends-all"], &[("LOGOUT-4", "FAILED"), ("ERR-3", "FAILED")], &[], 0);
}

#[test]
fn a_server_without_logout_is_reported_once_as_not_implemented() {
    let mut flagged = LACKING_LOGOUT.to_vec();
    // Their examples observe the effect of a logout.
    flagged.extend([("LIST-2", "NOT-IMPLEMENTED"), ("LIST-4", "NOT-IMPLEMENTED")]);
    server(&["no-logout"], &flagged, &[], 1);
}

#[test]
fn english_error_texts_are_charged_to_the_rules_of_those_texts_only() {
    let flagged = [
        ("AUTH-2", "NON-STRICT"),
        ("AUTH-3", "NON-STRICT"),
        ("SEND-2", "NON-STRICT"),
        ("TRANS-6", "NON-STRICT"),
        ("ERR-1", "NON-STRICT"),
        ("ERR-2", "NON-STRICT"),
        ("ERR-3", "NON-STRICT"),
    ];
    // MUST texts the seed shows are worded otherwise: not "conforms".
    server(&["english-errors"], &flagged, &[], 1);
}

#[test]
fn a_stripped_message_text_is_charged_to_the_text_rules_only() {
    server_known(&known_breaks::STRIP_TEXT);
}

#[test]
fn per_chunk_decoding_fails_the_read_size_rules() {
    server(&["chunk-decode"], &[("TRANS-6", "FAILED"), ("TRANS-7", "FAILED")], &[], 0);
}

#[test]
fn a_list_that_hangs_while_mail_waits_is_caught() {
    server(&["list-hangs-with-mail"], &[("LIST-1", "FAILED")], &[], 0);
}

#[test]
fn an_inbox_that_is_not_drained_blocks_what_depends_on_draining() {
    server(&["inbox-not-drained"], &[("INBOX-3", "FAILED")], &[("INBOX-4.2", "INBOX-3")], 0);
}

#[test]
fn user_names_matched_in_any_case_are_named() {
    server_known(&known_breaks::CASE_INSENSITIVE_USERS);
}

#[test]
fn replies_without_the_blank_line_are_charged_to_trans_2_only() {
    // Every reply waits out the runner's grace for its end: some sections
    // are enough to show where the mistake is charged.
    let cases = "TRANS-*,AUTH-*,SEND-*,INBOX-*";
    server_cases(&["no-terminator"], &["--case", cases], &[("TRANS-2", "FAILED")], &[], 1);
}

#[test]
fn a_client_without_a_prompt_fails_cli_1_and_blocks_the_rest() {
    if !have_python() {
        return;
    }
    let argv = python_client(&["no-prompt"]);
    let mut args = vec!["client", "--timeout", "0.5", "--"];
    args.extend(argv.iter().map(String::as_str));
    let run = conform(&args);
    let (flagged, blocked) = grades(&run);
    assert_eq!(flagged, map(&[("CLI-1", "FAILED")]), "{}", run.show());
    assert!(blocked.len() >= 15, "{}", run.show());
    assert!(blocked.values().all(|b| b == "CLI-1"), "{blocked:?}");
}

#[test]
fn a_client_without_the_trailing_space_is_non_strict_where_the_login_line_is_checked() {
    client_known(&known_breaks::CLIENT_NO_TRAILING_SPACE);
}

#[test]
fn a_client_that_prints_python_reprs_fails_the_printing_rules() {
    client_known(&known_breaks::CLIENT_REPR);
}

#[test]
fn a_right_client_is_flagged_nowhere() {
    client_known(&known_breaks::RIGHT_CLIENT);
    client(&["quiet"], &[], &[], 0);
}

/// A mistake that leaves nothing else to check: its rule fails, and at
/// least `at_least` other cases are BLOCKED by that rule and by no other.
fn server_blocked_by(breaks: &[&str], rule: &str, at_least: usize, code: i32) {
    if !have_python() {
        return;
    }
    // Each blocked case waits out one read: keep the wait short.
    let run = conform(&["server", "--spawn", &python_server(breaks), "--timeout", "0.5"]);
    let (flagged, blocked) = grades(&run);
    assert_eq!(flagged, map(&[(rule, "FAILED")]), "{}", run.show());
    assert!(blocked.len() >= at_least, "{}", run.show());
    assert!(blocked.values().all(|b| b == rule), "{blocked:?}");
    assert_eq!(run.code, code, "{}", run.show());
}

#[test]
fn replies_that_are_not_json_fail_trans_2_and_block_the_rest() {
    server_blocked_by(&["python-repr"], "TRANS-2", 60, 1);
}

#[test]
fn closing_after_an_error_fails_trans_5_and_blocks_what_needs_a_second_request() {
    let blocked = [("TRANS-3.1", "TRANS-5"), ("TRANS-3.2", "TRANS-5"), ("TRANS-6.1", "TRANS-5")];
    server(&["close-after-error"], &[("TRANS-5", "FAILED")], &blocked, 0);
}

#[test]
fn one_connection_at_a_time_fails_trans_8_and_blocks_the_two_connection_cases() {
    // MUST cases that need two connections cannot be shown to pass: exit 1.
    server_blocked_by(&["single-threaded"], "TRANS-8", 10, 1);
}
