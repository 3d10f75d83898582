//! The user directory: who can log in, and the JSON of the file it can be
//! read from (the file itself is read in [`crate::users_file`]).
//!
//! The directory is fixed for the life of a server (the original has no way
//! to add users), so it is shared behind an `Arc` and never locked.
//!
//! File format (`--users FILE`):
//!
//! ```json
//! {"users": [
//!   {"username": "messi", "name": "Lionel Messi", "password": "surabaya"}
//! ]}
//! ```
//!
//! Instead of `password`, an entry may give `password_hash`, an argon2 PHC
//! string made by `progjar-chat hash-password`.
//!
//! A username or password can hold no whitespace, since requests are split
//! on spaces and every field is stripped: such a user could never log in.

use std::collections::HashMap;

use serde::Deserialize;

use super::fast_hash::BuildFastHasher;

/// An index into the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub u32);

/// One user as the protocol sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// What `auth` and `send` name the user by.
    pub username: String,
    /// The full name, shown in `msg_from`, `msg_to` and `list`.
    pub name: String,
    /// What the `auth` password is checked against.
    pub password: Password,
}

/// A stored password.
#[derive(Clone, PartialEq, Eq)]
pub enum Password {
    /// The password itself, compared in constant time (the original's way,
    /// and the built-in users').
    Plain(String),
    /// An argon2 hash in PHC string form (`$argon2id$v=19$…`), as made by
    /// `progjar-chat hash-password`, so that a users file need not hold
    /// passwords.
    Argon2(String),
}

impl std::fmt::Debug for Password {
    /// Never prints the secret: a `Debug` of a user may reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Password::Plain(_) => "Plain(…)",
            Password::Argon2(_) => "Argon2(…)",
        })
    }
}

/// One entry of a users file: `password` or `password_hash`, not both.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    username: String,
    name: String,
    password: Option<String>,
    password_hash: Option<String>,
}

/// The users who can log in.
#[derive(Debug, Clone)]
pub struct UserDirectory {
    users: Vec<User>,
    /// Per user, in the same order: the names as JSON strings.
    json: Vec<JsonNames>,
    by_username: HashMap<String, UserId, BuildFastHasher>,
}

/// A user's names as JSON strings (quotes included), encoded once, since
/// every `inbox` and `list` reply writes them.
#[derive(Debug, Clone)]
pub struct JsonNames {
    pub username: Box<[u8]>,
    pub name: Box<[u8]>,
}

impl JsonNames {
    fn of(user: &User) -> Self {
        let encode = |s: &str| {
            let mut out = Vec::new();
            super::json::write_str(&mut out, s);
            out.into_boxed_slice()
        };
        Self { username: encode(&user.username), name: encode(&user.name) }
    }
}

/// Why the text of a users file cannot make a directory.
#[derive(Debug)]
pub(crate) enum UsersJsonError {
    /// Not JSON of the file's format (a misspelt key included).
    Parse(serde_json::Error),
    /// Of the format, but its users cannot make a directory.
    Invalid(DirectoryError),
}

/// Why a list of users cannot make a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryError {
    NoUsers,
    Duplicate(String),
    BadUsername(String),
    BadPassword(String),
    /// Neither or both of `password` and `password_hash`.
    PasswordChoice(String),
    BadHash(String),
}

impl std::fmt::Display for DirectoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DirectoryError::NoUsers => write!(f, "the file lists no users"),
            DirectoryError::Duplicate(u) => write!(f, "username {u:?} appears twice"),
            DirectoryError::BadUsername(u) => {
                write!(f, "username {u:?} must be non-empty and hold no whitespace")
            }
            DirectoryError::BadPassword(u) => {
                write!(f, "the password of {u:?} must hold no whitespace")
            }
            DirectoryError::PasswordChoice(u) => {
                write!(f, "user {u:?} needs exactly one of \"password\" and \"password_hash\"")
            }
            DirectoryError::BadHash(u) => {
                write!(f, "the password_hash of {u:?} is not an argon2 PHC string")
            }
        }
    }
}

