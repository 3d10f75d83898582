//! Where one reply ends in the bytes a server sent, and what a client
//! printed: the two byte streams the runner reads, cut into pieces.
//!
//! Pure code: the runner feeds what it read and acts on the answer.

/// What the bytes received so far hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    /// A reply ending in `\r\n\r\n`, this many bytes long.
    Reply(usize),
    /// A whole JSON value (and the white space after it, this many bytes in
    /// all) without the `\r\n\r\n`. `more_follows`: other bytes come after
    /// it, so it is certainly not terminated properly; otherwise the runner
    /// waits a moment for the rest of the terminator before taking it.
    Unterminated { len: usize, more_follows: bool },
    /// Not a whole reply yet.
    Incomplete,
}

/// Finds the first reply in `buf`.
pub(crate) fn scan_reply(buf: &[u8]) -> Scan {
    if let Some(end) = crate::protocol::frame::find_reply_end(buf, 0, 0) {
        return Scan::Reply(end);
    }
    let start = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
    let Some(end) = json_value_end(&buf[start..]).map(|n| start + n) else {
        return Scan::Incomplete;
    };
    let ws = buf[end..].iter().take_while(|b| b.is_ascii_whitespace()).count();
    Scan::Unterminated { len: end + ws, more_follows: end + ws < buf.len() }
}

