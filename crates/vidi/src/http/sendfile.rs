//! The socket's half of sending segments with sendfile(2) (the handler's half, and why, is
//! `vidi_api::sendfile`). [`SendfileStream`] is a plain TCP connection that writes what hyper
//! gives it, except placeholder bytes (recognised by their address), for which it sends as many
//! bytes of the connection's current job's file with `sendfile`.
//!
//! What hyper guarantees, read in hyper 1.12 (`src/proto/h1/io.rs`):
//! - `Buffered::new` picks `WriteStrategy::Queue` when the IO `is_write_vectored()` (ours says
//!   yes, and `serve` also sets `http1::Builder::writev(true)`, which forces it); only
//!   `pipeline_flush(true)`, which Vidi never sets, switches to `Flatten`.
//! - In `Queue` mode, `WriteBuf::buffer` does `self.queue.push(buf.into())`: the body's `Bytes`
//!   is kept as it is (the length encoder wraps it, `BufKind::Exact(msg)`, or `take`s a prefix),
//!   never copied; the head is written into its own `headers` buffer.
//! - `poll_flush` then writes with `poll_write_vectored(cx, &iovs[..len])` over
//!   `write_buf.chunks_vectored`, i.e. slices of those very buffers, and advances by the count
//!   we return; only `poll_flush_flattened` (the `Flatten` mode) calls `poll_write`.
//!
//! So placeholder bytes reach us at their static address, in order, split anywhere. Whatever
//! breaks that is caught here and fails the connection (the client sees a truncated response,
//! never wrong bytes):
//! - `poll_write` (the flattening mode, which would have copied placeholder bytes) while a job is
//!   queued or under way;
//! - real bytes while a job's placeholder bytes are under way (the body was copied or mixed);
//! - placeholder bytes with no job queued;
//! - a file shorter than the job announced (sendfile reads nothing before the end).

use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;
use vidi_api::sendfile::{Job, Kind, Slot, kind};

/// Bytes sent by sendfile since the process started (tests check that the path was taken).
static SENT: AtomicU64 = AtomicU64::new(0);

/// Bytes sent by sendfile since the process started.
pub fn sent_bytes() -> u64 {
    SENT.load(Ordering::Relaxed)
}

/// A TCP connection whose placeholder bytes are sent from files (see the module comment).
pub struct SendfileStream {
    stream: TcpStream,
    slot: Slot,
    /// The job whose placeholder bytes are being sent; `None` between bodies.
    active: Option<Job>,
    /// Set once a write failed on a broken protocol: every later write fails too.
    broken: bool,
}

impl SendfileStream {
    pub fn new(stream: TcpStream, slot: Slot) -> Self {
        SendfileStream { stream, slot, active: None, broken: false }
    }

    /// Fails the connection on a broken protocol (logged: it would be a bug, ours or hyper's).
    fn fail(&mut self, why: &str) -> Poll<io::Result<usize>> {
        self.broken = true;
        tracing::error!(why, "sendfile: closing the connection rather than sending wrong bytes");
        Poll::Ready(Err(io::Error::other(format!("sendfile: {why}"))))
    }

