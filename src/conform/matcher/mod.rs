//! A reply against the example's `<`, `<~`, `<=`, `<-` or `<*` line.
//!
//! Pure code. Given one step's expectation and the reply, [`check_reply`]
//! (loosely for a `given` step, see [`Reading`]) returns a [`Check`]: the
//! [`Verdict`], every difference found (each with its own severity and a
//! sentence a student can act on), the variables bound, and a diff. A
//! client's lines are checked in [`lines`](super::lines).
//!
//! The grading follows section 1 of the spec: a difference of *meaning*
//! (status, keys, data, a missing reply) is FAILED; when the status and
//! shape are right and only a message string, the byte form or an
//! ordering differs, it is NON-STRICT.

use serde_json::Value;

use super::cause::Cause;
use super::diff::{align_keys, diff_lines, pretty, DiffLine};
use super::form::{byte_diff, first_difference, form_hints};
pub use super::verdict::Verdict;
pub(crate) use super::verdict::{Check, Finding};
use crate::spec::pattern::{escape_bytes, Bindings, Json, VarKind};
use crate::spec::{Action, Expect, Spec};

mod value;
use value::short;
pub(crate) use value::Matcher;

/// What the runner knows for grading, beyond the step itself.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Every `message`/`messages` string the spec's examples use: a reply
    /// that carries one of them in the wrong place is wrong, not merely
    /// worded differently.
    pub wordings: Vec<String>,
    /// Reply text → the rule a wording difference of it is charged to.
    pub homes: Vec<(String, String)>,
}

impl Context {
    /// Collects the wordings from a specification's examples.
    pub fn from_spec(spec: &Spec) -> Self {
        let mut wordings = Vec::new();
        for step in spec.examples.iter().flat_map(|e| &e.steps) {
            let pattern = match &step.action {
                Action::Expect { expect: Expect::Json { pattern, .. }, .. } => pattern,
                Action::Expect { expect: Expect::Exact { meaning: Some(pattern), .. }, .. } => {
                    pattern
                }
                _ => continue,
            };
            if let Json::Object(entries) = pattern {
                for (key, value) in entries {
                    if let (true, Json::Scalar(Value::String(s))) = (is_wording_key(key), value) {
                        if !wordings.contains(s) {
                            wordings.push(s.clone());
                        }
                    }
                }
            }
        }
        Self { wordings, homes: spec.text_homes.clone() }
    }
}

fn is_wording_key(key: &str) -> bool {
    key == "message" || key == "messages"
}

/// A reply as the runner framed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplyBytes {
    /// Everything received for this reply, terminator included.
    pub bytes: Vec<u8>,
    /// Whether it ended in `\r\n\r\n`; `false` when the runner took a whole
    /// JSON object followed by silence as the reply.
    pub terminated: bool,
}

impl ReplyBytes {
    fn body(&self) -> &[u8] {
        if self.terminated {
            self.bytes.strip_suffix(b"\r\n\r\n").unwrap_or(&self.bytes)
        } else {
            let end = self.bytes.iter().rposition(|b| !b"\r\n \t".contains(b)).map_or(0, |p| p + 1);
            &self.bytes[..end]
        }
    }
}

/// How a reply is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reading {
    /// To the letter: the step is what its case checks.
    Exact,
    /// Loosely: a `given` step only prepares what its case checks.
    Given,
}

/// Checks one reply against a `<`, `<~`, `<=`, `<-` or `<*` expectation,
/// read as `reading` says.
pub(crate) fn check_reply(
    expect: &Expect,
    reply: &ReplyBytes,
    vars: &Bindings,
    ctx: &Context,
    reading: Reading,
) -> Check {
    let mut check = Check { actual: escape_bytes(&reply.bytes), ..Check::default() };
    let matcher = Matcher::new(vars, ctx);
    match reading {
        Reading::Exact => check_exactly(&mut check, expect, reply, matcher),
        Reading::Given => check_loosely(&mut check, expect, reply, matcher),
    }
    check
}

