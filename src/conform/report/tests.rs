//! The written outcome of a run, end to end: results graded, then the
//! case lines, details, summary, JSON and JUnit they come out as.

use std::time::Duration;

use super::*;
use crate::conform::export::{json_report, junit_report};
use serde_json::{json, Value};

use crate::conform::cause::Cause;
use crate::conform::grade::{
    conformance, exit_code, grade, grade_with, Class, Conformance, Policy,
};
use crate::conform::layout::wrap;
use crate::conform::matcher::{Check, Finding};
use crate::conform::outcome::StepReport;
use crate::conform::select::Expectations;
use crate::conform::summary::{rules_section, summary};
use crate::conform::triage::triage;
use crate::spec::Level;
use crate::spec::{Kind, Rule, Spec};

fn result(id: &str, level: Level, verdict: Verdict) -> CaseResult {
    let steps = if verdict == Verdict::Ok {
        vec![]
    } else {
        vec![StepReport {
            line: 10,
            source: "C1< {}".into(),
            verdict,
            check: Check {
                findings: vec![Finding::new(verdict, ".message", "a <b> & \"c\" \u{1}")],
                ..Check::default()
            },
        }]
    };
    CaseResult {
        id: id.into(),
        rule: id.rsplit_once('.').unwrap().0.into(),
        level,
        kind: Kind::Server,
        spec_line: 5,
        verdict,
        steps,
        transcript: vec![],
        duration: Duration::from_millis(3),
        blocked_by: None,
        missing_command: None,
    }
}

/// NON-STRICT because its message is worded otherwise.
fn worded(id: &str, level: Level) -> CaseResult {
    let mut r = result(id, level, Verdict::NonStrict);
    r.steps[0].check.findings[0].wording = true;
    r
}

fn blocked(id: &str, level: Level, by: &str) -> CaseResult {
    let mut r = result(id, level, Verdict::Blocked);
    r.blocked_by = Some(by.into());
    r
}

fn missing(id: &str, level: Level, command: &str) -> CaseResult {
    let mut r = result(id, level, Verdict::NotImplemented);
    r.steps[0].check.findings[0] = Finding::new(
        Verdict::NotImplemented,
        "",
        format!("the server does not have the command `{command}`"),
    );
    r.missing_command = Some(command.into());
    r
}

fn because(mut r: CaseResult, cause: Cause) -> CaseResult {
    let finding = r.steps[0].check.findings[0].clone().because(cause);
    r.steps[0].check.findings[0] = finding;
    r
}

fn plain() -> Style {
    Style { color: false }
}

fn graded_with<'a>(
    results: &'a [CaseResult],
    strict: bool,
    accept_wording: bool,
    expect: &'a Expectations,
) -> Vec<Graded<'a>> {
    grade_with(results, Policy { strict, accept_wording }, expect)
}

fn last_line(text: &str) -> &str {
    text.lines().last().unwrap()
}

#[test]
fn grading_strictness_and_expectations() {
    let results = vec![
        result("A-1.1", Level::Must, Verdict::Ok),
        result("A-2.1", Level::Must, Verdict::NonStrict),
        result("A-3.1", Level::Should, Verdict::Failed),
        result("A-4.1", Level::Must, Verdict::Error),
        result("A-5.1", Level::Must, Verdict::Ok),
    ];
    let none = Expectations::default();
    let g = grade(&results, false, &none);
    assert_eq!(exit_code(&g), 1, "A-4.1 is a MUST ERROR");
    assert_eq!(g.iter().filter(|g| g.blocking()).count(), 1);
    let strict = grade(&results, true, &none);
    assert_eq!(strict[1].verdict, Verdict::Failed);
    assert_eq!(strict[2].level, Level::Must);
    assert_eq!(strict.iter().filter(|g| g.blocking()).count(), 3);
    let expect = Expectations::parse("A-4.1  known\nA-5.1  flaky once\n").unwrap();
    let g = grade(&results, false, &expect);
    assert_eq!(exit_code(&g), 0, "the only MUST failure is expected");
    assert_eq!(g[3].class, Class::KnownFailure);
    assert_eq!(g[4].class, Class::UnexpectedPass);
    assert_eq!(g[2].class, Class::NewFailure);
    let text = summary(&g, plain());
    assert!(text.contains("known failures:    A-4.1"), "{text}");
    assert!(text.contains("new failures:      A-3.1"), "{text}");
    assert!(text.contains("unexpected passes: A-5.1"), "{text}");
    assert_eq!(
        last_line(&text),
        "Result: CONFORMS: no MUST case failed other than the 1 expected (1 SHOULD case(s) did not pass, 1 other case(s) NON-STRICT)  (exit code 0)"
    );
    assert!(text.contains("MUST      4 cases: 2 OK, 1 NON-STRICT, 0 FAILED, 1 ERROR"), "{text}");
}

