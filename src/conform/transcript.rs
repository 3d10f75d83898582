//! The record of everything that crossed the wire (and the client's
//! terminal) during one case, in both directions, bytes escaped.

use std::time::{Duration, Instant};

use crate::spec::pattern::escape_bytes;

/// Who said it, and in which direction.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Entry {
    /// Milliseconds since the case started.
    pub ms: u64,
    /// `C1 >` (the runner wrote on its connection 1), `C1 <` (it read),
    /// `U >` (typed into the client), `U <` (a line the client printed),
    /// `U ?` (a prompt), `U ·` (a debug line set aside), `wire >` / `wire <`
    /// (the client under test ↔ the reference server), `stdout` / `stderr`
    /// (a line the program under test wrote: a server's output, a client's
    /// standard error), `note`.
    pub tag: String,
    /// The bytes, escaped as in the spec's examples.
    pub text: String,
    /// Part of the setup or cleanup around the case, not of the example.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub setup: bool,
}

/// The most entries a transcript keeps; an implementation that floods
/// its output must not exhaust the runner's memory.
pub(crate) const MAX_ENTRIES: usize = 2000;

/// A growing transcript.
#[derive(Debug, Clone)]
pub(crate) struct Transcript {
    start: Instant,
    pub entries: Vec<Entry>,
    /// Entries pushed now count as setup.
    pub in_setup: bool,
}

impl Transcript {
    pub(crate) fn new(start: Instant) -> Self {
        Self { start, entries: Vec::new(), in_setup: false }
    }

    /// Records bytes under a tag.
    pub(crate) fn bytes(&mut self, tag: impl Into<String>, bytes: &[u8]) {
        self.push(tag.into(), escape_for_transcript(bytes));
    }

    /// Records a line the program under test wrote to `stream` (`stdout`
    /// or `stderr`): part of the case even while the runner is in its
    /// setup.
    pub(crate) fn output(&mut self, stream: &str, bytes: &[u8]) {
        let in_setup = std::mem::replace(&mut self.in_setup, false);
        self.bytes(stream, bytes);
        self.in_setup = in_setup;
    }

    /// Records a note from the runner.
    pub(crate) fn note(&mut self, text: impl Into<String>) {
        self.push("note".into(), text.into());
    }

    fn push(&mut self, tag: String, mut text: String) {
        if self.entries.len() > MAX_ENTRIES {
            return;
        }
        let (tag, text) = if self.entries.len() == MAX_ENTRIES {
            ("note".to_owned(), format!("(transcript cut after {MAX_ENTRIES} entries)"))
        } else {
            if text.len() > 4096 {
                let mut cut = 4096;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
                text.push_str("… (cut)");
            }
            (tag, text)
        };
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.entries.push(Entry { ms, tag, text, setup: self.in_setup });
    }

    /// Time since the case started.
    pub(crate) fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

/// [`escape_bytes`], with a trailing space written `\x20` as the spec
/// writes it, so that it shows.
pub(crate) fn escape_for_transcript(bytes: &[u8]) -> String {
    let mut text = escape_bytes(bytes);
    let trailing = text.len() - text.trim_end_matches(' ').len();
    if trailing > 0 {
        text.truncate(text.len() - trailing);
        text.push_str(&"\\x20".repeat(trailing));
    }
    text
}

/// The transcript as aligned lines: `  0.012  C1 >  auth …`.
pub(crate) fn render(entries: &[Entry]) -> Vec<String> {
    let width = entries
        .iter()
        .map(|e| e.tag.chars().count() + if e.setup { 6 } else { 0 })
        .max()
        .unwrap_or(0);
    entries
        .iter()
        .map(|e| {
            let tag = if e.setup { format!("setup {}", e.tag) } else { e.tag.clone() };
            let secs = e.ms as f64 / 1000.0;
            format!("{secs:7.3}  {tag:<width$}  {}", e.text)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_spaces_show() {
        assert_eq!(escape_for_transcript(b"token abc  "), "token abc\\x20\\x20");
        assert_eq!(escape_for_transcript(b"auth x \r\n"), "auth x \\r\\n");
    }

    #[test]
    fn floods_are_cut() {
        let mut t = Transcript::new(Instant::now());
        for _ in 0..MAX_ENTRIES + 10 {
            t.bytes("U <", &[b'x'; 5000]);
        }
        assert_eq!(t.entries.len(), MAX_ENTRIES + 1);
        assert!(t.entries[0].text.ends_with("… (cut)"));
        assert!(t.entries[MAX_ENTRIES].text.contains("transcript cut"));
    }

    #[test]
    fn renders_aligned() {
        let mut t = Transcript::new(Instant::now());
        t.in_setup = true;
        t.bytes("C1 >", b"auth messi surabaya \r\n");
        t.in_setup = false;
        t.bytes("C1 <", b"{}\r\n\r\n");
        let lines = render(&t.entries);
        assert!(lines[0].ends_with("setup C1 >  auth messi surabaya \\r\\n"), "{lines:?}");
        assert!(lines[1].ends_with("C1 <        {}\\r\\n\\r\\n"), "{lines:?}");
    }
}
