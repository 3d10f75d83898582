//! The properties the fuzz targets check, one function per target, so that
//! each target in `fuzz_targets/` is one line and the same checks can be run
//! on a corpus by `cargo test` too.
//!
//! Every function panics (which libFuzzer reports as a crash) when its
//! property does not hold.

use progjar_chat::protocol::connection::Connection;
use progjar_chat::protocol::frame::{self, Frame, FrameError};
use progjar_chat::protocol::json;
use progjar_chat::protocol::limits::DEFAULT_MAX_LINE;
use progjar_chat::protocol::request::{parse_request_bytes, Request, RequestError};
use progjar_chat::protocol::token::SequentialTokens;
use progjar_chat::protocol::users::UserDirectory;
use progjar_chat::shared::SharedChat;
use serde_json::Value;

/// The reference model of the test suite, shared rather than copied.
#[path = "../../tests/model/mod.rs"]
pub mod model;

/// The first `\r\n`, found the obvious way.
fn first_crlf(data: &[u8]) -> Option<usize> {
    data.windows(2).position(|w| w == b"\r\n")
}

/// `parse_frame`: never panics; a complete frame is the input up to and
/// including its first `\r\n` (so never longer than the input), whatever
/// follows it; partial means no `\r\n` yet; too long means no `\r\n` within
/// the limit. The first byte picks a small limit for `parse_frame_limited`.
pub fn parse_frame(data: &[u8]) {
    let expected = |buf: &[u8], limit: usize| match first_crlf(buf) {
        Some(at) if at + 2 <= limit => Ok(Frame::Complete { len: at + 2 }),
        _ if buf.len() >= limit => Err(FrameError::LineTooLong { limit }),
        _ => Ok(Frame::Partial),
    };
    let got = frame::parse_frame(data);
    assert_eq!(got, expected(data, DEFAULT_MAX_LINE), "{data:?}");
    if let Ok(Frame::Complete { len }) = got {
        assert!(len <= data.len());
        // The frame alone, and the frame followed by other bytes, are the
        // same frame.
        assert_eq!(frame::parse_frame(&data[..len]), got);
        let mut more = data[..len].to_vec();
        more.extend_from_slice(b"\r\nmore\r\n");
        assert_eq!(frame::parse_frame(&more), got);
    }
    if let Some((&first, rest)) = data.split_first() {
        let limit = usize::from(first % 64);
        let got = frame::parse_frame_limited(rest, limit);
        assert_eq!(got, expected(rest, limit), "limit {limit}, {rest:?}");
        if let Ok(Frame::Complete { len }) = got {
            assert!(len <= rest.len() && len <= limit);
        }
    }
}

/// `parse_request`: any line is either a request whose fields are what
/// Python's `split(" ")` and `strip()` make of it (the model's reading), or
/// rejected with the error the model names; and a request rendered back to a
/// line parses to the same request.
pub fn request(data: &[u8]) {
    let got = parse_request_bytes(data);
    let Ok(line) = std::str::from_utf8(data) else {
        assert_eq!(got, Err(RequestError::NotUtf8));
        return;
    };
    let fields: Vec<&str> = line.split(' ').collect();
    let field = |i: usize| fields.get(i).map(|f| model::py_strip(f));
    let text = || fields.iter().skip(3).map(|w| format!(" {w}")).collect::<String>();
    let expected = match field(0).unwrap_or("") {
        "auth" => match (field(1), field(2)) {
            (Some(username), Some(password)) => Ok(format!("auth {username:?} {password:?}")),
            _ => Err(RequestError::MissingFields),
        },
        "send" => match (field(1), field(2)) {
            (Some(token), Some(to)) => Ok(format!("send {token:?} {to:?} {:?}", text())),
            _ => Err(RequestError::MissingFields),
        },
        command @ ("inbox" | "list" | "logout") => match field(1) {
            Some(token) => Ok(format!("{command} {token:?}")),
            None => Err(RequestError::MissingFields),
        },
        _ => Err(RequestError::UnknownCommand),
    };
    let describe = |request: &Request<'_>| match *request {
        Request::Auth { username, password } => format!("auth {username:?} {password:?}"),
        Request::Send { token, to, text } => format!("send {token:?} {to:?} {text:?}"),
        Request::Inbox { token } => format!("inbox {token:?}"),
        Request::List { token } => format!("list {token:?}"),
        Request::Logout { token } => format!("logout {token:?}"),
    };
    assert_eq!(got.as_ref().map(describe).map_err(|e| *e), expected, "{line:?}");
    if let Ok(request) = got {
        let rendered = request.to_string();
        assert_eq!(
            parse_request_bytes(rendered.as_bytes()),
            Ok(request),
            "{line:?} rendered as {rendered:?}"
        );
    }
}