/// The length of the JSON object or array at the start of `buf`, if it is
/// complete. Only brackets and strings are followed; whether the inside is
/// valid JSON is for the parser to say.
fn json_value_end(buf: &[u8]) -> Option<usize> {
    if !matches!(buf.first(), Some(b'{' | b'[')) {
        return None;
    }
    let mut depth = 0usize;
    let mut strings = JsonStrings::default();
    for (i, &b) in buf.iter().enumerate() {
        if !strings.outside(b) {
            continue;
        }
        match b {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// Where JSON text stands, byte by byte: inside a string or outside
/// every one. What both a reply's end and a spelling of JSON are looked
/// for in: brackets, commas and colons count only outside strings.
#[derive(Debug, Default)]
pub(crate) struct JsonStrings {
    in_string: bool,
    escaped: bool,
}

impl JsonStrings {
    /// Takes the next byte: whether it stands outside every string (a
    /// string's quotes and what they enclose do not).
    pub(crate) fn outside(&mut self, b: u8) -> bool {
        if self.in_string {
            match (self.escaped, b) {
                (true, _) => self.escaped = false,
                (false, b'\\') => self.escaped = true,
                (false, b'"') => self.in_string = false,
                _ => {}
            }
            false
        } else if b == b'"' {
            self.in_string = true;
            false
        } else {
            true
        }
    }
}

/// What a piece of a client's standard output is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum OutKind {
    /// A line that counts as output.
    Line,
    /// `Command …:` at the start of a line: the client waits for input.
    Prompt,
    /// One of the original client's debug lines, set aside.
    Debug,
    /// An empty line, set aside.
    Blank,
}

/// One piece of a client's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutEvent {
    pub kind: OutKind,
    /// The text, without its newline.
    pub text: String,
}

impl OutEvent {
    fn new(kind: OutKind, text: &[u8]) -> Self {
        Self { kind, text: String::from_utf8_lossy(text).into_owned() }
    }
}

/// Cuts a client's standard output into lines and prompts as it arrives.
///
/// A prompt is `Command ` followed by anything but a newline or a colon,
/// then a colon, at the start of a line: the original prints it without a
/// newline, and since typed input is not echoed on a pipe, the reply to
/// the command follows right after it.
#[derive(Debug, Default)]
pub(crate) struct OutputParser {
    buf: Vec<u8>,
    /// The last line was the echo of a wire line (`send … \r\n` printed
    /// with `print`), so an empty line follows that is part of it.
    after_echo: bool,
}

const PROMPT: &[u8] = b"Command ";

/// A line longer than this without a newline is cut into pieces.
const MAX_LINE: usize = 64 * 1024;
const COMMANDS: [&str; 5] = ["send ", "auth ", "inbox ", "list ", "logout "];

impl OutputParser {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Takes more output; returns the pieces now complete.
    pub(crate) fn feed(&mut self, data: &[u8]) -> Vec<OutEvent> {
        self.buf.extend_from_slice(data);
        let mut events = Vec::new();
        loop {
            let buf = &self.buf;
            if buf.is_empty() {
                break;
            }
            if buf.len() < PROMPT.len() && PROMPT.starts_with(buf) {
                break; // Maybe a prompt; wait for more.
            }
            if buf.starts_with(PROMPT) {
                match buf[PROMPT.len()..].iter().position(|&b| b == b':' || b == b'\n') {
                    Some(n) if buf[PROMPT.len() + n] == b':' => {
                        let len = PROMPT.len() + n + 1;
                        events.push(OutEvent::new(OutKind::Prompt, &buf[..len]));
                        self.buf.drain(..len);
                        self.after_echo = false;
                        continue;
                    }
                    Some(_) => {}
                    None => break,
                }
            }
            let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
                if buf.len() > MAX_LINE {
                    let line = self.buf.drain(..MAX_LINE).collect::<Vec<u8>>();
                    events.push(self.classify(&line));
                    continue;
                }
                break;
            };
            let line = self.buf[..nl].to_vec();
            self.buf.drain(..=nl);
            events.push(self.classify(&line));
        }
        events
    }

    /// The end of the output: whatever is left is one last line.
    pub(crate) fn finish(&mut self) -> Vec<OutEvent> {
        if self.buf.is_empty() {
            return Vec::new();
        }
        let line = std::mem::take(&mut self.buf);
        vec![self.classify(&line)]
    }

    fn classify(&mut self, line: &[u8]) -> OutEvent {
        let after_echo = std::mem::replace(&mut self.after_echo, false);
        let text = String::from_utf8_lossy(line);
        if text.starts_with("diterima dari server") || text == "end of string" {
            return OutEvent::new(OutKind::Debug, line);
        }
        if text.ends_with('\r') && COMMANDS.iter().any(|c| text.starts_with(c)) {
            self.after_echo = true;
            return OutEvent::new(OutKind::Debug, line);
        }
        if text.trim().is_empty() {
            let kind = if after_echo { OutKind::Debug } else { OutKind::Blank };
            return OutEvent::new(kind, line);
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        OutEvent::new(OutKind::Line, line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_end_at_the_terminator() {
        assert_eq!(scan_reply(b"{\"a\": 1}\r\n\r\n{\"b\""), Scan::Reply(12));
        assert_eq!(
            scan_reply(b"{\"a\": 1}\r\n\r"),
            Scan::Unterminated { len: 11, more_follows: false }
        );
        assert_eq!(
            scan_reply(b"{\"a\": \"}\\\"\"}"),
            Scan::Unterminated { len: 12, more_follows: false }
        );
        assert_eq!(
            scan_reply(b"{\"a\": 1}\n{\"b\": 2}\n"),
            Scan::Unterminated { len: 9, more_follows: true }
        );
        assert_eq!(scan_reply(b"{\"a\": [1, 2"), Scan::Incomplete);
        assert_eq!(scan_reply(b""), Scan::Incomplete);
        assert_eq!(scan_reply(b"hello"), Scan::Incomplete);
        assert_eq!(scan_reply(b"}}"), Scan::Incomplete);
    }

    fn kinds(events: &[OutEvent]) -> Vec<(OutKind, &str)> {
        events.iter().map(|e| (e.kind, e.text.as_str())).collect()
    }

    #[test]
    fn output_is_cut_into_prompts_and_lines() {
        let mut p = OutputParser::new();
        let mut all = p.feed(b"Comm");
        assert!(all.is_empty(), "a prompt may be coming");
        all.extend(p.feed(b"and :"));
        all.extend(p.feed(b"diterima dari server b'{\"status\": \"OK\"}'\nend of string\nusername messi logged in, token abc \nCommand abc:"));
        all.extend(p.feed(b"send abc henderson  hallo \r\n\nditerima dari server b'x'\nend of string\nmessage sent to henderson\nCommand abc:\nCommands are\n"));
        all.extend(p.feed(b"Command not found\r\n\nlast words"));
        all.extend(p.finish());
        assert_eq!(
            kinds(&all),
            vec![
                (OutKind::Prompt, "Command :"),
                (OutKind::Debug, "diterima dari server b'{\"status\": \"OK\"}'"),
                (OutKind::Debug, "end of string"),
                (OutKind::Line, "username messi logged in, token abc "),
                (OutKind::Prompt, "Command abc:"),
                (OutKind::Debug, "send abc henderson  hallo \r"),
                (OutKind::Debug, ""),
                (OutKind::Debug, "diterima dari server b'x'"),
                (OutKind::Debug, "end of string"),
                (OutKind::Line, "message sent to henderson"),
                (OutKind::Prompt, "Command abc:"),
                (OutKind::Blank, ""),
                (OutKind::Line, "Commands are"),
                (OutKind::Line, "Command not found"),
                (OutKind::Blank, ""),
                (OutKind::Line, "last words"),
            ]
        );
    }
}
