//! Shrinking: the smallest session that still shows a deviation.
//!
//! Pure code, in the manner of delta debugging: try a smaller session,
//! keep it if the deviation is still there (the same signature, which the
//! caller checks by running it), start again from it; stop when no smaller
//! session keeps it, or the tries are spent. Smaller means: fewer steps
//! (halves first, then one by one), fewer connections, fewer requests in a
//! pipelined step, fewer cuts, shorter texts, plainer users. Every
//! candidate is smaller by some measure, so it ends.

use std::future::Future;

use super::session::{Request, Session, Step, Tok, Write};

/// Shrinks `session` while `still` says a candidate shows the same
/// deviation, trying at most `max_tries` candidates. `still` is asked
/// about up to `batch` candidates at once (it may run them in parallel)
/// and answers for each; the first that keeps the deviation wins, so the
/// result does not depend on `batch`. Returns the smallest session found
/// and the number of tries.
pub(crate) async fn shrink<F, Fut>(
    session: Session,
    max_tries: usize,
    batch: usize,
    mut still: F,
) -> (Session, usize)
where
    F: FnMut(Vec<Session>) -> Fut,
    Fut: Future<Output = Vec<bool>>,
{
    let mut best = session;
    let mut tries = 0;
    'better: loop {
        let all = candidates(&best);
        for chunk in all.chunks(batch.max(1)) {
            let chunk = &chunk[..chunk.len().min(max_tries - tries)];
            if chunk.is_empty() {
                break 'better;
            }
            tries += chunk.len();
            let keeps = still(chunk.to_vec()).await;
            if let Some(i) = keeps.iter().position(|k| *k) {
                best = chunk[i].clone();
                continue 'better;
            }
        }
        break;
    }
    (best, tries)
}

/// The sessions one step smaller than `s`, most ambitious first.
pub(crate) fn candidates(s: &Session) -> Vec<Session> {
    let mut out = Vec::new();
    let n = s.steps.len();
    // Runs of steps: halves, quarters, … single steps; from the end, where
    // the deviation usually is not.
    let mut size = n / 2;
    while size >= 1 {
        let mut start = n;
        while start >= size {
            start -= size;
            let mut steps = s.steps.clone();
            steps.drain(start..start + size);
            out.push(Session { steps });
            if start == 0 {
                break;
            }
        }
        size /= 2;
    }
    // A whole connection, or a connection moved onto C1.
    let mut conns: Vec<u32> = s.steps.iter().map(|st| st.conn).collect();
    conns.sort_unstable();
    conns.dedup();
    if conns.len() > 1 {
        for c in &conns {
            out.push(Session {
                steps: s.steps.iter().filter(|st| st.conn != *c).cloned().collect(),
            });
        }
    }
    for c in conns.iter().filter(|c| **c != 1) {
        let steps = s.steps.iter().cloned().map(|mut st| {
            if st.conn == *c {
                st.conn = 1;
            }
            st
        });
        out.push(Session { steps: steps.collect() });
    }
    // The structure first (what decides the number of steps), then the
    // details, so that the tries go where they count.
    for (i, step) in s.steps.iter().enumerate() {
        for smaller in fewer_requests(step) {
            let mut steps = s.steps.clone();
            steps[i] = smaller;
            out.push(Session { steps });
        }
    }
    out.extend(earlier_tokens(s));
    for (i, step) in s.steps.iter().enumerate() {
        for smaller in plainer_steps(step) {
            let mut steps = s.steps.clone();
            steps[i] = smaller;
            out.push(Session { steps });
        }
    }
    out.extend(plainer_users(s));
    out.retain(|c| !c.steps.is_empty() && c != s);
    out
}

/// A step with a request fewer.
fn fewer_requests(step: &Step) -> Vec<Step> {
    let mut out = Vec::new();
    if step.requests.len() > 1 {
        for r in 0..step.requests.len() {
            let mut smaller = step.clone();
            smaller.requests.remove(r);
            smaller.write = Write::Whole;
            out.push(smaller);
        }
    }
    out
}

/// A step with a cut fewer, or a request made plainer.
fn plainer_steps(step: &Step) -> Vec<Step> {
    let mut out = Vec::new();
    if let Write::Cut(cuts) = &step.write {
        out.push(Step { write: Write::Whole, ..step.clone() });
        if cuts.len() > 1 {
            for c in 0..cuts.len() {
                let mut fewer = cuts.clone();
                fewer.remove(c);
                out.push(Step { write: Write::Cut(fewer), ..step.clone() });
            }
        }
    }
    for (r, request) in step.requests.iter().enumerate() {
        for plainer in plainer_requests(request) {
            let mut smaller = step.clone();
            smaller.requests[r] = plainer;
            out.push(smaller);
        }
    }
    out
}

