//! Where the runner reaches a server: an address on the host's network,
//! or in the network of its own a fixed-port program was started in
//! ([`super::sandbox`]).

use std::fmt;
use std::net::SocketAddr;
#[cfg(target_os = "linux")]
use std::sync::Arc;

use tokio::net::TcpStream;

#[cfg(target_os = "linux")]
use super::sandbox::Sandbox;

/// Whether a program whose port is fixed can run in a network of its own
/// here; if not, such programs take turns on the host's port.
pub(crate) fn own_networks() -> bool {
    #[cfg(target_os = "linux")]
    return super::sandbox::available();
    #[cfg(not(target_os = "linux"))]
    return false;
}

/// An address, and the network it is in.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub addr: SocketAddr,
    #[cfg(target_os = "linux")]
    sandbox: Option<Arc<Sandbox>>,
}

impl Endpoint {
    /// `addr` on the host's network.
    pub(crate) fn host(addr: SocketAddr) -> Self {
        Self {
            addr,
            #[cfg(target_os = "linux")]
            sandbox: None,
        }
    }

    /// `addr` in a program's network of its own.
    #[cfg(target_os = "linux")]
    pub(crate) fn in_sandbox(addr: SocketAddr, sandbox: Sandbox) -> Self {
        Self { addr, sandbox: Some(Arc::new(sandbox)) }
    }

    /// Whether it is in a network of its own: its port is nobody else's.
    pub(crate) fn is_sandboxed(&self) -> bool {
        #[cfg(target_os = "linux")]
        return self.sandbox.is_some();
        #[cfg(not(target_os = "linux"))]
        return false;
    }

    /// A new connection to it.
    pub(crate) async fn connect(&self) -> std::io::Result<TcpStream> {
        #[cfg(target_os = "linux")]
        if let Some(sandbox) = &self.sandbox {
            return sandbox.connect(self.addr).await;
        }
        TcpStream::connect(self.addr).await
    }
}

/// The address alone: what messages show.
impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.addr.fmt(f)
    }
}
