//! The little languages inside an example line: escapes, variables, text
//! templates (what is sent or typed), text patterns (what is read) and JSON
//! patterns (a reply compared by meaning).
//!
//! Everything here is pure: strings in, values out.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

/// The values bound so far in one example run, by variable name.
///
/// A variable always holds text: a token, or for `${X:any}` bound to a
/// JSON value that is not a string, that value's compact JSON text.
pub(crate) type Bindings = BTreeMap<String, String>;

/// A variable a text to write refers to, or binds, with no value yet:
/// the text cannot be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unbound {
    pub name: String,
    /// `Some` when the text binds it (`${NAME:kind}`) instead of using it.
    pub kind: Option<VarKind>,
}

impl std::fmt::Display for Unbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            None => write!(f, "${{{}}} was never bound", self.name),
            Some(kind) => write!(f, "${{{}:{}}} was never bound", self.name, kind.name()),
        }
    }
}

impl std::error::Error for Unbound {}

/// What a binding variable accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarKind {
    /// A lowercase UUID, `8-4-4-4-12` hex digits.
    Uuid,
    /// Any value (in text: any run of characters up to what follows).
    Any,
}

impl VarKind {
    fn name(self) -> &'static str {
        match self {
            VarKind::Uuid => "uuid",
            VarKind::Any => "any",
        }
    }
}

/// One piece of a text template or pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// These bytes, literally.
    Lit(Vec<u8>),
    /// `${NAME}`: the value bound earlier.
    Ref(String),
    /// `${NAME:kind}`: match and bind (`_` binds nothing).
    Bind(String, VarKind),
}

/// A line of bytes with variables: what a `C1>`/`U>` step writes, or what a
/// `<=`, `U<` or `U?` step expects.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text {
    pub segs: Vec<Seg>,
}

/// A problem in an example line, with a message for the spec's author.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(pub String);

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PatternError {}

fn err<T>(message: impl Into<String>) -> Result<T, PatternError> {
    Err(PatternError(message.into()))
}

/// Whether `c` may start / continue a variable name.
fn is_name_char(c: char, first: bool) -> bool {
    c == '_' || c.is_ascii_alphabetic() || (!first && c.is_ascii_digit())
}

/// Parses `NAME` or `NAME:kind` (the inside of `${…}`).
fn parse_var(inner: &str) -> Result<Seg, PatternError> {
    let (name, kind) = match inner.split_once(':') {
        Some((name, kind)) => (name, Some(kind)),
        None => (inner, None),
    };
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| is_name_char(c, true))
        && chars.all(|c| is_name_char(c, false));
    if !valid {
        return err(format!("`${{{inner}}}`: a variable name is letters, digits and `_`"));
    }
    match kind {
        None if name == "_" => err("`${_}` refers to nothing; `_` only binds (`${_:any}`)"),
        None => Ok(Seg::Ref(name.to_owned())),
        Some("uuid") => Ok(Seg::Bind(name.to_owned(), VarKind::Uuid)),
        Some("any") => Ok(Seg::Bind(name.to_owned(), VarKind::Any)),
        Some(other) => err(format!("`${{{inner}}}`: unknown kind `{other}` (use `uuid` or `any`)")),
    }
}

