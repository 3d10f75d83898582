//! JSON encoding that is byte-identical to CPython's `json.dumps(obj)` with
//! default arguments.
//!
//! The original server and client are Python programs that build every reply
//! with a bare `json.dumps(...)`, and peers compare replies as raw bytes. So the
//! exact spelling is part of the protocol, not just the JSON meaning: the
//! `", "` and `": "` separators, keys in insertion order, `ensure_ascii=True`
//! escaping (lowercase `\uXXXX`, UTF-16 surrogate pairs beyond the BMP, `/`
//! left alone) and Python's `repr(float)` for numbers. `serde_json`'s own
//! writer differs on all of these points, hence this module.

use serde_json::{Number, Value};

/// Lowercase hex digits, as Python's `'\\u{0:04x}'.format(n)` produces.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Marker in [`ESCAPE`] for a control byte or DEL written as `\u00XX`.
const UNICODE: u8 = b'u';

/// What to do with each byte of a UTF-8 string:
/// - `0`: printable ASCII (or a UTF-8 continuation byte, which the scan never
///   lands on) that is copied verbatim;
/// - `b'"'`, `b'\\'`, `b'b'`, `b'f'`, `b'n'`, `b'r'`, `b't'`: written as a
///   backslash followed by that byte, Python's short escapes;
/// - [`UNICODE`]: any other byte outside `0x20..=0x7E`, written as `\u00XX`;
/// - `2`, `3`, `4`: the lead byte of a multi-byte UTF-8 sequence of that
///   length; the whole char is written as one or two `\uXXXX` escapes.
///
/// A table keeps the hot loop to one load and one compare per plain byte.
static ESCAPE: [u8; 256] = build_escape_table();

const fn build_escape_table() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut b: u8 = 0;
    loop {
        table[b as usize] = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x0c => b'f',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x00..=0x1f | 0x7f => UNICODE,
            0x20..=0x7e | 0x80..=0xbf => 0,
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xff => 4,
        };
        if b == u8::MAX {
            return table;
        }
        b += 1;
    }
}

/// Appends `s` as a quoted JSON string exactly as Python's
/// `json.dumps(s)` spells it (`ensure_ascii=True`).
///
/// Runs of printable ASCII are copied with a single `extend_from_slice`; only
/// the bytes that need escaping are looked at individually, and nothing is
/// allocated beyond growing `out`. Replies are written through this function
/// directly, so it is the encoder's hot path.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut run_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let escape = ESCAPE[usize::from(bytes[i])];
        if escape == 0 {
            i += 1;
            continue;
        }
        out.extend_from_slice(&bytes[run_start..i]);
        match escape {
            2..=4 => {
                let width = usize::from(escape);
                // `s` is valid UTF-8, so a lead byte of width `width` is
                // followed by exactly `width - 1` continuation bytes.
                let lead = u32::from(bytes[i] & (0x7f >> width));
                let code = bytes[i + 1..i + width]
                    .iter()
                    .fold(lead, |acc, &b| (acc << 6) | u32::from(b & 0x3f));
                write_code_point(out, code);
                i += width;
            }
            UNICODE => {
                write_u_escape(out, u32::from(bytes[i]));
                i += 1;
            }
            short => {
                out.extend_from_slice(&[b'\\', short]);
                i += 1;
            }
        }
        run_start = i;
    }
    out.extend_from_slice(&bytes[run_start..]);
    out.push(b'"');
}

/// Writes a non-ASCII code point the way Python's `ensure_ascii` does: one
/// `\uXXXX` inside the BMP, a UTF-16 surrogate pair beyond it (JSON has no
/// escape for code points above U+FFFF).
fn write_code_point(out: &mut Vec<u8>, code: u32) {
    if code < 0x1_0000 {
        write_u_escape(out, code);
    } else {
        let offset = code - 0x1_0000;
        write_u_escape(out, 0xd800 | (offset >> 10));
        write_u_escape(out, 0xdc00 | (offset & 0x3ff));
    }
}

/// Writes `\u` and the low 16 bits of `unit` as four lowercase hex digits.
fn write_u_escape(out: &mut Vec<u8>, unit: u32) {
    let nibble = |shift: u32| HEX[((unit >> shift) & 0xf) as usize];
    out.extend_from_slice(&[b'\\', b'u', nibble(12), nibble(8), nibble(4), nibble(0)]);
}