/// A request with a shorter text, no trailing space, a plainer name.
fn plainer_requests(request: &Request) -> Vec<Request> {
    let mut out = Vec::new();
    match request {
        Request::Send { token, to, text } => {
            for shorter in shorter_texts(text) {
                out.push(Request::Send { token: token.clone(), to: to.clone(), text: shorter });
            }
        }
        Request::Auth { id, user, password, trail } => {
            if *trail {
                out.push(Request::Auth {
                    id: *id,
                    user: user.clone(),
                    password: password.clone(),
                    trail: false,
                });
            }
            for shorter in shorter_texts(user) {
                out.push(Request::Auth {
                    id: *id,
                    user: shorter,
                    password: password.clone(),
                    trail: *trail,
                });
            }
        }
        Request::Inbox { token, trail: true } => {
            out.push(Request::Inbox { token: token.clone(), trail: false })
        }
        Request::List { token, trail: true } => {
            out.push(Request::List { token: token.clone(), trail: false })
        }
        Request::Logout { token, trail: true } => {
            out.push(Request::Logout { token: token.clone(), trail: false })
        }
        _ => {}
    }
    out
}

/// Shorter versions of a text: `x`, its second half, its first half, one
/// character less (from the front, to keep a character's place across a
/// read size, then from the back).
fn shorter_texts(text: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if text.len() > 1 {
        out.push(b"x".to_vec());
        out.push(text[text.len() / 2..].to_vec());
        out.push(text[..text.len() / 2].to_vec());
        out.push(text[1..].to_vec());
        out.push(text[..text.len() - 1].to_vec());
    }
    out.dedup();
    out
}

/// The session with one request's token taken from an earlier login
/// instead, so that the later login may go.
fn earlier_tokens(s: &Session) -> Vec<Session> {
    let mut out = Vec::new();
    let mut logins: Vec<u32> = Vec::new();
    for (i, step) in s.steps.iter().enumerate() {
        for (r, request) in step.requests.iter().enumerate() {
            if let Some(Tok::Of(id) | Tok::Mangled(id)) = request.token() {
                for earlier in logins.iter().filter(|l| **l < *id) {
                    let mut changed = s.clone();
                    let request = &mut changed.steps[i].requests[r];
                    if let Request::Send { token, .. }
                    | Request::Inbox { token, .. }
                    | Request::List { token, .. }
                    | Request::Logout { token, .. } = request
                    {
                        *token = match token {
                            Tok::Mangled(_) => Tok::Mangled(*earlier),
                            _ => Tok::Of(*earlier),
                        };
                    }
                    out.push(changed);
                }
            }
        }
        logins.extend(step.requests.iter().filter_map(|r| match r {
            Request::Auth { id, .. } => Some(*id),
            _ => None,
        }));
    }
    out
}

