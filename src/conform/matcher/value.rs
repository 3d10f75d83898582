//! One JSON value against a `Json` pattern of the spec: every difference
//! found, each with its severity, and the variables the pattern binds.
//! [`check_reply`](super::check_reply) and a client's lines
//! ([`lines`](crate::conform::lines)) both match through [`Matcher`].

use serde_json::Value;

use super::{is_wording_key, python_json, Context};
use crate::conform::cause::{is_stripped, Cause};
use crate::conform::verdict::{Finding, Verdict};
use crate::spec::pattern::{is_lower_uuid, Bindings, Json, VarKind};

/// One match in progress: what it has bound and found so far.
pub(crate) struct Matcher<'a> {
    pub(crate) vars: &'a Bindings,
    pub(crate) ctx: &'a Context,
    pub(crate) unordered: bool,
    pub(crate) bound: Vec<(String, String)>,
    pub(crate) findings: Vec<Finding>,
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A short rendering of a value for a message (long ones cut).
pub(super) fn short(v: &Value) -> String {
    let s = python_json(v);
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(77).collect::<String>())
    } else {
        s
    }
}

impl<'a> Matcher<'a> {
    /// A match with nothing bound or found yet, in order.
    pub(crate) fn new(vars: &'a Bindings, ctx: &'a Context) -> Self {
        Matcher { vars, ctx, unordered: false, bound: Vec::new(), findings: Vec::new() }
    }

    fn failed_since(&self, mark: usize) -> bool {
        self.findings[mark..].iter().any(|f| f.severity >= Verdict::Failed)
    }

    fn lookup(&self, name: &str) -> Option<&str> {
        self.bound
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .or_else(|| self.vars.get(name).map(String::as_str))
    }

    fn fail(&mut self, path: &str, message: String) {
        self.findings.push(Finding::new(Verdict::Failed, path, message));
    }

    fn loose(&mut self, path: &str, message: String) {
        self.findings.push(Finding::new(Verdict::NonStrict, path, message));
    }

    pub(crate) fn value(&mut self, p: &Json, a: &Value, path: &str, depth: usize) {
        match p {
            Json::Bind(name, kind) => {
                let text = match a {
                    Value::String(s) => s.clone(),
                    other if *kind == VarKind::Any => python_json(other),
                    other => {
                        return self.fail(
                            path,
                            format!(
                                "expected a token (a string), got {}: {}",
                                kind_of(other),
                                short(other)
                            ),
                        )
                    }
                };
                if *kind == VarKind::Uuid && !is_lower_uuid(text.as_bytes()) {
                    if text.is_empty() {
                        return self.fail(path, "expected a token, got the empty string".into());
                    }
                    self.loose(
                        path,
                        format!("the token {text:?} is not a lowercase UUID like 4c908ff6-3c15-4052-a98a-095d2454cf93 (AUTH-4)"),
                    );
                }
                if name != "_" {
                    self.bound.push((name.clone(), text));
                }
            }
            Json::Ref(name) => {
                let expected = self.lookup(name).map(str::to_owned);
                match (expected, a) {
                    (Some(e), Value::String(s)) if *s == e => {}
                    (Some(e), other) => self
                        .fail(path, format!("expected {e:?} (${{{name}}}), got {}", short(other))),
                    (None, _) => self.fail(path, format!("${{{name}}} is not bound")),
                }
            }
            Json::Scalar(expected) => {
                if expected == a {
                    return;
                }
                match (expected, a) {
                    (Value::String(e), Value::String(s))
                        if depth == 1 && is_wording_key(path.trim_start_matches('.')) =>
                    {
                        if self.ctx.wordings.iter().any(|w| w == s) {
                            self.fail(
                                path,
                                format!("expected {e:?}, got {s:?}, which is the spec's text for another situation"),
                            );
                        } else {
                            let mut finding = Finding::new(
                                Verdict::NonStrict,
                                path,
                                format!("message text differs: expected {e:?}, got {s:?}"),
                            );
                            finding.wording = true;
                            if let Some((_, home)) = self.ctx.homes.iter().find(|(t, _)| t == e) {
                                finding.charged_to = vec![home.clone()];
                            }
                            self.findings.push(finding);
                        }
                    }
                    (Value::String(e), Value::String(s)) if is_stripped(e, s) => {
                        let message = format!(
                            "expected {e:?}, got {s:?}: the white space at the ends is gone"
                        );
                        self.findings.push(
                            Finding::new(Verdict::Failed, path, message)
                                .because(Cause::StrippedText),
                        );
                    }
                    _ => self.fail(path, format!("expected {}, got {}", short(expected), short(a))),
                }
            }
            Json::Array(items) => match a {
                Value::Array(actual) => self.array(items, actual, path, depth),
                other => self.fail(
                    path,
                    format!("expected a list, got {}: {}", kind_of(other), short(other)),
                ),
            },
            Json::Object(entries) => match a {
                Value::Object(actual) => self.object(entries, actual, path, depth),
                other => self.fail(
                    path,
                    format!("expected an object, got {}: {}", kind_of(other), short(other)),
                ),
            },
        }
    }

