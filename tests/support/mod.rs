//! The one test-support module of the integration tests: each test file
//! says `mod support;` and takes the parts it needs.
//!
//! One concept per file:
//!
//! - [`launch`]: the one launcher of the real `progjar-chat server` process
//!   on `127.0.0.1:0`, its stdout and stderr captured, killed on drop;
//! - [`in_process`]: the one in-process server (`server::run` on
//!   `127.0.0.1:0`), from an async test or a plain one;
//! - [`raw_client`]: the one raw-socket client, reading exactly one reply
//!   at a time with a timeout, blocking or async;
//! - [`token`]: the one strict check of an `auth` reply and its token, and
//!   the normalising of tokens for byte comparisons;
//! - [`reply`]: the expected replies, their texts taken from the reference
//!   model (`tests/model`), never retyped;
//! - [`conform`]: `progjar-chat conform …` run as a user runs it, with a
//!   watchdog, its `--json` report read, and the Python fixtures;
//! - [`filters`]: the snapshot filters of the client transcripts;
//! - [`known_breaks`], [`webdriver`]: what the fixtures' planted bugs
//!   break, and a headless browser for the class page.
//!
//! Every wait has a timeout, so that a server that stops answering fails
//! the test that hit it instead of hanging the whole suite.

// Each test file uses a different part of this module.
#![allow(dead_code, unused_imports)]

pub mod conform;
pub mod filters;
pub mod in_process;
pub mod known_breaks;
pub mod launch;
#[path = "../model/mod.rs"]
pub mod model;
pub mod raw_client;
pub mod reply;
pub mod token;
pub mod webdriver;

pub use in_process::InProcessServer;
pub use launch::{binary, scratch_file, ServerProcess, LISTENING};
pub use raw_client::{AsyncConn, Conn};
pub use reply::{empty_inbox, error_reply, inbox_reply, list_reply, logged_out, message_sent, msg};
pub use token::{assert_uuid4, token_from_auth_reply};

use std::io::Read;
use std::thread::JoinHandle;
use std::time::Duration;

/// How long any one reply, connection or server start may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The index of the first occurrence of `needle` in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads all of a child's pipe on a thread of its own, so that the child
/// never blocks on a full pipe; `join` the handle once the child is gone.
pub fn drain<R: Read + Send + 'static>(mut pipe: R) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = pipe.read_to_end(&mut all);
        String::from_utf8_lossy(&all).into_owned()
    })
}
