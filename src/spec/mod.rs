//! The executable specification: rules and their examples, read from
//! `spec/PROTOCOL.md`.
//!
//! [`parse`] turns the Markdown into [`Rule`]s (paragraphs that start with
//! `**ID** (LEVEL; source)`) and [`Example`]s (fenced blocks whose info
//! string is `example ID LEVEL [client]`), each example a list of
//! [`Step`]s. The example format is defined in section 1 of the spec; this
//! module is its only reader, so the two must agree.
//!
//! Pure code: no I/O. The conformance runner ([`crate::conform`]) executes
//! the steps; `tests/spec_examples.rs` runs them against the reference
//! implementation and checks [`coverage`] both ways.

mod example;
pub mod pattern;

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use pattern::{Json, Text};

/// The specification shipped with this crate, compiled in so that the
/// runner works from anywhere.
pub const PROTOCOL_MD: &str = include_str!("../../spec/PROTOCOL.md");

/// Where the shipped specification lives, for messages.
pub(crate) const PROTOCOL_PATH: &str = "spec/PROTOCOL.md";

/// How much an example or a rule weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Level {
    #[serde(rename = "MUST")]
    Must,
    #[serde(rename = "SHOULD")]
    Should,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
        }
    }

    fn parse(s: &str) -> Option<Level> {
        match s {
            "MUST" => Some(Level::Must),
            "SHOULD" => Some(Level::Should),
            _ => None,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A numbered rule: `**AUTH-1** (MUST; seed §1.d.i) A known username…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `AUTH-1`.
    pub id: String,
    pub level: Level,
    /// `seed §1.d.i`, `original`, `decision`, …
    pub source: String,
    /// The paragraph after the parenthesis, on one line.
    pub text: String,
    /// 1-based line of the rule in the Markdown.
    pub line: usize,
}

/// Whether an example runs against a server or a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Server,
    Client,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Server => "server",
            Kind::Client => "client",
        }
    }
}

/// One fenced `example` block.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// `AUTH-1.1`.
    pub id: String,
    /// `AUTH-1`: the ID up to the last dot.
    pub rule: String,
    pub level: Level,
    pub kind: Kind,
    pub steps: Vec<Step>,
    /// 1-based line of the opening fence.
    pub line: usize,
}

impl Example {
    /// The connections the example uses, in order of first use.
    pub fn connections(&self) -> Vec<u32> {
        let mut seen = Vec::new();
        for step in &self.steps {
            if let Action::Send { conn, .. } | Action::Expect { conn, .. } = &step.action {
                if !seen.contains(conn) {
                    seen.push(*conn);
                }
            }
        }
        seen
    }
}

/// One line of an example.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// 1-based line in the Markdown.
    pub line: usize,
    /// The line as written.
    pub source: String,
    pub action: Action,
    /// For a `given` line (one that only prepares state for the steps the
    /// example is about): the rule it relies on, e.g. `AUTH-1` for a
    /// `given C1> auth …`. `None` for the steps the example checks.
    pub given: Option<String>,
}

impl Step {
    /// Whether the step only prepares state (`given`).
    pub(crate) fn is_given(&self) -> bool {
        self.given.is_some()
    }
}

/// The rule a `given` step relies on, by the command it sends or types:
/// a server example's setup relies on the command's main server rule, a
/// client example's on the client rule for that command.
pub(crate) fn rule_for_command(kind: Kind, command: &str) -> Option<&'static str> {
    let rules = match kind {
        Kind::Server => [
            ("auth", "AUTH-1"),
            ("send", "SEND-1"),
            ("inbox", "INBOX-1"),
            ("list", "LIST-1"),
            ("logout", "LOGOUT-1"),
        ],
        Kind::Client => [
            ("auth", "CLI-2"),
            ("send", "CLI-7"),
            ("inbox", "CLI-8"),
            ("list", "CLI-9"),
            ("logout", "CLI-10"),
        ],
    };
    rules.iter().find(|(c, _)| *c == command).map(|(_, r)| *r)
}

/// The command word a template starts with (`auth` for `auth messi …`).
fn command_of(text: &Text) -> Option<String> {
    let Some(pattern::Seg::Lit(bytes)) = text.segs.first() else { return None };
    let word = bytes.split(|b| *b == b' ' || *b == b'\r').next()?;
    let word = std::str::from_utf8(word).ok()?;
    (!word.is_empty()).then(|| word.to_owned())
}

/// What a step does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `C1> TEXT`: one write to connection `conn`.
    Send { conn: u32, text: Text },
    /// `C1< …`, `C1<~ …`, `C1<= …`, `C1<-`: read one reply and check it.
    Expect { conn: u32, expect: Expect },
    /// `U> TEXT`: type a line into the client.
    Type { text: Text },
    /// `U< TEXT`: the client prints this line.
    Print { text: Text },
    /// `U? TEXT`: the client shows this prompt and waits.
    Prompt { text: Text },
}

/// How a reply is checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// `<` (`unordered: false`) or `<~` (`true`): by JSON meaning.
    Json { pattern: Json, unordered: bool },
    /// `<=`: these exact bytes; `meaning` is the same text read as JSON, so
    /// that a difference of form can be told from a difference of meaning.
    Exact { text: Text, meaning: Option<Json> },
    /// `<-`: any `{"status": "ERROR", …}` object.
    AnyError,
    /// `<*`: any reply at all (one JSON object and its terminator), not
    /// checked: for a reply whose content another rule is about.
    AnyReply,
}

/// The rules and examples of a specification.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    pub rules: Vec<Rule>,
    pub examples: Vec<Example>,
    /// Each reply text of the index (`## Reply texts and the rules that
    /// use them`) with the first rule it lists: the rule a wording
    /// difference of that text is charged to.
    pub text_homes: Vec<(String, String)>,
}

impl Spec {
    /// The rule an example belongs to.
    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// The examples of one kind, in document order.
    pub fn examples_of(&self, kind: Kind) -> impl Iterator<Item = &Example> {
        self.examples.iter().filter(move |e| e.kind == kind)
    }
}

/// A problem in the specification, located by line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for SpecError {}

/// Parses the specification. Every problem found is returned, not just
/// the first, so an author can fix them all at once.
pub fn parse(markdown: &str) -> Result<Spec, Vec<SpecError>> {
    let mut spec = Spec::default();
    let mut errors = Vec::new();
    let lines: Vec<&str> = markdown.lines().collect();
    let mut i = 0;
    let mut prev_blank = true;
    while i < lines.len() {
        let line = lines[i];
        if let Some((ch, len, info)) = fence_open(line) {
            let start = i;
            let mut body = Vec::new();
            i += 1;
            while i < lines.len() && !fence_closes(lines[i], ch, len) {
                body.push((i + 1, lines[i]));
                i += 1;
            }
            if i == lines.len() {
                errors.push(SpecError {
                    line: start + 1,
                    message: "fenced block is never closed".into(),
                });
            }
            if info.split_whitespace().next() == Some("example") {
                match example::parse_example(info, start + 1, &body) {
                    Ok(example) => spec.examples.push(example),
                    Err(mut errs) => errors.append(&mut errs),
                }
            }
            i += 1;
            prev_blank = false;
            continue;
        }
        if prev_blank && line.starts_with("**") {
            let mut paragraph = vec![line];
            while i + 1 < lines.len()
                && !lines[i + 1].trim().is_empty()
                && fence_open(lines[i + 1]).is_none()
            {
                i += 1;
                paragraph.push(lines[i]);
            }
            let start = i + 1 - paragraph.len() + 1;
            // Lines join with one space; spaces inside a line are kept
            // (`"  hallo \r\n"` must not lose one).
            let joined: Vec<&str> = paragraph.iter().map(|l| l.trim()).collect();
            match parse_rule(&joined.join(" "), start) {
                Ok(Some(rule)) => spec.rules.push(rule),
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
        prev_blank = line.trim().is_empty();
        i += 1;
    }
    spec.text_homes = text_homes(&lines);
    let mut seen = HashMap::new();
    for rule in &spec.rules {
        if let Some(first) = seen.insert(rule.id.clone(), rule.line) {
            errors.push(SpecError {
                line: rule.line,
                message: format!("rule {} already defined at line {first}", rule.id),
            });
        }
    }
    let mut seen = HashMap::new();
    for example in &spec.examples {
        if let Some(first) = seen.insert(example.id.clone(), example.line) {
            errors.push(SpecError {
                line: example.line,
                message: format!("example {} already defined at line {first}", example.id),
            });
        }
    }
    if errors.is_empty() {
        Ok(spec)
    } else {
        errors.sort_by_key(|e| e.line);
        Err(errors)
    }
}

/// The heading of the index of reply texts.
const TEXT_INDEX: &str = "## Reply texts and the rules that use them";

/// Reads the index of reply texts: rows `| `TEXT` | where | [RULE](#RULE), … |`.
/// A row may name several texts; a row that links no rule is skipped.
fn text_homes(lines: &[&str]) -> Vec<(String, String)> {
    let mut homes = Vec::new();
    let Some(start) = lines.iter().position(|l| l.trim() == TEXT_INDEX) else { return homes };
    for line in lines[start + 1..].iter().take_while(|l| !l.starts_with("## ")) {
        let cells: Vec<&str> = line.split(" | ").collect();
        let (Some(first), Some(last)) = (cells.first(), cells.last()) else { continue };
        if !first.starts_with("| `") {
            continue;
        }
        let Some(rule) = last.split_once("[").and_then(|(_, r)| r.split_once(']')).map(|(r, _)| r)
        else {
            continue;
        };
        if !is_rule_id(rule) {
            continue;
        }
        let texts = first.trim_start_matches('|').trim();
        for text in texts.split("`, `") {
            let text = text.trim_matches('`');
            if !text.is_empty() {
                homes.push((text.to_owned(), rule.to_owned()));
            }
        }
    }
    homes
}

/// Checks coverage both ways: every rule has at least one example, every
/// example names a rule, and no example weighs more than its rule.
pub fn coverage(spec: &Spec) -> Vec<SpecError> {
    let mut errors = Vec::new();
    let with_examples: BTreeSet<&str> = spec.examples.iter().map(|e| e.rule.as_str()).collect();
    for rule in &spec.rules {
        if !with_examples.contains(rule.id.as_str()) {
            errors.push(SpecError {
                line: rule.line,
                message: format!("rule {} has no example", rule.id),
            });
        }
    }
    for example in &spec.examples {
        match spec.rule(&example.rule) {
            None => errors.push(SpecError {
                line: example.line,
                message: format!(
                    "example {} names no rule: there is no rule {}",
                    example.id, example.rule
                ),
            }),
            Some(rule) if rule.level == Level::Should && example.level == Level::Must => errors
                .push(SpecError {
                    line: example.line,
                    message: format!(
                        "example {} is MUST but its rule {} is only SHOULD",
                        example.id, rule.id
                    ),
                }),
            Some(_) => {}
        }
    }
    errors.sort_by_key(|e| e.line);
    errors
}

/// An opening fence: up to three spaces, then three or more backticks or
/// tildes, then the info string. Returns the character, the run length and
/// the info string.
fn fence_open(line: &str) -> Option<(char, usize, &str)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let rest = &line[indent..];
    let ch = rest.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = rest.len() - rest.trim_start_matches(ch).len();
    if len < 3 {
        return None;
    }
    let info = rest[len..].trim();
    if ch == '`' && info.contains('`') {
        return None;
    }
    Some((ch, len, info))
}

/// Whether `line` closes a fence opened with `len` times `ch`.
fn fence_closes(line: &str, ch: char, len: usize) -> bool {
    let trimmed = line.trim_start_matches(' ');
    if line.len() - trimmed.len() > 3 {
        return false;
    }
    let run = trimmed.len() - trimmed.trim_start_matches(ch).len();
    run >= len && trimmed[run..].trim().is_empty()
}

/// Whether `s` is a rule ID: capital letters, `-`, digits (`AUTH-1`).
fn is_rule_id(s: &str) -> bool {
    match s.split_once('-') {
        Some((prefix, number)) => {
            !prefix.is_empty()
                && prefix.bytes().all(|b| b.is_ascii_uppercase())
                && !number.is_empty()
                && number.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// Parses a paragraph that starts with `**`. `Ok(None)` when the bold text
/// is not a rule ID (ordinary bold prose).
fn parse_rule(paragraph: &str, line: usize) -> Result<Option<Rule>, SpecError> {
    let Some(rest) = paragraph.strip_prefix("**") else { return Ok(None) };
    let Some((id, rest)) = rest.split_once("**") else { return Ok(None) };
    if !is_rule_id(id) {
        return Ok(None);
    }
    let fail = |message: String| Err(SpecError { line, message });
    let Some(rest) = rest.strip_prefix(" (") else {
        return fail(format!("rule {id}: expected ` (LEVEL; source)` after the ID"));
    };
    let Some((header, text)) = rest.split_once(')') else {
        return fail(format!("rule {id}: unclosed `(` after the ID"));
    };
    let Some((level, source)) = header.split_once(';') else {
        return fail(format!("rule {id}: expected `(LEVEL; source)`, found `({header})`"));
    };
    let Some(level) = Level::parse(level.trim()) else {
        return fail(format!("rule {id}: level must be MUST or SHOULD, found `{}`", level.trim()));
    };
    Ok(Some(Rule {
        id: id.to_owned(),
        level,
        source: source.trim().to_owned(),
        text: text.trim().to_owned(),
        line,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"# Title

**AUTH-1** (MUST; seed §1.d.i) A known username with its password
opens a session.

```example AUTH-1.1 MUST
# a comment
C1> auth messi surabaya \r\n
C1< {"status": "OK", "tokenid": "${T:uuid}"}
C2> logout ${T} \r\n
C2<= {"status": "OK", "messages": "Anda berhasil logout!"}\r\n\r\n
C2> foo\r\n
C2<-
C1> list ${T}\r\n
C1<~ {"status": "OK", "messages": ["a", "b"]}
```

````text
```example AUTH-1.9 MUST
C1> this is an illustration, not an example
```
````

**CLI-1** (SHOULD; original) Prompts.

```example CLI-1.1 SHOULD client
U? Command :
U> auth messi surabaya
U< username messi logged in, token ${T:uuid}\x20
```

- **Not a rule.** Prose.
"#;

    #[test]
    fn parses_rules_and_examples() {
        let spec = parse(DOC).unwrap();
        assert_eq!(spec.rules.len(), 2);
        assert_eq!(spec.rules[0].id, "AUTH-1");
        assert_eq!(spec.rules[0].level, Level::Must);
        assert_eq!(spec.rules[0].source, "seed §1.d.i");
        assert_eq!(spec.rules[0].text, "A known username with its password opens a session.");
        assert_eq!(spec.rules[0].line, 3);
        assert_eq!(spec.examples.len(), 2, "the example inside a four-backtick fence is not one");
        let ex = &spec.examples[0];
        assert_eq!(
            (ex.id.as_str(), ex.rule.as_str(), ex.level, ex.kind, ex.line),
            ("AUTH-1.1", "AUTH-1", Level::Must, Kind::Server, 6)
        );
        assert_eq!(ex.steps.len(), 8);
        assert_eq!(ex.connections(), vec![1, 2]);
        assert_eq!(ex.steps[0].line, 8);
        assert!(matches!(
            ex.steps[3].action,
            Action::Expect { conn: 2, expect: Expect::Exact { meaning: Some(_), .. } }
        ));
        assert!(matches!(ex.steps[5].action, Action::Expect { expect: Expect::AnyError, .. }));
        assert!(matches!(
            ex.steps[7].action,
            Action::Expect { expect: Expect::Json { unordered: true, .. }, .. }
        ));
        let cli = &spec.examples[1];
        assert_eq!(cli.kind, Kind::Client);
        assert!(matches!(cli.steps[0].action, Action::Prompt { .. }));
        assert!(coverage(&spec).is_empty());
    }

    fn errors_of(doc: &str) -> Vec<String> {
        match parse(doc) {
            Ok(spec) => coverage(&spec).into_iter().map(|e| e.to_string()).collect(),
            Err(errors) => errors.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn coverage_is_checked_both_ways() {
        let doc = "**A-1** (MUST; x) Rule.\n\n```example B-1.1 MUST\nC1> x\\r\\n\nC1<-\n```\n";
        let errors = errors_of(doc);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("rule A-1 has no example"));
        assert!(errors[1].contains("names no rule"));
        let doc = "**A-1** (SHOULD; x) Rule.\n\n```example A-1.1 MUST\nC1> x\\r\\n\nC1<-\n```\n";
        assert!(errors_of(doc)[0].contains("MUST but its rule A-1 is only SHOULD"));
    }

    #[test]
    fn malformed_examples_are_reported_with_lines() {
        let doc = "```example A-1.1 MUST\nC1> auth ${T}\\r\\n\nC1< {\"t\": \"${T:uuid}\"}\nC1< {\"t\": \"${T:uuid}\"}\nU> hi\nX1> what\n```\n\n```example A-1.2 MAY\n```\n\n```example A1 MUST\n```\n```example A-1.3 MUST\nC1> nothing checked\\r\\n\n```\n";
        let errors = errors_of(doc);
        let joined = errors.join("\n");
        assert!(joined.contains("line 2: example A-1.1: ${T} is used before"), "{joined}");
        assert!(joined.contains("line 4: example A-1.1: ${T} is already bound"), "{joined}");
        assert!(
            joined.contains("line 5: example A-1.1: `U` lines belong in client examples"),
            "{joined}"
        );
        assert!(joined.contains("line 6: example A-1.1: unknown step"), "{joined}");
        assert!(joined.contains("line 9: example A-1.2: level must be MUST or SHOULD"), "{joined}");
        assert!(joined.contains("line 12: example ID `A1`"), "{joined}");
        assert!(joined.contains("line 14: example A-1.3 checks nothing"), "{joined}");
    }

    #[test]
    fn duplicates_and_bad_rule_headers() {
        let doc = "**A-1** (MUST; x) One.\n\n**A-1** (MUST; x) Again.\n\n**A-2** MUST: no parenthesis.\n\n**A-3** (MAY; x) Hmm.\n";
        let errors = errors_of(doc);
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].contains("line 3: rule A-1 already defined at line 1"));
        assert!(errors[1].contains("line 5: rule A-2: expected ` (LEVEL; source)`"));
        assert!(errors[2].contains("line 7: rule A-3: level must be MUST or SHOULD"));
    }

    #[test]
    fn reply_texts_have_a_home_rule() {
        let doc = "## Reply texts and the rules that use them\n\n| text | where | rules |\n|---|---|---|\n| `User Tidak Ada` | auth | [AUTH-2](#AUTH-2), [TRANS-2](#TRANS-2) |\n| `A`, `B` | limits | [§12](#x) (no rules) |\n\n## 1. Next\n";
        let spec = parse(doc).unwrap();
        assert_eq!(spec.text_homes, vec![("User Tidak Ada".to_owned(), "AUTH-2".to_owned())]);
        let shipped = parse(PROTOCOL_MD).unwrap();
        for (text, rule) in [
            ("User Tidak Ada", "AUTH-2"),
            ("Informasi tidak ditemukan", "ERR-3"),
            ("**Protocol Tidak Benar", "ERR-1"),
            ("Anda berhasil logout!", "LOGOUT-1"),
        ] {
            let home = shipped.text_homes.iter().find(|(t, _)| t == text).map(|(_, r)| r.as_str());
            assert_eq!(home, Some(rule), "{text}");
        }
    }

    #[test]
    fn the_shipped_spec_parses() {
        let spec = parse(PROTOCOL_MD).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(spec.examples.len() >= 40);
        assert!(coverage(&spec).is_empty(), "{:?}", coverage(&spec));
    }
}
