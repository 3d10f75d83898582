//! Reading replies loosely, so that any server of the protocol can be
//! measured: a reply is whatever comes before `\r\n\r\n` (cut by
//! [`crate::protocol::frame::find_reply_end`]); it is an error when
//! its `"status"` is `"ERROR"`; an `auth` reply's token is the string value
//! of `"tokenid"`. Spacing, key order and extra keys do not matter.

/// Whether the reply's `"status"` is `"ERROR"` (in any case).
pub(crate) fn is_error(reply: &[u8]) -> bool {
    string_field(reply, b"\"status\"").is_some_and(|v| v.eq_ignore_ascii_case(b"ERROR"))
}

/// The token of an `auth` reply, if it has one.
pub(crate) fn token(reply: &[u8]) -> Option<String> {
    let value = string_field(reply, b"\"tokenid\"")?;
    Some(String::from_utf8_lossy(value).into_owned())
}

/// The `"message"` of an error reply, for the report (never unescaped).
pub(crate) fn error_message(reply: &[u8]) -> String {
    match string_field(reply, b"\"message\"") {
        Some(value) => String::from_utf8_lossy(value).into_owned(),
        None => {
            let end = reply.len().min(80);
            String::from_utf8_lossy(&reply[..end]).trim_end().to_owned()
        }
    }
}

/// The raw text of the string value of the first `key` (given with its
/// quotes): `"key" : "value"` gives `value`, escapes left as they are.
pub(crate) fn string_field<'a>(reply: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let at = find(reply, key)? + key.len();
    let rest = skip_space(&reply[at..]);
    let rest = skip_space(rest.strip_prefix(b":")?);
    let rest = rest.strip_prefix(b"\"")?;
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            b'\\' => i += 2,
            b'"' => return Some(&rest[..i]),
            _ => i += 1,
        }
    }
    None
}

fn skip_space(bytes: &[u8]) -> &[u8] {
    let n = bytes.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &bytes[n..]
}

/// The index of the first occurrence of `needle` (non-empty) in `hay`.
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut at = 0;
    while let Some(offset) = find_byte(first, &hay[at..]) {
        let i = at + offset;
        if hay[i + 1..].starts_with(rest) {
            return Some(i);
        }
        at = i + 1;
    }
    None
}

/// The index of the first `needle` byte in `hay`, eight bytes at a time
/// (replies of an inbox drain run to hundreds of megabytes).
pub(crate) fn find_byte(needle: u8, hay: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO * u64::from(needle);
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("chunks of eight")) ^ pattern;
        // The lowest set bit marks the first zero byte, i.e. the first match.
        let zero = word.wrapping_sub(LO) & !word & HI;
        if zero != 0 {
            return Some(base + (zero.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks.remainder().iter().position(|&b| b == needle).map(|i| base + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_byte_matches_position() {
        let hay: Vec<u8> = (0..200u8).map(|i| i % 37).collect();
        for needle in 0..40u8 {
            for start in 0..20 {
                assert_eq!(
                    find_byte(needle, &hay[start..]),
                    hay[start..].iter().position(|&b| b == needle),
                    "needle {needle} start {start}"
                );
            }
        }
        assert_eq!(find_byte(b'\n', b"\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\n"), Some(8));
        assert_eq!(find_byte(0x80, b"\x81\x80"), Some(1));
    }

    #[test]
    fn loose_fields() {
        let ok = b"{\"status\": \"OK\", \"tokenid\": \"4c90-ab\"}\r\n\r\n";
        assert!(!is_error(ok));
        assert_eq!(token(ok).as_deref(), Some("4c90-ab"));
        let err = b"{\"message\":\"User \\\"x\\\" Tidak Ada\" , \"status\" :\"ERROR\"}";
        assert!(is_error(err));
        assert_eq!(error_message(err), "User \\\"x\\\" Tidak Ada");
        assert_eq!(token(err), None);
        assert!(!is_error(b"garbage"));
    }
}