    fn object(
        &mut self,
        entries: &[(String, Json)],
        actual: &serde_json::Map<String, Value>,
        path: &str,
        depth: usize,
    ) {
        if depth == 0 {
            // A wrong status makes the rest of the comparison noise.
            if let Some((_, Json::Scalar(expected @ Value::String(_)))) =
                entries.iter().find(|(k, _)| k == "status")
            {
                match actual.get("status") {
                    Some(status) if status == expected => {}
                    Some(status) => {
                        let said = ["message", "messages"]
                            .iter()
                            .find_map(|k| actual.get(*k).map(|v| format!(" with {k} {}", short(v))))
                            .unwrap_or_default();
                        return self.fail(
                            ".status",
                            format!("expected {}, got {}{said}", short(expected), short(status)),
                        );
                    }
                    None => {
                        return self.fail(
                            "",
                            format!(
                                "the reply has no \"status\" key: {}",
                                short(&Value::Object(actual.clone()))
                            ),
                        )
                    }
                }
            }
        }
        for (key, p) in entries {
            let sub = format!("{path}.{key}");
            match actual.get(key) {
                Some(v) => self.value(p, v, &sub, depth + 1),
                None => {
                    let mut message = format!("missing key {key:?}");
                    let similar = actual.keys().find(|k| {
                        k.eq_ignore_ascii_case(key)
                            || k.trim_end_matches('s') == key.trim_end_matches('s')
                            || (key == "tokenid" && k.contains("token"))
                    });
                    if let Some(similar) = similar {
                        message.push_str(&format!(
                            " (the reply has {similar:?}; the spec names it {key:?})"
                        ));
                    }
                    self.fail(&sub, message);
                }
            }
        }
        for (key, v) in actual {
            if entries.iter().any(|(k, _)| k == key) {
                continue;
            }
            let sub = format!("{path}.{key}");
            let empty = matches!(v, Value::Array(a) if a.is_empty())
                || matches!(v, Value::Object(o) if o.is_empty());
            if depth == 0 {
                self.loose(&sub, format!("a key the spec does not have: {}", short(v)));
            } else if empty {
                self.loose(
                    &sub,
                    format!("an entry with nothing in it ({}) that the spec leaves out", short(v)),
                );
            } else {
                self.fail(&sub, format!("unexpected entry: {}", short(v)));
            }
        }
    }

    /// Runs `p` against `a` without keeping anything; whether it matches
    /// without a FAILED difference.
    fn fits(&mut self, p: &Json, a: &Value, path: &str, depth: usize) -> bool {
        let (marks, markb) = (self.findings.len(), self.bound.len());
        self.value(p, a, path, depth);
        let ok = !self.failed_since(marks);
        self.findings.truncate(marks);
        self.bound.truncate(markb);
        ok
    }

    /// Finds a distinct actual item for every expected item.
    fn assign(
        &mut self,
        items: &[Json],
        actual: &[Value],
        path: &str,
        depth: usize,
        used: &mut Vec<bool>,
        out: &mut Vec<usize>,
    ) -> bool {
        let Some(p) = items.get(out.len()) else { return true };
        for j in 0..actual.len() {
            if used[j] || !self.fits(p, &actual[j], path, depth) {
                continue;
            }
            // Keep the bindings of this choice while the rest is assigned.
            let markb = self.bound.len();
            let marks = self.findings.len();
            self.value(p, &actual[j], path, depth);
            self.findings.truncate(marks);
            used[j] = true;
            out.push(j);
            if self.assign(items, actual, path, depth, used, out) {
                self.bound.truncate(markb);
                return true;
            }
            out.pop();
            used[j] = false;
            self.bound.truncate(markb);
        }
        false
    }

    fn array(&mut self, items: &[Json], actual: &[Value], path: &str, depth: usize) {
        let mark = self.findings.len();
        let markb = self.bound.len();
        if items.len() == actual.len() && !self.unordered {
            for (i, (p, a)) in items.iter().zip(actual).enumerate() {
                self.value(p, a, &format!("{path}[{i}]"), depth + 1);
            }
            if !self.failed_since(mark) {
                return;
            }
        }
        // In order it does not fit: try any order.
        let in_order_findings = self.findings.split_off(mark);
        let in_order_bound = self.bound.split_off(markb);
        let mut used = vec![false; actual.len()];
        let mut order = Vec::new();
        if items.len() == actual.len()
            && self.assign(items, actual, path, depth + 1, &mut used, &mut order)
        {
            for (p, &j) in items.iter().zip(&order) {
                self.value(p, &actual[j], &format!("{path}[{j}]"), depth + 1);
            }
            if !self.unordered {
                self.loose(path, "the same items in another order than the spec's".into());
            }
            return;
        }
        if items.len() == actual.len() {
            if self.unordered {
                // Report against the closest reading: in order.
                for (i, (p, a)) in items.iter().zip(actual).enumerate() {
                    self.value(p, a, &format!("{path}[{i}]"), depth + 1);
                }
                if !self.failed_since(mark) {
                    self.fail(path, "the items do not pair up with the spec's".into());
                }
            } else {
                self.findings.extend(in_order_findings);
                self.bound.extend(in_order_bound);
            }
            return;
        }
        // Different lengths: name what is missing and what is extra.
        let mut matched = vec![false; actual.len()];
        let mut missing = Vec::new();
        for p in items {
            match (0..actual.len())
                .find(|&j| !matched[j] && self.fits(p, &actual[j], path, depth + 1))
            {
                Some(j) => matched[j] = true,
                None => missing.push(short(&p.to_display_value(self.vars))),
            }
        }
        let extra: Vec<String> =
            actual.iter().zip(&matched).filter(|(_, m)| !**m).map(|(a, _)| short(a)).collect();
        let mut message = format!("expected {} item(s), got {}", items.len(), actual.len());
        if !missing.is_empty() {
            message.push_str(&format!("; missing {}", missing.join(", ")));
        }
        if !extra.is_empty() {
            message.push_str(&format!("; not expected {}", extra.join(", ")));
        }
        self.fail(path, message);
    }
}
