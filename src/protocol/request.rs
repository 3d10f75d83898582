//! What a request line says, with the original server's field rules.
//!
//! The original splits the whole line, terminator included, on single
//! spaces (Python `str.split(" ")`, so two spaces make an empty field) and
//! `.strip()`s each field it uses; fields beyond those a command uses are
//! ignored. Commands are case-sensitive. The text of a `send` is every field
//! from the fourth on, each prefixed with one space: that is exactly the raw
//! rest of the line after the recipient field, starting with its separating
//! space and including the `\r\n`. The original client sends
//! `send TOKEN henderson  hallo \r\n` for a typed `send henderson hallo`, so
//! the stored text is `"  hallo \r\n"`, as the assignment's inbox shows.

use super::pystr::strip;

/// One parsed request. Fields borrow from the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// `auth USERNAME PASSWORD`: log in, get a token.
    Auth { username: &'a str, password: &'a str },
    /// `send TOKEN RECIPIENT TEXT…`: leave a message in a user's inbox.
    Send { token: &'a str, to: &'a str, text: &'a str },
    /// `inbox TOKEN`: take every pending message.
    Inbox { token: &'a str },
    /// `list TOKEN`: the users now logged in.
    List { token: &'a str },
    /// `logout TOKEN`: end this token's session.
    Logout { token: &'a str },
}

/// Why a line is not a request. Each maps to one error reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    /// The bytes are not UTF-8 (the original would have crashed).
    NotUtf8,
    /// The first field is none of the commands (`**Protocol Tidak Benar`).
    UnknownCommand,
    /// A field the command needs is missing (`--Protocol Tidak Benar`).
    MissingFields,
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RequestError::NotUtf8 => "request is not valid UTF-8",
            RequestError::UnknownCommand => "unknown command",
            RequestError::MissingFields => "missing fields",
        })
    }
}

impl std::error::Error for RequestError {}

/// Parses one request line given as bytes (terminator included, as
/// [`crate::protocol::frame::parse_frame`] delimits it).
pub fn parse_request_bytes(line: &[u8]) -> Result<Request<'_>, RequestError> {
    let line = std::str::from_utf8(line).map_err(|_| RequestError::NotUtf8)?;
    parse_request(line)
}

/// Parses one request line (terminator included).
///
/// ```
/// use progjar_chat::protocol::request::{parse_request, Request, RequestError};
///
/// // What the original client sends for a typed `send henderson hallo`:
/// // the text keeps its leading spaces and the terminator.
/// assert_eq!(
///     parse_request("send 4c908ff6 henderson  hallo \r\n"),
///     Ok(Request::Send { token: "4c908ff6", to: "henderson", text: "  hallo \r\n" })
/// );
/// assert_eq!(parse_request("auth messi\r\n"), Err(RequestError::MissingFields));
/// assert_eq!(parse_request("AUTH messi surabaya\r\n"), Err(RequestError::UnknownCommand));
/// ```
pub fn parse_request(line: &str) -> Result<Request<'_>, RequestError> {
    let mut fields = Fields { rest: Some(line) };
    let command = strip(fields.next_raw().unwrap_or(""));
    match command {
        "auth" => {
            let username = fields.required()?;
            let password = fields.required()?;
            Ok(Request::Auth { username, password })
        }
        "send" => {
            let token = fields.required()?;
            let to = fields.required()?;
            // The rest after the recipient field, starting with its
            // separating space; empty when the recipient is the last field.
            let text = match fields.rest {
                Some(rest) => &line[line.len() - rest.len() - 1..],
                None => "",
            };
            Ok(Request::Send { token, to, text })
        }
        "inbox" => Ok(Request::Inbox { token: fields.required()? }),
        "list" => Ok(Request::List { token: fields.required()? }),
        "logout" => Ok(Request::Logout { token: fields.required()? }),
        _ => Err(RequestError::UnknownCommand),
    }
}

/// Python's `line.split(" ")`, one field at a time.
struct Fields<'a> {
    /// What follows the last separator taken; `None` once the last field
    /// has been taken.
    rest: Option<&'a str>,
}

