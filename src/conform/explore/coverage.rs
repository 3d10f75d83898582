//! Which spec rules a request touched, and how often the examples and the
//! exploration reached each rule.
//!
//! Pure code. A request's rules come from what it is and what the
//! reference answered it (an `auth` the reference refused with `Password
//! Salah` touched AUTH-3), and from how it was written (pipelined: TRANS-3;
//! cut: TRANS-4; a wide character across a read size or a cut: TRANS-7).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::generate::READ_SIZES;
use super::session::{Part, Request, Session, Tok, Write, TOKEN_LEN};
use crate::spec::{Kind, Level, Spec};

/// The rules one request touched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Touched {
    /// What a deviation of this request is about: the command's rule for
    /// the reference's answer, and the content's (TRANS-6, TRANS-7).
    pub(crate) core: Vec<&'static str>,
    /// How it was written: TRANS-3 (pipelined), TRANS-4 (cut).
    pub(crate) written: Vec<&'static str>,
    /// The circumstances, counted for coverage only: TRANS-1, TRANS-5
    /// (after an error on the connection), TRANS-8 (another connection
    /// open), LOGOUT-2 (a token logged out), and the like.
    pub(crate) context: Vec<&'static str>,
}

impl Touched {
    fn all(&self) -> impl Iterator<Item = &&'static str> {
        self.core.iter().chain(&self.written).chain(&self.context)
    }
}

fn text_of(reply: &Value) -> &str {
    reply.get("message").and_then(Value::as_str).unwrap_or("")
}

fn ok(reply: &Value) -> bool {
    reply.get("status").and_then(Value::as_str) == Some("OK")
}

/// The rules of every request of a session, given the reference's reply
/// to each (`None` where there was none), step by step.
pub(crate) fn touched(session: &Session, replies: &[Vec<Option<Value>>]) -> Vec<Vec<Touched>> {
    let mut out = Vec::new();
    let mut inbox_had_mail = false;
    let mut logged_out: Vec<u32> = Vec::new();
    let mut live: Vec<(u32, Vec<u8>)> = Vec::new();
    let mut error_on: Vec<u32> = Vec::new();
    let mut conns_seen: Vec<u32> = Vec::new();
    for (s, step) in session.steps.iter().enumerate() {
        let mut per_step = Vec::new();
        let cuts = match &step.write {
            Write::Whole => Vec::new(),
            Write::Cut(cuts) => cuts.clone(),
        };
        let mut start = 0;
        for (r, request) in step.requests.iter().enumerate() {
            let reply =
                replies.get(s).and_then(|v| v.get(r)).cloned().flatten().unwrap_or(Value::Null);
            let mut t = Touched {
                core: command_rules(request, &reply, inbox_had_mail),
                ..Touched::default()
            };
            let bytes = flat(request);
            if std::str::from_utf8(&bytes).is_ok() && across_read(&bytes, &cuts, start) {
                t.core.push("TRANS-7");
            }
            if step.requests.len() > 1 {
                t.written.push("TRANS-3");
            }
            if step.pieces().len() > 1 {
                t.written.push("TRANS-4");
            }
            t.context.extend(["TRANS-1", "TRANS-2", "JSON-1"]);
            if reply.to_string().contains("\\u") || !reply.to_string().is_ascii() {
                t.context.push("JSON-2");
            }
            let entries = |key: &str| match reply.get(key) {
                Some(Value::Array(a)) => a.len(),
                Some(Value::Object(o)) => o.len(),
                _ => 0,
            };
            match (request.command(), ok(&reply)) {
                ("send", true) => t.context.push("SEND-4"),
                ("list", true) if entries("messages") > 1 => t.context.push("LIST-2"),
                ("inbox", true) if entries("messages") > 1 => t.context.push("INBOX-4"),
                _ => {}
            }
            if request.command() == "list" && ok(&reply) && !logged_out.is_empty() {
                t.context.push("LIST-4");
            }
            if error_on.contains(&step.conn) {
                t.context.push("TRANS-5");
            }
            if conns_seen.iter().any(|c| *c != step.conn) {
                t.context.push("TRANS-8");
            }
            if let Some(Tok::Of(id)) = request.token() {
                if logged_out.contains(id) && !ok(&reply) {
                    t.context.push("LOGOUT-2");
                }
            }
            if request.command() == "inbox" && ok(&reply) {
                let has_mail =
                    reply.get("messages").and_then(Value::as_object).is_some_and(|m| !m.is_empty());
                inbox_had_mail |= has_mail;
            }
            // Who is logged in how often: AUTH-4, LIST-3, LOGOUT-3, SEND-3.
            let sessions_of = |user: &[u8], live: &[(u32, Vec<u8>)]| {
                live.iter().filter(|(_, u)| u == user).count()
            };
            match (request, ok(&reply)) {
                (Request::Auth { id, user, .. }, true) => {
                    if sessions_of(user, &live) > 0 {
                        t.context.push("AUTH-4");
                    }
                    live.push((*id, user.clone()));
                }
                (Request::Logout { token: Tok::Of(id), .. }, true) => {
                    let user = live
                        .iter()
                        .find(|(l, _)| l == id)
                        .map(|(_, u)| u.clone())
                        .unwrap_or_default();
                    if sessions_of(&user, &live) > 1 {
                        t.context.push("LOGOUT-3");
                    }
                    live.retain(|(l, _)| l != id);
                    logged_out.push(*id);
                }
                (Request::List { .. }, true)
                    if live.iter().any(|(_, u)| sessions_of(u, &live) > 1) =>
                {
                    t.context.push("LIST-3");
                }
                (Request::Send { to, text, .. }, true) => {
                    if sessions_of(to, &live) == 0 {
                        t.context.push("SEND-3");
                    }
                    let plain = |b: &u8| b.is_ascii_alphanumeric() || *b >= 0x80;
                    if !text.first().is_some_and(plain)
                        || !text.last().is_some_and(plain)
                        || text.iter().any(|b| b.is_ascii_control())
                    {
                        t.context.push("SEND-6");
                    }
                }
                _ => {}
            }
            if reply.get("status").and_then(Value::as_str) == Some("ERROR") {
                error_on.push(step.conn);
            }
            start += request.len();
            per_step.push(t);
        }
        conns_seen.push(step.conn);
        out.push(per_step);
    }
    out
}