/// Appends `v` exactly as Python's `json.dumps(v)` would spell it.
///
/// Containers are walked with an explicit stack rather than recursion, so a
/// deeply nested value cannot overflow the thread's stack.
pub(crate) fn write_value(out: &mut Vec<u8>, v: &Value) {
    let mut stack: Vec<Frame<'_>> = Vec::new();
    let mut pending = Some(v);
    loop {
        if let Some(value) = pending.take() {
            match value {
                Value::Null => out.extend_from_slice(b"null"),
                Value::Bool(true) => out.extend_from_slice(b"true"),
                Value::Bool(false) => out.extend_from_slice(b"false"),
                Value::Number(n) => write_number(out, n),
                Value::String(s) => write_str(out, s),
                Value::Array(items) => {
                    out.push(b'[');
                    stack.push(Frame::new(Items::Array(items.iter())));
                }
                Value::Object(map) => {
                    out.push(b'{');
                    stack.push(Frame::new(Items::Object(map.iter())));
                }
            }
        }
        let Some(frame) = stack.last_mut() else {
            return;
        };
        let next = match &mut frame.items {
            Items::Array(items) => items.next().map(|value| (None, value)),
            Items::Object(entries) => entries.next().map(|(key, value)| (Some(key), value)),
        };
        match next {
            Some((key, value)) => {
                if frame.started {
                    out.extend_from_slice(b", ");
                }
                frame.started = true;
                if let Some(key) = key {
                    write_str(out, key);
                    out.extend_from_slice(b": ");
                }
                pending = Some(value);
            }
            None => {
                out.push(frame.items.close());
                stack.pop();
            }
        }
    }
}

/// Encodes `v` as Python's `json.dumps(v)` would.
#[must_use]
pub fn to_string(v: &Value) -> String {
    let mut out = Vec::new();
    write_value(&mut out, v);
    // The encoder only ever emits ASCII, so the lossy branch never runs; it
    // keeps this function free of panics without resorting to `unsafe`.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// One open array or object in [`write_value`]'s explicit stack.
struct Frame<'a> {
    items: Items<'a>,
    /// Whether an element was already written, i.e. the next one needs `", "`.
    started: bool,
}

impl<'a> Frame<'a> {
    fn new(items: Items<'a>) -> Self {
        Frame { items, started: false }
    }
}

/// The remaining children of an open container.
enum Items<'a> {
    Array(std::slice::Iter<'a, Value>),
    Object(serde_json::map::Iter<'a>),
}

impl Items<'_> {
    /// The byte that closes this container.
    fn close(&self) -> u8 {
        match self {
            Items::Array(_) => b']',
            Items::Object(_) => b'}',
        }
    }
}

/// Integers print in plain decimal (what Python's `int.__repr__` gives), and
/// floats as Python's `float.__repr__`.
fn write_number(out: &mut Vec<u8>, n: &Number) {
    if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
        write_float(out, f);
    } else {
        out.extend_from_slice(n.to_string().as_bytes());
    }
}

/// Writes `f` as Python's `repr(float)`: the shortest digits that round-trip,
/// in fixed notation with at least one fractional digit (`1.0`, `0.0001`)
/// when the decimal exponent `e` of `d.ddd × 10^e` satisfies `-4 <= e < 16`,
/// otherwise as `d.ddde±XX` with at least two exponent digits (`1e+16`,
/// `1.5e-05`).
///
/// `serde_json::Number` never holds NaN or an infinity, so `f` is finite.
fn write_float(out: &mut Vec<u8>, f: f64) {
    if f.is_sign_negative() {
        out.push(b'-');
    }
    // Rust's `{:e}` yields the shortest round-trip digits, as Python's repr
    // does (`1.2345e-5`, `0e0`), except where two candidates tie; only the
    // layout differs.
    let (mut digits, exponent) = sci_digits(&format!("{:e}", f.abs()));
    break_tie_to_even(f.abs(), &mut digits, exponent);

    if !(-4..16).contains(&exponent) {
        if let Some((first, rest)) = digits.split_first() {
            out.push(*first);
            if !rest.is_empty() {
                out.push(b'.');
                out.extend_from_slice(rest);
            }
        }
        let sign = if exponent < 0 { '-' } else { '+' };
        out.extend_from_slice(format!("e{sign}{:02}", exponent.unsigned_abs()).as_bytes());
        return;
    }
    match usize::try_from(exponent + 1) {
        // At least one digit before the point: `123.456`, `100.0`.
        Ok(int_len) if int_len > 0 => {
            if digits.len() > int_len {
                let (int_part, frac_part) = digits.split_at(int_len);
                out.extend_from_slice(int_part);
                out.push(b'.');
                out.extend_from_slice(frac_part);
            } else {
                out.extend_from_slice(&digits);
                out.resize(out.len() + (int_len - digits.len()), b'0');
                out.extend_from_slice(b".0");
            }
        }
        // Below one: `0.5`, `0.0001`.
        _ => {
            out.extend_from_slice(b"0.");
            for _ in exponent + 1..0 {
                out.push(b'0');
            }
            out.extend_from_slice(&digits);
        }
    }
}

