//! The user directory: who can log in, and the JSON file it can be read from.
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
//! A username or password can hold no whitespace, since requests are split
//! on spaces and every field is stripped: such a user could never log in.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// An index into the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub u32);

/// One user as the protocol sees them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// What `auth` and `send` name the user by.
    pub username: String,
    /// The full name, shown in `msg_from`, `msg_to` and `list`.
    pub name: String,
    /// Compared with the `auth` password.
    pub password: String,
}

/// The users who can log in.
#[derive(Debug, Clone)]
pub struct UserDirectory {
    users: Vec<User>,
    by_username: HashMap<String, UserId>,
}

/// Why a users file cannot be used. Each displays as one line.
#[derive(Debug)]
pub enum UsersFileError {
    Read { path: PathBuf, source: std::io::Error },
    Parse { path: PathBuf, source: serde_json::Error },
    Invalid { path: PathBuf, problem: DirectoryError },
}

/// Why a list of users cannot make a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryError {
    NoUsers,
    Duplicate(String),
    BadUsername(String),
    BadPassword(String),
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
        }
    }
}

impl std::fmt::Display for UsersFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UsersFileError::Read { path, source } => {
                write!(f, "cannot read users file {}: {source}", path.display())
            }
            UsersFileError::Parse { path, source } => {
                write!(f, "users file {} is not valid: {source}", path.display())
            }
            UsersFileError::Invalid { path, problem } => {
                write!(f, "users file {}: {problem}", path.display())
            }
        }
    }
}

impl std::error::Error for UsersFileError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    users: Vec<User>,
}

impl UserDirectory {
    /// The original's three users, each with the password `surabaya`.
    pub fn builtin() -> Self {
        let user = |username: &str, name: &str| User {
            username: username.into(),
            name: name.into(),
            password: "surabaya".into(),
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
        let mut by_username = HashMap::with_capacity(users.len());
        for (index, user) in users.iter().enumerate() {
            if user.username.is_empty() || user.username.chars().any(super::pystr::is_space) {
                return Err(DirectoryError::BadUsername(user.username.clone()));
            }
            if user.password.chars().any(super::pystr::is_space) {
                return Err(DirectoryError::BadPassword(user.username.clone()));
            }
            let id = UserId(u32::try_from(index).expect("fewer than 2^32 users"));
            if by_username.insert(user.username.clone(), id).is_some() {
                return Err(DirectoryError::Duplicate(user.username.clone()));
            }
        }
        Ok(Self { users, by_username })
    }

    /// Reads a users file (format in the module docs).
    pub fn load(path: &Path) -> Result<Self, UsersFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| UsersFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file: UsersFile = serde_json::from_str(&text).map_err(|source| {
            UsersFileError::Parse { path: path.to_owned(), source }
        })?;
        Self::new(file.users).map_err(|problem| UsersFileError::Invalid {
            path: path.to_owned(),
            problem,
        })
    }

    /// The user with this username, if any.
    pub fn find(&self, username: &str) -> Option<UserId> {
        self.by_username.get(username).copied()
    }

    /// The user behind an id this directory handed out.
    pub fn get(&self, id: UserId) -> &User {
        &self.users[id.0 as usize]
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
    /// depend on where the first difference is.
    pub fn password_matches(&self, id: UserId, password: &str) -> bool {
        constant_time_eq(self.get(id).password.as_bytes(), password.as_bytes())
    }
}

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
        let user = |u: &str, p: &str| User { username: u.into(), name: "N".into(), password: p.into() };
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
}