/// The command's rule for the reference's answer.
fn command_rules(request: &Request, reply: &Value, inbox_had_mail: bool) -> Vec<&'static str> {
    let text = text_of(reply);
    let bad_token = !ok(reply) && text == "Informasi tidak ditemukan";
    match request {
        Request::Raw(bytes) => match std::str::from_utf8(bytes) {
            Err(_) => vec!["TRANS-6"],
            Ok(line) => {
                let word = line.split(' ').next().unwrap_or("");
                if ["auth", "send", "inbox", "list", "logout"].contains(&word) {
                    if text == "--Protocol Tidak Benar" {
                        vec!["ERR-2"]
                    } else if line.contains("  ") {
                        vec!["FIELD-1"]
                    } else {
                        vec!["FIELD-3"]
                    }
                } else if ["auth", "send", "inbox", "list", "logout"]
                    .contains(&word.to_lowercase().as_str())
                {
                    vec!["FIELD-4"]
                } else {
                    vec!["ERR-1"]
                }
            }
        },
        Request::Auth { user, .. } if std::str::from_utf8(user).is_err() => vec!["TRANS-6"],
        Request::Auth { .. } if ok(reply) => vec!["AUTH-1"],
        Request::Auth { .. } if text == "Password Salah" => vec!["AUTH-3"],
        Request::Auth { .. } => vec!["AUTH-2"],
        _ if bad_token && request.command() == "logout" => vec!["LOGOUT-4", "ERR-3"],
        _ if bad_token => vec!["ERR-3"],
        Request::Send { .. } if ok(reply) => vec!["SEND-1"],
        Request::Send { .. } => vec!["SEND-2"],
        Request::Inbox { .. } => {
            let empty =
                reply.get("messages").and_then(Value::as_object).is_some_and(|m| m.is_empty());
            // After a read that took mail away, what a second read shows
            // is INBOX-3's business first.
            let mut rules = if inbox_had_mail { vec!["INBOX-3"] } else { Vec::new() };
            rules.push(if empty { "INBOX-2" } else { "INBOX-1" });
            rules
        }
        Request::List { .. } => vec!["LIST-1"],
        Request::Logout { .. } => vec!["LOGOUT-1"],
    }
}