impl Text {
    /// Parses a `>`, `<=`, `U>`, `U<` or `U?` line's text: the escapes
    /// `\r \n \t \\ \xHH`, the variables `${NAME}` and `${NAME:kind}`, and
    /// `$$` for a literal `$`. A literal trailing space is refused (write
    /// `\x20`), so that an editor that strips it cannot change the example.
    pub fn parse(src: &str) -> Result<Text, PatternError> {
        if src.ends_with(' ') || src.ends_with('\t') {
            return err("trailing white space; write a trailing space as \\x20");
        }
        let mut segs = Vec::new();
        let mut lit = Vec::new();
        let bytes = src.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => {
                    let (byte, len) = match bytes.get(i + 1) {
                        Some(b'r') => (b'\r', 2),
                        Some(b'n') => (b'\n', 2),
                        Some(b't') => (b'\t', 2),
                        Some(b'\\') => (b'\\', 2),
                        Some(b'x') => {
                            let hex = src.get(i + 2..i + 4).unwrap_or("");
                            match u8::from_str_radix(hex, 16) {
                                Ok(byte)
                                    if hex.len() == 2
                                        && hex.bytes().all(|b| b.is_ascii_hexdigit()) =>
                                {
                                    (byte, 4)
                                }
                                _ => {
                                    return err(format!(
                                        "`\\x` needs two hex digits at column {}",
                                        i + 1
                                    ))
                                }
                            }
                        }
                        _ => {
                            return err(format!(
                                "unknown escape at column {} (use \\r \\n \\t \\\\ or \\xHH)",
                                i + 1
                            ))
                        }
                    };
                    lit.push(byte);
                    i += len;
                }
                b'$' => match bytes.get(i + 1) {
                    Some(b'$') => {
                        lit.push(b'$');
                        i += 2;
                    }
                    Some(b'{') => {
                        let Some(end) = src[i + 2..].find('}') else {
                            return err(format!("unclosed `${{` at column {}", i + 1));
                        };
                        let seg = parse_var(&src[i + 2..i + 2 + end])?;
                        if !lit.is_empty() {
                            segs.push(Seg::Lit(std::mem::take(&mut lit)));
                        }
                        if let (Some(Seg::Bind(_, VarKind::Any)), Seg::Bind(_, VarKind::Any)) =
                            (segs.last(), &seg)
                        {
                            return err("two `any` variables in a row cannot be told apart");
                        }
                        segs.push(seg);
                        i += 2 + end + 1;
                    }
                    _ => {
                        return err(format!(
                            "lone `$` at column {} (write `$$` for a literal `$`)",
                            i + 1
                        ))
                    }
                },
                byte => {
                    lit.push(byte);
                    i += 1;
                }
            }
        }
        if !lit.is_empty() {
            segs.push(Seg::Lit(lit));
        }
        Ok(Text { segs })
    }

    /// A text that is these bytes and nothing else.
    pub fn literal(bytes: &[u8]) -> Text {
        Text { segs: vec![Seg::Lit(bytes.to_vec())] }
    }

    /// The variables this text refers to.
    pub(crate) fn refs(&self) -> impl Iterator<Item = &str> {
        self.segs.iter().filter_map(|s| match s {
            Seg::Ref(name) => Some(name.as_str()),
            _ => None,
        })
    }

    /// The variables this text binds (`_` excluded).
    pub fn binds(&self) -> impl Iterator<Item = &str> {
        self.segs.iter().filter_map(|s| match s {
            Seg::Bind(name, _) if name != "_" => Some(name.as_str()),
            _ => None,
        })
    }

    /// The bytes to write, with every `${NAME}` replaced by its value.
    /// Fails on the first variable not bound yet.
    pub fn render(&self, vars: &Bindings) -> Result<Vec<u8>, Unbound> {
        let mut out = Vec::new();
        for seg in &self.segs {
            match seg {
                Seg::Lit(bytes) => out.extend_from_slice(bytes),
                Seg::Ref(name) => {
                    let value =
                        vars.get(name).ok_or_else(|| Unbound { name: name.clone(), kind: None })?;
                    out.extend_from_slice(value.as_bytes())
                }
                Seg::Bind(name, kind) => {
                    return Err(Unbound { name: name.clone(), kind: Some(*kind) })
                }
            }
        }
        Ok(out)
    }

    /// How a person reads the expectation: variables replaced by their
    /// values where bound, left as `${NAME:kind}` where not, bytes escaped
    /// as in the examples.
    pub fn display(&self, vars: &Bindings) -> String {
        let mut out = String::new();
        for seg in &self.segs {
            match seg {
                Seg::Lit(bytes) => out.push_str(&escape_bytes(bytes)),
                Seg::Ref(name) => match vars.get(name) {
                    Some(value) => out.push_str(&escape_bytes(value.as_bytes())),
                    None => out.push_str(&format!("${{{name}}}")),
                },
                Seg::Bind(name, kind) => match vars.get(name) {
                    Some(value) => out.push_str(&escape_bytes(value.as_bytes())),
                    None => out.push_str(&format!("${{{name}:{}}}", kind.name())),
                },
            }
        }
        out
    }

    /// The expectation as [`display`](Self::display) writes it, but with
    /// each variable the pattern would bind filled in from `actual` where
    /// the text around it agrees, so that a diff against `actual` points
    /// at the real difference (a missing trailing space, a missing
    /// terminator), not at a `${T:uuid}` placeholder.
    pub(crate) fn display_against(&self, actual: &[u8], vars: &Bindings) -> String {
        let mut filled = vars.clone();
        let mut at = 0;
        for (i, seg) in self.segs.iter().enumerate() {
            let rest = &actual[at.min(actual.len())..];
            match seg {
                Seg::Lit(bytes) => {
                    if !rest.starts_with(bytes) {
                        break;
                    }
                    at += bytes.len();
                }
                Seg::Ref(name) => match vars.get(name) {
                    Some(value) if rest.starts_with(value.as_bytes()) => at += value.len(),
                    _ => break,
                },
                Seg::Bind(name, _) => {
                    // Up to the next literal, or the rest.
                    let end = match self.segs.get(i + 1) {
                        // Where the longest start of the next literal
                        // occurs: the text after the variable may itself
                        // be what differs.
                        Some(Seg::Lit(next)) if !next.is_empty() => (1..=next.len())
                            .rev()
                            .find_map(|k| rest.windows(k).position(|w| w == &next[..k]))
                            .unwrap_or(rest.len()),
                        _ => rest.len(),
                    };
                    let Ok(value) = std::str::from_utf8(&rest[..end]) else { break };
                    if value.is_empty() {
                        break;
                    }
                    filled.entry(name.clone()).or_insert_with(|| value.to_owned());
                    at += end;
                }
            }
        }
        self.display(&filled)
    }

    /// Matches `actual` against this pattern as a whole; on success returns
    /// the new bindings (in order).
    pub fn matches(&self, actual: &[u8], vars: &Bindings) -> Option<Vec<(String, String)>> {
        let mut bound = Vec::new();
        match_segs(&self.segs, actual, vars, &mut bound).then_some(bound)
    }

    /// The source form again, with `$` doubled where literal: used to read
    /// a `<=` line's text a second time as JSON.
    fn to_source_for_json(&self) -> Option<String> {
        let mut out = String::new();
        for seg in &self.segs {
            match seg {
                Seg::Lit(bytes) => {
                    out.push_str(&std::str::from_utf8(bytes).ok()?.replace('$', "$$"))
                }
                Seg::Ref(name) => out.push_str(&format!("${{{name}}}")),
                Seg::Bind(name, kind) => out.push_str(&format!("${{{name}:{}}}", kind.name())),
            }
        }
        Some(out)
    }
}

