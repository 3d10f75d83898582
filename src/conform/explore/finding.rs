//! A finding: one deviation, shrunk, with how often it was seen; as a
//! person reads it, as the example file that replays it, and as JSON.
//!
//! Pure code.

use serde_json::{json, Value};

use super::compare::{Deviation, Signature};
use super::example::render;
use super::session::Session;
use crate::spec::{Level, Spec};

/// What came, or that nothing did.
fn actual(text: &str) -> &str {
    if text.is_empty() {
        "(nothing)"
    } else {
        text
    }
}

/// One deviation found, and the smallest session that shows it.
#[derive(Debug, Clone)]
pub(crate) struct Finding {
    /// 1, 2, … in the order found.
    pub(crate) number: usize,
    /// What shrinking kept: the deviating request's own rules and kind.
    pub(crate) core: Signature,
    /// How many sessions showed it.
    pub(crate) count: usize,
    /// The session (0-based index) that showed it first.
    pub(crate) first_session: u64,
    /// Seconds from the start of the exploration to the first sighting.
    pub(crate) found_after: f64,
    /// Requests in the session as generated.
    pub(crate) original_requests: usize,
    /// The smallest session found, the reference's replies to it, and how
    /// the implementation deviated on it.
    pub(crate) session: Session,
    pub(crate) replies: Vec<Vec<Option<Value>>>,
    pub(crate) deviation: Deviation,
    /// Whether shrinking finished (not cut short by an interruption).
    pub(crate) shrunk: bool,
}

impl Finding {
    /// The rule the example is filed under: the first of its signature.
    pub(crate) fn rule(&self) -> &str {
        self.deviation.signature.rules.first().copied().unwrap_or("TRANS-1")
    }

    /// MUST when any of its rules is MUST.
    pub(crate) fn level(&self, spec: &Spec) -> Level {
        let must = self
            .deviation
            .signature
            .rules
            .iter()
            .any(|r| spec.rule(r).is_some_and(|r| r.level == Level::Must));
        if must {
            Level::Must
        } else {
            Level::Should
        }
    }

    /// The example's ID: its rule and the finding's number.
    pub(crate) fn example_id(&self) -> String {
        format!("{}.{}", self.rule(), self.number)
    }

    /// The fenced example block.
    pub(crate) fn example(&self, spec: &Spec) -> String {
        render(&self.session, &self.replies, &self.example_id(), self.level(spec)).text
    }

    /// The file name under `--out`.
    pub(crate) fn file_name(&self) -> String {
        format!("{:02}-{}.md", self.number, self.rule())
    }

    /// The finding as printed: a heading line, the example, what differed.
    pub(crate) fn text(&self, spec: &Spec, seed: u64) -> String {
        let d = &self.deviation;
        let mut out = format!(
            "Finding {}: {} ({}), seen {} time{}\n",
            self.number,
            d.signature,
            self.level(spec),
            self.count,
            if self.count == 1 { "" } else { "s" }
        );
        out.push_str(&format!(
            "  first in session {} of seed {seed}, after {:.1} s; shrunk from {} to {} step{}{}\n",
            self.first_session + 1,
            self.found_after,
            self.original_requests,
            self.session.requests(),
            if self.session.requests() == 1 { "" } else { "s" },
            if self.shrunk { "" } else { " (shrinking was cut short)" }
        ));
        for line in self.example(spec).lines() {
            out.push_str(&format!("  {line}\n"));
        }
        out.push_str(&format!("  expected: {}\n", d.expected));
        out.push_str(&format!("  actual:   {}\n", actual(&d.actual)));
        if !d.headline.is_empty() {
            out.push_str(&format!("  why:      {}\n", d.headline));
        }
        out
    }

    /// The example file: a heading, the rules it touches, the example.
    pub(crate) fn file(&self, spec: &Spec, seed: u64) -> String {
        let d = &self.deviation;
        let rules: Vec<String> =
            d.signature.rules.iter().map(|r| format!("[{r}](spec/PROTOCOL.md#{r})")).collect();
        format!(
            "# Finding {}: {}\n\n\
             Found by `progjar-chat conform explore --seed {seed}` (session {}, seen {} time{}).\n\
             Rules: {} ({}). The reference server answers as the example shows;\n\
             the implementation that was explored did not:\n\n\
             - expected: `{}`\n\
             - actual: `{}`\n\
             - why: {}\n\n\
             Replay it: `progjar-chat conform server --examples {} --spawn CMD` (or `--connect HOST:PORT`).\n\n\
             {}",
            self.number,
            d.signature,
            self.first_session + 1,
            self.count,
            if self.count == 1 { "" } else { "s" },
            rules.join(", "),
            self.level(spec),
            d.expected.replace('`', "'"),
            actual(&d.actual).replace('`', "'"),
            d.headline,
            self.file_name(),
            self.example(spec)
        )
    }

    pub(crate) fn json(&self, spec: &Spec, file: Option<String>) -> Value {
        let d = &self.deviation;
        json!({
            "number": self.number,
            "signature": d.signature.to_string(),
            "rules": d.signature.rules,
            "verdict": d.signature.verdict,
            "kind": d.signature.kind,
            "level": self.level(spec),
            "count": self.count,
            "first_session": self.first_session + 1,
            "found_after_s": self.found_after,
            "steps": self.session.requests(),
            "original_steps": self.original_requests,
            "shrunk": self.shrunk,
            "example_id": self.example_id(),
            "example": self.example(spec),
            "file": file,
            "expected": d.expected,
            "actual": d.actual,
            "why": d.headline,
        })
    }
}
