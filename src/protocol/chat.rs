//! The protocol state and the one function that changes it.
//!
//! [`Chat::apply`] is a pure step: a prepared request (see [`super::step`])
//! and the state in, a reply and the new state out. It holds the sessions (token → user), the order in
//! which they were opened (for `list`), and each user's pending mail. Mail is
//! kept per recipient *user*, not per session, so a message waits for its
//! recipient while they are offline and is taken by whichever of their
//! sessions asks first; `inbox` removes what it returns.
//!
//! A user holds at most [`Limits::max_sessions_per_user`] sessions: an
//! `auth` beyond that ends the user's least recently used session (the one
//! whose token a request named longest ago) and opens the new one, so that
//! the right password always logs in (spec/PROTOCOL.md §12).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::fast_hash::BuildFastHasher;
use super::limits::Limits;
use super::mailbox::Mailbox;
use super::reply::{ErrorReply, Inbox, Online, Reply};
use super::step::Step;
use super::token::TokenSource;
use super::users::{UserDirectory, UserId};

/// The whole state of a server.
#[derive(Debug)]
pub struct Chat {
    users: Arc<UserDirectory>,
    sessions: HashMap<String, Session, BuildFastHasher>,
    /// The token found last and its user; see [`LastLookup`].
    last_lookup: Option<LastLookup>,
    /// Per user, their live sessions.
    live: Vec<UserSessions>,
    /// Per recipient, pending messages oldest first.
    mailboxes: Vec<Mailbox>,
    /// Counts every session opened and every use of a token: the opening
    /// numbers and the times of last use, all different.
    clock: u64,
    limits: Limits,
}

#[derive(Debug, Clone, Copy)]
struct Session {
    user: UserId,
    /// When the session was opened, on [`Chat::clock`].
    opened: u64,
}

/// One user's live sessions.
#[derive(Debug, Clone, Default)]
struct UserSessions {
    /// By opening number, earliest first (the order of `list`).
    live: BTreeMap<u64, LiveSession>,
    /// The order in which the sessions give way at the session limit: one
    /// `(stamp, opened)` per live session, `stamp` being the session's last
    /// use when it was queued. A use only updates
    /// [`LiveSession::last_used`] (a lookup in `live`, no allocation); the
    /// queue is brought up to date only when a session must give way (see
    /// [`Chat::end_least_recently_used`]), which re-queues each session at
    /// most once per use since it was queued: amortised O(log n) per use.
    by_use: BTreeSet<(u64, u64)>,
}

#[derive(Debug, Clone)]
struct LiveSession {
    /// Its token, to end it from here.
    token: String,
    /// When a request last named its token (or when it was opened).
    last_used: u64,
    /// Its stamp in [`UserSessions::by_use`].
    queued: u64,
}

/// The last token found in the sessions map, and whose it is.
///
/// A client that pipelines sends many requests with its one token in a row
/// (16 to a read, say), and the requests of a read are handled together:
/// comparing the token with the last one found costs far less than hashing
/// it and probing the map again, which was the largest part of a request's
/// own work. Cleared whenever a session ends, so it only ever names a live
/// session.
#[derive(Debug, Clone, Copy)]
struct LastLookup {
    token: [u8; LAST_LOOKUP_MAX],
    len: usize,
    user: UserId,
    opened: u64,
}

/// Tokens longer than this are not remembered (the server's are 36 bytes).
const LAST_LOOKUP_MAX: usize = 40;

impl LastLookup {
    fn new(token: &str, session: Session) -> Option<Self> {
        let mut bytes = [0; LAST_LOOKUP_MAX];
        bytes.get_mut(..token.len())?.copy_from_slice(token.as_bytes());
        Some(Self { token: bytes, len: token.len(), user: session.user, opened: session.opened })
    }

    fn is(&self, token: &str) -> bool {
        self.token[..self.len] == *token.as_bytes()
    }
}

impl Chat {
    /// A server's state at start: no sessions, no mail.
    pub fn new(users: Arc<UserDirectory>) -> Self {
        Self::with_limits(users, Limits::default())
    }

    /// A server's state at start, under these limits (the mailbox and
    /// session limits apply here; see [`super::limits`]).
    pub fn with_limits(users: Arc<UserDirectory>, limits: Limits) -> Self {
        let n = users.len();
        Self {
            users,
            sessions: HashMap::default(),
            last_lookup: None,
            live: vec![UserSessions::default(); n],
            mailboxes: vec![Mailbox::default(); n],
            clock: 0,
            limits,
        }
    }

