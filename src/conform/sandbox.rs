//! A network of its own for a program whose port is fixed (Linux).
//!
//! The course's server binds `0.0.0.0:8889` and its client connects to
//! `localhost:8889`, whatever they are told: without `{port}`, every case
//! of such a program, and every such submission of a class, would wait for
//! that one port. Started in a network namespace of its own (in a user
//! namespace, so no privilege is needed), each program has its own
//! loopback and its own 8889, and the cases run at once.
//!
//! The runner stays in its own network and cannot connect into the
//! program's. A socket, though, belongs to the network it was *created*
//! in, whoever uses it: a small helper, forked inside the namespace before
//! the program starts, hands the runner fresh sockets over a Unix socket
//! pair (`SCM_RIGHTS`), and the runner connects them (or, for a client,
//! accepts on a socket that listens there from before the client started).
//! The bytes go straight between the runner and the program, as on the
//! host: no relay that could merge or split what either side writes.
//!
//! Where namespaces cannot be had (another system, or one that keeps them
//! from unprivileged users), [`available`] says so, and such programs take
//! turns on the host's port.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::sync::{Mutex, OnceLock};

use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// What the runner asks the helper for: a fresh TCP socket.
const FRESH: u8 = b's';
/// What the runner asks the helper for: the listening socket.
const LISTENING: u8 = b'l';

/// The runner's end of a program's network.
#[derive(Debug)]
pub(crate) struct Sandbox {
    control: Mutex<UnixStream>,
}

/// Whether programs can be given a network of their own here (tried once,
/// with a shell that exits at once).
pub(crate) fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let mut command = std::process::Command::new("sh");
        command.args(["-c", "exit 0"]).stdin(std::process::Stdio::null());
        let Ok(sandbox) = Sandbox::prepare(&mut command, None) else { return false };
        let ran = matches!(command.status(), Ok(status) if status.success());
        drop(sandbox);
        ran
    })
}

impl Sandbox {
    /// Makes `command` start in a network of its own, its loopback up and,
    /// with `listen_on`, a socket listening on `127.0.0.1:PORT` there
    /// before the program runs (a client connects as it starts).
    pub(crate) fn prepare(
        command: &mut std::process::Command,
        listen_on: Option<u16>,
    ) -> io::Result<Self> {
        let (ours, theirs) = UnixStream::pair()?;
        // The helper answers at once; a helper gone (its program killed)
        // must not hold the runner.
        ours.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
        let setup = Setup::new(theirs, ours.as_raw_fd(), listen_on);
        // SAFETY: the closure runs in the child between fork and exec and
        // makes only async-signal-safe calls: no allocation, no lock.
        unsafe {
            command.pre_exec(move || setup.run());
        }
        Ok(Self { control: Mutex::new(ours) })
    }

    /// A connection to `addr` in the program's network.
    pub(crate) async fn connect(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        let fd = self.ask(FRESH)?;
        // SAFETY: the helper made it a TCP socket, non-blocking; it is ours.
        let socket = unsafe { TcpSocket::from_raw_fd(fd.into_raw_fd()) };
        socket.connect(addr).await
    }

    /// The socket listening in the program's network (with `listen_on`).
    pub(crate) fn listener(&self) -> io::Result<TcpListener> {
        let fd = self.ask(LISTENING)?;
        // SAFETY: the helper made it a listening TCP socket, non-blocking.
        TcpListener::from_std(unsafe { std::net::TcpListener::from_raw_fd(fd.into_raw_fd()) })
    }

    fn ask(&self, what: u8) -> io::Result<OwnedFd> {
        let control = self.control.lock().unwrap_or_else(|p| p.into_inner());
        let fd = control.as_raw_fd();
        // SAFETY: a one-byte write on a socket we own.
        if unsafe { libc::send(fd, [what].as_ptr().cast(), 1, libc::MSG_NOSIGNAL) } != 1 {
            return Err(io::Error::last_os_error());
        }
        receive_fd(fd)
    }
}

/// Everything the child does before it runs the program, prepared in the
/// parent (the child may not allocate).
struct Setup {
    /// The helper's end of the pair; the runner's end, to close there.
    theirs: UnixStream,
    ours: RawFd,
    listen_on: Option<u16>,
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
}

