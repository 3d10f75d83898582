//! The one table of snapshot filters, applied in this order to every
//! client transcript.

/// What a session token becomes in a snapshot.
pub const TOKEN: &str = "[TOKEN]";

/// Session tokens are random UUIDs (`4c908ff6-3c15-4052-a98a-095d2454cf93`),
/// so every snapshot would differ on every run without these.
pub static INSTA_FILTERS: &[(&str, &str)] = &[
    // A whole token, wherever it shows: in the prompt `Command TOKEN:`, in
    // `username … logged in, token TOKEN `, in the echoed `send TOKEN …`
    // line and inside a trace chunk.
    (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", TOKEN),
    // A token cut in two by the trace's 64-byte chunks, one piece at the end
    // of a `diterima dari server b'…'` line and the rest at the start of the
    // next: `"tokenid": "4c908ff6-…-095d2454cf9'` / `b'3"}\r\n\r\n'` becomes
    // `"tokenid": "[TOKEN…]'` / `b'[…TOKEN]"}\r\n\r\n'`. Tokens only come in
    // the `tokenid` field of an `auth` reply, and a 36-character token can
    // be cut at most once, so the key always ends the first piece's line.
    // The assignment's own first `auth` example shows exactly such a cut.
    (
        r#"(?m)("tokenid": ")[0-9a-f-]{1,35}'\n(diterima dari server b')[0-9a-f-]{1,35}""#,
        "${1}[TOKEN…]'\n${2}[…TOKEN]\"",
    ),
];
