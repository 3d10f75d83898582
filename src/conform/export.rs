//! The reports for tools: `--json` (everything, most urgent first) and
//! `--junit` (one testcase per case). Pure code: graded results in,
//! text out.

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::grade::{conformance, exit_code, Class, Graded};
use super::matcher::Verdict;
use super::report::{case_detail, why};
use super::summary::by_level;
use super::triage::triage;
use crate::spec::Spec;

/// The `--json` report: the header, `summary`, `causes`, `rules` (most
/// urgent first), `not_implemented`, `blocked` and `cases`.
pub(crate) fn json_report(
    graded: &[Graded<'_>],
    spec: &Spec,
    header: Value,
    rerun: &dyn Fn(&str) -> String,
) -> Value {
    let cases: Vec<Value> = graded
        .iter()
        .map(|g| {
            let r = g.result;
            let decisive = r.decisive();
            json!({
                "id": r.id,
                "rule": r.rule,
                "rule_text": spec.rule(&r.rule).map(|x| x.text.clone()),
                "kind": r.kind.as_str(),
                "level": r.level,
                "counted_as_level": g.level,
                "verdict": r.verdict,
                "counted_as": g.verdict,
                "class": g.class,
                "expected_to_fail": g.expected_failure,
                "message": r.headline(),
                "blocked_by": r.blocked_by,
                "missing_command": r.missing_command,
                "wording": r.wording(),
                "spec_line": r.spec_line,
                "step_line": decisive.map(|s| s.line),
                "step": decisive.map(|s| s.source.clone()),
                "expected": decisive.map(|s| s.check.expected.clone()),
                "actual": decisive.map(|s| s.check.actual.clone()),
                "diff": decisive.map(|s| s.check.diff.iter().map(|d| d.render()).collect::<Vec<_>>()),
                "steps": r.steps,
                "transcript": r.transcript,
                "duration_ms": (r.duration.as_secs_f64() * 1000.0 * 10.0).round() / 10.0,
                "rerun": rerun(&r.id),
            })
        })
        .collect();
    let levels: serde_json::Map<String, Value> =
        by_level(graded).into_iter().map(|(l, c)| (l.as_str().to_owned(), c.json())).collect();
    let list = |class: Class| -> Vec<&str> {
        graded.iter().filter(|g| g.class == class).map(|g| g.result.id.as_str()).collect()
    };
    let case_ids = |cases: &[&Graded<'_>]| -> Vec<String> {
        cases.iter().map(|g| g.result.id.clone()).collect()
    };
    let t = triage(graded);
    let rules: Vec<Value> = t
        .rules
        .iter()
        .map(|r| {
            let mut rule = json!({
                "rule": r.rule,
                "level": r.level,
                "verdict": r.verdict,
                "group": r.urgency,
                "cases": r.cases.iter().map(|g| {
                    let mut case = json!({"id": g.result.id, "verdict": g.verdict});
                    if g.verdict == Verdict::Blocked {
                        case["blocked_by"] = json!(g.result.blocked_by);
                    }
                    if g.verdict == Verdict::NotImplemented {
                        case["missing_command"] = json!(g.result.missing_command);
                    }
                    if g.wording {
                        case["wording"] = json!(true);
                    }
                    case
                }).collect::<Vec<_>>(),
            });
            if let Some(blocker) = r.blocked_by {
                rule["blocked_by"] = json!(blocker);
            }
            if let Some(command) = r.missing_command {
                rule["missing_command"] = json!(command);
            }
            rule
        })
        .collect();
    let not_implemented: Vec<Value> = t
        .missing
        .iter()
        .map(|m| {
            json!({
                "command": m.command,
                "rules": m.rules.iter().map(|&i| t.rules[i].rule).collect::<Vec<_>>(),
                "cases": case_ids(&m.cases),
            })
        })
        .collect();
    let blocked: Vec<Value> = t
        .blocked
        .iter()
        .map(|b| json!({"blocked_by": b.blocker, "cases": case_ids(&b.cases)}))
        .collect();
    let causes: Vec<Value> = t
        .causes
        .iter()
        .map(|c| {
            json!({
                "cause": c.cause.id(),
                "what": c.cause.what(),
                "fix": c.cause.fix(),
                "cases": case_ids(&c.cases),
                "must_cases": c.must(),
            })
        })
        .collect();
    let mut report = header;
    report["summary"] = json!({
        "result": conformance(graded).as_str(),
        "by_level": levels,
        "known_failures": list(Class::KnownFailure),
        "new_failures": list(Class::NewFailure),
        "unexpected_passes": list(Class::UnexpectedPass),
        "exit_code": exit_code(graded),
    });
    report["causes"] = Value::Array(causes);
    report["rules"] = Value::Array(rules);
    report["not_implemented"] = Value::Array(not_implemented);
    report["blocked"] = Value::Array(blocked);
    report["cases"] = Value::Array(cases);
    report
}

/// Escapes text for XML attributes and content; characters XML 1.0 does
/// not allow are written as `\xHH`.
pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// The `--junit` report: FAILED, BLOCKED and NOT-IMPLEMENTED as
/// `<failure>` (with that type), ERROR as `<error>`, a MUST case NON-STRICT
/// because of its wording as `<failure type="NON-STRICT">` (unless
/// `--accept-wording`), expected failures as `<skipped>`.
pub(crate) fn junit_report(
    graded: &[Graded<'_>],
    spec: &Spec,
    suite: &str,
    rerun: &dyn Fn(&str) -> String,
) -> String {
    let failures = graded.iter().filter(|g| matches!(tag(g), Tag::Failure)).count();
    let errors = graded.iter().filter(|g| matches!(tag(g), Tag::Error)).count();
    let skipped = graded.iter().filter(|g| matches!(tag(g), Tag::Skipped)).count();
    let time: f64 = graded.iter().map(|g| g.result.duration.as_secs_f64()).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"{0}\" tests=\"{1}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{time:.3}\">",
        xml_escape(suite),
        graded.len()
    );
    out.push_str(&junit_testsuite(graded, spec, suite, &[], rerun));
    out.push_str("</testsuites>\n");
    out
}

enum Tag {
    Ok,
    Skipped,
    Failure,
    Error,
    Note,
}

fn tag(g: &Graded<'_>) -> Tag {
    match (g.class, g.verdict) {
        (Class::KnownFailure, _) => Tag::Skipped,
        (_, Verdict::Failed | Verdict::Blocked | Verdict::NotImplemented) => Tag::Failure,
        (_, Verdict::Error) => Tag::Error,
        (Class::NewFailure, Verdict::NonStrict) => Tag::Failure,
        (_, Verdict::NonStrict) => Tag::Note,
        (_, Verdict::Ok) => Tag::Ok,
    }
}

/// One `<testsuite>` named `suite`: a testcase per graded case, and one
/// `<error>` testcase per `(name, message)` in `errors_extra` (a program that
/// could not be tested at all).
pub(crate) fn junit_testsuite(
    graded: &[Graded<'_>],
    spec: &Spec,
    suite: &str,
    errors_extra: &[(String, String)],
    rerun: &dyn Fn(&str) -> String,
) -> String {
    let failures = graded.iter().filter(|g| matches!(tag(g), Tag::Failure)).count();
    let errors =
        graded.iter().filter(|g| matches!(tag(g), Tag::Error)).count() + errors_extra.len();
    let skipped = graded.iter().filter(|g| matches!(tag(g), Tag::Skipped)).count();
    let time: f64 = graded.iter().map(|g| g.result.duration.as_secs_f64()).sum();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  <testsuite name=\"{0}\" tests=\"{1}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{time:.3}\">",
        xml_escape(suite),
        graded.len() + errors_extra.len()
    );
    for (name, message) in errors_extra {
        let _ = writeln!(
            out,
            "    <testcase classname=\"{0}\" name=\"{1}\" time=\"0.000\">\n      <error message=\"{1}\" type=\"ERROR\">{2}</error>\n    </testcase>",
            xml_escape(&suite.replace(' ', ".")),
            xml_escape(name),
            xml_escape(message)
        );
    }
    for g in graded {
        let r = g.result;
        let _ = write!(
            out,
            "    <testcase classname=\"{}.{}\" name=\"{} ({})\" time=\"{:.3}\"",
            xml_escape(&suite.replace(' ', ".")),
            xml_escape(&r.rule),
            xml_escape(&r.id),
            g.level,
            r.duration.as_secs_f64()
        );
        let detail = || xml_escape(&case_detail(g, spec, &rerun(&r.id), true));
        let message = || {
            let why = why(g);
            xml_escape(&if g.wording { format!("wording: {why}") } else { why })
        };
        match tag(g) {
            Tag::Skipped => {
                let _ = writeln!(
                    out,
                    ">\n      <skipped message=\"expected to fail: {}\"/>\n    </testcase>",
                    xml_escape(g.expected_failure.unwrap_or(""))
                );
            }
            Tag::Failure => {
                let _ = writeln!(
                    out,
                    ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>",
                    message(),
                    g.verdict,
                    detail()
                );
            }
            Tag::Error => {
                let _ = writeln!(
                    out,
                    ">\n      <error message=\"{}\" type=\"ERROR\">{}</error>\n    </testcase>",
                    message(),
                    detail()
                );
            }
            Tag::Note => {
                let _ = writeln!(
                    out,
                    ">\n      <system-out>NON-STRICT: {}</system-out>\n    </testcase>",
                    message()
                );
            }
            Tag::Ok => out.push_str("/>\n"),
        }
    }
    out.push_str("  </testsuite>\n");
    out
}