impl Setup {
    fn new(theirs: UnixStream, ours: RawFd, listen_on: Option<u16>) -> Self {
        // SAFETY: getuid and getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        Self {
            theirs,
            ours,
            listen_on,
            // The program keeps its own user and group inside.
            uid_map: format!("{uid} {uid} 1\0").into_bytes(),
            gid_map: format!("{gid} {gid} 1\0").into_bytes(),
        }
    }

    /// In the child: new user and network namespaces, the loopback up,
    /// the listening socket, then the helper forked off. The child goes on
    /// to run the program.
    fn run(&self) -> io::Result<()> {
        // SAFETY (whole function): plain system calls on memory we own.
        unsafe {
            check(libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET))?;
            // Absent before Linux 3.19, where the maps need no such step.
            let _ = write_file(c"/proc/self/setgroups", b"deny\0");
            write_file(c"/proc/self/uid_map", &self.uid_map)?;
            write_file(c"/proc/self/gid_map", &self.gid_map)?;
            loopback_up()?;
            let listening = match self.listen_on {
                Some(port) => listen(port)?,
                None => -1,
            };
            let pid = check(libc::fork())?;
            if pid == 0 {
                helper(self.theirs.as_raw_fd(), self.ours, listening);
            }
            if listening >= 0 {
                libc::close(listening);
            }
        }
        Ok(())
    }
}

fn check(result: libc::c_int) -> io::Result<libc::c_int> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

/// Writes `text` (NUL-terminated, the NUL not written) to `path`.
unsafe fn write_file(path: &std::ffi::CStr, text: &[u8]) -> io::Result<()> {
    let fd = check(libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC))?;
    let len = text.len() - 1;
    let written = libc::write(fd, text.as_ptr().cast(), len);
    libc::close(fd);
    if written != len as isize {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A new network's loopback is down: up it goes.
unsafe fn loopback_up() -> io::Result<()> {
    let fd = check(libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0))?;
    let mut request: libc::ifreq = std::mem::zeroed();
    for (to, from) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *to = *from as libc::c_char;
    }
    request.ifr_ifru.ifru_flags = libc::IFF_UP as libc::c_short;
    let result = check(libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &request));
    libc::close(fd);
    result.map(drop)
}

/// A TCP socket listening on `127.0.0.1:port`, non-blocking.
unsafe fn listen(port: u16) -> io::Result<RawFd> {
    let fd = tcp_socket()?;
    let one: libc::c_int = 1;
    libc::setsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_REUSEADDR,
        (&one as *const libc::c_int).cast(),
        std::mem::size_of::<libc::c_int>() as libc::socklen_t,
    );
    let mut addr: libc::sockaddr_in = std::mem::zeroed();
    addr.sin_family = libc::AF_INET as libc::sa_family_t;
    addr.sin_port = port.to_be();
    addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    if libc::bind(fd, (&addr as *const libc::sockaddr_in).cast(), len) < 0
        || libc::listen(fd, 128) < 0
    {
        let error = io::Error::last_os_error();
        libc::close(fd);
        return Err(error);
    }
    Ok(fd)
}

unsafe fn tcp_socket() -> io::Result<RawFd> {
    check(libc::socket(
        libc::AF_INET,
        libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        0,
    ))
}

/// The helper, in the program's network: for each byte the runner sends,
/// a socket back; gone when the runner's end closes, or with the program's
/// process group. It closes everything else it was forked with first:
/// a copy of another case's connection kept open here would hide that
/// connection's close from its server.
unsafe fn helper(control: RawFd, ours: RawFd, listening: RawFd) -> ! {
    libc::close(ours);
    close_all_but(control, listening);
    let mut request = 0u8;
    loop {
        let read = libc::recv(control, (&mut request as *mut u8).cast(), 1, 0);
        if read <= 0 {
            libc::_exit(0);
        }
        let fd = match request {
            LISTENING => listening,
            _ => tcp_socket().unwrap_or(-1),
        };
        if fd < 0 || send_fd(control, fd).is_err() {
            libc::_exit(1);
        }
        if fd != listening {
            libc::close(fd);
        }
    }
}

/// Closes every descriptor but `a` and `b` (-1 for none).
unsafe fn close_all_but(a: RawFd, b: RawFd) {
    let (low, high) = if a < b { (a, b) } else { (b, a) };
    let mut from = 0u32;
    for keep in [low, high] {
        if keep >= 0 {
            let keep = keep as u32;
            if keep > from {
                close_range(from, keep - 1);
            }
            from = keep + 1;
        }
    }
    close_range(from, u32::MAX);
}