#[test]
fn blocked_and_not_implemented_fail_like_failed() {
    let results = vec![
        blocked("S-1.1", Level::Must, "L-1"),
        missing("L-1.1", Level::Must, "list"),
        blocked("S-2.1", Level::Should, "L-1"),
    ];
    let none = Expectations::default();
    let g = grade(&results, false, &none);
    assert_eq!(g[0].class, Class::NewFailure);
    assert_eq!(g[1].class, Class::NewFailure);
    assert!(g[0].nonconforming() && g[1].nonconforming() && !g[2].nonconforming());
    assert_eq!(exit_code(&g), 1);
    assert_eq!(conformance(&g), Conformance::DoesNotConform);
    let text = summary(&g, plain());
    assert!(
        text.contains("MUST      2 cases: 0 OK, 0 NON-STRICT, 1 NOT-IMPLEMENTED, 1 BLOCKED, 0 FAILED, 0 ERROR"),
        "{text}"
    );
    assert_eq!(
        last_line(&text),
        "Result: DOES NOT CONFORM: 2 MUST cases did not pass: 1 NOT-IMPLEMENTED (`list`), 1 BLOCKED (by L-1) (1 SHOULD case(s) did not pass)  (exit code 1)"
    );
    // Listed in --expect, they no longer count.
    let expect = Expectations::parse("S-1.1  later\nL-1.1  later\n").unwrap();
    let g = grade(&results, false, &expect);
    assert_eq!(g[0].class, Class::KnownFailure);
    assert_eq!((conformance(&g), exit_code(&g)), (Conformance::Conforms, 0));
}

