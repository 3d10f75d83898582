//! Writing a graded run out: the readable text, `--json` and `--junit`.
//! Pure code: graded results in, strings out (the grading itself is in
//! [`grade`](super::grade)).

use std::fmt::Write as _;

use super::grade::{Class, Graded};
use super::layout::one_line;
use super::matcher::Verdict;
use super::outcome::CaseResult;

mod detail;
pub use detail::case_detail;
pub(crate) use detail::{case_brief, missing_detail, same_blocker_line, same_cause_line};

#[cfg(test)]
mod tests;

/// Terminal colours, when they are wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Style {
    pub color: bool,
}

impl Style {
    pub(crate) fn paint(self, verdict: Verdict, text: &str) -> String {
        use anstyle::AnsiColor;
        let color = match verdict {
            Verdict::Ok => AnsiColor::Green,
            Verdict::NonStrict => AnsiColor::Yellow,
            Verdict::NotImplemented | Verdict::Blocked => AnsiColor::Cyan,
            Verdict::Failed => AnsiColor::Red,
            Verdict::Error => AnsiColor::Magenta,
        };
        self.styled(anstyle::Style::new().fg_color(Some(color.into())), text)
    }

    fn styled(self, style: anstyle::Style, text: &str) -> String {
        if self.color {
            format!("{style}{text}{style:#}")
        } else {
            text.to_owned()
        }
    }

    pub(crate) fn bold(self, text: &str) -> String {
        self.styled(anstyle::Style::new().bold(), text)
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

/// The verdict as it counts, `*` when `--strict` changed it.
pub(crate) fn verdict_label(g: &Graded<'_>) -> String {
    let mut label = g.verdict.as_str().to_owned();
    if g.verdict != g.result.verdict {
        label = format!("{label}*");
    }
    label
}

/// Why a case did not pass, in one line: the blocker or the missing
/// command first, where there is one.
pub(crate) fn why(g: &Graded<'_>) -> String {
    let r = g.result;
    match g.verdict {
        Verdict::NotImplemented => {
            format!("`{}` not implemented: not run", r.missing_command.as_deref().unwrap_or("?"))
        }
        Verdict::Blocked => {
            let headline = r.headline();
            let blocker = r.blocked_by.as_deref().unwrap_or("?");
            if headline.is_empty() {
                format!("blocked by {blocker}")
            } else {
                format!("blocked by {blocker}: {headline}")
            }
        }
        _ => r.headline(),
    }
}

/// One line per case, as the run goes: `FAILED      SEND-2.1   MUST    3 ms  why`.
pub(crate) fn case_line(g: &Graded<'_>, style: Style) -> String {
    let r = g.result;
    let mut line = format!(
        "{}  {:<11} {:<6}  {:>7}",
        style.paint(g.verdict, &format!("{:<10}", verdict_label(g))),
        r.id,
        r.level.as_str(),
        duration(r)
    );
    let why = why(g);
    if !why.is_empty() {
        let _ = write!(line, "  {}", one_line(&why, 110));
    }
    match g.class {
        Class::KnownFailure => line.push_str("  [expected to fail]"),
        Class::UnexpectedPass => line.push_str("  [expected to fail, but passed]"),
        _ => {}
    }
    line
}