impl std::error::Error for DirectoryError {}

impl std::fmt::Display for UsersJsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UsersJsonError::Parse(source) => write!(f, "not valid: {source}"),
            UsersJsonError::Invalid(problem) => problem.fmt(f),
        }
    }
}

impl std::error::Error for UsersJsonError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    users: Vec<UserEntry>,
}

impl UserEntry {
    fn into_user(self) -> Result<User, DirectoryError> {
        let password = match (self.password, self.password_hash) {
            (Some(plain), None) => Password::Plain(plain),
            (None, Some(hash)) => {
                if argon2::PasswordHash::new(&hash).is_err() {
                    return Err(DirectoryError::BadHash(self.username));
                }
                Password::Argon2(hash)
            }
            _ => return Err(DirectoryError::PasswordChoice(self.username)),
        };
        Ok(User { username: self.username, name: self.name, password })
    }
}

impl UserDirectory {
    /// The original's three users, each with the password `surabaya`.
    pub fn builtin() -> Self {
        let user = |username: &str, name: &str| User {
            username: username.into(),
            name: name.into(),
            password: Password::Plain("surabaya".into()),
        };
        Self::new(vec![
            user("messi", "Lionel Messi"),
            user("henderson", "Jordan Henderson"),
            user("lineker", "Gary Lineker"),
        ])
        .expect("the built-in users are valid")
    }

    /// A directory of these users, in this order.
    pub fn new(users: Vec<User>) -> Result<Self, DirectoryError> {
        if users.is_empty() {
            return Err(DirectoryError::NoUsers);
        }
        let mut by_username =
            HashMap::with_capacity_and_hasher(users.len(), BuildFastHasher::default());
        for (index, user) in users.iter().enumerate() {
            if user.username.is_empty() || user.username.chars().any(super::pystr::is_space) {
                return Err(DirectoryError::BadUsername(user.username.clone()));
            }
            if matches!(&user.password, Password::Plain(p) if p.chars().any(super::pystr::is_space))
            {
                return Err(DirectoryError::BadPassword(user.username.clone()));
            }
            let id = UserId(u32::try_from(index).expect("fewer than 2^32 users"));
            if by_username.insert(user.username.clone(), id).is_some() {
                return Err(DirectoryError::Duplicate(user.username.clone()));
            }
        }
        let json = users.iter().map(JsonNames::of).collect();
        Ok(Self { users, json, by_username })
    }

    /// A directory from the text of a users file (format in the module
    /// docs); reading the file is the caller's (`crate::users_file`).
    pub(crate) fn from_json(text: &str) -> Result<Self, UsersJsonError> {
        let file: UsersFile = serde_json::from_str(text).map_err(UsersJsonError::Parse)?;
        let users = file.users.into_iter().map(UserEntry::into_user).collect::<Result<_, _>>();
        Self::new(users.map_err(UsersJsonError::Invalid)?).map_err(UsersJsonError::Invalid)
    }

    /// The user with this username, if any.
    pub fn find(&self, username: &str) -> Option<UserId> {
        self.by_username.get(username).copied()
    }

    /// The user behind an id this directory handed out.
    pub fn get(&self, id: UserId) -> &User {
        &self.users[id.0 as usize]
    }

    /// The names of the user behind an id this directory handed out, as
    /// JSON strings.
    pub fn json(&self, id: UserId) -> &JsonNames {
        &self.json[id.0 as usize]
    }

    /// How many users there are; ids run from 0 to `len() - 1`.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Never true: a directory holds at least one user.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether `password` is this user's, compared in time that does not
    /// depend on where the first difference is. With an argon2 hash this
    /// takes milliseconds by design, so callers holding a lock should check
    /// first (see [`UserDirectory::check_login`]).
    pub fn password_matches(&self, id: UserId, password: &str) -> bool {
        match &self.get(id).password {
            Password::Plain(plain) => constant_time_eq(plain.as_bytes(), password.as_bytes()),
            Password::Argon2(hash) => {
                use argon2::PasswordVerifier;
                argon2::PasswordHash::new(hash).is_ok_and(|hash| {
                    argon2::Argon2::default().verify_password(password.as_bytes(), &hash).is_ok()
                })
            }
        }
    }

