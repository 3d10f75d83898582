//! Laying text out for a terminal: wrapping at single spaces (a rule's
//! text keeps its own runs of spaces), hanging indents, one-line cuts.

/// The width text is wrapped to.
pub(crate) const WIDTH: usize = 100;
pub(crate) fn one_line(s: &str, max: usize) -> String {
    let s = s.replace('\n', " ");
    if s.chars().count() > max {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    } else {
        s
    }
}
/// Where a rule text may be broken: at a single space (or a line break)
/// outside a backtick span. Runs of spaces stay inside their word, and so
/// does a whole `code span`: `"  hallo \r\n"` reads as it is written.
pub(crate) fn words(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut words = Vec::new();
    let mut start = 0;
    let mut in_code = false;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'`' if in_code => in_code = false,
            b'`' => in_code = text[i + 1..].contains('`'),
            b'\n' if !in_code => {
                words.push(&text[start..i]);
                start = i + 1;
            }
            b' ' if !in_code
                && i > start
                && bytes[i - 1] != b' '
                && bytes.get(i + 1).is_some_and(|&n| n != b' ' && n != b'\n') =>
            {
                words.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    words.push(&text[start..]);
    words.retain(|w| !w.is_empty());
    words
}

/// Fills lines of at most `width` characters (a longer word gets a line of
/// its own), keeping the text's own spaces.
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    fill(words(text), " ", width)
}

/// Greedy filling: `items` joined by `sep`, broken into lines of at most
/// `width` characters where an item ends.
pub(crate) fn fill<S: AsRef<str>>(
    items: impl IntoIterator<Item = S>,
    sep: &str,
    width: usize,
) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    let sep_len = sep.chars().count();
    let trimmed = sep.trim_end();
    for item in items {
        let item = item.as_ref();
        if !line.is_empty() && line.chars().count() + sep_len + item.chars().count() > width {
            line.push_str(trimmed);
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push_str(sep);
        }
        line.push_str(item);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// `first` followed by `items` joined with `, ` (just a space after an
/// item that ends in `;`), wrapped to [`WIDTH`] with the following lines
/// indented by `indent` spaces.
pub(crate) fn hanging(first: &str, items: &[String], indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut all = vec![first.to_owned()];
    all.extend(items.iter().cloned());
    let mut lines = Vec::new();
    let mut line = String::new();
    for (i, item) in all.iter().enumerate() {
        let len = visible_len(&line);
        let after_semicolon = line.ends_with(';');
        if i > 1 && len + 2 + visible_len(item) > WIDTH {
            if !after_semicolon {
                line.push(',');
            }
            lines.push(std::mem::replace(&mut line, pad.clone()));
        } else if i > 1 {
            line.push_str(if after_semicolon { " " } else { ", " });
        } else if i == 1 && !first.ends_with(' ') {
            line.push(' ');
        }
        line.push_str(item);
    }
    lines.push(line);
    lines.join("\n")
}

/// The length of a line as it shows (terminal escapes left out).
pub(crate) fn visible_len(s: &str) -> usize {
    let mut n = 0;
    let mut escape = false;
    for c in s.chars() {
        match c {
            '\x1b' => escape = true,
            'm' if escape => escape = false,
            _ if escape => {}
            _ => n += 1,
        }
    }
    n
}

/// Wraps `text` to [`WIDTH`], `prefix` on the first line and `indent`
/// spaces on the others.
pub(crate) fn paragraph(prefix: &str, text: &str, indent: usize) -> String {
    let first = visible_len(prefix);
    let lines = fill(words(text), " ", WIDTH.saturating_sub(first.max(indent)).max(20));
    let pad = " ".repeat(indent);
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        if i == 0 {
            out.push_str(prefix);
        } else {
            out.push('\n');
            out.push_str(&pad);
        }
        out.push_str(line);
    }
    out
}

pub(crate) fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
