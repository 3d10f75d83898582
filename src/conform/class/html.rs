//! `--html`: one self-contained page (no network, no external asset:
//! its style and script are in it), rendered from the template
//! `page.html` with the class's data: the matrix grouped by section and
//! coloured by verdict, MUST/SHOULD filters, each cell's cases on a click
//! (transcript, expected and actual, the rerun command), and a panel per
//! submission to hand to the student. Pure: data in, text out.

use minijinja::{context, AutoEscape, Environment};
use serde::Serialize;

use crate::conform::matcher::Verdict;
use crate::conform::outcome::CaseResult;
use crate::spec::Level;

use super::matrix::{Cell, Column, Matrix, PartLine};
use super::reports::{graded_part, rerun, Context};
use super::run::{PartOutcome, SubmissionRun};

const TEMPLATE: &str = include_str!("page.html");

#[derive(Serialize)]
struct Section<'a> {
    name: &'a str,
    columns: Vec<&'a Column>,
}

#[derive(Serialize)]
struct CellView<'a> {
    index: usize,
    rule: &'a str,
    label: &'static str,
    short: &'static str,
    level: Level,
}

#[derive(Serialize)]
struct CaseView {
    id: String,
    level: Level,
    verdict: Verdict,
    message: String,
    step: Option<String>,
    expected: String,
    actual: String,
    transcript: String,
    rerun: String,
}

#[derive(Serialize)]
struct Detail<'a> {
    index: usize,
    rule: &'a str,
    text: &'a str,
    label: &'static str,
    untestable: Option<&'a str>,
    cases: Vec<CaseView>,
}

#[derive(Serialize)]
struct RowView<'a> {
    name: &'a str,
    result: String,
    conforms: bool,
    parts: &'a [PartLine],
    cells: Vec<CellView<'a>>,
    details: Vec<Detail<'a>>,
    /// The cases that fall short, for the student's panel.
    failures: Vec<CaseView>,
}

fn short(cell: Cell) -> &'static str {
    match cell {
        Cell::Verdict(Verdict::Ok) => "✓",
        Cell::Verdict(Verdict::NonStrict) => "~",
        Cell::Verdict(Verdict::NotImplemented) => "–",
        Cell::Verdict(Verdict::Blocked) => "B",
        Cell::Verdict(Verdict::Failed) => "✗",
        Cell::Verdict(Verdict::Error) => "E",
        Cell::Untestable => "U",
        Cell::Absent => "",
    }
}

fn case_view(result: &CaseResult, rerun: String) -> CaseView {
    let decisive = result.decisive();
    let transcript = result
        .transcript
        .iter()
        .map(|e| format!("{:>6} ms  {:<7} {}", e.ms, e.tag, e.text))
        .collect::<Vec<_>>()
        .join("\n");
    CaseView {
        id: result.id.clone(),
        level: result.level,
        verdict: result.verdict,
        message: if result.verdict == Verdict::Ok { String::new() } else { result.headline() },
        step: decisive.map(|s| s.source.clone()),
        expected: decisive.map(|s| s.check.expected.clone()).unwrap_or_default(),
        actual: decisive.map(|s| s.check.actual.clone()).unwrap_or_default(),
        transcript,
        rerun,
    }
}