/// Closes `first..=last`; one by one (up to the limit of open files) where
/// the system call is missing (Linux before 5.9).
unsafe fn close_range(first: u32, last: u32) {
    if libc::syscall(libc::SYS_close_range, first, last, 0u32) == 0 {
        return;
    }
    let limit = libc::sysconf(libc::_SC_OPEN_MAX).clamp(0, 65_536) as u32;
    for fd in first..=last.min(limit) {
        libc::close(fd as RawFd);
    }
}

/// Room for one descriptor's control message.
#[repr(C, align(8))]
struct ControlBuffer([u8; 64]);

/// A message of one byte (`byte`) with room for control data (`buffer`).
unsafe fn message(
    byte: &mut [u8; 1],
    iov: &mut libc::iovec,
    buffer: &mut ControlBuffer,
) -> libc::msghdr {
    *iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    let mut message: libc::msghdr = std::mem::zeroed();
    message.msg_iov = iov;
    message.msg_iovlen = 1;
    message.msg_control = buffer.0.as_mut_ptr().cast();
    message.msg_controllen = buffer.0.len() as _;
    message
}

unsafe fn send_fd(socket: RawFd, fd: RawFd) -> io::Result<()> {
    let (mut byte, mut buffer) = ([0u8; 1], ControlBuffer([0; 64]));
    let mut iov: libc::iovec = std::mem::zeroed();
    let mut message = message(&mut byte, &mut iov, &mut buffer);
    message.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as _;
    let header = libc::CMSG_FIRSTHDR(&message);
    (*header).cmsg_level = libc::SOL_SOCKET;
    (*header).cmsg_type = libc::SCM_RIGHTS;
    (*header).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
    std::ptr::write_unaligned(libc::CMSG_DATA(header).cast::<RawFd>(), fd);
    if libc::sendmsg(socket, &message, libc::MSG_NOSIGNAL) != 1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn receive_fd(socket: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: recvmsg into buffers we own; the descriptor it carries is
    // new to this process and owned from here.
    unsafe {
        let (mut byte, mut buffer) = ([0u8; 1], ControlBuffer([0; 64]));
        let mut iov: libc::iovec = std::mem::zeroed();
        let mut message = message(&mut byte, &mut iov, &mut buffer);
        let read = libc::recvmsg(socket, &mut message, libc::MSG_CMSG_CLOEXEC);
        if read < 0 {
            return Err(io::Error::last_os_error());
        }
        let header = libc::CMSG_FIRSTHDR(&message);
        if read == 0
            || header.is_null()
            || (*header).cmsg_level != libc::SOL_SOCKET
            || (*header).cmsg_type != libc::SCM_RIGHTS
        {
            return Err(io::Error::other("the program's network is gone"));
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(header).cast::<RawFd>());
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A program in a network of its own listens on a port the host's
    /// network has taken, and the runner reaches it there.
    #[tokio::test]
    async fn a_program_in_its_own_network_is_reached_on_its_fixed_port() {
        if !available() {
            eprintln!("skipped: no network namespaces for unprivileged users here");
            return;
        }
        // The host's port is taken: the program's is not.
        let host = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = host.local_addr().unwrap().port();
        let mut command = std::process::Command::new("python3");
        let script = format!(
            "import socket\ns=socket.socket()\ns.bind(('127.0.0.1',{port}))\ns.listen()\nc,_=s.accept()\nc.sendall(c.recv(5).upper())\n"
        );
        command.args(["-c", &script]);
        let sandbox = Sandbox::prepare(&mut command, None).unwrap();
        let mut child = tokio::process::Command::from(command).spawn().unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut stream = loop {
            match sandbox.connect(addr).await {
                Ok(stream) => break stream,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        };
        stream.write_all(b"hallo").await.unwrap();
        let mut reply = [0u8; 5];
        stream.read_exact(&mut reply).await.unwrap();
        assert_eq!(&reply, b"HALLO");
        assert!(child.wait().await.unwrap().success());
        drop(host);
    }

    /// A client that connects as it starts finds the runner listening.
    #[tokio::test]
    async fn a_client_in_its_own_network_finds_the_runner_listening() {
        if !available() {
            eprintln!("skipped: no network namespaces for unprivileged users here");
            return;
        }
        let mut command = std::process::Command::new("python3");
        command.args([
            "-c",
            "import socket\nsocket.create_connection(('127.0.0.1',8889)).sendall(b'hi')\n",
        ]);
        let sandbox = Sandbox::prepare(&mut command, Some(8889)).unwrap();
        let mut child = tokio::process::Command::from(command).spawn().unwrap();
        let listener = sandbox.listener().unwrap();
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut got = Vec::new();
        conn.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"hi");
        assert!(child.wait().await.unwrap().success());
    }
}