    /// After any failed write the connection is done: a later write must not resume a body
    /// halfway (hyper does not write again after an error; this makes sure).
    fn after_failure() -> Poll<io::Result<usize>> {
        Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "sendfile: write after a failed write")))
    }

    /// Runs `op` (a non-blocking system call on the socket) once the socket is writable,
    /// registering for write readiness with tokio when it would block.
    fn poll_io(&self, cx: &mut Context<'_>, mut op: impl FnMut() -> io::Result<usize>) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.stream.poll_write_ready(cx))?;
            // `try_io` clears the readiness on WouldBlock, so the next `poll_write_ready` parks
            // this task until the socket has room.
            match self.stream.try_io(Interest::WRITABLE, &mut op) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return Poll::Ready(r),
            }
        }
    }

    /// Sends up to `count` bytes of the current job (taking the next one first if none is
    /// under way); returns how many went, which hyper counts as that many placeholder bytes.
    fn poll_send_file(&mut self, cx: &mut Context<'_>, count: usize) -> Poll<io::Result<usize>> {
        if self.active.is_none() {
            match self.slot.take() {
                Some(job) => self.active = Some(job),
                None => return self.fail("placeholder bytes with no file to send"),
            }
        }
        let job = self.active.as_ref().expect("set above");
        let count = count.min(usize::try_from(job.len).unwrap_or(usize::MAX));
        let (out, file) = (self.stream.as_raw_fd(), job.file.as_raw_fd());
        let Ok(mut offset) = libc::off_t::try_from(job.offset) else {
            return self.fail("offset out of range");
        };
        let sent = ready!(self.poll_io(cx, || {
            // SAFETY: both descriptors are open for the duration of the call (owned by `self`);
            // `offset` is a valid off_t the kernel updates (the file's own position is unused).
            let n = unsafe { libc::sendfile(out, file, &mut offset, count) };
            if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
        }));
        let sent = match sent {
            Ok(n) => n,
            Err(e) => {
                // The client went away (EPIPE, ECONNRESET) or the file could not be read: hyper
                // closes the connection on this error.
                self.broken = true;
                return Poll::Ready(Err(e));
            }
        };
        if sent == 0 {
            // count > 0 and the socket was writable: the file ended before the announced length.
            return self.fail("file shorter than announced");
        }
        let job = self.active.as_mut().expect("set above");
        job.offset += sent as u64;
        job.len -= sent as u64;
        if job.len == 0 {
            self.active = None;
        }
        SENT.fetch_add(sent as u64, Ordering::Relaxed);
        Poll::Ready(Ok(sent))
    }

    /// Writes `bufs` (real bytes only) as they are. With `more`, placeholder bytes follow
    /// at once, so the kernel is told to hold the head (MSG_MORE) and send it in the same packet
    /// as the file's first bytes rather than alone (the socket has TCP_NODELAY).
    fn poll_write_real(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>], more: bool) -> Poll<io::Result<usize>> {
        if !more {
            return Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        }
        let fd = self.stream.as_raw_fd();
        let n = bufs.len().min(64);
        self.poll_io(cx, || {
            // SAFETY: `IoSlice` is ABI-compatible with `iovec` on Unix (documented by std), and
            // the slices outlive the call.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
            msg.msg_iovlen = n as _;
            let r = unsafe { libc::sendmsg(fd, &msg, libc::MSG_MORE | libc::MSG_NOSIGNAL) };
            if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r as usize) }
        })
    }
}

impl AsyncRead for SendfileStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for SendfileStream {
    /// hyper calls this only when it flattens its buffers (see the module comment), which would
    /// have copied placeholder bytes: refused while a job is queued or under way.
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.broken {
            return Self::after_failure();
        }
        if kind(buf) == Kind::Placeholder || self.active.is_some() || self.slot.pending() {
            return self.fail("unvectored write while a file is to be sent");
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.broken {
            return Self::after_failure();
        }
        // Empty slices carry nothing (and their addresses prove nothing).
        let start = bufs.iter().position(|b| !b.is_empty()).unwrap_or(bufs.len());
        let bufs = &bufs[start..];
        let Some(first) = bufs.first() else {
            return Poll::Ready(Ok(0));
        };
        if kind(first) == Kind::Placeholder {
            // The leading run of placeholder bytes: one sendfile for all of it (capped at the
            // current job's end by `poll_send_file`).
            let run: usize =
                bufs.iter().take_while(|b| b.is_empty() || kind(b) == Kind::Placeholder).map(|b| b.len()).sum();
            return self.poll_send_file(cx, run);
        }
        if self.active.is_some() {
            return self.fail("real bytes inside a body to be sent from a file");
        }
        // The leading run of real bytes (a response's head, or a body from memory).
        let real = bufs.iter().take_while(|b| kind(b) == Kind::Real).count();
        let more = real < bufs.len();
        self.poll_write_real(cx, &bufs[..real], more)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use hyper::body::Body as _;
    use std::io::Write;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use vidi_api::sendfile::PlaceholderBody;

    /// A connected pair: our socket (over `slot`) and the peer that reads what it sends.
    async fn pair(slot: &Slot) -> (SendfileStream, TcpStream) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (ours, _) = l.accept().await.unwrap();
        (SendfileStream::new(ours, slot.clone()), peer)
    }

