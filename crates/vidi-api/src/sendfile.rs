//! Segments sent with sendfile(2): the handler's half.
//!
//! hyper writes a response body from memory (a `writev` of the body's buffers), which on a
//! large segment is one full copy of its bytes into the socket; a static file server such as
//! nginx hands the file to the kernel instead (`sendfile`), which on loopback attaches the page
//! cache's pages to the socket buffers and saves that copy: measured, 45 % of Vidi's CPU on a
//! 732 KB segment was that copy (`_copy_from_iter`). hyper has no way to send a file, so the
//! file travels beside the body instead of in it:
//!
//! - every plain-TCP connection has a [`Slot`], shared by its socket (`vidi::http::sendfile`,
//!   which writes to the socket) and every request on it (as a request extension);
//! - a handler that wants a file sent answers with a [`PlaceholderBody`]: `len` bytes that are
//!   all slices of one static buffer, [`PLACEHOLDER`], never copied, never read;
//! - when hyper polls that body (it does so after the head of this response and after the body
//!   of every response before it, in the order the bytes go out), the body queues its
//!   [`Job`] (file, offset, length) in the slot;
//! - when the socket is asked to write bytes whose address lies in [`PLACEHOLDER`], it takes the
//!   oldest job and calls `sendfile` for that many bytes of the job's file instead.
//!
//! The socket side checks that the bytes it is asked to write follow that protocol and fails the
//! connection otherwise (see its module): wrong bytes are never sent.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fs::File;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

/// Bodies larger than this go by sendfile (when they can); smaller ones keep the memory path,
/// where the copy is cheap and the memory cache saves the open and the system calls.
pub const THRESHOLD: u64 = 64 * 1024;

/// The size of one placeholder chunk. Its contents are never read by anyone (hyper queues the
/// slices, the socket recognises their address), so in a zeroed static it costs no memory (its
/// pages are never touched). As large as a segment gets: hyper queues a first chunk whatever its
/// size, so a whole segment is one run of placeholder bytes, one `sendfile` as far as the
/// socket takes it, instead of a flush per chunk once hyper's ~400 KB buffer limit is reached.
const CHUNK: usize = 4 << 20;

/// The bytes a [`PlaceholderBody`] is made of. Private: nothing else can produce a slice of it,
/// so a buffer that lies in it comes from a placeholder body (see [`is_placeholder`]).
static PLACEHOLDER: [u8; CHUNK] = [0; CHUNK];

/// Where a buffer lies relative to [`PLACEHOLDER`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Real bytes, to be written as they are (or an empty buffer).
    Real,
    /// Placeholder bytes: stand-ins for as many bytes of the current job's file.
    Placeholder,
}

/// Whether `buf` is placeholder bytes, judged by its address alone (never its contents).
/// An empty buffer is real (it has nothing to send, and its dangling pointer proves nothing).
pub fn kind(buf: &[u8]) -> Kind {
    let start = PLACEHOLDER.as_ptr() as usize;
    let end = start + CHUNK;
    let (p, len) = (buf.as_ptr() as usize, buf.len());
    // A slice of other memory cannot overlap the static, so one that starts in it ends in it.
    if len > 0 && p >= start && p < end {
        debug_assert!(p + len <= end);
        Kind::Placeholder
    } else {
        Kind::Real
    }
}

/// What a placeholder body stands for: `len` bytes of `file` from `offset`.
#[derive(Debug)]
pub struct Job {
    pub file: File,
    pub offset: u64,
    pub len: u64,
}

/// The jobs of one connection, oldest first, queued by bodies as hyper polls them and taken by
/// the socket as it meets their placeholder bytes. Usually one at most; a second one is queued
/// when hyper polls the next response's body before the previous one is flushed.
#[derive(Clone, Debug, Default)]
pub struct Slot(Arc<Mutex<VecDeque<Job>>>);

impl Slot {
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&self, job: Job) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push_back(job);
    }

    /// The oldest job whose bytes have not been sent yet.
    pub fn take(&self) -> Option<Job> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).pop_front()
    }

    /// Whether a job is waiting for its placeholder bytes.
    pub fn pending(&self) -> bool {
        !self.0.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
    }
}

/// A body of `job.len` placeholder bytes that queues `job` in the slot when hyper first polls it.
/// Queued on the first poll (not when the response is built) so that a response that is never
/// written (HEAD, an error replacing it, a client gone before its head) leaves nothing behind
/// that a later response would take for its own.
pub struct PlaceholderBody {
    job: Option<Job>,
    slot: Slot,
    remaining: u64,
}

impl PlaceholderBody {
    pub fn new(slot: Slot, job: Job) -> Self {
        PlaceholderBody { remaining: job.len, job: Some(job), slot }
    }
}

impl http_body::Body for PlaceholderBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(job) = self.job.take() {
            self.slot.push(job);
        }
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(CHUNK as u64) as usize;
        self.remaining -= n as u64;
        // A static slice: no allocation, no copy, and the address the socket recognises.
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&PLACEHOLDER[..n])))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;

    #[test]
    fn placeholder_bytes_are_known_by_their_address() {
        let zeros = vec![0u8; 16];
        assert_eq!(kind(&zeros), Kind::Real);
        assert_eq!(kind(&PLACEHOLDER[..0]), Kind::Real);
        assert_eq!(kind(&PLACEHOLDER[..1]), Kind::Placeholder);
        assert_eq!(kind(&PLACEHOLDER[CHUNK - 1..]), Kind::Placeholder);
        assert_eq!(kind(&Bytes::from_static(&PLACEHOLDER[10..20])), Kind::Placeholder);
    }

    #[test]
    fn the_body_queues_its_job_when_polled_and_yields_exactly_its_length() {
        let slot = Slot::new();
        let file = File::open(std::env::current_exe().unwrap()).unwrap();
        let len = CHUNK as u64 * 2 + 5;
        let mut body = PlaceholderBody::new(slot.clone(), Job { file, offset: 3, len });
        assert!(!slot.pending(), "queued before hyper polls the body");
        assert_eq!(body.size_hint().exact(), Some(len));
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut total = 0;
        while let Poll::Ready(Some(Ok(f))) = Pin::new(&mut body).poll_frame(&mut cx) {
            let d = f.into_data().unwrap();
            assert_eq!(kind(&d), Kind::Placeholder);
            total += d.len() as u64;
        }
        assert_eq!(total, len);
        assert!(body.is_end_stream());
        let job = slot.take().unwrap();
        assert_eq!((job.offset, job.len), (3, len));
        assert!(slot.take().is_none());
    }
}
