//! The class at a glance: submissions x rules, each cell the verdict of
//! that rule for that submission (the worst of its cases, as graded),
//! and one line per submission: what passed, what is missing, what fails.
//! Pure code: graded runs in, plain data out, for every report.

use serde::Serialize;

use crate::conform::grade::{self, Conformance, Graded, Policy};
use crate::conform::matcher::Verdict;
use crate::conform::summary::by_level;
use crate::conform::triage::{triage, Urgency};
use crate::spec::{Kind, Level, Spec};

use super::run::{PartOutcome, SubmissionRun};

/// A rule: one column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Column {
    pub rule: String,
    #[serde(serialize_with = "kind_name")]
    pub kind: Kind,
    pub level: Level,
    /// `AUTH` for `AUTH-1`: the columns are grouped by it.
    pub section: String,
    pub text: String,
}

/// `server` or `client`.
fn kind_name<S: serde::Serializer>(kind: &Kind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.as_str())
}

/// What one cell says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Cell {
    /// The rule's verdict.
    Verdict(Verdict),
    /// The server or client could not be tested at all.
    Untestable,
    /// The submission has no server (or client) to test.
    Absent,
}

impl Cell {
    pub(super) fn label(self) -> &'static str {
        match self {
            Cell::Verdict(v) => v.as_str(),
            Cell::Untestable => "UNTESTABLE",
            Cell::Absent => "",
        }
    }
}

/// The result of a submission's server or client.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct PartLine {
    #[serde(serialize_with = "kind_name")]
    pub kind: Kind,
    /// `conforms`, `conforms-except-wording`, `does-not-conform` or
    /// `untestable`.
    pub result: String,
    pub must_passed: usize,
    pub must_total: usize,
    pub should_passed: usize,
    pub should_total: usize,
    /// Commands it lacks.
    pub not_implemented: Vec<String>,
    /// The rules that fall short, most urgent first.
    pub failing: Vec<String>,
    /// Why it could not be tested.
    pub untestable: Option<String>,
    pub seconds: f64,
    /// 0 conforms, 1 does not.
    pub exit_code: u8,
}

/// A submission: one row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Row {
    pub name: String,
    pub parts: Vec<PartLine>,
    pub cells: Vec<Cell>,
    /// Whether every part conforms.
    pub conforms: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Matrix {
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
}

impl Matrix {
    /// 0 when every submission conforms, else 1.
    pub(super) fn exit_code(&self) -> u8 {
        u8::from(self.rows.iter().any(|r| !r.conforms))
    }
}

/// The rules with examples, server ones first, in the spec's order.
pub(crate) fn columns(spec: &Spec) -> Vec<Column> {
    let mut columns: Vec<Column> = Vec::new();
    for kind in [Kind::Server, Kind::Client] {
        for example in spec.examples_of(kind) {
            if columns.iter().any(|c| c.rule == example.rule) {
                continue;
            }
            let rule = spec.rule(&example.rule);
            columns.push(Column {
                rule: example.rule.clone(),
                kind,
                level: rule.map_or(example.level, |r| r.level),
                section: example.rule.split('-').next().unwrap_or("").to_owned(),
                text: rule.map(|r| r.text.clone()).unwrap_or_default(),
            });
        }
    }
    columns
}

/// The matrix of a graded class.
pub(crate) fn matrix(spec: &Spec, class: &[SubmissionRun], policy: Policy) -> Matrix {
    let columns = columns(spec);
    let rows = class.iter().map(|s| row(s, &columns, policy)).collect();
    Matrix { columns, rows }
}

fn row(run: &SubmissionRun, columns: &[Column], policy: Policy) -> Row {
    let mut cells = vec![Cell::Absent; columns.len()];
    let mut parts = Vec::new();
    if let Some(why) = &run.broken {
        cells.fill(Cell::Untestable);
        return Row {
            name: run.submission.name.clone(),
            parts: vec![untestable_line(Kind::Server, why, 0.0)],
            cells,
            conforms: false,
        };
    }
    for part in &run.parts {
        let seconds = part.took.as_secs_f64();
        let results = match &part.outcome {
            PartOutcome::Untestable(why) => {
                for (cell, column) in cells.iter_mut().zip(columns) {
                    if column.kind == part.kind {
                        *cell = Cell::Untestable;
                    }
                }
                parts.push(untestable_line(part.kind, why, seconds));
                continue;
            }
            PartOutcome::Ran(results) => results,
        };
        let graded = grade::grade_with(results, policy, &run.expectations);
        let triaged = triage(&graded);
        for rule in &triaged.rules {
            if let Some(i) = columns.iter().position(|c| c.rule == rule.rule) {
                cells[i] = Cell::Verdict(rule.verdict);
            }
        }
        parts.push(part_line(part.kind, &graded, seconds));
    }
    let conforms = parts.iter().all(|p| p.exit_code == 0);
    Row { name: run.submission.name.clone(), parts, cells, conforms }
}

