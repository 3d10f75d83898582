//! Where session tokens come from.
//!
//! The core draws tokens through [`TokenSource`] instead of calling a random
//! generator itself, so that it stays deterministic: the server passes
//! [`RandomTokens`], while tests, models and fuzz targets pass
//! [`SequentialTokens`] and can predict every token.

/// A source of fresh session tokens.
pub trait TokenSource {
    /// A token no live session holds (with overwhelming probability).
    fn new_token(&mut self) -> String;
}

/// Random UUIDv4 tokens from the operating system's random source, in the
/// lowercase hyphenated form the original sends
/// (`4c908ff6-3c15-4052-a98a-095d2454cf93`).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RandomTokens;

impl TokenSource for RandomTokens {
    fn new_token(&mut self) -> String {
        uuid::Uuid::new_v4().hyphenated().to_string()
    }
}

/// Predictable UUID-shaped tokens: `00000000-0000-4000-8000-000000000001`,
/// then `…002`, and so on. For tests only; never for a real server.
#[derive(Debug, Default, Clone)]
pub struct SequentialTokens {
    issued: u64,
}

impl TokenSource for SequentialTokens {
    fn new_token(&mut self) -> String {
        self.issued += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.issued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_tokens_are_lowercase_uuid_v4() {
        let token = RandomTokens.new_token();
        let parsed = uuid::Uuid::parse_str(&token).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(token, token.to_lowercase());
        assert_eq!(token.len(), 36);
        assert_ne!(token, RandomTokens.new_token());
    }

    #[test]
    fn sequential_tokens_count_up() {
        let mut tokens = SequentialTokens::default();
        assert_eq!(tokens.new_token(), "00000000-0000-4000-8000-000000000001");
        assert_eq!(tokens.new_token(), "00000000-0000-4000-8000-000000000002");
    }
}
