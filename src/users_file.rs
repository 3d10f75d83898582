//! Reading a users file (`--users FILE`). The sans-I/O core parses the
//! file's text ([`UserDirectory::from_json`]); the read itself, and the
//! error that names the file, belong to the I/O side, as does hashing a
//! password for such a file (its salt is the system's randomness).

use std::path::{Path, PathBuf};

use crate::protocol::users::{DirectoryError, UserDirectory, UsersJsonError};

/// Why a users file cannot be used. Each displays as one line.
#[derive(Debug)]
pub enum UsersFileError {
    Read { path: PathBuf, source: std::io::Error },
    Parse { path: PathBuf, source: serde_json::Error },
    Invalid { path: PathBuf, problem: DirectoryError },
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

impl UserDirectory {
    /// Reads a users file (format in [`crate::protocol::users`]).
    pub fn load(path: &Path) -> Result<Self, UsersFileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| UsersFileError::Read { path: path.to_owned(), source })?;
        Self::from_json(&text).map_err(|error| match error {
            UsersJsonError::Parse(source) => {
                UsersFileError::Parse { path: path.to_owned(), source }
            }
            UsersJsonError::Invalid(problem) => {
                UsersFileError::Invalid { path: path.to_owned(), problem }
            }
        })
    }
}

/// Hashes a password for a users file's `password_hash`: argon2id with the
/// crate's default cost and a fresh random salt. Here, not in the core,
/// because the salt comes from the operating system; checking a password
/// against its hash needs no randomness and stays in the core.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|_| HashError::NoRandomness)?;
    let salt = SaltString::encode_b64(&salt).map_err(HashError::Hash)?;
    let hash = argon2::Argon2::default().hash_password(password.as_bytes(), &salt);
    Ok(hash.map_err(HashError::Hash)?.to_string())
}

/// Why a password could not be hashed.
#[derive(Debug)]
pub enum HashError {
    /// The operating system's random source failed.
    NoRandomness,
    Hash(argon2::password_hash::Error),
}

impl std::fmt::Display for HashError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HashError::NoRandomness => write!(f, "the system's random source failed"),
            HashError::Hash(error) => write!(f, "hashing failed: {error}"),
        }
    }
}

impl std::error::Error for HashError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::users::{LoginError, UserId};

    /// Loads `text` from a file of its own: the tests run in parallel, so
    /// each call gets a name no other call uses.
    fn load(text: &str) -> Result<UserDirectory, UsersFileError> {
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("users-{}-{call}.json", std::process::id());
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, text).unwrap();
        let result = UserDirectory::load(&path);
        let _ = std::fs::remove_file(&path);
        result
    }

    #[test]
    fn hashed_passwords_verify() {
        let hash = hash_password("s3cret").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        let text = format!(
            r#"{{"users": [{{"username": "a", "name": "A", "password_hash": "{hash}"}}]}}"#
        );
        let users = load(&text).unwrap();
        assert_eq!(users.check_login("a", "s3cret"), Ok(UserId(0)));
        assert_eq!(users.check_login("a", "s3cre"), Err(LoginError::WrongPassword));
        assert_eq!(users.check_login("b", "s3cret"), Err(LoginError::NoSuchUser));
    }

    #[test]
    fn an_entry_needs_exactly_one_password_form() {
        let both =
            r#"{"users": [{"username": "a", "name": "A", "password": "x", "password_hash": "y"}]}"#;
        let neither = r#"{"users": [{"username": "a", "name": "A"}]}"#;
        let bad_hash = r#"{"users": [{"username": "a", "name": "A", "password_hash": "plain"}]}"#;
        for (text, want) in [
            (both, DirectoryError::PasswordChoice("a".into())),
            (neither, DirectoryError::PasswordChoice("a".into())),
            (bad_hash, DirectoryError::BadHash("a".into())),
        ] {
            match load(text) {
                Err(UsersFileError::Invalid { problem, .. }) => assert_eq!(problem, want),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    /// A misspelt key is an error, not a silently ignored field: an entry
    /// with `"pasword_hash"` beside its `password` would otherwise load
    /// with the plain password the author meant to replace.
    #[test]
    fn an_unknown_key_is_an_error() {
        let misspelt =
            r#"{"users": [{"username": "a", "name": "A", "password": "x", "pasword_hash": "y"}]}"#;
        let extra = r#"{"users": [{"username": "a", "name": "A", "password": "x"}], "admins": []}"#;
        for text in [misspelt, extra] {
            match load(text) {
                Err(UsersFileError::Parse { source, .. }) => {
                    assert!(source.to_string().contains("unknown field"), "{text}: {source}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    /// An empty username can never log in (`auth  x` has no username
    /// field), so a file that holds one is refused.
    #[test]
    fn an_empty_username_is_an_error() {
        let text = r#"{"users": [{"username": "", "name": "Nobody", "password": "x"}]}"#;
        match load(text) {
            Err(UsersFileError::Invalid { problem, .. }) => {
                assert_eq!(problem, DirectoryError::BadUsername(String::new()))
            }
            other => panic!("{other:?}"),
        }
    }
}
