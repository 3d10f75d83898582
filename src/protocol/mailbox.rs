//! One user's pending mail, packed.
//!
//! A mailbox can hold millions of messages (a `send`-only load fills one at
//! millions a second), so a message is not an allocation of its own: every
//! text is appended to one string, and each message is eight bytes beside
//! it (its sender and its length). A `send` costs an append, not a
//! `malloc`; memory per message is its text plus eight bytes rather than
//! its text rounded up to an allocation plus a 24-byte record; and taking
//! the whole mailbox for an `inbox` moves two buffers.

use super::users::UserId;

/// Pending messages, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Mailbox {
    /// Every pending text, one after another.
    texts: String,
    /// Per message, in order: who sent it and how long its text is.
    mail: Vec<Entry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    from: UserId,
    len: u32,
}

/// One message of a [`Mailbox`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Message<'a> {
    pub from: UserId,
    pub text: &'a str,
}

impl Mailbox {
    /// Appends a message. A text over `u32::MAX` bytes (4 GiB) is refused:
    /// lengths are kept in 32 bits, and a server's request lines are far
    /// shorter (spec §12 gives the reply).
    pub(crate) fn push(&mut self, from: UserId, text: &str) -> Result<(), TextTooLong> {
        let len = u32::try_from(text.len()).map_err(|_| TextTooLong)?;
        self.texts.push_str(text);
        self.mail.push(Entry { from, len });
        Ok(())
    }

    /// How many messages wait.
    pub(crate) fn len(&self) -> usize {
        self.mail.len()
    }

    /// Whether no message waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.mail.is_empty()
    }

    /// The bytes of text that wait, over all messages.
    pub(crate) fn text_bytes(&self) -> usize {
        self.texts.len()
    }

    /// The first message, if any.
    pub(crate) fn first(&self) -> Option<Message<'_>> {
        self.iter().next()
    }

    /// The messages, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Message<'_>> + '_ {
        let mut at = 0;
        self.mail.iter().map(move |entry| {
            let end = at + entry.len as usize;
            let text = &self.texts[at..end];
            at = end;
            Message { from: entry.from, text }
        })
    }

    /// Takes every message out, leaving the mailbox empty.
    pub(crate) fn take(&mut self) -> Mailbox {
        std::mem::take(self)
    }

    /// Gives an empty mailbox the buffers of one taken from it earlier (and
    /// already answered), so that the next messages need no allocation:
    /// with `send` and `inbox` alternating, a mailbox would otherwise
    /// allocate and free its two buffers once per `inbox`. Buffers larger
    /// than [`KEEP_TEXT`] are let go rather than kept for an idle user.
    pub(crate) fn recycle(&mut self, mut taken: Mailbox) {
        if self.is_empty() && taken.texts.capacity() <= KEEP_TEXT {
            taken.texts.clear();
            taken.mail.clear();
            *self = taken;
        }
    }
}

/// The most text capacity [`Mailbox::recycle`] keeps.
pub(crate) const KEEP_TEXT: usize = 4096;

/// For tests that build a mailbox in one expression.
#[cfg(test)]
impl<'a> FromIterator<Message<'a>> for Mailbox {
    fn from_iter<I: IntoIterator<Item = Message<'a>>>(messages: I) -> Self {
        let mut mailbox = Mailbox::default();
        for message in messages {
            mailbox.push(message.from, message.text).expect("a test text under 4 GiB");
        }
        mailbox
    }
}

/// A text too long for a [`Mailbox`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TextTooLong;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_messages_in_order_with_their_senders() {
        let mut mailbox = Mailbox::default();
        mailbox.push(UserId(1), " a\r\n").unwrap();
        mailbox.push(UserId(0), "").unwrap();
        mailbox.push(UserId(1), " ünï\r\n").unwrap();
        assert_eq!(mailbox.len(), 3);
        assert_eq!(mailbox.text_bytes(), 4 + 8);
        let messages: Vec<_> = mailbox.iter().map(|m| (m.from.0, m.text)).collect();
        assert_eq!(messages, [(1, " a\r\n"), (0, ""), (1, " ünï\r\n")]);
    }

    #[test]
    fn recycling_keeps_small_buffers_for_an_empty_mailbox_only() {
        let mut mailbox = Mailbox::default();
        mailbox.push(UserId(0), "hello").unwrap();
        let taken = mailbox.take();
        let texts_at = taken.texts.as_ptr();
        mailbox.recycle(taken);
        assert!(mailbox.is_empty() && mailbox.text_bytes() == 0);
        mailbox.push(UserId(1), "hi").unwrap();
        assert_eq!(mailbox.texts.as_ptr(), texts_at, "the buffer is reused");
        assert_eq!(mailbox.first(), Some(Message { from: UserId(1), text: "hi" }));

        // A mailbox that got new mail meanwhile keeps it.
        let mut other = Mailbox::default();
        other.push(UserId(2), "old").unwrap();
        mailbox.recycle(other);
        assert_eq!(mailbox.first(), Some(Message { from: UserId(1), text: "hi" }));

        // A large buffer is let go.
        let mut empty = Mailbox::default();
        let mut big = Mailbox::default();
        big.push(UserId(0), &"x".repeat(KEEP_TEXT + 1)).unwrap();
        empty.recycle(big);
        assert_eq!(empty.texts.capacity(), 0);
    }

    #[test]
    fn take_empties_the_mailbox() {
        let mut mailbox = Mailbox::default();
        mailbox.push(UserId(2), "x").unwrap();
        let taken = mailbox.take();
        assert!(mailbox.is_empty() && mailbox.text_bytes() == 0);
        assert_eq!(taken.first(), Some(Message { from: UserId(2), text: "x" }));
    }
}
