//! The ports the runner gives the programs it starts (`{port}`).
//!
//! Asking the OS for a free port (binding port 0 and closing it) is not
//! enough once cases run at once: the OS hands out the same *ephemeral*
//! range for that and for every outgoing connection, so between the moment
//! the runner learns a port and the moment the student's server binds it,
//! another case's connection or `bind(0)` may take it. The server then
//! fails to start, or worse, the case connects to *another case's* server
//! and sees that server close when its case ends: a verdict decided by the
//! runner's own race. (Seen: under 32 jobs, a correct server's SEND-3.1
//! "closed the connection C1".)
//!
//! So ports come from below the ephemeral range, where the OS never picks
//! one by itself, in turn: one runner never gives the same port to two
//! cases that run at once (it would have to start more cases than the pool
//! has ports while the first still runs). Each runner starts at a random
//! place in the pool, and a port something already listens on is skipped,
//! so that runners side by side (a CI running several) rarely meet.

use std::net::{Ipv4Addr, TcpListener};
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The lowest port of the pool: above the ports services usually take.
const LOWEST: u16 = 10_000;

/// The first port of the OS's ephemeral range when it cannot be read
/// (Linux's and the IANA's default lower bound is 32768 or more).
const EPHEMERAL_FALLBACK: u16 = 32_768;

/// How many candidates one request may try before it gives up.
const TRIES: usize = 64;

/// A port nothing listens on right now, from the runner's pool.
pub(crate) fn free_port() -> std::io::Result<u16> {
    let pool = pool();
    let mut last_error = None;
    for _ in 0..TRIES {
        let port = pool.next();
        match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            Ok(_) => return Ok(port),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| std::io::Error::other("no port to try")))
}

/// Ports handed out in turn from a range, starting anywhere in it.
#[derive(Debug)]
struct Pool {
    range: Range<u16>,
    next: AtomicUsize,
}

impl Pool {
    fn new(range: Range<u16>, start: usize) -> Self {
        Self { range, next: AtomicUsize::new(start) }
    }

    fn next(&self) -> u16 {
        let size = usize::from(self.range.end - self.range.start);
        let turn = self.next.fetch_add(1, Ordering::Relaxed) % size;
        // `turn < size`, and `size` fits in a u16.
        self.range.start + u16::try_from(turn).expect("a turn is below the pool's size")
    }
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let range = below(ephemeral_start());
        let mut seed = [0u8; 8];
        // A fixed start is only worse at avoiding other runners.
        let _ = getrandom::fill(&mut seed);
        let start = usize::try_from(u64::from_le_bytes(seed) % u64::from(range.end - range.start))
            .unwrap_or(0);
        Pool::new(range, start)
    })
}

/// The pool for an ephemeral range that starts at `ephemeral`: the ports
/// between [`LOWEST`] and it, or (a system whose range starts lower than
/// makes sense) a fixed thousand above [`LOWEST`].
fn below(ephemeral: u16) -> Range<u16> {
    if ephemeral >= LOWEST + 1_000 {
        LOWEST..ephemeral
    } else {
        LOWEST..LOWEST + 1_000
    }
}

/// Where the OS's ephemeral ports begin.
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(EPHEMERAL_FALLBACK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_lies_below_the_ephemeral_range() {
        assert_eq!(below(32_768), 10_000..32_768);
        assert_eq!(below(49_152), 10_000..49_152);
        // A range that starts too low for a pool below it.
        assert_eq!(below(1_024), 10_000..11_000);
    }

    #[test]
    fn ports_come_in_turn_and_wrap_around() {
        let pool = Pool::new(20_000..20_003, 1);
        let ports: Vec<u16> = (0..5).map(|_| pool.next()).collect();
        assert_eq!(ports, [20_001, 20_002, 20_000, 20_001, 20_002]);
    }

    #[test]
    fn no_two_ports_alike_until_the_pool_is_used_up() {
        let pool = Pool::new(below(32_768), 12_345);
        let size = 32_768 - 10_000;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..size {
            let port = pool.next();
            assert!((10_000..32_768).contains(&port));
            assert!(seen.insert(port), "port {port} given twice");
        }
    }

    #[test]
    fn a_free_port_is_free_and_below_the_ephemeral_range() {
        let port = free_port().unwrap();
        assert!(port >= LOWEST && port < ephemeral_start().max(LOWEST + 1_000));
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("the port is free");
    }
}
