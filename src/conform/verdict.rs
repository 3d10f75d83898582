//! How bad a difference is: the verdict of a step or a case, the
//! findings behind it and what a check of one step produced. Plain data,
//! shared by every checker, the runner and the reports.

use std::fmt;

use super::cause::Cause;
use super::diff::DiffLine;

/// The outcome of a step or a case, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Verdict {
    #[serde(rename = "OK")]
    Ok,
    /// Right status and shape; a message string, the byte form or an
    /// ordering differs from the spec's exact wording.
    #[serde(rename = "NON-STRICT")]
    NonStrict,
    /// The case uses a command the implementation does not have at all:
    /// reported once, with that command's rules, and not run.
    #[serde(rename = "NOT-IMPLEMENTED")]
    NotImplemented,
    /// A `given` step, which only prepares state, failed: the case says
    /// nothing about its own rule; the rule that step relies on is named.
    #[serde(rename = "BLOCKED")]
    Blocked,
    /// The implementation did something else than the rule says.
    #[serde(rename = "FAILED")]
    Failed,
    /// The case could not run: refused, the process exited, a runner fault.
    #[serde(rename = "ERROR")]
    Error,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "OK",
            Verdict::NonStrict => "NON-STRICT",
            Verdict::NotImplemented => "NOT-IMPLEMENTED",
            Verdict::Blocked => "BLOCKED",
            Verdict::Failed => "FAILED",
            Verdict::Error => "ERROR",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One difference between expected and actual.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Finding {
    /// [`Verdict::NonStrict`] or [`Verdict::Failed`] (or `Error` from the runner).
    pub severity: Verdict,
    /// Where in the reply, e.g. `.messages[1]`; empty for the whole.
    pub path: String,
    pub message: String,
    /// A reply text worded otherwise than the spec's, and nothing worse:
    /// what `--accept-wording` accepts in a MUST case.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub wording: bool,
    /// A mistake known to show up in many cases, when this is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
    /// The rules this difference is charged to, when it is charged to
    /// some rules only (a reply text's wording, to the rule of that text;
    /// a stripped message text, to the rules of the text). In a case of
    /// another rule it is noted and not counted: one mistake, one rule.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub charged_to: Vec<String>,
}

impl Finding {
    pub(crate) fn new(
        severity: Verdict,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity,
            path: path.into(),
            message: message.into(),
            wording: false,
            cause: None,
            charged_to: Vec::new(),
        }
    }

    /// The same finding, tagged with its known cause (and charged to the
    /// cause's rules).
    pub(crate) fn because(mut self, cause: Cause) -> Self {
        self.cause = Some(cause);
        self.charged_to = cause.rules().iter().map(|r| (*r).to_owned()).collect();
        self
    }

    /// Whether this finding counts in a case of `rule`; one that does not
    /// is kept as a note.
    pub(crate) fn counts_in(&self, rule: &str) -> bool {
        self.charged_to.is_empty() || self.charged_to.iter().any(|r| r == rule)
    }

    /// `path: message`, or the message alone.
    pub(crate) fn render(&self) -> String {
        if self.path.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.path, self.message)
        }
    }
}

/// The result of checking one step.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub(crate) struct Check {
    pub findings: Vec<Finding>,
    /// Variables bound by this step, in order.
    #[serde(skip)]
    pub bindings: Vec<(String, String)>,
    /// The expectation as a person reads it (variables filled in).
    pub expected: String,
    /// What was received, escaped.
    pub actual: String,
    pub diff: Vec<DiffLine>,
}

impl Check {
    /// The worst severity among the findings.
    pub(crate) fn verdict(&self) -> Verdict {
        self.findings.iter().map(|f| f.severity).max().unwrap_or(Verdict::Ok)
    }

    /// The most important finding, rendered.
    pub(crate) fn headline(&self) -> Option<String> {
        let worst = self.verdict();
        self.findings.iter().find(|f| f.severity == worst).map(Finding::render)
    }

    pub(crate) fn push(
        &mut self,
        severity: Verdict,
        path: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.findings.push(Finding::new(severity, path, message));
    }
}