impl<'a> Fields<'a> {
    fn next_raw(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        // A byte search: a space is one byte in UTF-8 and never part of a
        // longer character, so both sides stay valid `str`s.
        match memchr::memchr(b' ', rest.as_bytes()) {
            Some(at) => {
                self.rest = Some(&rest[at + 1..]);
                Some(&rest[..at])
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }

    /// The next field, stripped; its absence is the original's `IndexError`.
    fn required(&mut self) -> Result<&'a str, RequestError> {
        self.next_raw().map(strip).ok_or(RequestError::MissingFields)
    }
}

impl Request<'_> {
    /// The command word, for logs (never the fields: they hold passwords).
    pub fn command(&self) -> &'static str {
        match self {
            Request::Auth { .. } => "auth",
            Request::Send { .. } => "send",
            Request::Inbox { .. } => "inbox",
            Request::List { .. } => "list",
            Request::Logout { .. } => "logout",
        }
    }
}

impl std::fmt::Display for Request<'_> {
    /// The request as a wire line that parses back to the same request.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Auth { username, password } => write!(f, "auth {username} {password}\r\n"),
            Request::Send { token, to, text: "" } => {
                write!(f, "send {token} {to}\r\n")
            }
            Request::Send { token, to, text } => write!(f, "send {token} {to}{text}"),
            Request::Inbox { token } => write!(f, "inbox {token}\r\n"),
            Request::List { token } => write!(f, "list {token}\r\n"),
            Request::Logout { token } => write!(f, "logout {token}\r\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_fields_are_stripped() {
        let want = Request::Auth { username: "messi", password: "surabaya" };
        assert_eq!(parse_request("auth messi surabaya \r\n"), Ok(want));
        assert_eq!(parse_request("auth messi surabaya\r\n"), Ok(want));
        assert_eq!(parse_request("auth messi surabaya extra fields\r\n"), Ok(want));
    }

    #[test]
    fn an_empty_field_is_still_a_field() {
        assert_eq!(
            parse_request("auth messi \r\n"),
            Ok(Request::Auth { username: "messi", password: "" })
        );
        assert_eq!(
            parse_request("auth  messi surabaya\r\n"),
            Ok(Request::Auth { username: "", password: "messi" })
        );
    }

    #[test]
    fn missing_fields() {
        for line in
            ["auth messi\r\n", "send\r\n", "send t\r\n", "inbox\r\n", "list\r\n", "logout\r\n"]
        {
            assert_eq!(parse_request(line), Err(RequestError::MissingFields), "{line:?}");
        }
    }

    #[test]
    fn commands_are_case_sensitive_and_space_separated() {
        for line in [
            "AUTH messi surabaya\r\n",
            " auth messi surabaya\r\n",
            "auth\tmessi\tsurabaya\r\n",
            "foo\r\n",
            "\r\n",
        ] {
            assert_eq!(parse_request(line), Err(RequestError::UnknownCommand), "{line:?}");
        }
    }

    #[test]
    fn send_text_is_the_raw_rest_after_the_recipient() {
        assert_eq!(
            parse_request("send t henderson  hallo \r\n"),
            Ok(Request::Send { token: "t", to: "henderson", text: "  hallo \r\n" })
        );
        assert_eq!(
            parse_request("send t lineker\r\n"),
            Ok(Request::Send { token: "t", to: "lineker", text: "" })
        );
        assert_eq!(
            parse_request("send t lineker \r\n"),
            Ok(Request::Send { token: "t", to: "lineker", text: " \r\n" })
        );
    }

    #[test]
    fn invalid_utf8_is_its_own_error() {
        assert_eq!(parse_request_bytes(b"auth \xff\r\n"), Err(RequestError::NotUtf8));
    }

    #[test]
    fn display_parses_back() {
        for line in [
            "send t henderson  hallo \r\n",
            "send t x\r\n",
            "auth a b\r\n",
            "inbox t\r\n",
            "list t\r\n",
            "logout t\r\n",
        ] {
            let request = parse_request(line).unwrap();
            assert_eq!(parse_request(&request.to_string()), Ok(request));
        }
    }
}