fn lookup<'a>(name: &str, vars: &'a Bindings, bound: &'a [(String, String)]) -> Option<&'a str> {
    bound
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .or_else(|| vars.get(name).map(String::as_str))
}

fn match_segs(
    segs: &[Seg],
    actual: &[u8],
    vars: &Bindings,
    bound: &mut Vec<(String, String)>,
) -> bool {
    let Some((first, rest)) = segs.split_first() else {
        return actual.is_empty();
    };
    match first {
        Seg::Lit(lit) => {
            actual.starts_with(lit) && match_segs(rest, &actual[lit.len()..], vars, bound)
        }
        Seg::Ref(name) => match lookup(name, vars, bound) {
            Some(value) => {
                let value = value.as_bytes().to_vec();
                actual.starts_with(&value) && match_segs(rest, &actual[value.len()..], vars, bound)
            }
            None => false,
        },
        Seg::Bind(name, VarKind::Uuid) => {
            if actual.len() < 36 || !is_lower_uuid(&actual[..36]) {
                return false;
            }
            bind_then(name, &actual[..36], rest, &actual[36..], vars, bound)
        }
        Seg::Bind(name, VarKind::Any) => {
            // Shortest first: "any run of characters up to what follows".
            (0..=actual.len())
                .any(|n| bind_then(name, &actual[..n], rest, &actual[n..], vars, bound))
        }
    }
}