/// The request's bytes, a token written as a UUID's worth of `t`.
fn flat(request: &Request) -> Vec<u8> {
    let mut bytes = Vec::new();
    for part in request.parts() {
        match part {
            Part::Lit(b) => bytes.extend(b),
            Part::Token(_) => bytes.extend([b't'; TOKEN_LEN]),
        }
    }
    bytes
}

/// Whether a multi-byte character of the request lies across a read size
/// (a multiple of one, counted from where a server's reads start: the
/// request's start, the step's, when requests come together, or a piece's,
/// when the write is cut) or across a cut of the step's writes (`start` is
/// where the request begins in the step).
fn across_read(bytes: &[u8], cuts: &[usize], start: usize) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else { return false };
    text.char_indices().filter(|(_, c)| c.len_utf8() > 1).any(|(i, c)| {
        let (first, last) = (i + 1, i + c.len_utf8() - 1);
        // A multiple of n among from..=to (from > 0).
        let multiple = |from: usize, to: usize, n: usize| to / n > (from - 1) / n;
        // Reads start where the request starts, where the step starts, and
        // where each piece of a cut write before the character starts.
        let mut origins = vec![0];
        origins.extend(cuts.iter().copied().filter(|c| *c <= start + i));
        READ_SIZES.iter().any(|n| {
            multiple(first, last, *n)
                || origins.iter().any(|o| multiple(start + first - o, start + last - o, *n))
        }) || cuts.iter().any(|cut| (start + first..=start + last).contains(cut))
    })
}

/// How often each rule was reached: by the spec's examples, and by the
/// exploration's requests.
#[derive(Debug, Clone, Default)]
pub(crate) struct Coverage {
    pub(crate) explored: BTreeMap<String, usize>,
}

impl Coverage {
    pub(crate) fn add(&mut self, touched: &[Vec<Touched>]) {
        for rule in touched.iter().flatten().flat_map(Touched::all) {
            *self.explored.entry((*rule).to_owned()).or_default() += 1;
        }
    }

