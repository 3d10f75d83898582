//! Grading a run: what each case counts as once `--strict`,
//! `--accept-wording` and `--expect` are applied, the overall result
//! (CONFORMS, CONFORMS EXCEPT WORDING, DOES NOT CONFORM) and the exit
//! code. Pure code, the rules of spec §1 ("How the result is weighed").

use super::matcher::Verdict;
use super::outcome::CaseResult;
use super::select::Expectations;
use crate::spec::Level;

/// What a case means for the run, once `--strict`, `--accept-wording`
/// and `--expect` are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// Passed: OK, or NON-STRICT in a way that does not count.
    Pass,
    /// Fell short, and the expectations file says it would.
    KnownFailure,
    /// Fell short, and nothing said it would: FAILED, ERROR, BLOCKED,
    /// NOT-IMPLEMENTED, or (in a MUST case, without `--accept-wording`)
    /// NON-STRICT because of its wording.
    NewFailure,
    /// Listed as expected to fail, but passed.
    UnexpectedPass,
}

/// How a run is graded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Policy {
    /// `--strict`: NON-STRICT counts as FAILED, every case as MUST.
    pub strict: bool,
    /// `--accept-wording`: a MUST case NON-STRICT because of its wording
    /// does not change the exit code.
    pub accept_wording: bool,
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
    /// NON-STRICT (as counted) because a reply text is worded otherwise
    /// than the spec's ([`CaseResult::wording`]).
    pub wording: bool,
    /// `wording`, and `--accept-wording` was given.
    pub wording_accepted: bool,
}

impl Graded<'_> {
    /// Whether this case makes the run fail (exit code 1).
    pub fn blocking(&self) -> bool {
        self.class == Class::NewFailure && self.level == Level::Must
    }

    /// Whether this case makes the implementation not conform: a MUST case
    /// FAILED, ERROR, BLOCKED or NOT-IMPLEMENTED that nothing expected.
    pub(crate) fn nonconforming(&self) -> bool {
        self.blocking() && self.verdict >= Verdict::NotImplemented
    }

    /// Whether this is a MUST case NON-STRICT because of its wording, and
    /// not an expected failure (accepted with `--accept-wording` or not).
    pub(crate) fn must_wording(&self) -> bool {
        self.wording && self.level == Level::Must && self.class != Class::KnownFailure
    }
}

/// Applies `--strict` and `--expect` to the results (wording not accepted).
pub fn grade<'a>(
    results: &'a [CaseResult],
    strict: bool,
    expectations: &'a Expectations,
) -> Vec<Graded<'a>> {
    grade_with(results, Policy { strict, accept_wording: false }, expectations)
}

/// Applies `--strict`, `--accept-wording` and `--expect` to the results.
pub(crate) fn grade_with<'a>(
    results: &'a [CaseResult],
    policy: Policy,
    expectations: &'a Expectations,
) -> Vec<Graded<'a>> {
    results
        .iter()
        .map(|result| {
            let level = if policy.strict { Level::Must } else { result.level };
            let verdict = if policy.strict && result.verdict == Verdict::NonStrict {
                Verdict::Failed
            } else {
                result.verdict
            };
            let wording = verdict == Verdict::NonStrict && result.wording();
            let expected_failure = expectations.reason(&result.id);
            let short = verdict >= Verdict::NotImplemented
                || (wording && level == Level::Must && !policy.accept_wording);
            let class = match (short, expected_failure.is_some()) {
                (true, true) => Class::KnownFailure,
                (true, false) => Class::NewFailure,
                (false, true) => Class::UnexpectedPass,
                (false, false) => Class::Pass,
            };
            Graded {
                result,
                level,
                verdict,
                expected_failure,
                class,
                wording,
                wording_accepted: wording && policy.accept_wording,
            }
        })
        .collect()
}

/// The overall result of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Conformance {
    /// No MUST case fell short (other than the expected ones).
    Conforms,
    /// Only the wording of MUST cases differs from the spec's.
    ConformsExceptWording,
    /// A MUST case is FAILED, ERROR, BLOCKED or NOT-IMPLEMENTED.
    DoesNotConform,
}

impl Conformance {
    pub fn as_str(self) -> &'static str {
        match self {
            Conformance::Conforms => "conforms",
            Conformance::ConformsExceptWording => "conforms-except-wording",
            Conformance::DoesNotConform => "does-not-conform",
        }
    }
}

/// The overall result.
pub fn conformance(graded: &[Graded<'_>]) -> Conformance {
    if graded.iter().any(Graded::nonconforming) {
        Conformance::DoesNotConform
    } else if graded.iter().any(Graded::must_wording) {
        Conformance::ConformsExceptWording
    } else {
        Conformance::Conforms
    }
}

/// 0: conforms (or conforms except wording, with `--accept-wording`);
/// 1: does not, or conforms except wording without `--accept-wording`.
pub fn exit_code(graded: &[Graded<'_>]) -> u8 {
    u8::from(graded.iter().any(Graded::blocking))
}
