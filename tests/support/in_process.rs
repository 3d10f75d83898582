//! The one in-process server: `server::run` on `127.0.0.1:0`, on the
//! calling test's tokio runtime when it has one (`#[tokio::test]`), else on
//! one runtime shared by the plain tests of the binary, built as the
//! server's own (`server::runtime`).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use progjar_chat::protocol::limits::Limits;
use progjar_chat::protocol::users::UserDirectory;
use progjar_chat::server;
use progjar_chat::shared::SharedChat;
use tokio::runtime::{Handle, Runtime};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{AsyncConn, Conn, TIMEOUT};

/// The runtime of the servers started outside a tokio runtime.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| server::runtime().expect("a runtime"))
}

/// A server running in this process; aborted on drop.
pub struct InProcessServer {
    pub addr: SocketAddr,
    pub state: Arc<SharedChat>,
    runtime: Handle,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl InProcessServer {
    /// The built-in users and the default limits.
    pub fn start() -> Self {
        Self::start_with(UserDirectory::builtin(), Limits::default())
    }

    pub fn start_with(users: UserDirectory, limits: Limits) -> Self {
        Self::start_with_state(SharedChat::with_limits(users, limits))
    }

    /// A server over `state` (its users and its limits).
    pub fn start_with_state(state: SharedChat) -> Self {
        let runtime = Handle::try_current().unwrap_or_else(|_| runtime().handle().clone());
        let _entered = runtime.enter();
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind 127.0.0.1:0");
        // The backlog `TcpListener::bind` gives.
        let listener = socket.listen(1024).expect("listen");
        let addr = listener.local_addr().expect("local_addr");
        let state = Arc::new(state);
        let (tx, rx) = oneshot::channel::<()>();
        let handle = runtime.spawn(server::run(listener, Arc::clone(&state), async move {
            let _ = rx.await;
        }));
        Self { addr, state, runtime, shutdown: Some(tx), handle: Some(handle) }
    }

    /// A blocking raw client (for a test with no runtime of its own).
    pub fn connect(&self) -> Conn {
        Conn::connect(self.addr)
    }

    /// An async raw client (for a `#[tokio::test]`).
    pub async fn connect_async(&self) -> AsyncConn {
        AsyncConn::connect(self.addr).await
    }

    /// Triggers shutdown without waiting for the drain to finish.
    pub fn signal_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Triggers shutdown and waits (bounded) for `server::run` to return.
    /// Connections still open keep the drain waiting, so close them first.
    pub async fn stop(mut self) {
        self.signal_shutdown();
        let handle = self.handle.take().expect("stopped once");
        tokio::time::timeout(TIMEOUT, handle)
            .await
            .expect("server::run returns after shutdown once its connections are closed")
            .expect("server task did not panic");
    }

    /// [`Self::stop`] from a test with no runtime of its own.
    pub fn stop_blocking(self) {
        let runtime = self.runtime.clone();
        runtime.block_on(self.stop());
    }
}

impl Drop for InProcessServer {
    fn drop(&mut self) {
        self.signal_shutdown();
        if let Some(handle) = self.handle.take() {
            handle.abort();
        }
    }
}