    /// The user directory this state was made with.
    pub fn users(&self) -> &Arc<UserDirectory> {
        &self.users
    }

    /// Applies one prepared request (see [`super::step`]) and gives its
    /// reply. Checks run in the original's order: missing fields and the
    /// password (already done by [`super::step::prepare`]), then the token,
    /// then the recipient; then the limit (room in the recipient's
    /// mailbox). Every request that names a live session's token counts as
    /// a use of it.
    pub fn apply(&mut self, step: Step<'_>, tokens: &mut impl TokenSource) -> Reply {
        match step {
            Step::Open(user) => self.open_session(user, tokens),
            Step::Send { token, to, text } => {
                let from = match self.session_user(token) {
                    Some(user) => user,
                    None => return Reply::Error(ErrorReply::UnknownToken),
                };
                let Some(to) = self.users.find(to) else {
                    return Reply::Error(ErrorReply::RecipientNotFound);
                };
                let mailbox = &mut self.mailboxes[to.0 as usize];
                if !self.limits.mailbox_has_room(mailbox.len(), mailbox.text_bytes(), text.len()) {
                    return Reply::Error(ErrorReply::MailboxFull);
                }
                match mailbox.push(from, text) {
                    Ok(()) => Reply::MessageSent,
                    Err(_) => Reply::Error(ErrorReply::MailboxFull),
                }
            }
            Step::Inbox { token } => match self.session_user(token) {
                Some(user) => Reply::Inbox(Inbox {
                    recipient: user,
                    mail: self.mailboxes[user.0 as usize].take(),
                }),
                None => Reply::Error(ErrorReply::UnknownToken),
            },
            Step::List { token } => match self.session_user(token) {
                Some(_) => Reply::List(Online { online: self.online() }),
                None => Reply::Error(ErrorReply::UnknownToken),
            },
            Step::Logout { token } => match self.sessions.remove(token) {
                Some(session) => {
                    self.last_lookup = None;
                    let sessions = &mut self.live[session.user.0 as usize];
                    if let Some(live) = sessions.live.remove(&session.opened) {
                        sessions.by_use.remove(&(live.queued, session.opened));
                    }
                    Reply::LoggedOut
                }
                None => Reply::Error(ErrorReply::UnknownToken),
            },
            Step::Refuse(error) => Reply::Error(error),
        }
    }

    /// Gives the buffers of an answered `inbox` back to the mailbox it
    /// came from (see [`Mailbox::recycle`]).
    pub(crate) fn recycle(&mut self, inbox: Inbox) {
        self.mailboxes[inbox.recipient.0 as usize].recycle(inbox.mail);
    }

    /// Opens a session for a user whose password was already checked (by
    /// [`super::step::prepare`]). Always opens one: a user already at the
    /// session limit loses their least recently used session first, whose
    /// token then names no session.
    fn open_session(&mut self, user: UserId, tokens: &mut impl TokenSource) -> Reply {
        let mut token = tokens.new_token();
        while self.sessions.contains_key(&token) {
            token = tokens.new_token();
        }
        while !self.limits.may_open_session(self.live[user.0 as usize].live.len()) {
            if !self.end_least_recently_used(user) {
                break;
            }
        }
        self.clock += 1;
        let opened = self.clock;
        self.sessions.insert(token.clone(), Session { user, opened });
        let sessions = &mut self.live[user.0 as usize];
        sessions.by_use.insert((opened, opened));
        let live = LiveSession { token: token.clone(), last_used: opened, queued: opened };
        sessions.live.insert(opened, live);
        Reply::LoggedIn { token }
    }

    /// Ends the user's session that was used least recently (by the last
    /// request that named its token, or its opening if none did); `false`
    /// if the user has none.
    ///
    /// Takes sessions from the front of the user's queue: one that was used
    /// since it was queued goes to the back, stamped with its last use; the
    /// first one that was not is the least recently used of all (every
    /// other stamp is later than its own, and no later than that session's
    /// last use).
    fn end_least_recently_used(&mut self, user: UserId) -> bool {
        let sessions = &mut self.live[user.0 as usize];
        while let Some((stamp, opened)) = sessions.by_use.pop_first() {
            match sessions.live.get_mut(&opened) {
                Some(live) if live.last_used != stamp => {
                    live.queued = live.last_used;
                    sessions.by_use.insert((live.last_used, opened));
                }
                Some(_) => {
                    if let Some(live) = sessions.live.remove(&opened) {
                        self.sessions.remove(live.token.as_str());
                    }
                    self.last_lookup = None;
                    return true;
                }
                // Every queued session is live; nothing to end here.
                None => {}
            }
        }
        false
    }