#[test]
fn the_three_results_and_their_exit_codes() {
    let none = Expectations::default();
    let outcome = |results: &[CaseResult], strict: bool, accept: bool| {
        let g = graded_with(results, strict, accept, &none);
        let text = summary(&g, plain());
        (conformance(&g), exit_code(&g), last_line(&text).to_owned())
    };

    // Form, order and SHOULD cases never change the result.
    let fine = vec![
        result("A-1.1", Level::Must, Verdict::Ok),
        result("A-2.1", Level::Must, Verdict::NonStrict),
        result("B-1.1", Level::Should, Verdict::Failed),
        worded("B-2.1", Level::Should),
        blocked("B-3.1", Level::Should, "A-1"),
    ];
    let (result, code, line) = outcome(&fine, false, false);
    assert_eq!((result, code), (Conformance::Conforms, 0), "{line}");
    assert!(line.starts_with("Result: CONFORMS: no MUST case failed ("), "{line}");
    assert!(line.ends_with("(exit code 0)"), "{line}");

    // Wording in a MUST case: conforms except wording, exit 1 ...
    let mut wording = fine.clone();
    wording.push(worded("A-3.1", Level::Must));
    let (result, code, line) = outcome(&wording, false, false);
    assert_eq!((result, code), (Conformance::ConformsExceptWording, 1), "{line}");
    assert!(line.starts_with("Result: CONFORMS EXCEPT WORDING: 1 MUST case word"), "{line}");
    assert!(line.contains("(A-3.1)"), "{line}");
    assert!(line.ends_with("(exit code 1; --accept-wording accepts other wording)"), "{line}");
    // ... exit 0 with --accept-wording, which the line names ...
    let (result, code, line) = outcome(&wording, false, true);
    assert_eq!((result, code), (Conformance::ConformsExceptWording, 0), "{line}");
    assert!(
        line.starts_with("Result: CONFORMS EXCEPT WORDING (wording accepted, --accept-wording)"),
        "{line}"
    );
    assert!(line.ends_with("(exit code 0)"), "{line}");
    // ... and with --strict it is FAILED like any NON-STRICT.
    let (result, code, line) = outcome(&wording, true, true);
    assert_eq!((result, code), (Conformance::DoesNotConform, 1), "{line}");
    // A MUST failure outweighs the wording, with or without the flag.
    let mut failing = wording.clone();
    failing.push(result_failed("A-4.1"));
    for accept in [false, true] {
        let (result, code, line) = outcome(&failing, false, accept);
        assert_eq!((result, code), (Conformance::DoesNotConform, 1), "{line}");
        assert!(
            line.starts_with(
                "Result: DOES NOT CONFORM: 1 MUST case did not pass: 1 FAILED (A-4.1)"
            ),
            "{line}"
        );
    }
    // A wording case listed in --expect is a known failure, not counted.
    let expect = Expectations::parse("A-3.1  English texts\n").unwrap();
    let g = graded_with(&wording, false, false, &expect);
    assert_eq!((conformance(&g), exit_code(&g)), (Conformance::Conforms, 0));

    // The JSON carries the result.
    let g = graded_with(&wording, false, false, &none);
    let value = json_report(&g, &Spec::default(), json!({}), &|id| id.to_owned());
    assert_eq!(value["summary"]["result"], "conforms-except-wording");
    assert_eq!(value["summary"]["exit_code"], 1);
    let case = value["cases"].as_array().unwrap().iter().find(|c| c["id"] == "A-3.1").unwrap();
    assert_eq!(case["wording"], true);
    assert_eq!(case["counted_as"], "NON-STRICT");
}

fn result_failed(id: &str) -> CaseResult {
    result(id, Level::Must, Verdict::Failed)
}

#[test]
fn rules_come_most_urgent_first_and_a_missing_command_once() {
    let results = vec![
        result("P-1.1", Level::Must, Verdict::Ok),
        result("N-1.1", Level::Should, Verdict::NonStrict),
        result("S-1.1", Level::Should, Verdict::Failed),
        result("S-1.2", Level::Should, Verdict::Ok),
        worded("W-1.1", Level::Must),
        blocked("B-1.1", Level::Must, "M-1"),
        missing("L-1.1", Level::Must, "list"),
        missing("L-2.1", Level::Should, "list"),
        missing("L-2.2", Level::Should, "list"),
        missing("E-1.1", Level::Should, "list"),
        result("E-1.2", Level::Should, Verdict::Failed),
        result("M-1.1", Level::Must, Verdict::Failed),
        result("P-2.1", Level::Should, Verdict::Ok),
        result("P-3.1", Level::Should, Verdict::Ok),
    ];
    let none = Expectations::default();
    let g = grade(&results, false, &none);
    let text = rules_section(&g, plain());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        vec![
            "Rules, most urgent first",
            "  M-1        MUST    FAILED      M-1.1 FAILED",
            "  `list` not implemented: L-1 (MUST), L-2 (SHOULD), E-1 (SHOULD; E-1.2 FAILED); 4 cases not run",
            "  blocked by M-1 (fix it first): B-1.1",
            "  W-1        MUST    NON-STRICT  W-1.1 NON-STRICT (wording)",
            "  S-1        SHOULD  FAILED      S-1.1 FAILED; S-1.2 OK",
            "  N-1        SHOULD  NON-STRICT  N-1.1 NON-STRICT",
            "  OK: 3 rules: P-1–3",
        ],
        "{text}"
    );
    // The rules a missing command covers are not listed again.
    assert_eq!(text.matches("L-1 ").count(), 1, "{text}");
    assert_eq!(text.matches("E-1 ").count(), 1, "{text}");

    let value = json_report(&g, &Spec::default(), json!({}), &|id| id.to_owned());
    let order: Vec<&str> =
        value["rules"].as_array().unwrap().iter().map(|r| r["rule"].as_str().unwrap()).collect();
    assert_eq!(
        order,
        ["M-1", "L-1", "L-2", "E-1", "B-1", "W-1", "S-1", "N-1", "P-1", "P-2", "P-3"]
    );
    assert_eq!(value["rules"][0]["group"], "must-failed");
    assert_eq!(value["rules"][1]["missing_command"], "list");
    assert_eq!(value["rules"][4]["blocked_by"], "M-1");
    assert_eq!(
        value["rules"][4]["cases"][0],
        json!({"id": "B-1.1", "verdict": "BLOCKED", "blocked_by": "M-1"})
    );
    assert_eq!(
        value["not_implemented"],
        json!([{"command": "list", "rules": ["L-1", "L-2", "E-1"], "cases": ["L-1.1", "L-2.1", "L-2.2", "E-1.1"]}])
    );
    assert_eq!(value["blocked"], json!([{"blocked_by": "M-1", "cases": ["B-1.1"]}]));
    let case = value["cases"].as_array().unwrap().iter().find(|c| c["id"] == "L-1.1").unwrap();
    assert_eq!(case["missing_command"], "list");
    assert_eq!(case["blocked_by"], Value::Null);
}

