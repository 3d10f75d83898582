//! Grading a run (strictness, expected failures, exit code) and writing
//! it out: the readable text, `--json` and `--junit`. Pure code: results
//! in, strings out.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Value};

use super::matcher::Verdict;
use super::outcome::CaseResult;
use super::select::Expectations;
use super::transcript;
use crate::spec::{Level, Spec, PROTOCOL_PATH};

/// What a case means for the run, once expectations are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// Passed (OK or NON-STRICT), as expected.
    Pass,
    /// Failed, and the expectations file says it would.
    KnownFailure,
    /// Failed, and nothing said it would.
    NewFailure,
    /// Listed as expected to fail, but passed.
    UnexpectedPass,
}

/// A case result with the run's grading applied.
#[derive(Debug, Clone)]
pub struct Graded<'a> {
    pub result: &'a CaseResult,
    /// The level it counts at (`--strict` makes every case MUST).
    pub level: Level,
    /// The verdict it counts as (`--strict` makes NON-STRICT FAILED).
    pub verdict: Verdict,
    /// Why it is expected to fail, from `--expect`.
    pub expected_failure: Option<&'a str>,
    pub class: Class,
}

impl Graded<'_> {
    /// Whether this case makes the run fail (exit code 1).
    pub fn blocking(&self) -> bool {
        self.class == Class::NewFailure && self.level == Level::Must
    }
}

/// Applies `--strict` and `--expect` to the results.
pub fn grade<'a>(
    results: &'a [CaseResult],
    strict: bool,
    expectations: &'a Expectations,
) -> Vec<Graded<'a>> {
    results
        .iter()
        .map(|result| {
            let level = if strict { Level::Must } else { result.level };
            let verdict = if strict && result.verdict == Verdict::NonStrict {
                Verdict::Failed
            } else {
                result.verdict
            };
            let expected_failure = expectations.reason(&result.id);
            let failing = verdict >= Verdict::Failed;
            let class = match (failing, expected_failure.is_some()) {
                (true, true) => Class::KnownFailure,
                (true, false) => Class::NewFailure,
                (false, true) => Class::UnexpectedPass,
                (false, false) => Class::Pass,
            };
            Graded { result, level, verdict, expected_failure, class }
        })
        .collect()
}

