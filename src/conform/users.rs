//! The class's own users: the spec's examples are written for the three
//! built-in users (`messi`, `henderson`, `lineker`, password `surabaya`),
//! and a course that gives its servers other users maps them, in order,
//! onto those three: the first given user plays messi, the second
//! henderson, the third lineker.
//!
//! Pure code: an example in, the same example with every user name, full
//! name and password replaced out, or the reason it cannot be mapped (it
//! needs more users than were given; a case-sensitivity example whose
//! user name has no letter to change the case of).

use std::path::Path;

use super::outcome::CaseResult;
use super::verdict::Verdict;
use crate::protocol::users::{Password, User, UserDirectory};
use crate::spec::pattern::{Json, Seg, Text};
use crate::spec::{Action, Example, Expect, Step};

/// The spec's users, in the order the given ones replace them.
const SPEC_USERS: [(&str, &str); 3] =
    [("messi", "Lionel Messi"), ("henderson", "Jordan Henderson"), ("lineker", "Gary Lineker")];

/// The built-in users' password.
const SPEC_PASSWORD: &str = "surabaya";

/// Names the examples use for what must not exist: an unknown user, a
/// wrong password.
const NOT_USERS: [&str; 1] = ["pogba"];
const WRONG_PASSWORDS: [&str; 2] = ["jakarta", "x"];

/// A user the runner logs in as: name, full name and the password in
/// plain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TestUser {
    pub username: String,
    pub name: String,
    pub password: String,
}

/// Why the given users cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UsersError {
    /// A `--user` value that is not `NAME:PASSWORD:FULL NAME`.
    BadFlag(String),
    /// The users file could not be read, or holds a hashed password.
    File(String),
    /// A user the examples need to be unknown, or a password they need to
    /// be wrong, is one of the given ones.
    Collides(String),
}

impl std::fmt::Display for UsersError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UsersError::BadFlag(v) => write!(
                f,
                "--user `{v}`: write NAME:PASSWORD:FULL NAME, e.g. --user 'budi:rahasia:Budi Santoso'"
            ),
            UsersError::File(message) | UsersError::Collides(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for UsersError {}

/// Why an example cannot run with a class's users: it is then an ERROR
/// case, not run, that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unmappable {
    /// The example uses the spec's `uses`, the `needs`-th user, and only
    /// `given` users were given.
    TooFewUsers { needs: usize, uses: &'static str, given: usize },
    /// The example capitalises a password, and this user's does not start
    /// with a lowercase letter.
    PasswordCase(String),
    /// The example capitalises a user name, and this one does not start
    /// with a lowercase letter.
    UsernameCase(String),
}

impl std::fmt::Display for Unmappable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unmappable::TooFewUsers { needs, uses, given } => {
                write!(f, "it needs {needs} users (it uses `{uses}`), and {given} were given")
            }
            Unmappable::PasswordCase(user) => write!(
                f,
                "it changes the case of a password, and `{user}`'s password does not start with a lowercase letter"
            ),
            Unmappable::UsernameCase(user) => write!(
                f,
                "it changes the case of a user name, and `{user}` does not start with a lowercase letter"
            ),
        }
    }
}

impl std::error::Error for Unmappable {}

/// The users the examples run with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserMap {
    users: Vec<TestUser>,
}

impl Default for UserMap {
    fn default() -> Self {
        Self::builtin()
    }
}

impl UserMap {
    /// The spec's own three users.
    pub(crate) fn builtin() -> Self {
        let users = SPEC_USERS
            .iter()
            .map(|(u, n)| TestUser {
                username: (*u).into(),
                name: (*n).into(),
                password: SPEC_PASSWORD.into(),
            })
            .collect();
        Self { users }
    }