fn bind_then(
    name: &str,
    value: &[u8],
    rest: &[Seg],
    actual: &[u8],
    vars: &Bindings,
    bound: &mut Vec<(String, String)>,
) -> bool {
    let Ok(value) = std::str::from_utf8(value) else {
        return false;
    };
    let mark = bound.len();
    if name != "_" {
        bound.push((name.to_owned(), value.to_owned()));
    }
    if match_segs(rest, actual, vars, bound) {
        return true;
    }
    bound.truncate(mark);
    false
}

/// Whether `b` is a UUID in lowercase hyphenated form (any version).
pub(crate) fn is_lower_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == b'-'
            } else {
                c.is_ascii_digit() || (b'a'..=b'f').contains(&c)
            }
        })
}

/// Writes bytes the way the examples and transcripts do: printable ASCII as
/// is, `\r \n \t \\` short, every other byte as `\xHH`.
pub(crate) fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// A JSON value with variables, compared by meaning.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// A literal scalar: null, a boolean, a number or a string.
    Scalar(Value),
    Array(Vec<Json>),
    /// Keys in the order written.
    Object(Vec<(String, Json)>),
    /// `"${NAME}"`: the string bound earlier.
    Ref(String),
    /// `"${NAME:uuid}"` or `"${NAME:any}"`.
    Bind(String, VarKind),
}

impl Json {
    /// Parses a `<` or `<~` line: JSON whose strings may be a whole
    /// variable (`"${T:uuid}"`); `$$` in a string is a literal `$`.
    pub fn parse(src: &str) -> Result<Json, PatternError> {
        let value: Value =
            serde_json::from_str(src).map_err(|e| PatternError(format!("not JSON: {e}")))?;
        Json::from_value(&value)
    }

    fn from_value(value: &Value) -> Result<Json, PatternError> {
        Ok(match value {
            Value::String(s) => {
                if s.starts_with("${") && s.ends_with('}') && !s[2..].contains("${") {
                    match parse_var(&s[2..s.len() - 1])? {
                        Seg::Ref(name) => Json::Ref(name),
                        Seg::Bind(name, kind) => Json::Bind(name, kind),
                        Seg::Lit(_) => unreachable!("parse_var never gives a literal"),
                    }
                } else {
                    Json::Scalar(Value::String(unescape_dollars(s)?))
                }
            }
            Value::Array(items) => {
                Json::Array(items.iter().map(Json::from_value).collect::<Result<_, _>>()?)
            }
            Value::Object(map) => {
                Json::Object(
                    map.iter()
                        .map(|(k, v)| Ok((k.clone(), Json::from_value(v)?)))
                        .collect::<Result<_, PatternError>>()?,
                )
            }
            scalar => Json::Scalar(scalar.clone()),
        })
    }

    /// Reads a `<=` line's text a second time as the JSON it spells (the
    /// reply terminator removed), so that a reply with other bytes but the
    /// same meaning can be told apart from a wrong one. `None` if the text
    /// is not JSON.
    pub(crate) fn from_exact(text: &Text) -> Option<Json> {
        let src = text.to_source_for_json()?;
        let body = src.strip_suffix("\r\n\r\n").unwrap_or(&src);
        Json::parse(body).ok()
    }