/// 0: no MUST case is a new failure; 1: some is.
pub fn exit_code(graded: &[Graded<'_>]) -> u8 {
    u8::from(graded.iter().any(Graded::blocking))
}

/// Terminal colours, when they are wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(self, verdict: Verdict, text: &str) -> String {
        if !self.color {
            return text.to_owned();
        }
        let code = match verdict {
            Verdict::Ok => "32",
            Verdict::NonStrict => "33",
            Verdict::NotImplemented | Verdict::Blocked => "36",
            Verdict::Failed => "31",
            Verdict::Error => "35",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    fn bold(self, text: &str) -> String {
        if self.color {
            format!("\x1b[1m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

fn duration(result: &CaseResult) -> String {
    let ms = result.duration.as_secs_f64() * 1000.0;
    if ms >= 1000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        format!("{ms:.0} ms")
    }
}

/// The verdict as it reads in lists, padded.
fn verdict_label(g: &Graded<'_>) -> String {
    let mut label = g.verdict.as_str().to_owned();
    if g.verdict != g.result.verdict {
        label = format!("{label}*");
    }
    label
}

/// One line per case, as the run goes: `FAILED      SEND-2.1   MUST    3 ms  why`.
pub fn case_line(g: &Graded<'_>, style: Style) -> String {
    let r = g.result;
    let mut line = format!(
        "{}  {:<11} {:<6}  {:>7}",
        style.paint(g.verdict, &format!("{:<10}", verdict_label(g))),
        r.id,
        r.level.as_str(),
        duration(r)
    );
    let headline = r.headline();
    if !headline.is_empty() {
        let _ = write!(line, "  {}", one_line(&headline, 110));
    }
    match g.class {
        Class::KnownFailure => line.push_str("  [expected to fail]"),
        Class::UnexpectedPass => line.push_str("  [expected to fail, but passed]"),
        _ => {}
    }
    line
}

fn one_line(s: &str, max: usize) -> String {
    let s = s.replace('\n', " ");
    if s.chars().count() > max {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    } else {
        s
    }
}

/// The whole story of a case that did not pass: the rule, the step, the
/// difference, the transcript and the command that reruns it.
pub fn case_detail(g: &Graded<'_>, spec: &Spec, rerun: &str, with_transcript: bool) -> String {
    let r = g.result;
    let mut out = String::new();
    let mut counted = Vec::new();
    if g.verdict != r.verdict {
        counted.push(format!("{} counted as {}", r.verdict, g.verdict));
    }
    if g.level != r.level {
        counted.push(format!("{} counted as {}", r.level, g.level));
    }
    let counted = if counted.is_empty() {
        String::new()
    } else {
        format!(" ({}, --strict)", counted.join(", "))
    };
    let _ = writeln!(out, "---- {} ({}) {}{counted} ----", r.id, g.level, g.verdict);
    if let Some(reason) = g.expected_failure {
        let _ = writeln!(out, "Expected to fail: {reason}");
    }
    if let Some(rule) = spec.rule(&r.rule) {
        let _ = writeln!(
            out,
            "Rule {} ({}; {}), {PROTOCOL_PATH} line {}:",
            rule.id, rule.level, rule.source, rule.line
        );
        for line in wrap(&rule.text, 92) {
            let _ = writeln!(out, "    {line}");
        }
    }
    let _ = writeln!(out, "Example {} at {PROTOCOL_PATH} line {}.", r.id, r.spec_line);
    for step in &r.steps {
        let _ = writeln!(out);
        if step.source.starts_with('(') {
            let _ = writeln!(out, "{} {}:", step.verdict, step.source);
        } else {
            let _ = writeln!(out, "{} at line {}:  {}", step.verdict, step.line, step.source);
        }
        for finding in &step.check.findings {
            let _ = writeln!(out, "  - [{}] {}", finding.severity, finding.render());
        }
        if !step.check.diff.is_empty() {
            let _ = writeln!(out, "  expected (-) vs actual (+):");
            for line in &step.check.diff {
                let _ = writeln!(out, "    {}", line.render());
            }
        } else if !step.check.expected.is_empty() || !step.check.actual.is_empty() {
            let _ = writeln!(out, "  expected: {}", step.check.expected);
            let actual =
                if step.check.actual.is_empty() { "(nothing)" } else { &step.check.actual };
            let _ = writeln!(out, "  actual:   {actual}");
        }
    }
    if with_transcript && !r.transcript.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Transcript (seconds since the start; C1 > the runner wrote, C1 < it read; U > typed, U < printed, U ? prompt, U · set aside; wire: the client under test and the server; bytes escaped as in the spec):"
        );
        for line in transcript::render(&r.transcript) {
            let _ = writeln!(out, "  {line}");
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "Rerun just this case:  {rerun}");
    out
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Counts by verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub ok: usize,
    pub non_strict: usize,
    pub not_implemented: usize,
    pub blocked: usize,
    pub failed: usize,
    pub error: usize,
}

impl Counts {
    fn add(&mut self, v: Verdict) {
        match v {
            Verdict::Ok => self.ok += 1,
            Verdict::NonStrict => self.non_strict += 1,
            Verdict::NotImplemented => self.not_implemented += 1,
            Verdict::Blocked => self.blocked += 1,
            Verdict::Failed => self.failed += 1,
            Verdict::Error => self.error += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.ok + self.non_strict + self.not_implemented + self.blocked + self.failed + self.error
    }

    fn json(&self) -> Value {
        json!({"OK": self.ok, "NON-STRICT": self.non_strict, "NOT-IMPLEMENTED": self.not_implemented, "BLOCKED": self.blocked, "FAILED": self.failed, "ERROR": self.error, "total": self.total()})
    }
}

/// Counts per level.
pub fn by_level(graded: &[Graded<'_>]) -> BTreeMap<Level, Counts> {
    let mut map = BTreeMap::new();
    for g in graded {
        map.entry(g.level).or_insert_with(Counts::default).add(g.verdict);
    }
    map
}

/// Per rule: its cases, in order.
fn by_rule<'a, 'b>(graded: &'b [Graded<'a>]) -> Vec<(&'a str, Vec<&'b Graded<'a>>)> {
    let mut rules: Vec<(&str, Vec<&Graded<'_>>)> = Vec::new();
    for g in graded {
        match rules.iter_mut().find(|(r, _)| *r == g.result.rule) {
            Some((_, cases)) => cases.push(g),
            None => rules.push((&g.result.rule, vec![g])),
        }
    }
    rules
}

/// The summary at the end of a run.
pub fn summary(graded: &[Graded<'_>], spec: &Spec, style: Style) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", style.bold("Summary"));
    let _ = writeln!(out, "By level:");
    for (level, c) in by_level(graded) {
        let _ = writeln!(
            out,
            "  {:<7} {:>3} cases: {} OK, {} NON-STRICT, {} FAILED, {} ERROR",
            level.as_str(),
            c.total(),
            c.ok,
            c.non_strict,
            c.failed,
            c.error
        );
    }
    let _ = writeln!(out, "By rule:");
    for (rule, cases) in by_rule(graded) {
        let worst = cases.iter().map(|g| g.verdict).max().unwrap_or(Verdict::Ok);
        let level = spec.rule(rule).map_or("", |r| r.level.as_str());
        let mut line = format!(
            "  {:<10} {:<6}  {}",
            rule,
            level,
            style.paint(worst, &format!("{:<10}", worst.as_str()))
        );
        let notable: Vec<String> = cases
            .iter()
            .filter(|g| g.verdict != Verdict::Ok)
            .map(|g| format!("{} {}", g.result.id, g.verdict))
            .collect();
        if !notable.is_empty() {
            let _ = write!(line, "  {}", notable.join(", "));
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let known: Vec<&Graded<'_>> =
        graded.iter().filter(|g| g.class == Class::KnownFailure).collect();
    let new: Vec<&Graded<'_>> = graded.iter().filter(|g| g.class == Class::NewFailure).collect();
    let unexpected: Vec<&Graded<'_>> =
        graded.iter().filter(|g| g.class == Class::UnexpectedPass).collect();
    if !known.is_empty() || !unexpected.is_empty() {
        let _ = writeln!(out, "Expected failures (from --expect):");
        let _ = writeln!(out, "  known failures:    {}", ids(&known));
        let _ = writeln!(out, "  new failures:      {}", ids(&new));
        let _ = writeln!(
            out,
            "  unexpected passes: {}{}",
            ids(&unexpected),
            if unexpected.is_empty() { "" } else { "  (remove them from the expectations file)" }
        );
    }
    let blocking: Vec<&Graded<'_>> = graded.iter().filter(|g| g.blocking()).collect();
    let other_new = new.len() - blocking.len();
    let non_strict = graded.iter().filter(|g| g.verdict == Verdict::NonStrict).count();
    let verdict = if blocking.is_empty() {
        let mut s = String::from("CONFORMS: no MUST case failed");
        if !known.is_empty() {
            let _ = write!(s, " other than the {} expected", known.len());
        }
        let mut notes = Vec::new();
        if other_new > 0 {
            notes.push(format!("{other_new} SHOULD case(s) failed"));
        }
        if non_strict > 0 {
            notes.push(format!("{non_strict} case(s) NON-STRICT"));
        }
        if !notes.is_empty() {
            let _ = write!(s, " ({})", notes.join(", "));
        }
        style.paint(Verdict::Ok, &s)
    } else {
        style.paint(
            Verdict::Failed,
            &format!(
                "DOES NOT CONFORM: {} MUST case(s) failed: {}",
                blocking.len(),
                ids(&blocking)
            ),
        )
    };
    let _ = writeln!(out, "Result: {verdict}  (exit code {})", exit_code(graded));
    out
}

fn ids(cases: &[&Graded<'_>]) -> String {
    if cases.is_empty() {
        "none".into()
    } else {
        cases.iter().map(|g| g.result.id.as_str()).collect::<Vec<_>>().join(", ")
    }
}

/// The `--json` report.
pub fn json_report(
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
    let mut report = header;
    report["summary"] = json!({
        "by_level": levels,
        "known_failures": list(Class::KnownFailure),
        "new_failures": list(Class::NewFailure),
        "unexpected_passes": list(Class::UnexpectedPass),
        "exit_code": exit_code(graded),
    });
    report["cases"] = Value::Array(cases);
    report
}

/// Escapes text for XML attributes and content; characters XML 1.0 does
/// not allow are written as `\xHH`.
pub fn xml_escape(s: &str) -> String {
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

/// The `--junit` report: FAILED as `<failure>`, ERROR as `<error>`,
/// expected failures as `<skipped>`.
pub fn junit_report(
    graded: &[Graded<'_>],
    spec: &Spec,
    suite: &str,
    rerun: &dyn Fn(&str) -> String,
) -> String {
    let failures = graded
        .iter()
        .filter(|g| g.verdict == Verdict::Failed && g.class != Class::KnownFailure)
        .count();
    let errors = graded
        .iter()
        .filter(|g| g.verdict == Verdict::Error && g.class != Class::KnownFailure)
        .count();
    let skipped = graded.iter().filter(|g| g.class == Class::KnownFailure).count();
    let time: f64 = graded.iter().map(|g| g.result.duration.as_secs_f64()).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"{0}\" tests=\"{1}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{time:.3}\">",
        xml_escape(suite),
        graded.len()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{0}\" tests=\"{1}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{time:.3}\">",
        xml_escape(suite),
        graded.len()
    );
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
        let message = || xml_escape(&r.headline());
        match (g.class, g.verdict) {
            (Class::KnownFailure, _) => {
                let _ = writeln!(
                    out,
                    ">\n      <skipped message=\"expected to fail: {}\"/>\n    </testcase>",
                    xml_escape(g.expected_failure.unwrap_or(""))
                );
            }
            (_, v @ (Verdict::Failed | Verdict::Blocked | Verdict::NotImplemented)) => {
                let _ = writeln!(
                    out,
                    ">\n      <failure message=\"{}\" type=\"{v}\">{}</failure>\n    </testcase>",
                    message(),
                    detail()
                );
            }
            (_, Verdict::Error) => {
                let _ = writeln!(
                    out,
                    ">\n      <error message=\"{}\" type=\"ERROR\">{}</error>\n    </testcase>",
                    message(),
                    detail()
                );
            }
            (_, Verdict::NonStrict) => {
                let _ = writeln!(
                    out,
                    ">\n      <system-out>NON-STRICT: {}</system-out>\n    </testcase>",
                    message()
                );
            }
            (_, Verdict::Ok) => out.push_str("/>\n"),
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::conform::matcher::{Check, Finding};
    use crate::conform::outcome::StepReport;
    use crate::spec::Kind;

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
        let text = summary(&g, &Spec::default(), Style { color: false });
        assert!(text.contains("known failures:    A-4.1"), "{text}");
        assert!(text.contains("new failures:      A-3.1"), "{text}");
        assert!(text.contains("unexpected passes: A-5.1"), "{text}");
        assert!(text.contains("Result: CONFORMS"), "{text}");
        assert!(
            text.contains("MUST      4 cases: 2 OK, 1 NON-STRICT, 0 FAILED, 1 ERROR"),
            "{text}"
        );
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
        let xml =
            junit_report(&g, &Spec::default(), "conform server", &|id| format!("rerun {id} 'x'"));
        assert!(xml.contains("<testsuites name=\"conform server\" tests=\"4\" failures=\"1\" errors=\"1\" skipped=\"1\""), "{xml}");
        assert!(xml.contains("<failure message=\".message: a &lt;b&gt; &amp; &quot;c&quot; \\x01\" type=\"FAILED\">"), "{xml}");
        assert!(xml.contains("<error message="), "{xml}");
        assert!(
            xml.contains("<skipped message=\"expected to fail: known &lt;one&gt;\"/>"),
            "{xml}"
        );
        assert!(xml.contains("rerun A-2.1 &apos;x&apos;"), "{xml}");
        assert!(!xml.contains('\u{1}'));
        assert_eq!(xml.matches("<testcase").count(), 4);
        assert_eq!(
            xml.matches("</testcase>").count() + xml.matches("\"/>\n").count() - 1,
            4,
            "{xml}"
        );
    }

    #[test]
    fn lines_and_details() {
        let results = vec![result("A-2.1", Level::Must, Verdict::NonStrict)];
        let none = Expectations::default();
        let g = grade(&results, true, &none);
        let line = case_line(&g[0], Style { color: false });
        assert!(line.starts_with("FAILED*     A-2.1       MUST"), "{line:?}");
        let detail =
            case_detail(&g[0], &Spec::default(), "progjar-chat conform server --case A-2.1", true);
        assert!(
            detail
                .contains("---- A-2.1 (MUST) FAILED (NON-STRICT counted as FAILED, --strict) ----"),
            "{detail}"
        );
        assert!(
            detail.contains("Rerun just this case:  progjar-chat conform server --case A-2.1"),
            "{detail}"
        );
    }
}