#[test]
fn a_cause_shared_by_several_cases_is_said_once() {
    let results = vec![
        because(result("S-4.1", Level::Must, Verdict::Failed), Cause::StrippedText),
        result("S-5.1", Level::Must, Verdict::Ok),
        because(result("I-4.1", Level::Should, Verdict::Failed), Cause::StrippedText),
        because(result("I-4.2", Level::Must, Verdict::Failed), Cause::StrippedText),
        because(result("T-3.1", Level::Should, Verdict::Failed), Cause::MergedPipelining),
    ];
    let none = Expectations::default();
    let g = grade(&results, false, &none);
    let text = rules_section(&g, plain());
    assert_eq!(text.matches("One cause").count(), 1, "one case alone is no shared cause: {text}");
    assert!(
        text.contains("  One cause, 3 cases (2 MUST): message texts come back without the white space at their ends"),
        "{text}"
    );
    assert!(text.contains("    Fix: keep the text raw"), "{text}");
    assert!(text.contains("    Cases: S-4.1, I-4.1, I-4.2\n"), "{text}");
    // A cause behind every case that did not pass says so instead.
    let g = grade(&results[..4], false, &none);
    let text = rules_section(&g, plain());
    assert!(text.contains("    Cases: every case that did not pass.\n"), "{text}");
    assert!(
        text.find("One cause").unwrap() < text.find("  S-4 ").unwrap(),
        "the cause comes before the rules: {text}"
    );
    let value = json_report(&g, &Spec::default(), json!({}), &|id| id.to_owned());
    assert_eq!(value["causes"].as_array().unwrap().len(), 1);
    assert_eq!(value["causes"][0]["cause"], "stripped-text");
    assert_eq!(value["causes"][0]["cases"], json!(["S-4.1", "I-4.1", "I-4.2"]));
    assert_eq!(value["causes"][0]["fix"], Cause::StrippedText.fix());
    assert_eq!(value["causes"][0]["must_cases"], 2);
}