    /// The checks of `auth` in the original's order: the user exists, then
    /// the password is right.
    pub fn check_login(&self, username: &str, password: &str) -> Result<UserId, LoginError> {
        let user = self.find(username).ok_or(LoginError::NoSuchUser)?;
        if self.password_matches(user, password) {
            Ok(user)
        } else {
            Err(LoginError::WrongPassword)
        }
    }
}

/// Why `auth` fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginError {
    NoSuchUser,
    WrongPassword,
}

impl std::fmt::Display for LoginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LoginError::NoSuchUser => "no such user",
            LoginError::WrongPassword => "wrong password",
        })
    }
}

impl std::error::Error for LoginError {}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, &x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(!x));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_kept_as_json_strings_too() {
        let zoe = User {
            username: "zoë".into(),
            name: "Zoë \"Z\"".into(),
            password: Password::Plain("x".into()),
        };
        let users = UserDirectory::new(vec![zoe]).unwrap();
        let json = users.json(UserId(0));
        assert_eq!(&*json.username, b"\"zo\\u00eb\"");
        assert_eq!(&*json.name, b"\"Zo\\u00eb \\\"Z\\\"\"");
    }

    /// The text of a users file that cannot be used says why in one line
    /// (the file's own error, in `users_file`, adds the file's name).
    #[test]
    fn a_users_text_that_cannot_be_used_says_why() {
        let error = UserDirectory::from_json("[").unwrap_err();
        assert!(error.to_string().starts_with("not valid: "), "{error}");
        let error = UserDirectory::from_json(r#"{"users": []}"#).unwrap_err();
        assert_eq!(error.to_string(), "the file lists no users");
    }

    /// A login's error names the check that failed (for a log or a
    /// caller; the reply's text comes from the spec, in `step`).
    #[test]
    fn a_login_error_says_which_check_failed() {
        assert_eq!(LoginError::NoSuchUser.to_string(), "no such user");
        assert_eq!(LoginError::WrongPassword.to_string(), "wrong password");
    }

    #[test]
    fn builtin_users() {
        let users = UserDirectory::builtin();
        let messi = users.find("messi").unwrap();
        assert_eq!(users.get(messi).name, "Lionel Messi");
        assert!(users.password_matches(messi, "surabaya"));
        assert!(!users.password_matches(messi, "jakarta"));
        assert!(!users.password_matches(messi, "surabay"));
        assert!(!users.password_matches(messi, "surabayaa"));
        assert!(!users.password_matches(messi, ""));
        assert_eq!(users.find("pogba"), None);
        assert_eq!(users.len(), 3);
    }

    #[test]
    fn rejects_unusable_directories() {
        let user = |u: &str, p: &str| User {
            username: u.into(),
            name: "N".into(),
            password: Password::Plain(p.into()),
        };
        assert_eq!(UserDirectory::new(vec![]).unwrap_err(), DirectoryError::NoUsers);
        assert_eq!(
            UserDirectory::new(vec![user("a", "x"), user("a", "y")]).unwrap_err(),
            DirectoryError::Duplicate("a".into())
        );
        assert_eq!(
            UserDirectory::new(vec![user("a b", "x")]).unwrap_err(),
            DirectoryError::BadUsername("a b".into())
        );
        assert_eq!(
            UserDirectory::new(vec![user("a", "x y")]).unwrap_err(),
            DirectoryError::BadPassword("a".into())
        );
    }

    #[test]
    fn debug_never_shows_a_password() {
        let users = UserDirectory::builtin();
        assert!(!format!("{users:?}").contains("surabaya"));
    }
}