fn untestable_line(kind: Kind, why: &str, seconds: f64) -> PartLine {
    PartLine {
        kind,
        result: "untestable".into(),
        must_passed: 0,
        must_total: 0,
        should_passed: 0,
        should_total: 0,
        not_implemented: Vec::new(),
        failing: Vec::new(),
        untestable: Some(why.lines().next().unwrap_or(why).to_owned()),
        seconds,
        exit_code: 1,
    }
}

fn part_line(kind: Kind, graded: &[Graded<'_>], seconds: f64) -> PartLine {
    let levels = by_level(graded);
    let passed = |level: Level| {
        let counts = levels.get(&level).copied().unwrap_or_default();
        let passing =
            graded.iter().filter(|g| g.level == level && g.class == grade::Class::Pass).count();
        (passing, counts.total())
    };
    let (must_passed, must_total) = passed(Level::Must);
    let (should_passed, should_total) = passed(Level::Should);
    let triaged = triage(graded);
    let failing = triaged
        .rules
        .iter()
        // What fails: a missing command is under "lacks", a blocked case
        // is the fault of the rule that blocked it, named here itself.
        .filter(|r| r.urgency < Urgency::Passing && r.verdict >= Verdict::Failed)
        .map(|r| r.rule.to_owned())
        .collect();
    let result = match grade::conformance(graded) {
        Conformance::Conforms => Conformance::Conforms.as_str(),
        other => other.as_str(),
    };
    PartLine {
        kind,
        result: result.to_owned(),
        must_passed,
        must_total,
        should_passed,
        should_total,
        not_implemented: triaged.missing.iter().map(|m| m.command.to_owned()).collect(),
        failing,
        untestable: None,
        seconds,
        exit_code: grade::exit_code(graded),
    }
}

/// The failing rules a terminal line names; the reports name them all.
const FAILS_SHOWN: usize = 8;

/// One line per submission part, for the terminal:
/// `budi      server  DOES NOT CONFORM  MUST 13/15  SHOULD 50/57  lacks: list  fails: AUTH-1, SEND-2`.
pub(crate) fn terminal_lines(matrix: &Matrix) -> Vec<String> {
    let width = matrix.rows.iter().map(|r| r.name.chars().count()).max().unwrap_or(4).max(4);
    let mut lines = Vec::new();
    for row in &matrix.rows {
        for part in &row.parts {
            let result = part.result.to_uppercase().replace('-', " ");
            let mut line =
                format!("{:<width$}  {:<6}  {:<23}", row.name, part.kind.as_str(), result);
            if let Some(why) = &part.untestable {
                line.push_str(&format!("  {why}"));
            } else {
                line.push_str(&format!(
                    "  MUST {}/{}  SHOULD {}/{}",
                    part.must_passed, part.must_total, part.should_passed, part.should_total
                ));
                if !part.not_implemented.is_empty() {
                    line.push_str(&format!("  lacks: {}", part.not_implemented.join(", ")));
                }
                if !part.failing.is_empty() {
                    let shown = part.failing.len().min(FAILS_SHOWN);
                    line.push_str(&format!("  fails: {}", part.failing[..shown].join(", ")));
                    if part.failing.len() > shown {
                        line.push_str(&format!(" and {} more", part.failing.len() - shown));
                    }
                }
            }
            line.push_str(&format!("  ({:.1} s)", part.seconds));
            lines.push(line);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::super::run::graded_for_tests;
    use super::*;
    use crate::spec::Example;

    #[test]
    fn a_line_names_as_failing_only_the_rules_that_fail() {
        let doc = "**A-1** (MUST; x) y.\n\n```example A-1.1 MUST\nC1> auth messi surabaya \\r\\n\nC1< {\"status\": \"OK\"}\n```\n\n\
                   **B-1** (SHOULD; x) z.\n\n```example B-1.1 SHOULD\nC1> list x \\r\\n\nC1< {\"status\": \"OK\"}\n```\n\n\
                   **C-1** (SHOULD; x) w.\n\n```example C-1.1 SHOULD\nC1> inbox x \\r\\n\nC1< {\"status\": \"OK\"}\n```\n";
        let spec = crate::spec::parse(doc).unwrap();
        let verdict = |e: &Example| match e.id.as_str() {
            "A-1.1" => Verdict::Failed,
            "B-1.1" => Verdict::Blocked,
            _ => Verdict::Error,
        };
        let class = [graded_for_tests(&spec, "budi", verdict)];
        let matrix = matrix(&spec, &class, Policy::default());
        assert_eq!(matrix.rows[0].parts[0].failing, ["A-1", "C-1"]);
    }
}