#[test]
fn wrapping_keeps_runs_of_spaces_and_code_spans() {
    let text = "The original client sends `send TOKEN henderson  hallo \\r\\n` (two spaces), so the stored text is `\"  hallo \\r\\n\"`, exactly  as shown.";
    for width in [20, 40, 92] {
        let lines = wrap(text, width);
        assert_eq!(lines.join(" "), text, "width {width}: {lines:#?}");
        for line in &lines {
            assert_eq!(line.matches('`').count() % 2, 0, "a code span is broken: {line:?}");
            assert!(!line.starts_with(' ') && !line.ends_with(' '), "{line:?}");
            assert!(line.chars().count() <= width || !line.contains(" `"), "{line:?}");
        }
    }
    assert_eq!(
        wrap(text, 40),
        [
            "The original client sends",
            "`send TOKEN henderson  hallo \\r\\n` (two",
            "spaces), so the stored text is",
            "`\"  hallo \\r\\n\"`, exactly  as shown.",
        ]
    );
    // An unclosed backtick does not glue the rest of the text together.
    assert_eq!(wrap("a `b c d e", 3), ["a", "`b", "c d", "e"]);

    let spec = Spec {
        rules: vec![Rule {
            id: "A-2".into(),
            level: Level::Must,
            source: "seed §1".into(),
            text: text.into(),
            line: 7,
        }],
        examples: vec![],
        text_homes: vec![],
    };
    let results = vec![result("A-2.1", Level::Must, Verdict::Failed)];
    let none = Expectations::default();
    let g = grade(&results, false, &none);
    let detail = case_detail(&g[0], &spec, "rerun", false);
    assert!(detail.contains("`\"  hallo \\r\\n\"`"), "{detail}");
    assert!(detail.contains("henderson  hallo"), "{detail}");
    let xml = junit_report(&g, &spec, "s", &|id| id.to_owned());
    assert!(xml.contains("henderson  hallo"), "{xml}");
}

#[test]
fn junit_is_escaped_and_classified() {
    let results = vec![
        result("A-1.1", Level::Must, Verdict::Ok),
        result("A-2.1", Level::Must, Verdict::Failed),
        result("A-3.1", Level::Must, Verdict::Error),
        result("A-4.1", Level::Must, Verdict::Failed),
    ];
    let expect = Expectations::parse("A-4.1  known <one>\n").unwrap();
    let g = grade(&results, false, &expect);
    let xml = junit_report(&g, &Spec::default(), "conform server", &|id| format!("rerun {id} 'x'"));
    assert!(xml.contains("<testsuites name=\"conform server\" tests=\"4\" failures=\"1\" errors=\"1\" skipped=\"1\""), "{xml}");
    assert!(
        xml.contains(
            "<failure message=\".message: a &lt;b&gt; &amp; &quot;c&quot; \\x01\" type=\"FAILED\">"
        ),
        "{xml}"
    );
    assert!(xml.contains("<error message="), "{xml}");
    assert!(xml.contains("<skipped message=\"expected to fail: known &lt;one&gt;\"/>"), "{xml}");
    assert!(xml.contains("rerun A-2.1 &apos;x&apos;"), "{xml}");
    assert!(!xml.contains('\u{1}'));
    assert_eq!(xml.matches("<testcase").count(), 4);
    assert_eq!(xml.matches("</testcase>").count() + xml.matches("\"/>\n").count() - 1, 4, "{xml}");
}

#[test]
fn junit_types_for_blocked_not_implemented_and_wording() {
    let results = vec![
        blocked("S-1.1", Level::Must, "LOGOUT-1"),
        missing("L-1.1", Level::Must, "list"),
        worded("A-2.1", Level::Must),
        worded("E-1.1", Level::Should),
    ];
    let none = Expectations::default();
    let g = graded_with(&results, false, false, &none);
    let xml = junit_report(&g, &Spec::default(), "s", &|id| id.to_owned());
    assert!(xml.contains("failures=\"3\" errors=\"0\" skipped=\"0\""), "{xml}");
    assert!(xml.contains("<failure message=\"blocked by LOGOUT-1: .message: a &lt;b&gt;"), "{xml}");
    assert!(xml.contains("type=\"BLOCKED\">"), "{xml}");
    assert!(
        xml.contains(
            "<failure message=\"`list` not implemented: not run\" type=\"NOT-IMPLEMENTED\">"
        ),
        "{xml}"
    );
    assert!(xml.contains("<failure message=\"wording: .message: a"), "{xml}");
    assert!(xml.contains("type=\"NON-STRICT\">"), "{xml}");
    assert!(
        xml.contains("<system-out>NON-STRICT: wording: .message"),
        "a SHOULD case only notes it: {xml}"
    );
    let g = graded_with(&results, false, true, &none);
    let xml = junit_report(&g, &Spec::default(), "s", &|id| id.to_owned());
    assert!(xml.contains("failures=\"2\""), "--accept-wording: {xml}");
    assert!(!xml.contains("type=\"NON-STRICT\""), "{xml}");
}