fn row_view<'a>(
    ctx: &Context<'_>,
    run: &'a SubmissionRun,
    row: &'a super::matrix::Row,
    columns: &'a [Column],
) -> RowView<'a> {
    let cells = row
        .cells
        .iter()
        .zip(columns)
        .enumerate()
        .map(|(index, (cell, column))| CellView {
            index,
            rule: &column.rule,
            label: cell.label(),
            short: short(*cell),
            level: column.level,
        })
        .collect();
    let mut failures = Vec::new();
    let details = columns
        .iter()
        .zip(&row.cells)
        .enumerate()
        .map(|(index, (column, cell))| {
            let mut detail = Detail {
                index,
                rule: &column.rule,
                text: &column.text,
                label: cell.label(),
                untestable: run.broken.as_deref(),
                cases: Vec::new(),
            };
            for part in run.parts.iter().filter(|p| p.kind == column.kind) {
                match &part.outcome {
                    PartOutcome::Untestable(why) => detail.untestable = Some(why),
                    PartOutcome::Ran(_) => {
                        for g in graded_part(run, part, ctx.policy) {
                            if g.result.rule != column.rule {
                                continue;
                            }
                            let view = case_view(g.result, rerun(run, part, ctx, &g.result.id));
                            if g.blocking() {
                                failures
                                    .push(case_view(g.result, rerun(run, part, ctx, &g.result.id)));
                            }
                            detail.cases.push(view);
                        }
                    }
                }
            }
            detail
        })
        .collect();
    let result = row
        .parts
        .iter()
        .find(|p| p.exit_code != 0)
        .or(row.parts.first())
        .map_or_else(String::new, |p| p.result.clone());
    RowView {
        name: &row.name,
        result,
        conforms: row.conforms,
        parts: &row.parts,
        cells,
        details,
        failures,
    }
}

/// The page.
pub(crate) fn page(
    ctx: &Context<'_>,
    class: &[SubmissionRun],
    matrix: &Matrix,
) -> Result<String, String> {
    let mut sections: Vec<Section<'_>> = Vec::new();
    for column in &matrix.columns {
        match sections.last_mut() {
            Some(s) if s.name == column.section => s.columns.push(column),
            _ => sections.push(Section { name: &column.section, columns: vec![column] }),
        }
    }
    let rows: Vec<RowView<'_>> = class
        .iter()
        .zip(&matrix.rows)
        .map(|(run, row)| row_view(ctx, run, row, &matrix.columns))
        .collect();
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.add_template("page.html", TEMPLATE).map_err(|e| e.to_string())?;
    let template = env.get_template("page.html").map_err(|e| e.to_string())?;
    template
        .render(context! {
            count => matrix.rows.len(),
            conforming => matrix.rows.iter().filter(|r| r.conforms).count(),
            spec_name => ctx.spec_name,
            exit_code => ctx.exit_code,
            verdicts => ["OK", "NON-STRICT", "NOT-IMPLEMENTED", "BLOCKED", "FAILED", "ERROR", "UNTESTABLE"],
            sections => sections,
            rows => rows,
        })
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::super::matrix;
    use super::super::run::graded_for_tests;
    use super::*;
    use crate::conform::grade::Policy;

    #[test]
    fn every_cell_and_name_opens_a_panel_that_is_in_the_page() {
        let doc = "**A-1** (MUST; x) y.\n\n```example A-1.1 MUST\nC1> auth messi surabaya \\r\\n\nC1< {\"status\": \"OK\"}\n```\n\n**B-1** (SHOULD; x) z.\n\n```example B-1.1 SHOULD\nC1> list x \\r\\n\nC1< {\"status\": \"OK\"}\n```\n";
        let spec = crate::spec::parse(doc).unwrap();
        let student = |name: &str, verdict: Verdict| graded_for_tests(&spec, name, |_| verdict);
        let class = [student("ana", Verdict::Ok), student("budi", Verdict::Failed)];
        let policy = Policy::default();
        let matrix = matrix::matrix(&spec, &class, policy);
        let ctx = Context {
            spec: &spec,
            spec_name: "spec.md",
            policy,
            source: &[],
            timeout_default: None,
            jobs: 1,
            exit_code: matrix.exit_code(),
        };
        let html = page(&ctx, &class, &matrix).unwrap();
        assert_eq!(html.matches("<td class=\"cell").count(), 4);
        let panels: Vec<&str> = html
            .split("data-panel=\"")
            .skip(1)
            .map(|rest| &rest[..rest.find('"').unwrap()])
            .collect();
        assert_eq!(panels.len(), 6, "two names and four cells");
        for panel in panels {
            assert!(html.contains(&format!("id=\"{panel}\"")), "no panel {panel}");
        }
        assert!(html
            .contains("<td class=\"cell v-FAILED l-MUST\" data-rule=\"A-1\" data-panel=\"d-1-0\""));
        // Text from the run is escaped, not pasted.
        assert!(html.contains("&lt;b&gt;why") && !html.contains("<b>why"));
    }
}
