//! progjar-chat: the reference implementation, executable specification and
//! conformance suite of the Progjar chat protocol.
//!
//! A map of the crate:
//!
//! | module | what it is |
//! |---|---|
//! | [`protocol`] | the sans-I/O core: framing, requests, state, replies, JSON |
//! | [`sync`] | the one switch between std and loom locks |
//! | [`shared`] | the state shared by all connections, behind one mutex |
//! | [`users_file`] | reading a users file (`--users FILE`), and hashing a password for one |
//! | [`server`] | the tokio server: `server::run(listener, state, shutdown)` |
//! | [`client`] | the interactive client: a sans-I/O session plus a tokio loop |
//! | [`spec`] | the executable spec: rules and examples parsed from `spec/PROTOCOL.md` |
//! | [`conform`] | the conformance runner: spec examples against any server or client |
//! | [`bench`] | the load generator: `progjar-chat bench` |
//! | [`cli`] | the `progjar-chat` command line |
//! | [`duration`] | the one parser of durations for every flag |
//! | [`exit`] | exit codes and the one failure line on stderr |
//!
//! The protocol itself is specified in `spec/PROTOCOL.md`; every rule there
//! cites the assignment or the original implementation it comes from.

#![warn(unreachable_pub)]

pub(crate) mod bench;
pub mod cli;
pub(crate) mod client;
pub mod conform;
pub(crate) mod duration;
pub(crate) mod exit;
pub mod protocol;
pub mod server;
pub mod shared;
pub mod spec;
pub(crate) mod sync;
pub mod users_file;
