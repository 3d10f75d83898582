//! Python's `str.strip()` without arguments.
//!
//! The original server strips every field it uses with `.strip()`, which
//! removes what Python calls whitespace. That set is Unicode `White_Space`
//! plus the four separators U+001C..=U+001F, which Rust's
//! [`char::is_whitespace`] does not include, so it is spelled out here.

/// Whether Python's `str.isspace()` is true for this one character.
pub fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `s.strip()` as Python computes it.
pub fn strip(s: &str) -> &str {
    s.trim_matches(is_space)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_the_line_terminator_and_spaces() {
        assert_eq!(strip("surabaya \r\n"), "surabaya");
        assert_eq!(strip("\r\n"), "");
        assert_eq!(strip(" \t\u{b}\u{c}x\u{85}\u{a0}\u{3000}"), "x");
    }

    #[test]
    fn strips_the_information_separators_rust_keeps() {
        assert_eq!(strip("\u{1c}\u{1d}a\u{1e}\u{1f}"), "a");
        assert!(!'\u{1b}'.is_whitespace() && !is_space('\u{1b}'));
    }

    #[test]
    fn keeps_inner_whitespace() {
        assert_eq!(strip(" a\tb "), "a\tb");
    }
}