fn check_exactly(check: &mut Check, expect: &Expect, reply: &ReplyBytes, mut m: Matcher<'_>) {
    if *expect == Expect::AnyReply {
        // Whatever came is the reply this step waits for: its content is
        // another rule's business.
        check.expected = "any reply".into();
        return;
    }
    if !reply.terminated {
        let tail = &reply.bytes[reply.body().len()..];
        let message = format!(
            "the reply does not end with \\r\\n\\r\\n: it ends with \"{}\" and then nothing more came (TRANS-2)",
            escape_bytes(tail)
        );
        check
            .findings
            .push(Finding::new(Verdict::Failed, "", message).because(Cause::NoTerminator));
    }
    match expect {
        Expect::Json { pattern, unordered } => {
            check.expected = python_json(&pattern.to_display_value(m.vars));
            let Some(actual) = parse_body(reply, check) else { return };
            m.unordered = *unordered;
            m.value(pattern, &actual, "", 0);
            check.findings.extend(m.findings);
            check.bindings = m.bound;
            if check.verdict() != Verdict::Ok {
                check.diff = json_diff(pattern, &actual, m.vars);
            }
        }
        Expect::Exact { text, meaning } => {
            check.expected = text.display(m.vars);
            if let Some(bound) = text.matches(&reply.bytes, m.vars) {
                check.bindings = bound;
                return;
            }
            check.expected = text.display_against(&reply.bytes, m.vars);
            let Some(pattern) = meaning else {
                check.push(Verdict::Failed, "", "the bytes differ from the spec's");
                check.diff = byte_diff(&check.expected, &check.actual);
                return;
            };
            check.diff = byte_diff(&check.expected, &check.actual);
            let Some(actual) = parse_body(reply, check) else { return };
            m.value(pattern, &actual, "", 0);
            check.findings.extend(m.findings);
            check.bindings = m.bound;
            // Show the expectation with what the reply bound, so that the
            // diff points at a real difference, not at a placeholder.
            check.expected = text.display(&merged(m.vars, &check.bindings));
            check.diff = byte_diff(&check.expected, &check.actual);
            if reply.terminated {
                let expected_bytes =
                    pattern.to_value(&merged(m.vars, &check.bindings)).map(|v| python_json(&v));
                let hints = form_hints(expected_bytes.as_deref(), reply.body());
                if check.findings.is_empty() {
                    let hints = if hints.is_empty() {
                        first_difference(expected_bytes.as_deref(), reply.body())
                    } else {
                        hints.join("; ")
                    };
                    check.push(
                        Verdict::NonStrict,
                        "",
                        format!("same meaning, other bytes than the spec's: {hints}"),
                    );
                } else if !hints.is_empty() {
                    check.push(
                        Verdict::NonStrict,
                        "",
                        format!("the bytes differ in form too: {}", hints.join("; ")),
                    );
                }
            }
        }
        Expect::AnyReply => {}
        Expect::AnyError => {
            check.expected = "any {\"status\": \"ERROR\", …} reply".into();
            let Some(actual) = parse_body(reply, check) else { return };
            match actual.get("status") {
                Some(Value::String(s)) if s == "ERROR" => {}
                Some(other) => check.push(
                    Verdict::Failed,
                    ".status",
                    format!("expected \"ERROR\", got {other}"),
                ),
                None => check.push(Verdict::Failed, "", "no \"status\" key"),
            }
        }
    }
}

