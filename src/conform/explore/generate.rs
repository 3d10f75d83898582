//! Sessions from the protocol's grammar, from a seeded random generator.
//!
//! Pure code: the same seed and session number give the same session,
//! whatever ran before, so a finding can be rerun from its seed. The
//! choices lean towards what real submissions get wrong: every command,
//! known and unknown users, right and wrong passwords, tokens live, logged
//! out, never issued and mangled, texts with multi-byte and control
//! characters (some placed across the read sizes students use), requests
//! pipelined or cut at any byte, over several connections.

use super::session::{Request, Session, Step, Tok, Write};

/// The read sizes of students' servers (`recv(16)` … `recv(1024)`): a
/// multi-byte character across one of these offsets is cut in two by such
/// a read.
pub(crate) const READ_SIZES: [usize; 4] = [16, 32, 64, 1024];

/// A small, fast, seedable generator (SplitMix64): the same numbers on
/// every platform and in every version, which a library's may not promise.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// The generator of session `index` of the run with `seed`.
    pub(crate) fn for_session(seed: u64, index: u64) -> Self {
        let mut rng = Self(seed ^ index.wrapping_mul(0xA076_1D64_78BD_642F));
        rng.next();
        rng
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent` / 100.
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The users a session may log in as: name and password.
#[derive(Debug, Clone)]
pub(crate) struct Users(pub(crate) Vec<(String, String)>);

/// Characters a text is made of: ASCII, multi-byte (2, 3 and 4 bytes) and
/// control characters.
const WORDS: [&str; 6] = ["halo", "x", "apa kabar", "ok", "  spasi  ", "a\tb"];
const WIDE: [&str; 5] = ["é", "ñ", "€", "😀", "ü"];
const CONTROL: [&str; 3] = ["\x01", "\r", "\n"];

/// The state of generation: the logins so far, the tokens logged out.
struct Gen<'a> {
    rng: Rng,
    users: &'a Users,
    /// Logins of a known user with the right password in earlier steps,
    /// and the user: tokens to use (a step's own logins are not answered
    /// yet when it writes).
    logins: Vec<(u32, String)>,
    /// Those of the step being generated.
    pending: Vec<(u32, String)>,
    /// The users sent something so far: an inbox worth reading (twice).
    mail: Vec<String>,
    /// The token of the inbox just read, to read it again.
    last_inbox: Option<Tok>,
    next_id: u32,
}

/// Generates session `index` of the run with `seed`.
pub(crate) fn session(seed: u64, index: u64, users: &Users) -> Session {
    let mut g = Gen {
        rng: Rng::for_session(seed, index),
        users,
        logins: Vec::new(),
        pending: Vec::new(),
        mail: Vec::new(),
        last_inbox: None,
        next_id: 1,
    };
    let steps = 2 + g.rng.below(8);
    let conns = 1 + g.rng.below(3) as u32;
    let mut session = Session::default();
    for _ in 0..steps {
        let conn = if g.rng.chance(60) { 1 } else { 1 + g.rng.below(conns as usize) as u32 };
        let count = if g.rng.chance(22) { 2 + g.rng.below(2) } else { 1 };
        let requests: Vec<Request> = (0..count).map(|_| g.request()).collect();
        let len: usize = requests.iter().map(Request::len).sum();
        let write = g.write(len);
        let pending = std::mem::take(&mut g.pending);
        g.logins.extend(pending);
        session.steps.push(Step { conn, requests, write });
    }
    session
}

impl Gen<'_> {
    fn request(&mut self) -> Request {
        // Log in first, most of the time: most commands need a token.
        if self.logins.is_empty() && self.pending.is_empty() && self.rng.chance(70) {
            return self.auth(true);
        }
        // An inbox read again: what the first read should have taken away.
        if let Some(token) = self.last_inbox.take() {
            if self.rng.chance(35) {
                return Request::Inbox { token, trail: false };
            }
        }
        match self.rng.below(100) {
            0..=17 => {
                let known = self.rng.chance(75);
                self.auth(known)
            }
            18..=41 => {
                let token = self.token();
                let to = self.recipient();
                let text = self.text(&to);
                self.mail.push(String::from_utf8_lossy(&to).into_owned());
                Request::Send { token, to, text }
            }
            42..=59 => {
                // Often the inbox of someone with mail.
                let with_mail: Vec<u32> = self
                    .logins
                    .iter()
                    .filter(|(_, u)| self.mail.contains(u))
                    .map(|(id, _)| *id)
                    .collect();
                let token = if !with_mail.is_empty() && self.rng.chance(60) {
                    Tok::Of(*self.rng.pick(&with_mail))
                } else {
                    self.token()
                };
                self.last_inbox = Some(token.clone());
                Request::Inbox { token, trail: self.rng.chance(50) }
            }
            60..=73 => Request::List { token: self.token(), trail: self.rng.chance(50) },
            74..=87 => Request::Logout { token: self.token(), trail: self.rng.chance(50) },
            _ => self.raw(),
        }
    }

    fn auth(&mut self, known: bool) -> Request {
        let id = self.next_id;
        self.next_id += 1;
        let trail = self.rng.chance(50);
        let (name, password) = self.users.0[self.rng.below(self.users.0.len())].clone();
        if known {
            if self.rng.chance(85) {
                self.pending.push((id, name.clone()));
                return Request::Auth { id, user: name.into(), password: password.into(), trail };
            }
            return Request::Auth { id, user: name.into(), password: b"salah".to_vec(), trail };
        }
        // An unknown user; sometimes with a character across a read size.
        let user = if self.rng.chance(50) {
            let at = *self.rng.pick(&READ_SIZES);
            across(b"auth ", at, self.rng.pick::<&str>(&WIDE))
        } else {
            let mut user = b"pogba".to_vec();
            if self.rng.chance(30) {
                user.extend_from_slice(self.rng.pick(&WIDE).as_bytes());
            }
            user
        };
        Request::Auth { id, user, password: password.into(), trail }
    }

    /// A token: live (or logged out by now) mostly, else never issued or
    /// mangled.
    fn token(&mut self) -> Tok {
        if self.logins.is_empty() || self.rng.chance(12) {
            return Tok::Never;
        }
        let id = self.rng.pick(&self.logins.clone()).0;
        if self.rng.chance(6) {
            Tok::Mangled(id)
        } else {
            Tok::Of(id)
        }
    }

    fn recipient(&mut self) -> Vec<u8> {
        if self.rng.chance(12) {
            return b"pogba".to_vec();
        }
        if !self.logins.is_empty() && self.rng.chance(50) {
            // Someone logged in here, who can then read it.
            return self.rng.pick(&self.logins.clone()).1.clone().into_bytes();
        }
        self.users.0[self.rng.below(self.users.0.len())].0.clone().into_bytes()
    }

    fn text(&mut self, to: &[u8]) -> Vec<u8> {
        if self.rng.chance(25) {
            // A wide character across a read size, counted from the start
            // of the request (`send ` + a UUID + ` ` + a recipient + ` `).
            let at = *self.rng.pick(&READ_SIZES[..3]);
            let mut head = format!("send {} ", "t".repeat(36)).into_bytes();
            head.extend_from_slice(to);
            head.push(b' ');
            return across(&head, at, self.rng.pick::<&str>(&WIDE));
        }
        let mut text = Vec::new();
        for _ in 0..1 + self.rng.below(3) {
            if !text.is_empty() {
                text.push(b' ');
            }
            match self.rng.below(10) {
                0..=5 => text.extend_from_slice(self.rng.pick(&WORDS).as_bytes()),
                6..=8 => text.extend_from_slice(self.rng.pick(&WIDE).as_bytes()),
                _ => text.extend_from_slice(self.rng.pick(&CONTROL).as_bytes()),
            }
        }
        text
    }

    fn raw(&mut self) -> Request {
        let (name, password) = self.users.0[self.rng.below(self.users.0.len())].clone();
        let raw = match self.rng.below(8) {
            0 => b"xyzzy".to_vec(),
            1 => format!("{} {name} {password}", "AUTH").into_bytes(),
            2 => format!("auth {name}").into_bytes(),
            3 => b"send".to_vec(),
            4 => b"inbox".to_vec(),
            5 => format!("auth {name} {password} lebih").into_bytes(),
            6 => format!("auth  {name} {password}").into_bytes(),
            _ => b"auth \xff\xfe surabaya".to_vec(),
        };
        Request::Raw(raw)
    }

    /// How a step of `len` bytes is written.
    fn write(&mut self, len: usize) -> Write {
        match self.rng.below(10) {
            0..=5 => Write::Whole,
            6..=7 if len > 1 => {
                let mut cuts: Vec<usize> =
                    (0..1 + self.rng.below(3)).map(|_| 1 + self.rng.below(len - 1)).collect();
                cuts.sort_unstable();
                cuts.dedup();
                Write::Cut(cuts)
            }
            _ => {
                let size = *self.rng.pick(&READ_SIZES);
                Write::Cut((1..).map(|k| k * size).take_while(|c| *c < len).collect())
            }
        }
    }
}

/// A field of `x`s ending in `wide`, so that after `head` its first byte
/// is at offset `at - 1` and its second at `at`.
fn across(head: &[u8], at: usize, wide: &str) -> Vec<u8> {
    let pad = (at - 1).saturating_sub(head.len()).max(1);
    let mut field = vec![b'x'; pad];
    field.extend_from_slice(wide.as_bytes());
    field
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> Users {
        Users(vec![("messi".into(), "surabaya".into()), ("henderson".into(), "surabaya".into())])
    }

    #[test]
    fn the_same_seed_gives_the_same_sessions() {
        for index in 0..20 {
            assert_eq!(session(7, index, &users()), session(7, index, &users()));
        }
        let a: Vec<Session> = (0..20).map(|i| session(7, i, &users())).collect();
        let b: Vec<Session> = (0..20).map(|i| session(8, i, &users())).collect();
        assert_ne!(a, b);
    }

    #[test]
    fn sessions_cover_the_grammar() {
        let all: Vec<Session> = (0..300).map(|i| session(1, i, &users())).collect();
        let requests: Vec<&Request> =
            all.iter().flat_map(|s| &s.steps).flat_map(|s| &s.requests).collect();
        for command in ["auth", "send", "inbox", "list", "logout", ""] {
            assert!(requests.iter().any(|r| r.command() == command), "no `{command}`");
        }
        let tokens: Vec<&Tok> = requests.iter().filter_map(|r| r.token()).collect();
        assert!(tokens.iter().any(|t| matches!(t, Tok::Never)));
        assert!(tokens.iter().any(|t| matches!(t, Tok::Mangled(_))));
        let steps: Vec<&Step> = all.iter().flat_map(|s| &s.steps).collect();
        assert!(steps.iter().any(|s| s.requests.len() > 1), "no pipelining");
        assert!(steps.iter().any(|s| s.conn > 1), "one connection only");
        assert!(steps.iter().any(|s| matches!(&s.write, Write::Cut(c) if c.contains(&32))));
        assert!(requests
            .iter()
            .any(|r| matches!(r, Request::Raw(b) if std::str::from_utf8(b).is_err())));
    }

    #[test]
    fn a_wide_character_lands_across_the_read_size() {
        let user = across(b"auth ", 32, "é");
        let mut line = b"auth ".to_vec();
        line.extend_from_slice(&user);
        assert_eq!(&line[31..33], "é".as_bytes());
    }
}
