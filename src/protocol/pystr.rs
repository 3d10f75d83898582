//! Python's `str.strip()` without arguments.
//!
//! The original server strips every field it uses with `.strip()`, which
//! removes what Python calls whitespace. That set is Unicode `White_Space`
//! plus the four separators U+001C..=U+001F, which Rust's
//! [`char::is_whitespace`] does not include, so it is spelled out here.

/// Whether Python's `str.isspace()` is true for this one character.
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `s.strip()` as Python computes it.
pub(crate) fn strip(s: &str) -> &str {
    // Most fields (tokens, user names) begin and end with a visible ASCII
    // character, which is never whitespace: they need no scan for
    // characters to strip, which every request would otherwise pay.
    let visible = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_graphic());
    if visible(s.as_bytes().first()) && visible(s.as_bytes().last()) {
        return s;
    }
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
        assert_eq!(strip("a\tb"), "a\tb");
    }

    #[test]
    fn strips_one_end_when_the_other_is_visible() {
        assert_eq!(strip("x\u{3000}"), "x");
        assert_eq!(strip("\u{85}x"), "x");
        assert_eq!(strip("x \r\n"), "x");
        assert_eq!(strip("é"), "é");
    }
}
