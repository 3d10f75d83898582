//! A session and the reference's replies, written as a spec example in
//! `spec/PROTOCOL.md`'s own notation (section 1), so that the spec's
//! parser reads it back and the runner replays it like any other case.
//!
//! Pure code. Each piece a step writes is a `Cn>` line; each reply the
//! reference gave is a `Cn<` line, by meaning, with the token of a login
//! bound to a variable (`${T1:uuid}`) and used as `${T1}` after it.
//! Connections are numbered by first use, from `C1`.

use serde_json::Value;

use super::session::{Part, Request, Session, Tok, NEVER_ISSUED};
use crate::conform::matcher::python_json;
use crate::spec::pattern::escape_bytes;
use crate::spec::Level;

/// An example's text and where each of its lines comes from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rendered {
    /// The fenced block, ending in a newline.
    pub(crate) text: String,
    /// For each line of `text` (0 is the fence): the step and the request
    /// it belongs to.
    pub(crate) origin: Vec<Option<(usize, usize)>>,
}

/// Writes `session` as the example `id` (`AUTH-2.1`), with the
/// reference's `replies` (one per request, step by step).
pub(crate) fn render(
    session: &Session,
    replies: &[Vec<Option<Value>>],
    id: &str,
    level: Level,
) -> Rendered {
    let mut lines = vec![format!("```example {id} {}", level.as_str())];
    let mut origin = vec![None];
    let mut conns: Vec<u32> = Vec::new();
    // Login id → variable name, in the order the tokens are bound.
    let mut vars: Vec<(u32, String)> = Vec::new();
    for (s, step) in session.steps.iter().enumerate() {
        if !conns.contains(&step.conn) {
            conns.push(step.conn);
        }
        let conn = conns.iter().position(|c| *c == step.conn).unwrap_or(0) + 1;
        // A piece's request: the one its first byte belongs to.
        let mut request_at = 0;
        let mut written = 0;
        for piece in step.pieces() {
            let mut line = String::new();
            for part in &piece {
                match part {
                    Part::Lit(bytes) => line.push_str(&escape(bytes)),
                    Part::Token(token) => line.push_str(&token_text(token, &vars)),
                }
            }
            if line.ends_with(' ') {
                line.pop();
                line.push_str("\\x20");
            }
            lines.push(format!("C{conn}> {line}"));
            while request_at + 1 < step.requests.len()
                && written >= request_len(&step.requests[..=request_at])
            {
                request_at += 1;
            }
            origin.push(Some((s, request_at)));
            written += piece_len(&piece);
        }
        for (r, request) in step.requests.iter().enumerate() {
            let reply = replies.get(s).and_then(|v| v.get(r)).cloned().flatten();
            let text = match reply {
                Some(value) => {
                    let mut value = dollars(value);
                    if value.get("tokenid").is_some_and(Value::is_string) {
                        // A login's token is bound to use later; any other
                        // (a login written as raw bytes) to nothing.
                        value["tokenid"] = Value::from(match request {
                            Request::Auth { id, .. } => {
                                let name = format!("T{}", vars.len() + 1);
                                vars.push((*id, name.clone()));
                                format!("${{{name}:uuid}}")
                            }
                            _ => "${_:uuid}".to_owned(),
                        });
                    }
                    format!("C{conn}< {}", python_json(&value))
                }
                None => format!("C{conn}<*"),
            };
            lines.push(text);
            origin.push(Some((s, r)));
        }
    }
    lines.push("```".into());
    origin.push(None);
    Rendered { text: lines.join("\n") + "\n", origin }
}

fn request_len(requests: &[Request]) -> usize {
    requests.iter().map(Request::len).sum()
}

fn piece_len(piece: &[Part]) -> usize {
    piece
        .iter()
        .map(|p| match p {
            Part::Lit(b) => b.len(),
            Part::Token(_) => super::session::TOKEN_LEN,
        })
        .sum()
}