/// Connections a session input writes on.
pub const SESSION_CONNECTIONS: usize = 3;

/// `session`: a byte stream written on several connections in arbitrary
/// pieces, through `Connection` and `SharedChat` as the server wires them
/// (one batch per write, each request through `Batch::answer`), never
/// panics and gets, after every write, exactly the model's replies.
///
/// Input: one byte choosing the line limit, then records of one control
/// byte (`conn = (c & 3) % 3`, `len = c >> 2`) followed by `len` bytes to
/// write on that connection (fewer at the end of the input).
pub fn session(data: &[u8]) {
    let Some((&config, mut rest)) = data.split_first() else { return };
    let max_line = [16, 64, 1024, DEFAULT_MAX_LINE][usize::from(config & 3)];
    let chat = SharedChat::new(UserDirectory::builtin());
    let mut tokens = SequentialTokens::default();
    let mut conns: Vec<Connection> =
        (0..SESSION_CONNECTIONS).map(|_| Connection::new(max_line)).collect();
    let mut expected = model::ModelServer::new(SESSION_CONNECTIONS, max_line);
    while let Some((&control, after)) = rest.split_first() {
        let conn = usize::from(control & 3) % SESSION_CONNECTIONS;
        let len = usize::from(control >> 2).min(after.len());
        let (write, after) = after.split_at(len);
        rest = after;
        let mut got = Vec::new();
        let mut batch = chat.batch();
        conns[conn].handle_bytes(write, |request| {
            batch.answer(request, &mut tokens, &mut got);
        });
        drop(batch);
        let want: Vec<u8> = expected
            .write(conn, write, model::sequential_token)
            .iter()
            .flat_map(model::reply_bytes)
            .collect();
        assert!(
            got == want,
            "C{}> {}\nexpected {}\ngot      {}",
            conn + 1,
            model::escape_request(write),
            String::from_utf8_lossy(&want),
            String::from_utf8_lossy(&got)
        );
        let counts = chat.with(|chat| (chat.session_count(), chat.pending_count()));
        assert_eq!(counts, (expected.chat.sessions.len(), expected.chat.pending()));
    }
}

/// `json`: the encoder's output is pure ASCII and parses back to the same
/// value; for values without floats it is byte for byte the model's
/// independent `json.dumps`. Any input that is JSON is encoded as a value,
/// and any input that is UTF-8 is encoded as a string.
pub fn json(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let mut out = Vec::new();
        json::write_str(&mut out, text);
        assert!(out.is_ascii());
        assert_eq!(serde_json::from_slice::<String>(&out).expect("a JSON string"), text);
        assert_eq!(out, model::py_str(text).into_bytes());
    }
    let Ok(value) = serde_json::from_slice::<Value>(data) else { return };
    let encoded = json::to_string(&value);
    assert!(encoded.is_ascii(), "{encoded}");
    let back: Value = serde_json::from_str(&encoded).expect("the encoding is JSON");
    assert_eq!(back, value, "{encoded}");
    if !has_float(&value) {
        assert_eq!(encoded, model::py_dumps(&value));
    }
}

fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(map) => map.values().any(has_float),
        _ => false,
    }
}