/// The session with one user name replaced, everywhere, by a name that
/// sorts before it and that the session logs in with too.
fn plainer_users(s: &Session) -> Vec<Session> {
    let mut names: Vec<Vec<u8>> = s
        .steps
        .iter()
        .flat_map(|st| &st.requests)
        .filter_map(|r| match r {
            Request::Auth { user, password, .. } if password != b"salah" => Some(user.clone()),
            _ => None,
        })
        .collect();
    names.sort();
    names.dedup();
    let Some(first) = names.first() else { return Vec::new() };
    let rename = |name: &Vec<u8>| -> Session {
        let mut renamed = s.clone();
        for request in renamed.steps.iter_mut().flat_map(|st| &mut st.requests) {
            match request {
                Request::Auth { user, .. } | Request::Send { to: user, .. } if user == name => {
                    *user = first.clone()
                }
                _ => {}
            }
        }
        renamed
    };
    names.iter().skip(1).map(rename).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().expect("a runtime").block_on(f)
    }

    fn auth(id: u32, user: &str) -> Request {
        Request::Auth { id, user: user.into(), password: b"surabaya".to_vec(), trail: true }
    }

    fn step(conn: u32, requests: Vec<Request>, write: Write) -> Step {
        Step { conn, requests, write }
    }

    /// A session of many steps; the "bug": a `logout` of a token never
    /// issued, answered wrongly, wherever it is.
    fn noisy() -> Session {
        Session {
            steps: vec![
                step(1, vec![auth(1, "messi")], Write::Whole),
                step(
                    2,
                    vec![auth(2, "lineker"), Request::List { token: Tok::Of(2), trail: true }],
                    Write::Cut(vec![3, 9]),
                ),
                step(
                    1,
                    vec![Request::Send {
                        token: Tok::Of(1),
                        to: b"lineker".to_vec(),
                        text: "halo é apa kabar".into(),
                    }],
                    Write::Whole,
                ),
                step(
                    3,
                    vec![
                        Request::Inbox { token: Tok::Of(2), trail: true },
                        Request::Logout { token: Tok::Never, trail: true },
                    ],
                    Write::Cut(vec![5]),
                ),
                step(1, vec![Request::List { token: Tok::Of(1), trail: false }], Write::Whole),
            ],
        }
    }

    fn has_bad_logout(s: &Session) -> bool {
        s.steps
            .iter()
            .flat_map(|st| &st.requests)
            .any(|r| matches!(r, Request::Logout { token: Tok::Never, .. }))
    }

    #[test]
    fn shrinks_to_the_one_request_that_shows_it() {
        let (small, tries) = block_on(shrink(noisy(), 500, 1, |c| {
            std::future::ready(c.iter().map(has_bad_logout).collect())
        }));
        assert_eq!(
            small,
            Session {
                steps: vec![step(
                    1,
                    vec![Request::Logout { token: Tok::Never, trail: false }],
                    Write::Whole
                )]
            }
        );
        assert!(tries < 100, "{tries} tries");
    }

    #[test]
    fn keeps_what_the_deviation_needs() {
        // The "bug" needs mail sent before a second read of the inbox on
        // another connection, and a wide character in the text.
        let needs = |s: &Session| {
            let requests: Vec<&Request> = s.steps.iter().flat_map(|st| &st.requests).collect();
            let send = requests.iter().position(|r| matches!(r, Request::Send { text, .. } if String::from_utf8_lossy(text).contains('é')));
            let inbox = requests.iter().rposition(|r| matches!(r, Request::Inbox { .. }));
            matches!((send, inbox), (Some(s), Some(i)) if s < i)
        };
        let (small, _) = block_on(shrink(noisy(), 500, 1, |c| {
            std::future::ready(c.iter().map(needs).collect())
        }));
        let (same, _) = block_on(shrink(noisy(), 500, 3, |c| {
            std::future::ready(c.iter().map(needs).collect())
        }));
        assert_eq!(small, same, "the batch size changes nothing");
        assert_eq!(small.requests(), 2, "{small:?}");
        assert!(small.steps.iter().all(|st| st.conn == 1 && st.write == Write::Whole));
        let Request::Send { text, .. } = &small.steps[0].requests[0] else { panic!("{small:?}") };
        assert_eq!(text, "é".as_bytes());
    }

    #[test]
    fn stops_when_the_tries_are_spent() {
        let mut calls = 0;
        let (same, tries) = block_on(shrink(noisy(), 5, 2, |c| {
            calls += c.len();
            std::future::ready(vec![false; c.len()])
        }));
        assert_eq!((same, tries, calls), (noisy(), 5, 5));
    }

    #[test]
    fn a_second_login_goes_once_its_token_comes_from_the_first() {
        let s = Session {
            steps: vec![
                step(1, vec![auth(1, "messi")], Write::Whole),
                step(1, vec![auth(2, "messi")], Write::Whole),
                step(1, vec![Request::List { token: Tok::Of(2), trail: false }], Write::Whole),
            ],
        };
        // The "bug" shows on a `list` with a live token.
        let live = |s: &Session| {
            let logins: Vec<u32> = s
                .steps
                .iter()
                .flat_map(|st| &st.requests)
                .filter_map(|r| match r {
                    Request::Auth { id, .. } => Some(*id),
                    _ => None,
                })
                .collect();
            s.steps.iter().flat_map(|st| &st.requests).any(
                |r| matches!(r, Request::List { token: Tok::Of(id), .. } if logins.contains(id)),
            )
        };
        let (small, _) =
            block_on(shrink(s, 100, 1, |c| std::future::ready(c.iter().map(live).collect())));
        assert_eq!(small.requests(), 2, "{small:?}");
    }

    #[test]
    fn users_become_the_first_name_everywhere() {
        let s = Session {
            steps: vec![
                step(1, vec![auth(1, "messi"), auth(2, "lineker")], Write::Whole),
                step(
                    1,
                    vec![Request::Send {
                        token: Tok::Of(2),
                        to: b"messi".to_vec(),
                        text: b"x".to_vec(),
                    }],
                    Write::Whole,
                ),
            ],
        };
        let renamed = plainer_users(&s);
        assert_eq!(renamed.len(), 1);
        let Request::Send { to, .. } = &renamed[0].steps[1].requests[0] else { panic!() };
        assert_eq!(to, b"lineker");
    }
}
