//! The mix: which requests each connection repeats, in order.
//!
//! A mix is a comma-separated list of commands, e.g. `send,inbox`. Every
//! connection runs it round and round, closed-loop. What each command sends:
//!
//! | op | request |
//! |---|---|
//! | `send` | `send TOKEN USER TEXT`, to the connection's own user |
//! | `inbox` | `inbox TOKEN` |
//! | `list` | `list TOKEN` |
//! | `auth` | `auth USER PASSWORD`: opens one more session |
//! | `logout` | `logout T`: T is the session the latest `auth` of the mix opened, or the connection's own session if there is none |
//!
//! Mail is sent to the sender's own user, so `send,inbox` drains what it
//! sends: with many connections per user a mailbox holds at most about one
//! message per connection.

use std::fmt;

/// One request kind of a mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Auth,
    Send,
    Inbox,
    List,
    Logout,
}

impl Op {
    /// The command word.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Op::Auth => "auth",
            Op::Send => "send",
            Op::Inbox => "inbox",
            Op::List => "list",
            Op::Logout => "logout",
        }
    }
}

/// A parsed `--mix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mix(pub Vec<Op>);

impl Mix {
    /// The ops in order.
    pub(crate) fn ops(&self) -> &[Op] {
        &self.0
    }

    /// Whether any op is `send` (so mailboxes need draining after a run).
    pub(crate) fn sends(&self) -> bool {
        self.0.contains(&Op::Send)
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, op) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(op.name())?;
        }
        Ok(())
    }
}

/// Parses `send,inbox` and the like (spaces around commas are allowed).
pub(crate) fn parse_mix(text: &str) -> Result<Mix, String> {
    let mut ops = Vec::new();
    for word in text.split(',') {
        let op = match word.trim() {
            "auth" => Op::Auth,
            "send" => Op::Send,
            "inbox" => Op::Inbox,
            "list" => Op::List,
            "logout" => Op::Logout,
            "" => return Err("empty command in the mix".into()),
            other => {
                return Err(format!(
                    "unknown command {other:?} (use auth, send, inbox, list, logout)"
                ))
            }
        };
        ops.push(op);
    }
    Ok(Mix(ops))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let mix = parse_mix("send, inbox").unwrap();
        assert_eq!(mix.ops(), &[Op::Send, Op::Inbox]);
        assert_eq!(mix.to_string(), "send,inbox");
        assert!(mix.sends());
        assert!(!parse_mix("auth,logout").unwrap().sends());
    }

    #[test]
    fn rejects_unknown_and_empty() {
        assert!(parse_mix("send,ping").is_err());
        assert!(parse_mix("send,,inbox").is_err());
        assert!(parse_mix("").is_err());
    }
}