    /// Users from `--user NAME:PASSWORD:FULL NAME` flags, in order.
    pub(crate) fn from_flags(values: &[String]) -> Result<Self, UsersError> {
        let users = values
            .iter()
            .map(|v| {
                let mut parts = v.splitn(3, ':');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(u), Some(p), Some(n))
                        if !u.is_empty()
                            && !p.is_empty()
                            && !n.trim().is_empty()
                            && !u.contains(char::is_whitespace)
                            && !p.contains(char::is_whitespace) =>
                    {
                        Ok(TestUser {
                            username: u.into(),
                            name: n.trim().into(),
                            password: p.into(),
                        })
                    }
                    _ => Err(UsersError::BadFlag(v.clone())),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(users)
    }

    /// Users from a users file, the server's format (`--users FILE`);
    /// the runner needs the passwords themselves, not their hashes.
    pub(crate) fn from_file(path: &Path) -> Result<Self, UsersError> {
        let directory = UserDirectory::load(path).map_err(|e| UsersError::File(e.to_string()))?;
        let users = (0..directory.len())
            .map(|i| {
                let user = directory.get(crate::protocol::users::UserId(i as u32));
                match &user.password {
                    Password::Plain(p) => Ok(TestUser {
                        username: user.username.clone(),
                        name: user.name.clone(),
                        password: p.clone(),
                    }),
                    Password::Argon2(_) => Err(UsersError::File(format!(
                        "{}: user `{}` has a password_hash; the runner logs in, so it needs \"password\"",
                        path.display(),
                        user.username
                    ))),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(users)
    }

    fn new(users: Vec<TestUser>) -> Result<Self, UsersError> {
        for user in &users {
            if NOT_USERS.contains(&user.username.as_str()) {
                return Err(UsersError::Collides(format!(
                    "the examples use `{}` as a user that does not exist: rename that user",
                    user.username
                )));
            }
            if WRONG_PASSWORDS.contains(&user.password.as_str()) {
                return Err(UsersError::Collides(format!(
                    "the examples use `{}` as a wrong password: user `{}` cannot have it",
                    user.password, user.username
                )));
            }
        }
        Ok(Self { users })
    }

    /// Whether these are the spec's own users (nothing to map).
    pub(crate) fn is_builtin(&self) -> bool {
        *self == Self::builtin()
    }

    /// The users, in the order they replace the spec's.
    pub(crate) fn users(&self) -> &[TestUser] {
        &self.users
    }

    /// A directory of these users, for a reference server.
    pub(crate) fn directory(&self) -> UserDirectory {
        let users = self
            .users
            .iter()
            .map(|u| User {
                username: u.username.clone(),
                name: u.name.clone(),
                password: Password::Plain(u.password.clone()),
            })
            .collect();
        UserDirectory::new(users).expect("checked when the map was made")
    }

    /// Each example with these users in place of the spec's; one that
    /// cannot run with them is an ERROR case that says why, not run.
    pub(crate) fn apply_all<'e>(
        &self,
        examples: impl IntoIterator<Item = &'e Example>,
    ) -> (Vec<Example>, Vec<CaseResult>) {
        let mut not_run = Vec::new();
        let mapped = examples
            .into_iter()
            .filter_map(|e| match self.apply(e) {
                Ok(mapped) => Some(mapped),
                Err(why) => {
                    let message = format!("cannot run with the given users: {why}");
                    not_run.push(CaseResult::not_run(e, Verdict::Error, "(users)", message));
                    None
                }
            })
            .collect();
        (mapped, not_run)
    }

    /// The example with the spec's users replaced by these, or why it
    /// cannot run with them.
    pub(crate) fn apply(&self, example: &Example) -> Result<Example, Unmappable> {
        if self.is_builtin() {
            return Ok(example.clone());
        }
        let pairs = self.pairs(example)?;
        let mut mapped = example.clone();
        mapped.steps = example.steps.iter().map(|s| map_step(s, &pairs)).collect();
        Ok(mapped)
    }

    /// What to replace with what, for this example: full names first,
    /// then a user name with its password, then the user name alone.
    fn pairs(&self, example: &Example) -> Result<Vec<(String, String)>, Unmappable> {
        let text: String = example.steps.iter().map(|s| s.source.as_str()).collect();
        let has = |word: &str| contains_word(text.as_bytes(), word.as_bytes());
        let mut pairs = Vec::new();
        for (i, (username, name)) in SPEC_USERS.iter().enumerate() {
            let capital = capitalise(username);
            if !(has(username) || has(name) || has(&capital)) {
                continue;
            }
            let Some(user) = self.users.get(i) else {
                return Err(Unmappable::TooFewUsers {
                    needs: i + 1,
                    uses: username,
                    given: self.users.len(),
                });
            };
            pairs.push(((*name).to_owned(), user.name.clone()));
            pairs.push((
                format!("{username} {SPEC_PASSWORD}"),
                format!("{} {}", user.username, user.password),
            ));
            let other_case = format!("{username} {}", capitalise(SPEC_PASSWORD));
            if has(&other_case) {
                if capitalise(&user.password) == user.password {
                    return Err(Unmappable::PasswordCase(user.username.clone()));
                }
                pairs.push((
                    other_case,
                    format!("{} {}", user.username, capitalise(&user.password)),
                ));
            }
            if has(&capital) {
                if capitalise(&user.username) == user.username {
                    return Err(Unmappable::UsernameCase(user.username.clone()));
                }
                pairs.push((capital, capitalise(&user.username)));
            }
            pairs.push(((*username).to_owned(), user.username.clone()));
        }
        Ok(pairs)
    }
}

/// `messi` → `Messi`.
fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Where `word` occurs in `text` as a whole word, from `from` on.
fn word_at(text: &[u8], word: &[u8], from: usize) -> Option<usize> {
    if word.is_empty() || text.len() < word.len() {
        return None;
    }
    (from..=text.len() - word.len()).find(|&i| {
        text[i..].starts_with(word)
            && (i == 0 || !is_word_byte(text[i - 1]))
            && text.get(i + word.len()).is_none_or(|b| !is_word_byte(*b))
    })
}

fn contains_word(text: &[u8], word: &[u8]) -> bool {
    word_at(text, word, 0).is_some()
}

/// Replaces each pair's whole-word occurrences, in the order given, never
/// touching what an earlier pair put in.
fn replace_words(text: &[u8], pairs: &[(String, String)]) -> Vec<u8> {
    // Pieces still to look in, and pieces already replaced.
    let mut pieces: Vec<(Vec<u8>, bool)> = vec![(text.to_vec(), false)];
    for (from, to) in pairs {
        let mut next = Vec::new();
        for (piece, done) in pieces {
            if done {
                next.push((piece, true));
                continue;
            }
            let mut at = 0;
            while let Some(i) = word_at(&piece, from.as_bytes(), at) {
                next.push((piece[at..i].to_vec(), false));
                next.push((to.as_bytes().to_vec(), true));
                at = i + from.len();
            }
            next.push((piece[at..].to_vec(), false));
        }
        pieces = next;
    }
    pieces.into_iter().flat_map(|(p, _)| p).collect()
}

fn replace_str(text: &str, pairs: &[(String, String)]) -> String {
    String::from_utf8_lossy(&replace_words(text.as_bytes(), pairs)).into_owned()
}

fn map_text(text: &Text, pairs: &[(String, String)]) -> Text {
    let segs = text
        .segs
        .iter()
        .map(|seg| match seg {
            Seg::Lit(bytes) => Seg::Lit(replace_words(bytes, pairs)),
            other => other.clone(),
        })
        .collect();
    Text { segs }
}

fn map_json(json: &Json, pairs: &[(String, String)]) -> Json {
    match json {
        Json::Scalar(serde_json::Value::String(s)) => {
            Json::Scalar(serde_json::Value::String(replace_str(s, pairs)))
        }
        Json::Array(items) => Json::Array(items.iter().map(|j| map_json(j, pairs)).collect()),
        Json::Object(entries) => Json::Object(
            entries.iter().map(|(k, v)| (replace_str(k, pairs), map_json(v, pairs))).collect(),
        ),
        other => other.clone(),
    }
}

fn map_step(step: &Step, pairs: &[(String, String)]) -> Step {
    let action = match &step.action {
        Action::Send { conn, text } => Action::Send { conn: *conn, text: map_text(text, pairs) },
        Action::Expect { conn, expect } => Action::Expect {
            conn: *conn,
            expect: match expect {
                Expect::Json { pattern, unordered } => {
                    Expect::Json { pattern: map_json(pattern, pairs), unordered: *unordered }
                }
                Expect::Exact { text, meaning } => Expect::Exact {
                    text: map_text(text, pairs),
                    meaning: meaning.as_ref().map(|m| map_json(m, pairs)),
                },
                other => other.clone(),
            },
        },
        Action::Type { text } => Action::Type { text: map_text(text, pairs) },
        Action::Print { text } => Action::Print { text: map_text(text, pairs) },
        Action::Prompt { text } => Action::Prompt { text: map_text(text, pairs) },
    };
    Step {
        line: step.line,
        source: replace_str(&step.source, pairs),
        action,
        given: step.given.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_example(body: &str, kind: &str) -> Example {
        let doc = format!("**A-1** (MUST; x) y.\n\n```example A-1.1 MUST{kind}\n{body}\n```\n");
        crate::spec::parse(&doc).unwrap().examples.remove(0)
    }

    fn class() -> UserMap {
        UserMap::from_flags(&["budi:rahasia:Budi Santoso".into(), "siti:kunci:Siti Aminah".into()])
            .unwrap()
    }

    #[test]
    fn names_passwords_and_full_names_are_replaced_in_order() {
        let example = spec_example(
            "given C1> auth messi surabaya \\r\\n\ngiven C1< {\"status\": \"OK\", \"tokenid\": \"${T:uuid}\"}\nC1> send ${T} henderson  halo \\r\\n\nC1> auth pogba surabaya\\r\\n\nC1> list ${T}\\r\\n\nC1< {\"status\": \"OK\", \"messages\": [\"messi - Lionel Messi\", \"henderson - Jordan Henderson\"]}",
            "",
        );
        let mapped = class().apply(&example).unwrap();
        let sources: Vec<&str> = mapped.steps.iter().map(|s| s.source.as_str()).collect();
        assert_eq!(sources[0], r"given C1> auth budi rahasia \r\n");
        assert_eq!(sources[2], r"C1> send ${T} siti  halo \r\n");
        assert_eq!(sources[3], r"C1> auth pogba surabaya\r\n", "an unknown user stays unknown");
        assert!(
            sources[5].contains(r#"["budi - Budi Santoso", "siti - Siti Aminah"]"#),
            "{}",
            sources[5]
        );
        let Action::Send { text, .. } = &mapped.steps[0].action else { panic!() };
        assert_eq!(text.display(&Default::default()), r"auth budi rahasia \r\n");
    }

    #[test]
    fn cases_say_why_they_cannot_run_with_the_given_users() {
        let three = spec_example("C1> auth lineker surabaya \\r\\n\nC1<-", "");
        let error = class().apply(&three).unwrap_err();
        assert_eq!(error, Unmappable::TooFewUsers { needs: 3, uses: "lineker", given: 2 });
        assert!(error.to_string().contains("needs 3 users"), "{error}");
        let case = spec_example("C1> auth Messi surabaya \\r\\n\nC1<-", "");
        let digits = UserMap::from_flags(&["u1:p:U One".into()]).unwrap();
        assert_eq!(digits.apply(&case).unwrap().steps[0].source, r"C1> auth U1 surabaya \r\n");
        let capital = UserMap::from_flags(&["Ana:p:Ana".into()]).unwrap();
        let error = capital.apply(&case).unwrap_err();
        assert_eq!(error, Unmappable::UsernameCase("Ana".into()));
        assert!(error.to_string().contains("lowercase"), "{error}");
    }

    #[test]
    fn users_the_examples_need_unknown_are_refused() {
        assert!(UserMap::from_flags(&["pogba:p:Paul".into()]).is_err());
        assert!(UserMap::from_flags(&["a:jakarta:A".into()]).is_err());
        assert!(UserMap::from_flags(&["no-password".into()]).is_err());
        assert!(UserMap::builtin().is_builtin());
        assert!(!class().is_builtin());
    }
}
