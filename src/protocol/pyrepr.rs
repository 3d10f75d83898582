//! Python 3's `repr(bytes)`.
//!
//! The original client's trace mode does `print("diterima dari server", data)`
//! for every chunk it receives, which prints the chunk as `b'...'`. Tools and
//! people diff those trace lines against the original's, so the spelling has
//! to match CPython's `bytes.__repr__` exactly.

/// Lowercase hex digits, as CPython's `\xhh` escapes use.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Returns `repr(b)` exactly as Python 3 prints it, e.g.
/// `b'{"status": "OK"}\r\n\r\n'`.
///
/// The quote is `'` unless the bytes contain `'` and no `"`, in which case it
/// is `"`. The chosen quote and the backslash are backslash-escaped; tab, LF
/// and CR use their short forms; every other byte outside `0x20..=0x7E` is
/// written as `\xhh`.
#[must_use]
pub fn bytes_repr(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') { '"' } else { '\'' };
    let mut out = String::with_capacity(b.len() + 3);
    out.push('b');
    out.push(quote);
    for &byte in b {
        match byte {
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\\' => out.push_str("\\\\"),
            _ if char::from(byte) == quote => {
                out.push('\\');
                out.push(quote);
            }
            0x20..=0x7e => out.push(char::from(byte)),
            _ => {
                out.push_str("\\x");
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0xf)]));
            }
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::bytes_repr;

    #[test]
    fn empty() {
        assert_eq!(bytes_repr(b""), "b''");
    }

    #[test]
    fn reply_chunk_as_the_client_traces_it() {
        assert_eq!(bytes_repr(b"{\"status\": \"OK\"}\r\n\r\n"), r#"b'{"status": "OK"}\r\n\r\n'"#);
    }

    #[test]
    fn short_escapes_and_backslash() {
        assert_eq!(bytes_repr(b"\t\n\r\\"), r"b'\t\n\r\\'");
    }

    #[test]
    fn other_bytes_use_lowercase_hex() {
        assert_eq!(
            bytes_repr(&[0x00, 0x07, 0x0b, 0x0c, 0x1f, 0x7f, 0x80, 0xab, 0xff]),
            r"b'\x00\x07\x0b\x0c\x1f\x7f\x80\xab\xff'"
        );
        assert_eq!(bytes_repr(" ~".as_bytes()), "b' ~'");
        assert_eq!(bytes_repr("é".as_bytes()), r"b'\xc3\xa9'");
    }

    #[test]
    fn single_quote_alone_switches_to_double_quotes() {
        assert_eq!(bytes_repr(b"it's"), r#"b"it's""#);
    }

    #[test]
    fn double_quote_alone_keeps_single_quotes() {
        assert_eq!(bytes_repr(b"say \"hi\""), r#"b'say "hi"'"#);
    }

    #[test]
    fn both_quotes_escape_the_single_quote() {
        assert_eq!(bytes_repr(b"'\""), r#"b'\'"'"#);
    }
}
