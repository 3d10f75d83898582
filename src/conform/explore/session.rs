//! A generated session: plain data. Steps over numbered connections, each
//! step one or more requests written in one go (pipelined when several),
//! whole or cut into pieces, then one reply read per request.
//!
//! Requests are kept as fields, not bytes, so that the shrinker can
//! simplify a text or a user without breaking the request's grammar, and
//! so that a token is a reference to the login that issued it: the
//! implementation's tokens are not the reference's.

/// A token a request carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Tok {
    /// The token of the login request with this id (live, or logged out
    /// by then; if that login issued none, a token never issued).
    Of(u32),
    /// The token of that login with one character more: a mangled token.
    Mangled(u32),
    /// A well-formed token that no server issued.
    Never,
}

/// One request, by its fields. Every request ends in `\r\n`; `trail`
/// writes a space before it, as the course's client does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Request {
    /// `auth USER PASSWORD`; `id` names the token it may issue.
    Auth {
        id: u32,
        user: Vec<u8>,
        password: Vec<u8>,
        trail: bool,
    },
    /// `send TOKEN TO TEXT`.
    Send {
        token: Tok,
        to: Vec<u8>,
        text: Vec<u8>,
    },
    Inbox {
        token: Tok,
        trail: bool,
    },
    List {
        token: Tok,
        trail: bool,
    },
    Logout {
        token: Tok,
        trail: bool,
    },
    /// Anything else: an unknown command, missing fields, bytes that are
    /// not UTF-8. Written as it is, `\r\n` added.
    Raw(Vec<u8>),
}

/// A request as written: literal bytes and tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    Lit(Vec<u8>),
    Token(Tok),
}

/// The bytes a token stands for when the length matters (where a cut
/// falls): a UUID's.
pub(crate) const TOKEN_LEN: usize = 36;

/// The token no server issued, in a UUID's form.
pub(crate) const NEVER_ISSUED: &str = "00000000-0000-4000-8000-000000000000";

impl Request {
    /// The command word, for rules and signatures.
    pub(crate) fn command(&self) -> &'static str {
        match self {
            Request::Auth { .. } => "auth",
            Request::Send { .. } => "send",
            Request::Inbox { .. } => "inbox",
            Request::List { .. } => "list",
            Request::Logout { .. } => "logout",
            Request::Raw(_) => "",
        }
    }

    /// The token the request carries, if any.
    pub(crate) fn token(&self) -> Option<&Tok> {
        match self {
            Request::Send { token, .. }
            | Request::Inbox { token, .. }
            | Request::List { token, .. }
            | Request::Logout { token, .. } => Some(token),
            _ => None,
        }
    }

    /// The request as written, `\r\n` included.
    pub(crate) fn parts(&self) -> Vec<Part> {
        let end = |trail: bool| if trail { b" \r\n".to_vec() } else { b"\r\n".to_vec() };
        let with_token = |word: &str, token: &Tok, trail: bool| {
            vec![
                Part::Lit(format!("{word} ").into_bytes()),
                Part::Token(token.clone()),
                Part::Lit(end(trail)),
            ]
        };
        let mut parts = match self {
            Request::Auth { user, password, trail, .. } => {
                let mut line = b"auth ".to_vec();
                line.extend_from_slice(user);
                line.push(b' ');
                line.extend_from_slice(password);
                line.extend(end(*trail));
                vec![Part::Lit(line)]
            }
            Request::Send { token, to, text } => {
                let mut rest = vec![b' '];
                rest.extend_from_slice(to);
                rest.push(b' ');
                rest.extend_from_slice(text);
                rest.extend_from_slice(b"\r\n");
                vec![Part::Lit(b"send ".to_vec()), Part::Token(token.clone()), Part::Lit(rest)]
            }
            Request::Inbox { token, trail } => with_token("inbox", token, *trail),
            Request::List { token, trail } => with_token("list", token, *trail),
            Request::Logout { token, trail } => with_token("logout", token, *trail),
            Request::Raw(bytes) => {
                let mut line = bytes.clone();
                line.extend_from_slice(b"\r\n");
                vec![Part::Lit(line)]
            }
        };
        parts.retain(|p| !matches!(p, Part::Lit(b) if b.is_empty()));
        parts
    }

    /// The request's length, a token counted as a UUID.
    pub(crate) fn len(&self) -> usize {
        self.parts()
            .iter()
            .map(|p| match p {
                Part::Lit(b) => b.len(),
                Part::Token(_) => TOKEN_LEN,
            })
            .sum()
    }
}

/// How a step's requests are written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Write {
    /// In one write.
    Whole,
    /// Cut at these offsets into the step's bytes (a token counted as a
    /// UUID), increasing: one write per piece, a moment apart.
    Cut(Vec<usize>),
}