/// A token as the example writes it.
fn token_text(token: &Tok, vars: &[(u32, String)]) -> String {
    let var = |id: &u32| vars.iter().find(|(v, _)| v == id).map(|(_, name)| format!("${{{name}}}"));
    match token {
        Tok::Of(id) => var(id).unwrap_or_else(|| NEVER_ISSUED.into()),
        Tok::Mangled(id) => var(id).map_or_else(|| format!("{NEVER_ISSUED}x"), |v| format!("{v}x")),
        Tok::Never => NEVER_ISSUED.into(),
    }
}

/// Bytes as a `>` line writes them: `\r`, `\n`, `\t`, `\\`, `\xHH`, `$$`.
fn escape(bytes: &[u8]) -> String {
    escape_bytes(bytes).replace('$', "$$")
}

/// Every `$` of the reply's strings doubled, as a `<` line writes it.
fn dollars(value: Value) -> Value {
    match value {
        Value::String(s) => Value::String(s.replace('$', "$$")),
        Value::Array(items) => Value::Array(items.into_iter().map(dollars).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, dollars(v))).collect())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::conform::explore::session::{Step, Write};
    use crate::spec::{parse, Action};

    fn session() -> Session {
        Session {
            steps: vec![
                Step {
                    conn: 3,
                    requests: vec![Request::Auth {
                        id: 4,
                        user: b"messi".to_vec(),
                        password: b"surabaya".to_vec(),
                        trail: true,
                    }],
                    write: Write::Whole,
                },
                Step {
                    conn: 1,
                    requests: vec![
                        Request::Send {
                            token: Tok::Of(4),
                            to: b"messi".to_vec(),
                            text: "a $ é".into(),
                        },
                        Request::Logout { token: Tok::Mangled(9), trail: false },
                    ],
                    write: Write::Cut(vec![2, 53]),
                },
            ],
        }
    }

    fn replies() -> Vec<Vec<Option<Value>>> {
        vec![
            vec![Some(json!({"status": "OK", "tokenid": "6f1c6d3e-0000-4000-8000-000000000001"}))],
            vec![
                Some(json!({"status": "OK", "message": "Message $ Sent"})),
                Some(json!({"status": "ERROR", "message": "Informasi tidak ditemukan"})),
            ],
        ]
    }

    #[test]
    fn an_example_is_written_in_the_spec_notation() {
        let rendered = render(&session(), &replies(), "SEND-1.1", Level::Must);
        assert_eq!(
            rendered.text,
            "```example SEND-1.1 MUST\n\
             C1> auth messi surabaya \\r\\n\n\
             C1< {\"status\": \"OK\", \"tokenid\": \"${T1:uuid}\"}\n\
             C2> se\n\
             C2> nd ${T1} messi a $$ \\xc3\n\
             C2> \\xa9\\r\\nlogout 00000000-0000-4000-8000-000000000000x\\r\\n\n\
             C2< {\"status\": \"OK\", \"message\": \"Message $$ Sent\"}\n\
             C2< {\"status\": \"ERROR\", \"message\": \"Informasi tidak ditemukan\"}\n\
             ```\n"
        );
        assert_eq!(
            rendered.origin,
            vec![
                None,
                Some((0, 0)),
                Some((0, 0)),
                Some((1, 0)),
                Some((1, 0)),
                Some((1, 0)),
                Some((1, 0)),
                Some((1, 1)),
                None
            ]
        );
    }

    #[test]
    fn the_spec_parser_reads_it_back() {
        let rendered = render(&session(), &replies(), "SEND-1.1", Level::Must);
        let spec = parse(&rendered.text).expect("the example parses");
        let example = &spec.examples[0];
        assert_eq!(example.id, "SEND-1.1");
        assert_eq!(example.rule, "SEND-1");
        assert_eq!(example.steps.len(), 7);
        assert_eq!(example.connections(), vec![1, 2]);
        let writes =
            example.steps.iter().filter(|s| matches!(s.action, Action::Send { .. })).count();
        assert_eq!(writes, 4);
    }
}