    /// The user of a live session, if `token` names one; counts as a use of
    /// that session.
    fn session_user(&mut self, token: &str) -> Option<UserId> {
        let session = match &self.last_lookup {
            Some(last) if last.is(token) => Session { user: last.user, opened: last.opened },
            _ => {
                let session = *self.sessions.get(token)?;
                self.last_lookup = LastLookup::new(token, session);
                session
            }
        };
        self.clock += 1;
        if let Some(live) = self.live[session.user.0 as usize].live.get_mut(&session.opened) {
            live.last_used = self.clock;
        }
        Some(session.user)
    }

    /// Users with a live session, ordered by their earliest live session.
    fn online(&self) -> Vec<UserId> {
        let mut online: Vec<(u64, UserId)> = self
            .live
            .iter()
            .enumerate()
            .filter_map(|(i, sessions)| {
                let (first, _) = sessions.live.first_key_value()?;
                Some((*first, UserId(i as u32)))
            })
            .collect();
        online.sort_unstable();
        online.into_iter().map(|(_, user)| user).collect()
    }

    /// How many sessions are live.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// How many messages wait, over all mailboxes.
    pub fn pending_count(&self) -> usize {
        self.mailboxes.iter().map(Mailbox::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::request::parse_request_bytes;
    use crate::protocol::step::prepare;
    use crate::protocol::token::SequentialTokens;

    struct Harness {
        chat: Chat,
        tokens: SequentialTokens,
    }

    impl Harness {
        fn new() -> Self {
            Self {
                chat: Chat::new(Arc::new(UserDirectory::builtin())),
                tokens: SequentialTokens::default(),
            }
        }

        fn ask(&mut self, line: &str) -> String {
            let prepared = prepare(parse_request_bytes(line.as_bytes()), self.chat.users());
            let reply = self.chat.apply(prepared.step, &mut self.tokens);
            String::from_utf8(reply.to_bytes(self.chat.users())).unwrap()
        }

        fn login(&mut self, user: &str) -> String {
            let reply = self.ask(&format!("auth {user} surabaya \r\n"));
            let prefix = "{\"status\": \"OK\", \"tokenid\": \"";
            let token = reply.strip_prefix(prefix).and_then(|rest| rest.get(..36));
            token.unwrap_or_else(|| panic!("not a login reply: {reply}")).to_string()
        }
    }

    #[test]
    fn auth_replies() {
        let mut h = Harness::new();
        assert_eq!(
            h.ask("auth messi surabaya \r\n"),
            "{\"status\": \"OK\", \"tokenid\": \"00000000-0000-4000-8000-000000000001\"}\r\n\r\n"
        );
        assert_eq!(
            h.ask("auth pogba surabaya \r\n"),
            "{\"status\": \"ERROR\", \"message\": \"User Tidak Ada\"}\r\n\r\n"
        );
        assert_eq!(
            h.ask("auth messi jakarta \r\n"),
            "{\"status\": \"ERROR\", \"message\": \"Password Salah\"}\r\n\r\n"
        );
        assert_eq!(
            h.ask("auth messi \r\n"),
            "{\"status\": \"ERROR\", \"message\": \"Password Salah\"}\r\n\r\n"
        );
        assert_eq!(
            h.ask("auth messi\r\n"),
            "{\"status\": \"ERROR\", \"message\": \"--Protocol Tidak Benar\"}\r\n\r\n"
        );
    }

    #[test]
    fn mail_waits_and_is_taken_once() {
        let mut h = Harness::new();
        let messi = h.login("messi");
        assert_eq!(
            h.ask(&format!("send {messi} lineker  halo \r\n")),
            "{\"status\": \"OK\", \"message\": \"Message Sent\"}\r\n\r\n"
        );
        let lineker = h.login("lineker");
        assert_eq!(
            h.ask(&format!("inbox {lineker} \r\n")),
            "{\"status\": \"OK\", \"messages\": {\"messi\": [{\"msg_from\": \"Lionel Messi\", \"msg_to\": \"Gary Lineker\", \"msg\": \"  halo \\r\\n\"}]}}\r\n\r\n"
        );
        assert_eq!(
            h.ask(&format!("inbox {lineker} \r\n")),
            "{\"status\": \"OK\", \"messages\": {}}\r\n\r\n"
        );
    }

    #[test]
    fn inbox_groups_by_sender_in_order_of_oldest_message() {
        let mut h = Harness::new();
        let messi = h.login("messi");
        let henderson = h.login("henderson");
        h.ask(&format!("send {henderson} messi a\r\n"));
        h.ask(&format!("send {messi} messi b\r\n"));
        h.ask(&format!("send {henderson} messi c\r\n"));
        let reply = h.ask(&format!("inbox {messi}\r\n"));
        let h_at = reply.find("\"henderson\"").unwrap();
        let m_at = reply.find("\"messi\"").unwrap();
        assert!(h_at < m_at, "{reply}");
        let a_at = reply.find("\" a\\r\\n\"").unwrap();
        let c_at = reply.find("\" c\\r\\n\"").unwrap();
        assert!(a_at < c_at, "{reply}");
    }

    #[test]
    fn send_checks_token_before_recipient() {
        let mut h = Harness::new();
        assert_eq!(
            h.ask("send bogus pogba hi\r\n"),
            "{\"status\": \"ERROR\", \"message\": \"Informasi tidak ditemukan\"}\r\n\r\n"
        );
        let messi = h.login("messi");
        assert_eq!(
            h.ask(&format!("send {messi} pogba hi\r\n")),
            "{\"status\": \"ERROR\", \"message\": \"User Tidak Ditemukan\"}\r\n\r\n"
        );
        assert_eq!(h.chat.pending_count(), 0);
    }

    #[test]
    fn list_and_logout() {
        let mut h = Harness::new();
        let henderson1 = h.login("henderson");
        let messi = h.login("messi");
        let henderson2 = h.login("henderson");
        let list = |h: &mut Harness, t: &str| h.ask(&format!("list {t}\r\n"));
        assert_eq!(
            list(&mut h, &messi),
            "{\"status\": \"OK\", \"messages\": [\"henderson - Jordan Henderson\", \"messi - Lionel Messi\"]}\r\n\r\n"
        );
        assert_eq!(
            h.ask(&format!("logout {henderson1}\r\n")),
            "{\"status\": \"OK\", \"messages\": \"Anda berhasil logout!\"}\r\n\r\n"
        );
        assert_eq!(
            list(&mut h, &henderson2),
            "{\"status\": \"OK\", \"messages\": [\"messi - Lionel Messi\", \"henderson - Jordan Henderson\"]}\r\n\r\n"
        );
        assert_eq!(
            list(&mut h, &henderson1),
            "{\"status\": \"ERROR\", \"message\": \"Informasi tidak ditemukan\"}\r\n\r\n"
        );
        assert_eq!(
            h.ask(&format!("logout {henderson1}\r\n")),
            "{\"status\": \"ERROR\", \"message\": \"Informasi tidak ditemukan\"}\r\n\r\n"
        );
        assert_eq!(h.chat.session_count(), 2);
    }

    #[test]
    fn a_token_used_just_before_its_logout_is_not_remembered() {
        let mut h = Harness::new();
        let messi = h.login("messi");
        let henderson = h.login("henderson");
        assert!(h.ask(&format!("inbox {messi}\r\n")).contains("\"OK\""));
        assert!(h.ask(&format!("logout {henderson}\r\n")).contains("\"OK\""));
        assert!(h.ask(&format!("inbox {messi}\r\n")).contains("\"OK\""));
        assert!(h.ask(&format!("logout {messi}\r\n")).contains("\"OK\""));
        for request in ["inbox {t}", "list {t}", "send {t} messi hi", "logout {t}"] {
            let line = format!("{}\r\n", request.replace("{t}", &messi));
            assert!(h.ask(&line).contains("Informasi tidak ditemukan"), "{line}");
        }
    }

    /// At the session limit the right password still logs in: the session
    /// named least recently gives way, and its token is then unknown.
    #[test]
    fn at_the_session_limit_the_least_recently_used_session_gives_way() {
        let limits = Limits { max_sessions_per_user: 2, ..Limits::default() };
        let mut h = Harness::new();
        h.chat = Chat::with_limits(Arc::new(UserDirectory::builtin()), limits);
        let unknown = "{\"status\": \"ERROR\", \"message\": \"Informasi tidak ditemukan\"}\r\n\r\n";
        let a = h.login("messi");
        let b = h.login("messi");
        let lineker = h.login("lineker");
        // Never used since they opened: the older one goes.
        let c = h.login("messi");
        assert_eq!(h.ask(&format!("inbox {a}\r\n")), unknown);
        assert_eq!(h.ask(&format!("logout {a}\r\n")), unknown);
        assert_eq!(h.chat.session_count(), 3);
        // b is used (a failed `send` names it too), so c goes next.
        assert!(h.ask(&format!("send {b} pogba hi\r\n")).contains("User Tidak Ditemukan"));
        let d = h.login("messi");
        assert_eq!(h.ask(&format!("list {c}\r\n")), unknown);
        // Each kind of use keeps a session: b, then d, then b again.
        assert!(h.ask(&format!("inbox {b}\r\n")).contains("\"OK\""));
        assert!(h.ask(&format!("list {d}\r\n")).contains("\"OK\""));
        assert!(h.ask(&format!("send {b} messi hi\r\n")).contains("\"OK\""));
        let e = h.login("messi");
        assert_eq!(h.ask(&format!("inbox {d}\r\n")), unknown);
        assert!(h.ask(&format!("inbox {b}\r\n")).contains("\"OK\""));
        assert!(h.ask(&format!("inbox {e}\r\n")).contains("\"OK\""));
        // Other users are untouched, and `list` shows messi once, by his
        // earliest live session (b, opened before lineker's).
        assert_eq!(
            h.ask(&format!("list {lineker}\r\n")),
            "{\"status\": \"OK\", \"messages\": [\"messi - Lionel Messi\", \"lineker - Gary Lineker\"]}\r\n\r\n"
        );
        assert_eq!(h.chat.session_count(), 3);
    }

    /// Against a plain model (each user's sessions with their last use;
    /// the smallest gives way), over random logins, uses and logouts of a
    /// few users at small limits: every request gets the model's reply.
    #[test]
    fn sessions_give_way_in_least_recently_used_order() {
        let mut next = crate::protocol::xorshift::xorshift(0x853c_49e6_748f_ea9b);
        let names = ["messi", "henderson", "lineker"];
        for round in 0..300 {
            let limit = 1 + next(4) as usize;
            let limits = Limits { max_sessions_per_user: limit, ..Limits::default() };
            let mut h = Harness::new();
            h.chat = Chat::with_limits(Arc::new(UserDirectory::builtin()), limits);
            // Every token issued, and per live token (user, last use).
            let mut issued: Vec<String> = Vec::new();
            let mut model: HashMap<String, (usize, u64)> = HashMap::new();
            let mut clock = 0u64;
            for step in 0..200 {
                clock += 1;
                let context = format!("round {round}, step {step}, limit {limit}");
                if next(3) == 0 || issued.is_empty() {
                    let user = next(3) as usize;
                    let mine: Vec<(&String, u64)> = model
                        .iter()
                        .filter(|(_, &(u, _))| u == user)
                        .map(|(t, &(_, used))| (t, used))
                        .collect();
                    if mine.len() >= limit {
                        let oldest = mine.iter().min_by_key(|(_, used)| *used).unwrap().0.clone();
                        model.remove(&oldest);
                    }
                    let token = h.login(names[user]);
                    model.insert(token.clone(), (user, clock));
                    issued.push(token);
                } else {
                    let token = issued[next(issued.len() as u64) as usize].clone();
                    let live = model.contains_key(&token);
                    let request = match next(4) {
                        0 => format!("inbox {token}\r\n"),
                        1 => format!("list {token}\r\n"),
                        2 => format!("send {token} lineker hi\r\n"),
                        _ => format!("logout {token}\r\n"),
                    };
                    let reply = h.ask(&request);
                    assert_eq!(reply.contains("\"OK\""), live, "{context}: {request} {reply}");
                    if request.starts_with("logout") {
                        model.remove(&token);
                    } else if let Some(entry) = model.get_mut(&token) {
                        entry.1 = clock;
                    }
                }
                assert_eq!(h.chat.session_count(), model.len(), "{context}");
            }
        }
    }

    #[test]
    fn a_prefix_of_a_token_is_not_the_token() {
        let mut h = Harness::new();
        // The tenth sequential token ends in a letter, so its upper case differs.
        let messi = (0..10).map(|_| h.login("messi")).last().unwrap();
        assert!(messi.ends_with('a'), "{messi}");
        assert!(h.ask(&format!("inbox {messi}\r\n")).contains("\"OK\""));
        assert!(h
            .ask(&format!("inbox {}\r\n", &messi[..35]))
            .contains("Informasi tidak ditemukan"));
        assert!(h
            .ask(&format!("inbox {}\r\n", messi.to_uppercase()))
            .contains("Informasi tidak ditemukan"));
    }
}
