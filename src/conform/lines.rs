//! A client's printed lines and prompts against the example's `U<` and
//! `U?` lines.

use serde_json::Value;

use super::form::{byte_diff, first_difference, form_hints};
use super::matcher::{python_json, Context, Matcher};
use super::verdict::{Check, Verdict};
use crate::spec::pattern::{escape_bytes, Bindings, Json, Seg, Text};

/// Checks a line the client printed against a `U<` line.
pub(crate) fn check_line(expected: &Text, actual: &str, vars: &Bindings, ctx: &Context) -> Check {
    let mut check = match check_text(
        expected,
        actual,
        vars,
        "the line differs only in white space at its ends",
    ) {
        Ok(done) => return done,
        Err(check) => check,
    };
    // A JSON line (inbox, list, logout) spelled differently?
    if let (Some(pattern), Ok(value)) =
        (Json::from_exact(expected), serde_json::from_str::<Value>(actual.trim()))
    {
        let mut m = Matcher::new(vars, ctx);
        m.value(&pattern, &value, "", 1);
        if !m.findings.iter().any(|f| f.severity >= Verdict::Failed) {
            check.bindings = m.bound;
            check.findings = m.findings;
            let expected_text = pattern.to_value(vars).map(|v| python_json(&v));
            let hints = form_hints(expected_text.as_deref(), actual.trim().as_bytes());
            let hints = if hints.is_empty() {
                first_difference(expected_text.as_deref(), actual.trim().as_bytes())
            } else {
                hints.join("; ")
            };
            check.push(
                Verdict::NonStrict,
                "",
                format!("the same JSON spelled differently: {hints}"),
            );
            return check;
        }
    }
    let mut message = "the client printed another line".to_string();
    let t = actual.trim_start();
    if t.starts_with("{'") || t.starts_with("['") || (t.starts_with('\'') && t.ends_with('\'')) {
        message
            .push_str(": it looks like Python's str() or repr(); the spec prints json.dumps(...)");
    }
    check.push(Verdict::Failed, "", message);
    check
}

/// `text` with white space removed from its two ends.
fn trimmed(text: &Text) -> Text {
    let mut segs = text.segs.clone();
    if let Some(Seg::Lit(first)) = segs.first_mut() {
        let n = first.iter().take_while(|b| b.is_ascii_whitespace()).count();
        first.drain(..n);
    }
    if let Some(Seg::Lit(last)) = segs.last_mut() {
        let n = last.iter().rev().take_while(|b| b.is_ascii_whitespace()).count();
        last.truncate(last.len() - n);
    }
    Text { segs }
}

/// Checks a prompt the client showed against a `U?` line.
pub(crate) fn check_prompt(expected: &Text, actual: &str, vars: &Bindings) -> Check {
    match check_text(expected, actual, vars, "the prompt differs only in white space") {
        Ok(done) => done,
        Err(mut check) => {
            check.push(Verdict::Failed, "", "the client shows another prompt (CLI-1: `Command TOKEN:`, or `Command :` when logged out)");
            check
        }
    }
}

/// What a printed line and a prompt have in common: `Ok` with the check
/// when `actual` matches `expected`, exactly or but for white space at its
/// ends (NON-STRICT, saying `spaces`); else `Err` with the check so far,
/// its diff made, for the caller to say what else is wrong.
fn check_text(
    expected: &Text,
    actual: &str,
    vars: &Bindings,
    spaces: &str,
) -> Result<Check, Check> {
    let mut check = Check {
        expected: expected.display(vars),
        actual: escape_bytes(actual.as_bytes()),
        ..Check::default()
    };
    if let Some(bound) = expected.matches(actual.as_bytes(), vars) {
        check.bindings = bound;
        return Ok(check);
    }
    check.expected = expected.display_against(actual.as_bytes(), vars);
    check.diff = byte_diff(&check.expected, &check.actual);
    if let Some(bound) = trimmed(expected).matches(actual.trim().as_bytes(), vars) {
        check.bindings = bound;
        check.push(Verdict::NonStrict, "", spaces);
        return Ok(check);
    }
    Err(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "4c908ff6-3c15-4052-a98a-095d2454cf93";

    fn ctx() -> Context {
        Context::from_spec(&crate::spec::parse(crate::spec::PROTOCOL_MD).unwrap())
    }

    #[test]
    fn client_lines() {
        let vars = Bindings::new();
        let t = Text::parse(r"username messi logged in, token ${T:uuid}\x20").unwrap();
        let c = check_line(&t, &format!("username messi logged in, token {UUID} "), &vars, &ctx());
        assert_eq!((c.verdict(), c.bindings.len()), (Verdict::Ok, 1));
        let c = check_line(&t, &format!("username messi logged in, token {UUID}"), &vars, &ctx());
        assert_eq!((c.verdict(), c.bindings.len()), (Verdict::NonStrict, 1));
        let t = Text::parse(r#"{"messi": [{"msg": "  halo \\r\\n"}]}"#).unwrap();
        let c = check_line(&t, r#"{"messi":[{"msg":"  halo \r\n"}]}"#, &vars, &ctx());
        assert_eq!(c.verdict(), Verdict::NonStrict);
        let c = check_line(&t, r#"{'messi': [{'msg': '  halo \r\n'}]}"#, &vars, &ctx());
        assert_eq!(c.verdict(), Verdict::Failed);
        assert!(c.headline().unwrap().contains("repr"));
        let t = Text::parse("Error, not authorized").unwrap();
        assert_eq!(
            check_line(&t, "Error, Informasi tidak ditemukan", &vars, &ctx()).verdict(),
            Verdict::Failed
        );
    }

    #[test]
    fn prompts() {
        let vars: Bindings = [("T".to_string(), UUID.to_string())].into();
        let t = Text::parse("Command ${T}:").unwrap();
        assert_eq!(check_prompt(&t, &format!("Command {UUID}:"), &vars).verdict(), Verdict::Ok);
        assert_eq!(
            check_prompt(&t, &format!(" Command {UUID}:"), &vars).verdict(),
            Verdict::NonStrict
        );
        assert_eq!(check_prompt(&t, "Command :", &vars).verdict(), Verdict::Failed);
    }
}