    /// Every server rule of the spec: (rule, level, examples, explored).
    pub(crate) fn table<'a>(&self, spec: &'a Spec) -> Vec<(&'a str, Level, usize, usize)> {
        spec.rules
            .iter()
            .filter(|rule| {
                spec.examples.iter().filter(|e| e.rule == rule.id).all(|e| e.kind == Kind::Server)
            })
            .map(|rule| {
                let examples = spec.examples.iter().filter(|e| e.rule == rule.id).count();
                let explored = self.explored.get(&rule.id).copied().unwrap_or(0);
                (rule.id.as_str(), rule.level, examples, explored)
            })
            .collect()
    }

    /// The coverage as text: one line per rule, and the rules no step reached.
    pub(crate) fn render(&self, spec: &Spec) -> String {
        let table = self.table(spec);
        let mut out =
            String::from("Coverage (server rules: examples in the spec, requests explored)\n");
        for (rule, level, examples, explored) in &table {
            out.push_str(&format!(
                "  {rule:<10} {:<6} {examples:>3} examples {explored:>7} explored\n",
                level.as_str()
            ));
        }
        let none: Vec<&str> = table.iter().filter(|r| r.3 == 0).map(|r| r.0).collect();
        if none.is_empty() {
            out.push_str("Every server rule was reached by the exploration.\n");
        } else {
            out.push_str(&format!("Not reached by the exploration: {}\n", none.join(", ")));
        }
        out
    }

    pub(crate) fn json(&self, spec: &Spec) -> Value {
        let table = self.table(spec);
        json!({
            "rules": table.iter().map(|(rule, level, examples, explored)| json!({
                "rule": rule, "level": level, "examples": examples, "explored": explored,
            })).collect::<Vec<_>>(),
            "not_reached": table.iter().filter(|r| r.3 == 0).map(|r| r.0).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conform::explore::session::Step;

    fn step(conn: u32, requests: Vec<Request>, write: Write) -> Step {
        Step { conn, requests, write }
    }

    #[test]
    fn rules_follow_the_reference_answer_and_the_writing() {
        let auth = |pw: &str| Request::Auth {
            id: 1,
            user: b"messi".to_vec(),
            password: pw.into(),
            trail: false,
        };
        let session = Session {
            steps: vec![
                step(1, vec![auth("salah"), auth("surabaya")], Write::Whole),
                step(
                    2,
                    vec![Request::Logout { token: Tok::Never, trail: true }],
                    Write::Cut(vec![3]),
                ),
                step(
                    1,
                    vec![Request::Auth {
                        id: 2,
                        user: format!("{}é", "x".repeat(26)).into(),
                        password: b"p".to_vec(),
                        trail: false,
                    }],
                    Write::Whole,
                ),
            ],
        };
        let replies = vec![
            vec![
                Some(json!({"status": "ERROR", "message": "Password Salah"})),
                Some(json!({"status": "OK", "tokenid": "t"})),
            ],
            vec![Some(json!({"status": "ERROR", "message": "Informasi tidak ditemukan"}))],
            vec![Some(json!({"status": "ERROR", "message": "User Tidak Ada"}))],
        ];
        let t = touched(&session, &replies);
        assert_eq!(
            (t[0][0].core.as_slice(), t[0][0].written.as_slice()),
            (&["AUTH-3"][..], &["TRANS-3"][..])
        );
        assert_eq!(t[0][1].core, ["AUTH-1"]);
        assert_eq!(
            (t[1][0].core.as_slice(), t[1][0].written.as_slice()),
            (&["LOGOUT-4", "ERR-3"][..], &["TRANS-4"][..])
        );
        assert!(t[1][0].context.contains(&"TRANS-8"));
        // "auth " + 26 bytes: é at offsets 31 and 32.
        assert_eq!(t[2][0].core, ["AUTH-2", "TRANS-7"]);
        // The second request of a write: é at 63 and 64 of the write.
        let pipelined = Session {
            steps: vec![step(
                1,
                vec![
                    Request::Raw(vec![b'x'; 31]),
                    Request::Raw(format!("{}é", "y".repeat(30)).into()),
                ],
                Write::Whole,
            )],
        };
        let replies =
            vec![vec![Some(json!({"status": "ERROR", "message": "**Protocol Tidak Benar"})); 2]];
        // A cut at 10: reads from there put 😀 (at 40..44) across 42.
        let cut = Session {
            steps: vec![step(
                1,
                vec![Request::Raw(format!("{}😀", "z".repeat(40)).into())],
                Write::Cut(vec![10]),
            )],
        };
        let one = vec![vec![Some(json!({"status": "ERROR", "message": "**Protocol Tidak Benar"}))]];
        assert_eq!(touched(&cut, &one)[0][0].core, ["ERR-1", "TRANS-7"]);
        let whole = Session { steps: vec![Step { write: Write::Whole, ..cut.steps[0].clone() }] };
        assert_eq!(touched(&whole, &one)[0][0].core, ["ERR-1"]);
        let p = touched(&pipelined, &replies);
        assert_eq!(p[0][1].core, ["ERR-1", "TRANS-7"]);
        assert_eq!(p[0][0].core, ["ERR-1"]);
        assert!(t[2][0].context.contains(&"TRANS-5"));
    }

    #[test]
    fn a_second_read_of_an_inbox_touches_inbox_3() {
        let inbox = || Request::Inbox { token: Tok::Of(1), trail: false };
        let session = Session { steps: vec![step(1, vec![inbox(), inbox()], Write::Whole)] };
        let replies = vec![vec![
            Some(json!({"status": "OK", "messages": {"messi": []}})),
            Some(json!({"status": "OK", "messages": {}})),
        ]];
        let t = touched(&session, &replies);
        assert_eq!(t[0][0].core, ["INBOX-1"]);
        assert_eq!(t[0][1].core, ["INBOX-3", "INBOX-2"]);
    }

    #[test]
    fn coverage_counts_and_names_the_rules_not_reached() {
        let spec = crate::spec::parse(crate::spec::PROTOCOL_MD).expect("the spec parses");
        let mut coverage = Coverage::default();
        let session =
            Session { steps: vec![step(1, vec![Request::Raw(b"xyzzy".to_vec())], Write::Whole)] };
        let replies =
            vec![vec![Some(json!({"status": "ERROR", "message": "**Protocol Tidak Benar"}))]];
        coverage.add(&touched(&session, &replies));
        coverage.add(&touched(&session, &replies));
        let table = coverage.table(&spec);
        let err1 = table.iter().find(|r| r.0 == "ERR-1").expect("ERR-1");
        assert_eq!(err1.3, 2);
        assert!(err1.2 > 0);
        assert!(coverage.json(&spec)["not_reached"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "AUTH-1"));
        assert!(!table.iter().any(|r| r.0.starts_with("CLI-")));
    }
}