    /// Visits every variable, binding or referring, in document order.
    pub(crate) fn for_each_var(&self, f: &mut impl FnMut(&str, bool)) {
        match self {
            Json::Scalar(_) => {}
            Json::Array(items) => items.iter().for_each(|i| i.for_each_var(f)),
            Json::Object(entries) => entries.iter().for_each(|(_, v)| v.for_each_var(f)),
            Json::Ref(name) => f(name, false),
            Json::Bind(name, _) => f(name, true),
        }
    }

    /// The value with variables substituted (binding ones too, once
    /// bound); `None` when a variable is not bound.
    pub(crate) fn to_value(&self, vars: &Bindings) -> Option<Value> {
        Some(match self {
            Json::Scalar(v) => v.clone(),
            Json::Array(items) => {
                Value::Array(items.iter().map(|i| i.to_value(vars)).collect::<Option<_>>()?)
            }
            Json::Object(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| Some((k.clone(), v.to_value(vars)?)))
                    .collect::<Option<_>>()?,
            ),
            Json::Ref(name) | Json::Bind(name, _) => Value::String(vars.get(name)?.clone()),
        })
    }

    /// The value with bound variables substituted and the others written
    /// as their placeholder strings: for showing an expectation.
    pub(crate) fn to_display_value(&self, vars: &Bindings) -> Value {
        match self {
            Json::Scalar(v) => v.clone(),
            Json::Array(items) => {
                Value::Array(items.iter().map(|i| i.to_display_value(vars)).collect())
            }
            Json::Object(entries) => Value::Object(
                entries.iter().map(|(k, v)| (k.clone(), v.to_display_value(vars))).collect(),
            ),
            Json::Ref(name) => {
                Value::String(vars.get(name).cloned().unwrap_or_else(|| format!("${{{name}}}")))
            }
            Json::Bind(name, kind) => Value::String(format!("${{{name}:{}}}", kind.name())),
        }
    }
}