/// One step: requests written on a connection, then their replies read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Step {
    /// `1` for `C1`.
    pub(crate) conn: u32,
    pub(crate) requests: Vec<Request>,
    pub(crate) write: Write,
}

impl Step {
    /// The step's parts, all requests together.
    pub(crate) fn parts(&self) -> Vec<Part> {
        self.requests.iter().flat_map(Request::parts).collect()
    }

    /// The pieces written, each a list of parts: cuts inside a token move
    /// to its end (a token is written whole, whatever its length).
    pub(crate) fn pieces(&self) -> Vec<Vec<Part>> {
        let cuts = match &self.write {
            Write::Whole => Vec::new(),
            Write::Cut(cuts) => cuts.clone(),
        };
        let mut pieces: Vec<Vec<Part>> = vec![Vec::new()];
        let mut offset = 0;
        let mut next = cuts.iter().copied().peekable();
        for part in self.parts() {
            match part {
                Part::Token(t) => {
                    pieces.last_mut().expect("a piece").push(Part::Token(t));
                    offset += TOKEN_LEN;
                    let mut cut_here = false;
                    while next.peek().is_some_and(|c| *c <= offset) {
                        next.next();
                        cut_here = true;
                    }
                    if cut_here {
                        pieces.push(Vec::new());
                    }
                }
                Part::Lit(bytes) => {
                    let mut start = 0;
                    while let Some(cut) = next.peek().copied() {
                        if cut > offset + bytes.len() {
                            break;
                        }
                        next.next();
                        if cut > offset + start {
                            let piece = pieces.last_mut().expect("a piece");
                            piece.push(Part::Lit(bytes[start..cut - offset].to_vec()));
                            start = cut - offset;
                        }
                        if !pieces.last().expect("a piece").is_empty() {
                            pieces.push(Vec::new());
                        }
                    }
                    if start < bytes.len() {
                        pieces
                            .last_mut()
                            .expect("a piece")
                            .push(Part::Lit(bytes[start..].to_vec()));
                    }
                    offset += bytes.len();
                }
            }
        }
        pieces.retain(|p| !p.is_empty());
        pieces
    }
}

/// A whole session.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub(crate) struct Session {
    pub(crate) steps: Vec<Step>,
}

impl Session {
    /// The session up to step `index`, that step written one request at a
    /// time: what tells merged pipelining from a request that is not
    /// answered at all.
    pub(crate) fn unpipelined(&self, index: usize) -> Session {
        let mut steps = Vec::new();
        for (i, step) in self.steps.iter().enumerate().take(index + 1) {
            if i == index {
                steps.extend(step.requests.iter().map(|r| Step {
                    conn: step.conn,
                    requests: vec![r.clone()],
                    write: Write::Whole,
                }));
            } else {
                steps.push(step.clone());
            }
        }
        Session { steps }
    }

    /// How many requests (each one step of the printed example: a write
    /// and its reply).
    pub(crate) fn requests(&self) -> usize {
        self.steps.iter().map(|s| s.requests.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &[u8]) -> Part {
        Part::Lit(s.to_vec())
    }

    #[test]
    fn cuts_split_literal_bytes_and_skip_over_tokens() {
        let step = Step {
            conn: 1,
            requests: vec![Request::Inbox { token: Tok::Of(1), trail: false }],
            write: Write::Cut(vec![2, 10, 42]),
        };
        // "inbox " (6) + token (36) + "\r\n": the cut at 10 is inside the
        // token and moves to its end, where the cut at 42 already is.
        assert_eq!(
            step.pieces(),
            vec![vec![lit(b"in")], vec![lit(b"box "), Part::Token(Tok::Of(1))], vec![lit(b"\r\n")],]
        );
    }

    #[test]
    fn a_cut_inside_a_character_splits_its_bytes() {
        let step = Step {
            conn: 1,
            requests: vec![Request::Raw("é".as_bytes().to_vec())],
            write: Write::Cut(vec![1]),
        };
        assert_eq!(step.pieces(), vec![vec![lit(b"\xc3")], vec![lit(b"\xa9\r\n")]]);
    }

    #[test]
    fn pipelined_requests_are_one_piece_when_whole() {
        let step = Step {
            conn: 2,
            requests: vec![Request::Raw(b"a".to_vec()), Request::Raw(b"b".to_vec())],
            write: Write::Whole,
        };
        assert_eq!(step.pieces(), vec![vec![lit(b"a\r\n"), lit(b"b\r\n")]]);
        let session = Session { steps: vec![step] };
        assert_eq!(session.requests(), 2);
        let mut longer = session.clone();
        longer.steps.push(longer.steps[0].clone());
        let alone = longer.unpipelined(0);
        assert_eq!(alone.steps.len(), 2);
        assert!(alone.steps.iter().all(|s| s.conn == 2 && s.requests.len() == 1));
    }
}