/// The significant digits and the decimal exponent of a number that Rust
/// wrote in `{:e}` form (`1.2345e-5` gives `12345` and -5).
fn sci_digits(sci: &str) -> (Vec<u8>, i32) {
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci, "0"));
    let digits = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    (digits, exponent.parse().unwrap_or(0))
}

/// Where a positive `f` lies exactly halfway between two shortest digit
/// strings that both read back as `f` (1668195075526052.25, whose
/// neighbours are a quarter away, reads back from both `…052.2` and
/// `…052.3`), Rust picks the upper and Python's `repr` the even one. Turns
/// Rust's pick into Python's.
fn break_tie_to_even(f: f64, digits: &mut [u8], exponent: i32) {
    let Some(&last) = digits.last() else { return };
    // The exact decimal value of `f`: 800 significant digits cover any f64.
    let (exact, exact_exponent) = sci_digits(&format!("{f:.799e}"));
    let n = digits.len();
    let halfway = exact_exponent == exponent
        && exact.get(n) == Some(&b'5')
        && exact[n + 1..].iter().all(|&d| d == b'0');
    if !halfway {
        return;
    }
    // The two candidates share the first n - 1 digits; the lower one ends
    // in `exact[n - 1]`, the upper one in the digit after it.
    let lower = exact[n - 1];
    let even = if (lower - b'0').is_multiple_of(2) { lower } else { lower + 1 };
    if even == last || even > b'9' || digits[..n - 1] != exact[..n - 1] {
        return;
    }
    let mut candidate = digits.to_vec();
    candidate[n - 1] = even;
    let text = format!("0.{}e{}", String::from_utf8_lossy(&candidate), exponent + 1);
    if text.parse::<f64>() == Ok(f) {
        digits[n - 1] = even;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map};

    fn s(text: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, text);
        String::from_utf8(out).expect("encoder output is ASCII")
    }

    fn float(f: f64) -> String {
        to_string(&Value::from(f))
    }

    #[test]
    fn plain_ascii_is_copied_verbatim() {
        assert_eq!(s(""), r#""""#);
        assert_eq!(s("halo dunia ~!@#$%^&*()"), r#""halo dunia ~!@#$%^&*()""#);
    }

    #[test]
    fn slash_is_not_escaped() {
        assert_eq!(s("a/b</script>"), r#""a/b</script>""#);
    }

    #[test]
    fn short_escapes_match_python() {
        assert_eq!(s("\"\\\n\r\t\u{8}\u{c}"), r#""\"\\\n\r\t\b\f""#);
    }

    #[test]
    fn other_controls_and_del_use_lowercase_u_escapes() {
        assert_eq!(s("\0\u{1}\u{b}\u{1f}"), r#""\u0000\u0001\u000b\u001f""#);
        assert_eq!(s("\u{7f}"), r#""\u007f""#);
    }

    #[test]
    fn non_ascii_is_escaped_per_utf16_unit() {
        assert_eq!(s("é€"), r#""\u00e9\u20ac""#);
        assert_eq!(s("\u{80}\u{7ff}\u{800}\u{ffff}"), r#""\u0080\u07ff\u0800\uffff""#);
        assert_eq!(s("\u{2028}\u{feff}"), r#""\u2028\ufeff""#);
    }

    #[test]
    fn beyond_bmp_becomes_surrogate_pair() {
        assert_eq!(s("😀"), r#""\ud83d\ude00""#);
        assert_eq!(s("\u{10000}"), r#""\ud800\udc00""#);
        assert_eq!(s("\u{10ffff}"), r#""\udbff\udfff""#);
    }

    #[test]
    fn escapes_between_plain_runs() {
        assert_eq!(s("a\"b😀c\nd"), r#""a\"b\ud83d\ude00c\nd""#);
    }

    #[test]
    fn write_str_appends() {
        let mut out = b"x=".to_vec();
        write_str(&mut out, "y");
        assert_eq!(out, b"x=\"y\"");
    }

    #[test]
    fn scalars() {
        assert_eq!(to_string(&json!(null)), "null");
        assert_eq!(to_string(&json!(true)), "true");
        assert_eq!(to_string(&json!(false)), "false");
        assert_eq!(to_string(&json!(0)), "0");
        assert_eq!(to_string(&json!(-42)), "-42");
        assert_eq!(to_string(&json!(i64::MIN)), "-9223372036854775808");
        assert_eq!(to_string(&json!(u64::MAX)), "18446744073709551615");
    }

    #[test]
    fn integral_floats_keep_a_fraction() {
        assert_eq!(float(0.0), "0.0");
        assert_eq!(float(-0.0), "-0.0");
        assert_eq!(float(1.0), "1.0");
        assert_eq!(float(100.0), "100.0");
        assert_eq!(float(1e15), "1000000000000000.0");
        assert_eq!(float(9007199254740992.0), "9007199254740992.0");
    }

    #[test]
    fn floats_switch_to_exponent_form_like_python() {
        assert_eq!(float(1e16), "1e+16");
        assert_eq!(float(1.5e16), "1.5e+16");
        assert_eq!(float(1e22), "1e+22");
        assert_eq!(float(0.0001), "0.0001");
        assert_eq!(float(0.00012), "0.00012");
        assert_eq!(float(1e-5), "1e-05");
        assert_eq!(float(-1.5e-5), "-1.5e-05");
        assert_eq!(float(1e100), "1e+100");
        assert_eq!(float(f64::MAX), "1.7976931348623157e+308");
        assert_eq!(float(5e-324), "5e-324");
    }

    #[test]
    fn halfway_floats_take_the_even_digit_like_python() {
        // Each lies exactly halfway between two shortest candidates (the
        // doubles near 2^50 are a quarter apart).
        let quarters = |whole: i64, quarters: i32| whole as f64 + f64::from(quarters) * 0.25;
        assert_eq!(float(quarters(1668195075526052, 1)), "1668195075526052.2");
        assert_eq!(float(-quarters(1668195075526052, 1)), "-1668195075526052.2");
        assert_eq!(float(quarters(1668195075526052, 3)), "1668195075526052.8");
        assert_eq!(float(quarters(1125899906842624, 1)), "1125899906842624.2");
        assert_eq!(float(quarters(1125899906842625, 3)), "1125899906842625.8");
        // Not a tie: seventeen digits are needed, and they are exact.
        assert_eq!(float(quarters(2251799813685248, 2)), "2251799813685248.5");
    }

    #[test]
    fn floats_use_shortest_round_trip_digits() {
        assert_eq!(float(0.5), "0.5");
        assert_eq!(float(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(float(123.456), "123.456");
        assert_eq!(float(-2.5), "-2.5");
        assert_eq!(float(1234567890123456.7), "1234567890123456.8");
    }

    #[test]
    fn containers_use_python_separators() {
        assert_eq!(to_string(&json!([])), "[]");
        assert_eq!(to_string(&json!({})), "{}");
        assert_eq!(to_string(&json!([1, 2])), "[1, 2]");
        assert_eq!(to_string(&json!([[], {}, [[]]])), "[[], {}, [[]]]");
        assert_eq!(
            to_string(&json!({"a": 1, "b": [2, {"c": null}]})),
            r#"{"a": 1, "b": [2, {"c": null}]}"#
        );
    }

    #[test]
    fn object_keys_keep_insertion_order_and_are_escaped() {
        let mut map = Map::new();
        map.insert("zeta".into(), json!(1));
        map.insert("é\"".into(), json!(2));
        map.insert("alpha".into(), json!(3));
        assert_eq!(to_string(&Value::Object(map)), r#"{"zeta": 1, "\u00e9\"": 2, "alpha": 3}"#);
    }

    #[test]
    fn protocol_reply() {
        let reply = json!({"status": "OK", "messages": {"messi": [
            {"msg_from": "Lionel Messi", "msg_to": "Gary Lineker", "msg": "  halo \r\n"}
        ]}});
        assert_eq!(
            to_string(&reply),
            r#"{"status": "OK", "messages": {"messi": [{"msg_from": "Lionel Messi", "msg_to": "Gary Lineker", "msg": "  halo \r\n"}]}}"#
        );
    }

    #[test]
    fn deep_nesting_does_not_recurse() {
        const DEPTH: usize = 100_000;
        let mut value = json!(0);
        for _ in 0..DEPTH {
            value = Value::Array(vec![value]);
        }
        let text = to_string(&value);
        // Dropping a value this deep would itself recurse, so unwind it by
        // hand before any assertion can fail and drop it during the panic.
        while let Value::Array(mut items) = value {
            value = items.pop().unwrap_or(Value::Null);
        }
        assert_eq!(text, format!("{}0{}", "[".repeat(DEPTH), "]".repeat(DEPTH)));
    }
}