/// `$$` → `$` inside a JSON string; a `$` otherwise is an error, like in
/// text (a variable must be the whole string).
fn unescape_dollars(s: &str) -> Result<String, PatternError> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' {
            match chars.next() {
                Some('$') => out.push('$'),
                _ => {
                    return err(format!(
                        "`$` in the JSON string {s:?}: a variable must be the whole string; write `$$` for a literal `$`"
                    ))
                }
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Bindings {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const UUID: &str = "4c908ff6-3c15-4052-a98a-095d2454cf93";

    #[test]
    fn escapes_and_variables() {
        let t = Text::parse(r"send ${T} messi caf\xc3\xa9 \\ $$ \x7f\r\n").unwrap();
        assert_eq!(
            t.segs,
            vec![
                Seg::Lit(b"send ".to_vec()),
                Seg::Ref("T".into()),
                Seg::Lit(b" messi caf\xc3\xa9 \\ $ \x7f\r\n".to_vec()),
            ]
        );
        assert_eq!(
            t.render(&vars(&[("T", "tok")])).unwrap(),
            b"send tok messi caf\xc3\xa9 \\ $ \x7f\r\n"
        );
        let unbound = t.render(&Bindings::new()).unwrap_err();
        assert_eq!(unbound, Unbound { name: "T".into(), kind: None });
        assert_eq!(unbound.to_string(), "${T} was never bound");
    }

    #[test]
    fn bad_lines_are_refused() {
        for bad in [
            r"a\q",
            r"a\x4",
            r"a\xzz",
            "a $b",
            "${T",
            "${T:float}",
            "${1x}",
            "trailing ",
            "${_}",
            "${A:any}${B:any}",
        ] {
            assert!(Text::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(Text::parse(r"ends\x20").unwrap().segs, vec![Seg::Lit(b"ends ".to_vec())]);
    }

    #[test]
    fn uuid_binding_and_reference() {
        let t = Text::parse(r"username messi logged in, token ${T:uuid}\x20").unwrap();
        let line = format!("username messi logged in, token {UUID} ");
        assert_eq!(
            t.matches(line.as_bytes(), &Bindings::new()),
            Some(vec![("T".into(), UUID.into())])
        );
        assert_eq!(t.matches(line.trim_end().as_bytes(), &Bindings::new()), None);
        assert_eq!(t.matches(line.to_uppercase().as_bytes(), &Bindings::new()), None);
        let p = Text::parse("Command ${T}:").unwrap();
        assert!(p.matches(format!("Command {UUID}:").as_bytes(), &vars(&[("T", UUID)])).is_some());
        assert!(p.matches(b"Command :", &vars(&[("T", UUID)])).is_none());
    }

    #[test]
    fn display_against_fills_placeholders_from_the_actual_text() {
        let t = Text::parse(r"username messi logged in, token ${T:uuid}\x20").unwrap();
        let actual = b"username messi logged in, token 4c908ff6-3c15-4052-a98a-095d2454cf93";
        // The only difference left is the trailing space.
        assert_eq!(
            t.display_against(actual, &Bindings::new()),
            "username messi logged in, token 4c908ff6-3c15-4052-a98a-095d2454cf93 "
        );
        let reply = Text::parse(r#"{"status": "OK", "tokenid": "${T:uuid}"}\r\n\r\n"#).unwrap();
        let got = b"{\"status\": \"OK\", \"tokenid\": \"abc\"}\r\n";
        assert_eq!(
            reply.display_against(got, &Bindings::new()),
            r#"{"status": "OK", "tokenid": "abc"}\r\n\r\n"#
        );
        // Where the text disagrees before the variable, it stays a placeholder.
        assert_eq!(t.display_against(b"Login OK", &Bindings::new()), t.display(&Bindings::new()));
    }

    #[test]
    fn any_is_shortest_up_to_what_follows() {
        let t = Text::parse("a${X:any}b${Y:any}").unwrap();
        assert_eq!(
            t.matches(b"a12b34b", &Bindings::new()),
            Some(vec![("X".into(), "12".into()), ("Y".into(), "34b".into())])
        );
        assert_eq!(t.matches(b"a12", &Bindings::new()), None);
    }

    #[test]
    fn json_patterns() {
        let j = Json::parse(
            r#"{"status": "OK", "tokenid": "${T:uuid}", "x": ["${_:any}", "$$5", "${T}"]}"#,
        )
        .unwrap();
        let Json::Object(entries) = &j else { panic!() };
        assert_eq!(entries[1].1, Json::Bind("T".into(), VarKind::Uuid));
        let mut seen = Vec::new();
        j.for_each_var(&mut |name, binds| seen.push((name.to_string(), binds)));
        assert_eq!(seen, vec![("T".into(), true), ("_".into(), true), ("T".into(), false)]);
        assert!(Json::parse(r#"{"a": "x${T}"}"#).is_err());
        assert!(Json::parse(r#"{"a": "#).is_err());
        assert_eq!(
            j.to_display_value(&Bindings::new())["x"][1],
            Value::String("$5".into()),
            "$$ is a literal dollar"
        );
    }

    #[test]
    fn exact_text_is_read_again_as_json() {
        let t =
            Text::parse(r#"{"status": "OK", "tokenid": "${T:uuid}", "m": "a\\r\\n$$"}\r\n\r\n"#)
                .unwrap();
        let j = Json::from_exact(&t).unwrap();
        let expected =
            Json::parse(r#"{"status": "OK", "tokenid": "${T:uuid}", "m": "a\r\n$$"}"#).unwrap();
        assert_eq!(j, expected);
        assert_eq!(Json::from_exact(&Text::parse("not json").unwrap()), None);
    }

    #[test]
    fn escaping_round_trips_through_parse() {
        let bytes = b"a \r\n\t\\ \xff\x00~";
        let escaped = escape_bytes(bytes);
        assert_eq!(escaped, r"a \r\n\t\\ \xff\x00~");
        assert_eq!(Text::parse(&escaped).unwrap().render(&Bindings::new()).unwrap(), bytes);
    }
}
