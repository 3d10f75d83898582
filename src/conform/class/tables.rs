//! `--csv` and `--markdown`: the matrix as a table, one row per
//! submission, one column per rule, for a spreadsheet or an LMS. Pure.

use super::matrix::{Cell, Matrix};

/// The result of a submission in one word: `conforms` when every part
/// does, else the first part's that does not.
fn result(row: &super::matrix::Row) -> String {
    row.parts
        .iter()
        .find(|p| p.exit_code != 0)
        .or(row.parts.first())
        .map_or_else(String::new, |p| p.result.clone())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// `submission,result,must_passed,must_total,should_passed,should_total,RULE,…`
pub(crate) fn csv(matrix: &Matrix) -> String {
    let mut header: Vec<String> =
        ["submission", "result", "must_passed", "must_total", "should_passed", "should_total"]
            .map(String::from)
            .to_vec();
    header.extend(matrix.columns.iter().map(|c| c.rule.clone()));
    let mut out = header.join(",") + "\n";
    for row in &matrix.rows {
        let sum = |f: fn(&super::matrix::PartLine) -> usize| -> String {
            row.parts.iter().map(f).sum::<usize>().to_string()
        };
        let mut fields = vec![
            csv_field(&row.name),
            result(row),
            sum(|p| p.must_passed),
            sum(|p| p.must_total),
            sum(|p| p.should_passed),
            sum(|p| p.should_total),
        ];
        fields.extend(row.cells.iter().map(|c| c.label().to_owned()));
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// A Markdown table: the submissions' results, then the matrix with
/// short verdicts (a key under it).
pub(crate) fn markdown(matrix: &Matrix) -> String {
    let mut out = String::from("| submission | result | MUST | SHOULD |");
    for column in &matrix.columns {
        out.push_str(&format!(" {} |", column.rule));
    }
    out.push_str("\n|---|---|---|---|");
    out.push_str(&"---|".repeat(matrix.columns.len()));
    out.push('\n');
    for row in &matrix.rows {
        let (mp, mt, sp, st) = row.parts.iter().fold((0, 0, 0, 0), |a, p| {
            (a.0 + p.must_passed, a.1 + p.must_total, a.2 + p.should_passed, a.3 + p.should_total)
        });
        out.push_str(&format!(
            "| {} | {} | {mp}/{mt} | {sp}/{st} |",
            md_cell(&row.name),
            result(row)
        ));
        for cell in &row.cells {
            out.push_str(&format!(" {} |", short(*cell)));
        }
        out.push('\n');
    }
    out.push_str("\nOK ok · NS non-strict · NI not implemented · BL blocked · FAIL failed · ERR error · UT untestable (it could not start) · blank: not submitted\n");
    out
}

fn short(cell: Cell) -> &'static str {
    use crate::conform::matcher::Verdict::*;
    match cell {
        Cell::Verdict(Ok) => "OK",
        Cell::Verdict(NonStrict) => "NS",
        Cell::Verdict(NotImplemented) => "NI",
        Cell::Verdict(Blocked) => "BL",
        Cell::Verdict(Failed) => "FAIL",
        Cell::Verdict(Error) => "ERR",
        Cell::Untestable => "UT",
        Cell::Absent => "",
    }
}

#[cfg(test)]
mod tests {
    use super::super::matrix::{Column, PartLine, Row};
    use super::*;
    use crate::conform::matcher::Verdict;
    use crate::spec::{Kind, Level};

    fn sample() -> Matrix {
        let column = |rule: &str| Column {
            rule: rule.into(),
            kind: Kind::Server,
            level: Level::Must,
            section: "AUTH".into(),
            text: String::new(),
        };
        let part = |result: &str, code| PartLine {
            kind: Kind::Server,
            result: result.into(),
            must_passed: 1,
            must_total: 2,
            should_passed: 3,
            should_total: 4,
            not_implemented: Vec::new(),
            failing: Vec::new(),
            untestable: None,
            seconds: 1.0,
            exit_code: code,
        };
        Matrix {
            columns: vec![column("AUTH-1"), column("AUTH-2")],
            rows: vec![
                Row {
                    name: "ana, b".into(),
                    parts: vec![part("does-not-conform", 1)],
                    cells: vec![Cell::Verdict(Verdict::Ok), Cell::Verdict(Verdict::Failed)],
                    conforms: false,
                },
                Row {
                    name: "budi".into(),
                    parts: vec![part("untestable", 1)],
                    cells: vec![Cell::Untestable, Cell::Absent],
                    conforms: false,
                },
            ],
        }
    }

    #[test]
    fn csv_has_a_column_per_rule_and_quotes_names() {
        let text = csv(&sample());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "submission,result,must_passed,must_total,should_passed,should_total,AUTH-1,AUTH-2"
        );
        assert_eq!(lines[1], "\"ana, b\",does-not-conform,1,2,3,4,OK,FAILED");
        assert_eq!(lines[2], "budi,untestable,1,2,3,4,UNTESTABLE,");
    }

    #[test]
    fn markdown_rows_line_up_with_the_header() {
        let text = markdown(&sample());
        let rows: Vec<&str> = text.lines().take(4).collect();
        let bars = |l: &str| l.matches(" |").count() + l.matches("---|").count();
        assert!(rows.iter().skip(2).all(|r| bars(r) == bars(rows[0])), "{text}");
        assert!(rows[2].ends_with("| OK | FAIL |"), "{text}");
        assert!(rows[3].contains("| UT |"), "{text}");
    }
}