/// Checks the reply to a `given` step loosely: it is a JSON object with
/// the status the step shows, each variable the step binds is found
/// (under its key or, for a token, under any key that names a token), and
/// the data the step shows (an inbox's mail, a list of users) is there.
/// Wording, form, extra keys and token format are other cases' business.
fn check_loosely(check: &mut Check, expect: &Expect, reply: &ReplyBytes, mut m: Matcher<'_>) {
    let pattern = match expect {
        Expect::Json { pattern, .. } => pattern,
        Expect::Exact { meaning: Some(pattern), .. } => pattern,
        Expect::Exact { meaning: None, .. } | Expect::AnyError | Expect::AnyReply => {
            check.expected = "a reply".into();
            return;
        }
    };
    check.expected = python_json(&pattern.to_display_value(m.vars));
    let Some(actual) = parse_body(reply, check) else { return };
    let (Json::Object(entries), Value::Object(object)) = (pattern, &actual) else {
        check.push(Verdict::Failed, "", "the reply is not a JSON object");
        return;
    };
    for (key, p) in entries {
        match p {
            Json::Scalar(expected) if key == "status" => {
                if object.get(key) != Some(expected) {
                    let got = object.get(key).map_or("no \"status\" key".into(), short);
                    check.push(
                        Verdict::Failed,
                        ".status",
                        format!("expected {}, got {got}", short(expected)),
                    );
                }
            }
            // `${_:any}`, or any `any`, asks for nothing in a loose check.
            Json::Bind(name, VarKind::Any) => {
                if let (false, Some(value)) = (name == "_", object.get(key)) {
                    let text = match value {
                        Value::String(s) => s.clone(),
                        other => python_json(other),
                    };
                    check.bindings.push((name.clone(), text));
                }
            }
            Json::Bind(name, VarKind::Uuid) => {
                let value = object.get(key).or_else(|| {
                    object
                        .iter()
                        .find(|(k, _)| k.to_ascii_lowercase().contains("token"))
                        .map(|(_, v)| v)
                });
                match value {
                    Some(Value::String(text)) if !text.is_empty() => {
                        if name != "_" {
                            check.bindings.push((name.clone(), text.clone()));
                        }
                    }
                    _ => check.push(
                        Verdict::Failed,
                        format!(".{key}"),
                        format!("no {key} in the reply"),
                    ),
                }
            }
            // A wording: another case's business.
            Json::Scalar(Value::String(_)) if is_wording_key(key) => {}
            data => match object.get(key) {
                Some(actual) => {
                    m.value(data, actual, &format!(".{key}"), 1);
                    let found = std::mem::take(&mut m.findings);
                    check
                        .findings
                        .extend(found.into_iter().filter(|f| f.severity >= Verdict::Failed));
                    check.bindings.append(&mut m.bound);
                }
                None => {
                    check.push(Verdict::Failed, format!(".{key}"), format!("no {key} in the reply"))
                }
            },
        }
    }
}

fn merged(vars: &Bindings, bound: &[(String, String)]) -> Bindings {
    let mut all = vars.clone();
    all.extend(bound.iter().cloned());
    all
}

/// JSON as Python's `json.dumps` writes it.
pub(crate) fn python_json(value: &Value) -> String {
    crate::protocol::json::to_string(value)
}

/// Parses the reply's JSON object, or records why it is not one.
fn parse_body(reply: &ReplyBytes, check: &mut Check) -> Option<Value> {
    let body = reply.body();
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => Some(value),
        Ok(other) => {
            check.push(
                Verdict::Failed,
                "",
                format!("the reply is JSON but not an object: {}", python_json(&other)),
            );
            None
        }
        Err(error) => {
            let mut message = format!("the reply is not JSON ({error})");
            message.push_str(&not_json_hint(body));
            check.findings.push(Finding::new(Verdict::Failed, "", message).because(Cause::NotJson));
            None
        }
    }
}

/// A likely cause for text that is not JSON.
fn not_json_hint(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim_start();
    if trimmed.starts_with("{'")
        || trimmed.starts_with("['")
        || trimmed.contains(": '")
        || trimmed.contains("True")
    {
        "; it looks like Python's str() or repr() of a dict: encode replies with json.dumps".into()
    } else if trimmed.is_empty() {
        "; it is empty".into()
    } else if body.windows(4).filter(|w| *w == b"\r\n\r\n").count() > 0
        || text.matches('{').count() > 1
    {
        "; it may be two replies run together, or a reply with text around it".into()
    } else {
        String::new()
    }
}