    /// A file holding `bytes`.
    fn file_of(bytes: &[u8]) -> std::fs::File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    /// The placeholder chunks of a body for `job`, queuing the job as hyper's first poll would.
    async fn placeholders(slot: &Slot, job: Job) -> Vec<Bytes> {
        let mut body = PlaceholderBody::new(slot.clone(), job);
        let mut out = Vec::new();
        while let Some(f) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            out.push(f.unwrap().into_data().unwrap());
        }
        out
    }

    /// Writes `bufs` as hyper's queue strategy does: vectored, advancing by what each call took.
    async fn write_all_vectored(s: &mut SendfileStream, bufs: &[&[u8]]) -> io::Result<()> {
        let mut bufs: Vec<&[u8]> = bufs.to_vec();
        while bufs.iter().any(|b| !b.is_empty()) {
            let iovs: Vec<IoSlice<'_>> = bufs.iter().map(|b| IoSlice::new(b)).collect();
            let mut n = s.write_vectored(&iovs).await?;
            for b in bufs.iter_mut() {
                let k = n.min(b.len());
                *b = &b[k..];
                n -= k;
            }
        }
        Ok(())
    }

    #[tokio::test]
    async fn a_head_and_placeholders_go_out_as_the_head_and_the_file() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let slot = Slot::new();
        let (mut ours, mut peer) = pair(&slot).await;
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            peer.read_to_end(&mut got).await.unwrap();
            got
        });
        // Two responses back to back: a range of the file, then all of it.
        let first = placeholders(&slot, Job { file: file_of(&data), offset: 1000, len: 200_000 }).await;
        let second = placeholders(&slot, Job { file: file_of(&data), offset: 0, len: data.len() as u64 }).await;
        let mut bufs: Vec<&[u8]> = vec![b"HEAD1"];
        bufs.extend(first.iter().map(|b| b.as_ref()));
        bufs.push(b"HEAD2");
        bufs.extend(second.iter().map(|b| b.as_ref()));
        write_all_vectored(&mut ours, &bufs).await.unwrap();
        assert!(!slot.pending() && ours.active.is_none());
        ours.shutdown().await.unwrap();
        let want = [b"HEAD1".as_slice(), &data[1000..201_000], b"HEAD2", &data].concat();
        assert!(reader.await.unwrap() == want);
    }

    #[tokio::test]
    async fn placeholder_bytes_without_a_job_fail() {
        let slot = Slot::new();
        let (mut ours, _peer) = pair(&slot).await;
        let stray = placeholders(&Slot::new(), Job { file: file_of(b"abc"), offset: 0, len: 3 }).await;
        assert!(write_all_vectored(&mut ours, &[&stray[0]]).await.is_err());
        // And the connection stays failed.
        assert!(write_all_vectored(&mut ours, &[b"real"]).await.is_err());
    }

    #[tokio::test]
    async fn a_flattening_write_while_a_job_is_queued_fails() {
        let slot = Slot::new();
        let (mut ours, _peer) = pair(&slot).await;
        // Before any job, plain writes are fine.
        ours.write_all(b"hello").await.unwrap();
        let _queued = placeholders(&slot, Job { file: file_of(b"abc"), offset: 0, len: 3 }).await;
        // hyper's flatten mode would have copied the placeholder bytes: refused.
        assert!(ours.write(b"HEAD\0\0\0").await.is_err());
    }

    #[tokio::test]
    async fn real_bytes_inside_a_file_body_fail() {
        let data = vec![7u8; 1000];
        let slot = Slot::new();
        let (mut ours, _peer) = pair(&slot).await;
        let ph = placeholders(&slot, Job { file: file_of(&data), offset: 0, len: 1000 }).await;
        // Part of the body, then real bytes where the rest of it should be.
        write_all_vectored(&mut ours, &[&ph[0][..10]]).await.unwrap();
        assert!(write_all_vectored(&mut ours, &[b"copied", &ph[0][10..]]).await.is_err());
    }

    #[tokio::test]
    async fn a_file_shorter_than_announced_fails() {
        let slot = Slot::new();
        let (mut ours, mut peer) = pair(&slot).await;
        let ph = placeholders(&slot, Job { file: file_of(&[1u8; 100]), offset: 0, len: 150 }).await;
        assert!(write_all_vectored(&mut ours, &[b"H", &ph[0]]).await.is_err());
        drop(ours);
        let mut got = Vec::new();
        peer.read_to_end(&mut got).await.unwrap();
        // What went out is the file's real bytes, then the connection closed: never filler.
        assert_eq!(got, [b"H".as_slice(), &[1u8; 100]].concat());
    }
}
