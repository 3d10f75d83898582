//! One example of the spec, read: its info string, its steps (each line
//! a write, a read, a print or a prompt, some of them `given`), and the
//! check that every `${NAME}` is bound once, before it is used.
//!
//! Pure code, called by [`super::parse`] for each `example` block.

use std::collections::HashMap;

use super::pattern::{self, Json, Text};
use super::{
    command_of, is_rule_id, rule_for_command, Action, Example, Expect, Kind, Level, SpecError, Step,
};

/// Parses one example: its info string (`example ID LEVEL [client]`) and
/// its lines.
pub(super) fn parse_example(
    info: &str,
    line: usize,
    body: &[(usize, &str)],
) -> Result<Example, Vec<SpecError>> {
    let fail = |message: String| Err(vec![SpecError { line, message }]);
    let words: Vec<&str> = info.split_whitespace().collect();
    let (id, level, kind) = match words.as_slice() {
        ["example", id, level] => (*id, *level, Kind::Server),
        ["example", id, level, "client"] => (*id, *level, Kind::Client),
        _ => return fail(format!("example header `{info}`: expected `example ID LEVEL [client]`")),
    };
    let Some(level) = Level::parse(level) else {
        return fail(format!("example {id}: level must be MUST or SHOULD, found `{level}`"));
    };
    let rule = match id.rsplit_once('.') {
        Some((rule, n))
            if is_rule_id(rule) && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) =>
        {
            rule
        }
        _ => return fail(format!("example ID `{id}`: expected RULE-ID.NUMBER, e.g. AUTH-1.1")),
    };
    let mut errors = Vec::new();
    let mut steps = Vec::new();
    // The command of the last `given` write on each connection (0: the
    // client's standard input), for the `given` reads that follow it.
    let mut last_given: HashMap<u32, String> = HashMap::new();
    for &(n, src) in body {
        // `given STEP`, or `given RULE-ID STEP` to name the rule it
        // relies on when the command alone does not tell.
        let (given, explicit, line) = match src.strip_prefix("given ") {
            Some(rest) => match rest.split_once(' ') {
                Some((rule, step)) if is_rule_id(rule) => (true, Some(rule.to_owned()), step),
                _ => (true, None, rest),
            },
            None => (false, None, src),
        };
        match parse_step(line, kind) {
            Ok(Some(action)) => {
                let given = if given {
                    match given_rule(kind, &action, &mut last_given) {
                        Ok(rule) => Some(explicit.unwrap_or(rule)),
                        Err(message) => {
                            errors.push(SpecError {
                                line: n,
                                message: format!("example {id}: {message}"),
                            });
                            continue;
                        }
                    }
                } else {
                    None
                };
                steps.push(Step { line: n, source: src.to_owned(), action, given });
            }
            Ok(None) if given => errors.push(SpecError {
                line: n,
                message: format!("example {id}: `given` must be followed by a step"),
            }),
            Ok(None) => {}
            Err(message) => {
                errors.push(SpecError { line: n, message: format!("example {id}: {message}") })
            }
        }
    }
    check_variables(id, &steps, &mut errors);
    if errors.is_empty() {
        let checks = steps.iter().any(|s| {
            !s.is_given()
                && match &s.action {
                    Action::Expect { expect, .. } => *expect != Expect::AnyReply,
                    Action::Print { .. } | Action::Prompt { .. } => true,
                    _ => false,
                }
        });
        if !checks {
            errors.push(SpecError {
                line,
                message: format!(
                    "example {id} checks nothing (no `<`, `U<` or `U?` line that is not `given`)"
                ),
            });
        }
        if kind == Kind::Client
            && !steps
                .iter()
                .any(|s| matches!(s.action, Action::Type { .. } | Action::Prompt { .. }))
        {
            errors.push(SpecError {
                line,
                message: format!("client example {id} never involves the client"),
            });
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Example { id: id.to_owned(), rule: rule.to_owned(), level, kind, steps, line })
}

/// The rule a `given` step relies on: a write's by its command, a read's
/// by the last `given` write on its connection.
fn given_rule(
    kind: Kind,
    action: &Action,
    last: &mut HashMap<u32, String>,
) -> Result<String, String> {
    let (key, written) = match action {
        Action::Send { conn, text } => (*conn, Some(text)),
        Action::Type { text } => (0, Some(text)),
        Action::Expect { conn, .. } => (*conn, None),
        Action::Print { .. } | Action::Prompt { .. } => (0, None),
    };
    // A client example's `C1>` lines talk to the reference server.
    let rules_of = if key == 0 { kind } else { Kind::Server };
    if let Some(text) = written {
        let command =
            command_of(text).ok_or("a `given` write must start with a command word".to_owned())?;
        last.insert(key, command);
    }
    let command = last.get(&key).ok_or(
        "a `given` read must follow a `given` write on the same connection (or `given U>`)"
            .to_owned(),
    )?;
    rule_for_command(rules_of, command)
        .map(str::to_owned)
        .ok_or(format!("`given` steps use auth, send, inbox, list or logout, not `{command}`"))
}

