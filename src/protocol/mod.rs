//! The sans-I/O protocol core: no tokio, no sockets, no clock.
//!
//! Everything the wire protocol *means* lives here, as plain functions and
//! data, so that unit tests, property tests, loom models and fuzz targets can
//! drive it without a runtime. The tokio layers in [`crate::server`] and
//! [`crate::client`] only move bytes between sockets and these types.
//!
//! | module | concept |
//! |---|---|
//! | [`frame`] | where one request ends: `parse_frame` |
//! | [`request`] | what a request line says, with the original's field rules |
//! | [`users`] | the user directory and its JSON file format |
//! | [`token`] | where session tokens come from |
//! | [`step`] | `prepare`: a parsed request made ready for the state, without it |
//! | [`chat`] | the state (sessions, pending mail) and `apply`, step → reply |
//! | [`mailbox`] | one user's pending mail, packed into two buffers |
//! | [`reply`] | the reply values and their exact bytes |
//! | [`limits`] | the server's limits: their defaults and checks |
//! | [`fast_hash`] | the unkeyed hash of the token and user-name tables, and why it may be |
//! | [`connection`] | one connection's byte stream → replies, in order |
//! | [`json`] | a JSON encoder byte-identical to Python's `json.dumps` |
//! | [`pyrepr`] | Python's `repr(bytes)`, for the client's trace lines |
//! | [`pystr`] | Python's notion of whitespace, for `str.strip()` |

pub mod chat;
pub mod connection;
pub(crate) mod fast_hash;
pub mod frame;
pub mod json;
pub mod limits;
pub(crate) mod mailbox;
pub mod pyrepr;
pub(crate) mod pystr;
pub mod reply;
pub mod request;
pub(crate) mod step;
pub mod token;
pub mod users;
#[cfg(test)]
mod xorshift;