#[test]
fn lines_and_details() {
    let results = vec![result("A-2.1", Level::Must, Verdict::NonStrict)];
    let none = Expectations::default();
    let g = grade(&results, true, &none);
    let line = case_line(&g[0], plain());
    assert!(line.starts_with("FAILED*     A-2.1       MUST"), "{line:?}");
    let detail =
        case_detail(&g[0], &Spec::default(), "progjar-chat conform server --case A-2.1", true);
    assert!(
        detail.contains("---- A-2.1 (MUST) FAILED (NON-STRICT counted as FAILED, --strict) ----"),
        "{detail}"
    );
    assert!(
        detail.contains("Rerun just this case:  progjar-chat conform server --case A-2.1"),
        "{detail}"
    );
}

#[test]
fn briefs() {
    let results = vec![
        worded("A-2.1", Level::Must),
        blocked("S-1.1", Level::Must, "LOGOUT-1"),
        because(result("S-4.1", Level::Must, Verdict::Failed), Cause::StrippedText),
    ];
    let none = Expectations::default();
    let g = grade(&results, false, &none);
    assert_eq!(
        case_brief(&g[0], None),
        "---- A-2.1 (MUST) NON-STRICT (wording) ---- line 10: .message: a <b> & \"c\" \u{1}"
    );
    assert!(
        case_brief(&g[1], None).starts_with("---- S-1.1 (MUST) BLOCKED by LOGOUT-1 ---- line 10: "),
        "{}",
        case_brief(&g[1], None)
    );
    assert_eq!(
        same_blocker_line("AUTH-1", "X-1.1", &["A-1.1"]),
        "---- Also BLOCKED by AUTH-1, as X-1.1: 1 more case: A-1.1"
    );
    assert_eq!(
        same_cause_line("X-1.1", Cause::NoTerminator, &["A-1.1", "B-1.1"]),
        "---- The same cause as X-1.1 (no-terminator): 2 more cases: A-1.1, B-1.1"
    );
    assert_eq!(
        case_brief(&g[2], Some("(the same cause as X-1.1: stripped-text)")),
        "---- S-4.1 (MUST) FAILED ---- (the same cause as X-1.1: stripped-text)"
    );
}

#[test]
fn blocked_and_not_implemented_details() {
    let mut results = vec![
        blocked("S-1.1", Level::Must, "LOGOUT-1"),
        missing("L-1.1", Level::Must, "list"),
        missing("L-2.1", Level::Should, "list"),
    ];
    results[1].transcript = results[0].transcript.clone();
    let none = Expectations::default();
    let g = grade(&results, false, &none);
    let detail = case_detail(&g[0], &Spec::default(), "rerun S-1.1", true);
    assert!(detail.contains("BLOCKED by LOGOUT-1: .message: a <b>"), "{detail}");
    assert!(detail.contains("fix LOGOUT-1 first"), "{detail}");
    assert!(case_line(&g[0], plain()).contains("blocked by LOGOUT-1: .message"));
    let detail = case_detail(&g[1], &Spec::default(), "rerun L-1.1", true);
    assert_eq!(detail.lines().count(), 1, "{detail}");
    assert!(detail.starts_with("---- L-1.1 (MUST) NOT-IMPLEMENTED ---- not run: the server does not have the command `list`"), "{detail}");
    assert!(case_line(&g[1], plain()).contains("`list` not implemented: not run"));
    let t = triage(&g);
    assert_eq!(
        missing_detail(&t.missing[0]),
        "---- NOT-IMPLEMENTED `list`: 2 cases not run (L-1.1, L-2.1): the server does not have the command `list`"
    );
}