/// Parses one line of an example; `Ok(None)` for comments and blank lines.
pub(super) fn parse_step(src: &str, kind: Kind) -> Result<Option<Action>, String> {
    if src.trim().is_empty() || src.starts_with('#') {
        return Ok(None);
    }
    let text_after = |rest: &str| -> Result<Text, String> {
        let text = if rest.is_empty() {
            ""
        } else {
            rest.strip_prefix(' ').ok_or("expected one space after the marker")?
        };
        Text::parse(text).map_err(|e| e.to_string())
    };
    if let Some(rest) = src.strip_prefix('U') {
        if kind == Kind::Server {
            return Err("`U` lines belong in client examples (add `client` to the header)".into());
        }
        let mut chars = rest.chars();
        let marker = chars.next();
        let text = text_after(chars.as_str())?;
        return Ok(Some(match marker {
            Some('>') => Action::Type { text },
            Some('<') => Action::Print { text },
            Some('?') => Action::Prompt { text },
            _ => return Err(format!("unknown step `{src}`")),
        }));
    }
    let Some(rest) = src.strip_prefix('C') else {
        return Err(format!("unknown step `{src}` (steps start with C1>, C1<, U>, U<, U? or #)"));
    };
    let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let conn: u32 = rest[..digits]
        .parse()
        .map_err(|_| format!("`{src}`: expected a connection number after `C`"))?;
    if conn == 0 {
        return Err("connections are numbered from C1".into());
    }
    let rest = &rest[digits..];
    let json = |s: &str| -> Result<Json, String> {
        let s = s.strip_prefix(' ').ok_or("expected one space after the marker")?;
        Json::parse(s).map_err(|e| e.to_string())
    };
    let action = if let Some(rest) = rest.strip_prefix('>') {
        let text = text_after(rest)?;
        if text.segs.is_empty() {
            return Err("an empty write".into());
        }
        if let Some(name) = text.binds().next() {
            return Err(format!(
                "`${{{name}:…}}` binds, but a write cannot bind; use `${{{name}}}`"
            ));
        }
        Action::Send { conn, text }
    } else if let Some(rest) = rest.strip_prefix("<~") {
        Action::Expect { conn, expect: Expect::Json { pattern: json(rest)?, unordered: true } }
    } else if let Some(rest) = rest.strip_prefix("<=") {
        let text = text_after(rest)?;
        let meaning = Json::from_exact(&text);
        Action::Expect { conn, expect: Expect::Exact { text, meaning } }
    } else if let Some(rest) = rest.strip_prefix("<-") {
        if !rest.trim().is_empty() {
            return Err("`<-` takes nothing after it".into());
        }
        Action::Expect { conn, expect: Expect::AnyError }
    } else if let Some(rest) = rest.strip_prefix("<*") {
        if !rest.trim().is_empty() {
            return Err("`<*` takes nothing after it".into());
        }
        Action::Expect { conn, expect: Expect::AnyReply }
    } else if let Some(rest) = rest.strip_prefix('<') {
        Action::Expect { conn, expect: Expect::Json { pattern: json(rest)?, unordered: false } }
    } else {
        return Err(format!("unknown step `{src}`"));
    };
    Ok(Some(action))
}

/// Every `${NAME}` must be bound by an earlier line, and each name bound
/// once.
fn check_variables(id: &str, steps: &[Step], errors: &mut Vec<SpecError>) {
    let mut bound: HashMap<String, usize> = HashMap::new();
    for step in steps {
        let mut uses: Vec<(String, bool)> = Vec::new();
        match &step.action {
            Action::Send { text, .. }
            | Action::Type { text }
            | Action::Print { text }
            | Action::Prompt { text } => {
                for seg in &text.segs {
                    match seg {
                        pattern::Seg::Ref(name) => uses.push((name.clone(), false)),
                        pattern::Seg::Bind(name, _) => uses.push((name.clone(), true)),
                        pattern::Seg::Lit(_) => {}
                    }
                }
            }
            Action::Expect { expect, .. } => match expect {
                Expect::Json { pattern, .. } => {
                    pattern.for_each_var(&mut |name, binds| uses.push((name.into(), binds)))
                }
                Expect::Exact { text, .. } => {
                    uses.extend(text.refs().map(|n| (n.to_owned(), false)));
                    uses.extend(text.binds().map(|n| (n.to_owned(), true)));
                }
                Expect::AnyError | Expect::AnyReply => {}
            },
        }
        for (name, binds) in uses {
            if name == "_" {
                continue;
            }
            match (binds, bound.get(&name)) {
                (true, Some(first)) => errors.push(SpecError {
                    line: step.line,
                    message: format!("example {id}: ${{{name}}} is already bound at line {first}"),
                }),
                (true, None) => {
                    bound.insert(name, step.line);
                }
                (false, None) => errors.push(SpecError {
                    line: step.line,
                    message: format!("example {id}: ${{{name}}} is used before any line binds it"),
                }),
                (false, Some(_)) => {}
            }
        }
    }
}
