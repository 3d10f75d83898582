//! What running a case produced: the verdict of each step that did not
//! simply pass, and of the case. Pure data, shared by the runner that
//! fills it and the report that reads it.

use std::time::Duration;

use super::matcher::{Check, Verdict};
use super::transcript::Entry;
use crate::spec::{Example, Kind, Level};

/// One step that did not simply pass.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct StepReport {
    /// 1-based line of the step in the spec.
    pub line: usize,
    /// The step as the spec writes it.
    pub source: String,
    pub verdict: Verdict,
    pub check: Check,
}

/// The result of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub id: String,
    pub rule: String,
    pub level: Level,
    pub kind: Kind,
    /// Line of the example in the spec.
    pub spec_line: usize,
    pub verdict: Verdict,
    /// The steps that were not OK, in order; the last one stopped the case
    /// if it was FAILED or ERROR.
    pub(crate) steps: Vec<StepReport>,
    pub(crate) transcript: Vec<Entry>,
    pub duration: Duration,
    /// With [`Verdict::Blocked`]: the rule whose `given` step failed.
    pub blocked_by: Option<String>,
    /// With [`Verdict::NotImplemented`]: the command the implementation
    /// does not have.
    pub missing_command: Option<String>,
}

impl CaseResult {
    /// The result of a case that was not run, with the one reason why
    /// (`source` names what decided it, e.g. `(probe)`).
    pub(crate) fn not_run(
        example: &Example,
        verdict: Verdict,
        source: &str,
        message: String,
    ) -> Self {
        let check = Check {
            findings: vec![super::matcher::Finding::new(verdict, "", message)],
            ..Check::default()
        };
        CaseResult {
            id: example.id.clone(),
            rule: example.rule.clone(),
            level: example.level,
            kind: example.kind,
            spec_line: example.line,
            verdict,
            steps: vec![StepReport { line: example.line, source: source.into(), verdict, check }],
            transcript: Vec::new(),
            duration: Duration::ZERO,
            blocked_by: None,
            missing_command: None,
        }
    }

    /// The step that decided the verdict.
    pub(crate) fn decisive(&self) -> Option<&StepReport> {
        self.steps.iter().rev().find(|s| s.verdict == self.verdict)
    }

    /// Whether a NON-STRICT verdict comes from a reply text worded
    /// otherwise than the spec's (what `--accept-wording` accepts), rather
    /// than from form, order or extra keys, which never count.
    pub fn wording(&self) -> bool {
        self.verdict == Verdict::NonStrict
            && self.steps.iter().any(|s| s.check.findings.iter().any(|f| f.wording))
    }

    /// One line saying why, for the progress list.
    pub(crate) fn headline(&self) -> String {
        match self.decisive() {
            Some(step) => step.check.headline().unwrap_or_default(),
            None => String::new(),
        }
    }
}

/// Progress, for live output.
pub enum Progress<'a> {
    Start { example: &'a Example, index: usize, total: usize },
    Done { result: &'a CaseResult, index: usize, total: usize },
}