/// The expectation and the reply pretty-printed, diffed line by line.
fn json_diff(pattern: &Json, actual: &Value, vars: &Bindings) -> Vec<DiffLine> {
    let expected = pattern.to_display_value(vars);
    let actual = align_keys(actual, &expected);
    diff_lines(&pretty(&expected), &pretty(&actual))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::pattern::Text;

    /// A reply that ended properly.
    fn terminated(bytes: impl Into<Vec<u8>>) -> ReplyBytes {
        ReplyBytes { bytes: bytes.into(), terminated: true }
    }

    const UUID: &str = "4c908ff6-3c15-4052-a98a-095d2454cf93";

    fn ctx() -> Context {
        Context::from_spec(&crate::spec::parse(crate::spec::PROTOCOL_MD).unwrap())
    }

    fn json(p: &str) -> Expect {
        Expect::Json { pattern: Json::parse(p).unwrap(), unordered: false }
    }

    fn exact(p: &str) -> Expect {
        let text = Text::parse(p).unwrap();
        let meaning = Json::from_exact(&text);
        Expect::Exact { text, meaning }
    }

    fn run(expect: &Expect, reply: &str) -> Check {
        let reply = terminated(format!("{reply}\r\n\r\n"));
        check_reply(expect, &reply, &Bindings::new(), &ctx(), Reading::Exact)
    }

    #[test]
    fn wordings_come_from_the_spec() {
        let c = ctx();
        for w in [
            "User Tidak Ada",
            "Password Salah",
            "Anda berhasil logout!",
            "**Protocol Tidak Benar",
            "Message Sent",
        ] {
            assert!(c.wordings.iter().any(|x| x == w), "{w}");
        }
    }

    #[test]
    fn equal_meaning_is_ok_and_binds() {
        let e = json(r#"{"status": "OK", "tokenid": "${T:uuid}"}"#);
        let c = run(&e, &format!(r#"{{"tokenid": "{UUID}", "status": "OK"}}"#));
        assert_eq!(c.verdict(), Verdict::Ok, "{c:?}");
        assert_eq!(c.bindings, vec![("T".to_string(), UUID.to_string())]);
        assert!(c.diff.is_empty());
    }

    #[test]
    fn another_message_text_is_non_strict_but_another_errors_text_fails() {
        let e = json(r#"{"status": "ERROR", "message": "User Tidak Ada"}"#);
        let c = run(&e, r#"{"status": "ERROR", "message": "User not found"}"#);
        assert_eq!(c.verdict(), Verdict::NonStrict);
        assert_eq!(
            c.headline().unwrap(),
            r#".message: message text differs: expected "User Tidak Ada", got "User not found""#
        );
        assert!(
            c.diff.contains(&DiffLine::Expected(r#"  "message": "User Tidak Ada""#.into())),
            "{:?}",
            c.diff
        );
        let c = run(&e, r#"{"status": "ERROR", "message": "Password Salah"}"#);
        assert_eq!(c.verdict(), Verdict::Failed);
        assert!(c.headline().unwrap().contains("another situation"));
    }

    #[test]
    fn wrong_status_is_one_clear_failure() {
        let e = json(r#"{"status": "OK", "messages": ["a"]}"#);
        let c = run(&e, r#"{"status": "ERROR", "message": "**Protocol Tidak Benar"}"#);
        assert_eq!(c.verdict(), Verdict::Failed);
        assert_eq!(c.findings.len(), 1);
        assert_eq!(
            c.headline().unwrap(),
            r#".status: expected "OK", got "ERROR" with message "**Protocol Tidak Benar""#
        );
    }

    #[test]
    fn shapes_and_keys() {
        let e = json(r#"{"status": "OK", "messages": "Anda berhasil logout!"}"#);
        let c = run(&e, r#"{"status": "OK", "message": "Anda berhasil logout!"}"#);
        assert_eq!(c.verdict(), Verdict::Failed);
        assert!(
            c.headline().unwrap().contains(r#"missing key "messages" (the reply has "message""#),
            "{c:?}"
        );
        let c = run(&e, r#"{"status": "OK", "messages": "Anda berhasil logout!", "extra": 1}"#);
        assert_eq!(c.verdict(), Verdict::NonStrict);
        let e = json(r#"{"status": "OK", "messages": {}}"#);
        let c = run(&e, r#"{"status": "OK", "messages": {"messi": []}}"#);
        assert_eq!(c.verdict(), Verdict::NonStrict, "the original's empty sender entry");
        let c = run(&e, r#"{"status": "OK", "messages": {"messi": [{"msg": "x"}]}}"#);
        assert_eq!(c.verdict(), Verdict::Failed);
        let c = run(&e, r#"{"status": "OK", "messages": []}"#);
        assert_eq!(c.verdict(), Verdict::Failed);
        assert!(c.headline().unwrap().contains("expected an object, got a list"));
    }

    #[test]
    fn order_of_lists() {
        let e = json(r#"{"status": "OK", "messages": ["a", "b"]}"#);
        assert_eq!(run(&e, r#"{"status": "OK", "messages": ["a", "b"]}"#).verdict(), Verdict::Ok);
        let c = run(&e, r#"{"status": "OK", "messages": ["b", "a"]}"#);
        assert_eq!(c.verdict(), Verdict::NonStrict);
        assert!(c.headline().unwrap().contains("another order"));
        let c = run(&e, r#"{"status": "OK", "messages": ["a"]}"#);
        assert_eq!(c.verdict(), Verdict::Failed);
        assert_eq!(c.headline().unwrap(), r#".messages: expected 2 item(s), got 1; missing "b""#);
        let c = run(&e, r#"{"status": "OK", "messages": ["a", "c"]}"#);
        assert_eq!(c.headline().unwrap(), r#".messages[1]: expected "b", got "c""#);
        let unordered = Expect::Json {
            pattern: Json::parse(r#"{"status": "OK", "messages": ["a", "b"]}"#).unwrap(),
            unordered: true,
        };
        assert_eq!(
            run(&unordered, r#"{"status": "OK", "messages": ["b", "a"]}"#).verdict(),
            Verdict::Ok
        );
        assert_eq!(
            run(&unordered, r#"{"status": "OK", "messages": ["b", "b"]}"#).verdict(),
            Verdict::Failed
        );
    }

    #[test]
    fn tokens() {
        let e = json(r#"{"status": "OK", "tokenid": "${T:uuid}"}"#);
        let c = run(&e, r#"{"status": "OK", "tokenid": "abc123"}"#);
        assert_eq!(c.verdict(), Verdict::NonStrict);
        assert_eq!(c.bindings, vec![("T".into(), "abc123".into())]);
        assert_eq!(run(&e, r#"{"status": "OK", "tokenid": 17}"#).verdict(), Verdict::Failed);
        assert_eq!(run(&e, r#"{"status": "OK", "tokenid": ""}"#).verdict(), Verdict::Failed);
        let r = json(r#"{"status": "OK", "t": "${T}"}"#);
        let vars: Bindings = [("T".to_string(), UUID.to_string())].into();
        let ok = check_reply(
            &r,
            &terminated(format!(r#"{{"status": "OK", "t": "{UUID}"}}"#)),
            &vars,
            &ctx(),
            Reading::Exact,
        );
        assert_eq!(ok.verdict(), Verdict::Ok);
        let bad = check_reply(
            &r,
            &terminated(r#"{"status": "OK", "t": "x"}"#),
            &vars,
            &ctx(),
            Reading::Exact,
        );
        assert_eq!(bad.verdict(), Verdict::Failed);
    }

    #[test]
    fn not_json() {
        let e = json(r#"{"status": "OK"}"#);
        let c = run(&e, r#"{'status': 'OK'}"#);
        assert_eq!(c.verdict(), Verdict::Failed);
        assert!(c.headline().unwrap().contains("Python's str()"));
        let c =
            check_reply(&e, &terminated("[1]\r\n\r\n"), &Bindings::new(), &ctx(), Reading::Exact);
        assert!(c.headline().unwrap().contains("not an object"));
    }

    #[test]
    fn exact_bytes() {
        let e = exact(r#"{"status": "OK", "tokenid": "${T:uuid}"}\r\n\r\n"#);
        let ok = run(&e, &format!(r#"{{"status": "OK", "tokenid": "{UUID}"}}"#));
        assert_eq!(ok.verdict(), Verdict::Ok);
        assert_eq!(ok.bindings.len(), 1);
        let compact = run(&e, &format!(r#"{{"status":"OK","tokenid":"{UUID}"}}"#));
        assert_eq!(compact.verdict(), Verdict::NonStrict);
        assert!(compact.headline().unwrap().contains("separators without spaces"), "{compact:?}");
        assert_eq!(compact.bindings.len(), 1, "bound through the meaning");
        let order = run(&e, &format!(r#"{{"tokenid": "{UUID}", "status": "OK"}}"#));
        assert!(order.headline().unwrap().contains("another order"), "{order:?}");
        let e = exact(r#"{"status": "OK", "msg": "caf\\u00e9"}\r\n\r\n"#);
        let raw = run(&e, "{\"status\": \"OK\", \"msg\": \"caf\u{e9}\"}");
        assert_eq!(raw.verdict(), Verdict::NonStrict);
        assert!(raw.headline().unwrap().contains("raw UTF-8"), "{raw:?}");
        let upper = run(&e, r#"{"status": "OK", "msg": "caf\u00E9"}"#);
        assert!(upper.headline().unwrap().contains("uppercase"), "{upper:?}");
        let wrong = run(&e, r#"{"status": "OK", "msg": "cafe"}"#);
        assert_eq!(wrong.verdict(), Verdict::Failed);
        assert_eq!(wrong.diff.len(), 3);
    }

    #[test]
    fn unterminated_reply_fails() {
        let e = json(r#"{"status": "OK"}"#);
        let c = check_reply(
            &e,
            &ReplyBytes { bytes: b"{\"status\": \"OK\"}\r\n".to_vec(), terminated: false },
            &Bindings::new(),
            &ctx(),
            Reading::Exact,
        );
        assert_eq!(c.verdict(), Verdict::Failed);
        assert!(c.headline().unwrap().contains(r#"ends with "\r\n" and"#), "{c:?}");
        assert_eq!(c.findings.len(), 1, "the meaning itself matched");
    }

    #[test]
    fn any_error() {
        assert_eq!(
            run(&Expect::AnyError, r#"{"status": "ERROR", "message": "x"}"#).verdict(),
            Verdict::Ok
        );
        assert_eq!(run(&Expect::AnyError, r#"{"status": "OK"}"#).verdict(), Verdict::Failed);
    }

    #[test]
    fn given_replies_are_checked_loosely() {
        let loose = |p: &str, reply: &str| {
            check_reply(
                &json(p),
                &terminated(format!("{reply}\r\n\r\n")),
                &Bindings::new(),
                &ctx(),
                Reading::Given,
            )
        };
        let login = r#"{"status": "OK", "tokenid": "${T:uuid}"}"#;
        // Another token key, another token form, an extra key: still a login.
        let c = loose(login, r#"{"status": "OK", "token": "abc", "user": "messi"}"#);
        assert_eq!(c.verdict(), Verdict::Ok);
        assert_eq!(c.bindings, vec![("T".to_owned(), "abc".to_owned())]);
        // Wording and missing keys of a logout are LOGOUT-1's business.
        let logout = r#"{"status": "OK", "messages": "Anda berhasil logout!"}"#;
        assert_eq!(loose(logout, r#"{"status": "OK"}"#).verdict(), Verdict::Ok);
        assert_eq!(
            loose(r#"{"status": "OK", "messages": "${_:any}"}"#, r#"{"status": "OK"}"#).verdict(),
            Verdict::Ok
        );
        // The data a setup shows must be there: an inbox that is not empty.
        let empty = r#"{"status": "OK", "messages": {}}"#;
        assert_eq!(loose(empty, r#"{"status": "OK", "messages": {}}"#).verdict(), Verdict::Ok);
        let full = r#"{"status": "OK", "messages": {"messi": [{"msg": "x"}]}}"#;
        assert_eq!(loose(empty, full).verdict(), Verdict::Failed);
        // Another status, no token, or no JSON at all: the setup failed.
        assert_eq!(
            loose(logout, r#"{"status": "ERROR", "message": "x"}"#).verdict(),
            Verdict::Failed
        );
        assert_eq!(loose(login, r#"{"status": "OK"}"#).verdict(), Verdict::Failed);
        assert_eq!(loose(login, r#"{'status': 'OK'}"#).verdict(), Verdict::Failed);
    }
}
