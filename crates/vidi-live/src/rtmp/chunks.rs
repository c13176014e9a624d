//! A guard that walks the RTMP chunk stream in front of rml_rtmp's deserializer and refuses what
//! it must not see.
//!
//! Why: rml_rtmp trusts its input. A peer may announce messages of up to 16 MiB (the 24-bit
//! length field) and rml_rtmp reserves and buffers them; a chunk size of 2 GiB makes it wait
//! for a whole message in its read buffer; and some malformed headers reach unchecked integer
//! arithmetic in it (an extended timestamp below 0xFFFFFF on a continuation header, a message
//! length changed in the middle of a message). The guard follows exactly the framing rml_rtmp
//! follows (same chunk-size rule, same extended-timestamp rule), so it sees the same chunk
//! boundaries, and it is the only place that decides what a connection may send:
//! - a message longer than the limit is refused when its header arrives, before its payload;
//! - chunk streams may not interleave (rml_rtmp keeps one partial message for all chunk
//!   streams and would mix them; ffmpeg and OBS never interleave);
//! - a bounded number of chunk stream ids (each costs a header in both parsers);
//! - the chunk size a peer sets must be 1..=2^31-1.
//!
//! With these rules, the bytes held for a connection are bounded by one message plus one
//! chunk header plus one read, whatever the peer sends.

use std::collections::HashMap;

/// The chunk size every RTMP peer starts with.
const INITIAL_CHUNK_SIZE: u32 = 128;
/// A timestamp field of this value means a 4-byte extended timestamp follows.
const EXTENDED: u32 = 0xFF_FFFF;
/// ffmpeg uses chunk streams 2 to 6 and OBS (librtmp) a similar handful; 64 leaves room for any
/// honest encoder while bounding the header tables of both parsers.
const MAX_CHUNK_STREAMS: usize = 64;
/// The RTMP message type of Set Chunk Size.
const SET_CHUNK_SIZE: u8 = 1;

/// Why the guard refused a connection's bytes. The text goes to the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ChunkError {
    #[error("a message of {len} bytes was announced; the limit is {max}")]
    TooLarge { len: u32, max: u32 },
    #[error("chunk stream {csid} continues a message header it never sent")]
    NoPreviousHeader { csid: u32 },
    #[error("chunk stream {csid} interrupted the message of chunk stream {current}")]
    Interleaved { csid: u32, current: u32 },
    #[error("a new header (format {fmt}) arrived in the middle of a message")]
    HeaderMidMessage { fmt: u8 },
    #[error("extended timestamp {0:#x} is below 0xFFFFFF")]
    BadExtendedTimestamp(u32),
    #[error("more than {MAX_CHUNK_STREAMS} chunk streams")]
    TooManyChunkStreams,
    #[error("invalid chunk size {0}")]
    BadChunkSize(u64),
}

/// What the guard remembers of a chunk stream's last header (what a compressed header reuses).
#[derive(Clone, Copy, Debug, Default)]
struct Previous {
    message_length: u32,
    message_type: u8,
    timestamp_field: u32,
}

/// The message whose chunks are being read.
#[derive(Debug)]
struct InMessage {
    csid: u32,
    message_type: u8,
    length: u32,
    received: u32,
    /// The first bytes of a Set Chunk Size message (4 are needed; a chunk size of 1 can split
    /// them over chunks).
    control: Vec<u8>,
}

#[derive(Debug)]
pub(crate) struct ChunkGuard {
    max_message: u32,
    chunk_size: u32,
    previous: HashMap<u32, Previous>,
    /// Bytes of the chunk header being read (at most 3 + 11 + 4).
    header: Vec<u8>,
    /// Payload bytes of the current chunk still to come.
    chunk_left: u32,
    message: Option<InMessage>,
}

impl ChunkGuard {
    pub(crate) fn new(max_message: u32) -> Self {
        ChunkGuard {
            max_message,
            chunk_size: INITIAL_CHUNK_SIZE,
            previous: HashMap::new(),
            header: Vec::with_capacity(18),
            chunk_left: 0,
            message: None,
        }
    }

    /// The bytes of the incomplete message and chunk header: what the parser behind the guard
    /// holds between two reads (its chunk buffer and partial payload), so the per-connection
    /// bound the property tests check.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.header.len() + self.message.as_ref().map_or(0, |m| m.received as usize)
    }

    /// Checks the next bytes of the stream. On `Err` the connection must close: the guard's
    /// state no longer follows the peer's.
    pub(crate) fn check(&mut self, mut bytes: &[u8]) -> Result<(), ChunkError> {
        while !bytes.is_empty() {
            if self.chunk_left > 0 {
                let n = (self.chunk_left as usize).min(bytes.len());
                self.payload(&bytes[..n])?;
                bytes = &bytes[n..];
                continue;
            }
            self.header.push(bytes[0]);
            bytes = &bytes[1..];
            self.try_header()?;
        }
        Ok(())
    }

    /// Parses the header collected so far, if it is complete, and starts its chunk.
    fn try_header(&mut self) -> Result<(), ChunkError> {
        let h = &self.header;
        let fmt = h[0] >> 6;
        let (csid, basic) = match h[0] & 0x3F {
            0 if h.len() < 2 => return Ok(()),
            0 => (u32::from(h[1]) + 64, 2),
            1 if h.len() < 3 => return Ok(()),
            1 => (u32::from(h[2]) * 256 + u32::from(h[1]) + 64, 3),
            x => (u32::from(x), 1),
        };
        let message_header = [11, 7, 3, 0][usize::from(fmt)];
        if h.len() < basic + message_header {
            return Ok(());
        }
        if let Some(m) = &self.message {
            if m.csid != csid {
                return Err(ChunkError::Interleaved { csid, current: m.csid });
            }
            if fmt != 3 {
                return Err(ChunkError::HeaderMidMessage { fmt });
            }
        }
        let mut prev = match (fmt, self.previous.get(&csid)) {
            (0, _) => Previous::default(),
            (_, Some(p)) => *p,
            (_, None) => return Err(ChunkError::NoPreviousHeader { csid }),
        };
        let m = &h[basic..];
        if fmt <= 2 {
            prev.timestamp_field = u24(&m[0..3]);
        }
        if fmt <= 1 {
            prev.message_length = u24(&m[3..6]);
            prev.message_type = m[6];
        }
        let extended = prev.timestamp_field >= EXTENDED;
        if extended && h.len() < basic + message_header + 4 {
            return Ok(());
        }
        if extended && fmt != 0 && self.message.is_none() {
            // rml_rtmp subtracts 0xFFFFFF from this value unchecked.
            let ts = u32::from_be_bytes(h[basic + message_header..][..4].try_into().expect("4 bytes"));
            if ts < EXTENDED {
                return Err(ChunkError::BadExtendedTimestamp(ts));
            }
        }
        if prev.message_length > self.max_message {
            return Err(ChunkError::TooLarge { len: prev.message_length, max: self.max_message });
        }
        if !self.previous.contains_key(&csid) && self.previous.len() >= MAX_CHUNK_STREAMS {
            return Err(ChunkError::TooManyChunkStreams);
        }
        self.previous.insert(csid, prev);
        self.header.clear();
        let message = self.message.get_or_insert_with(|| InMessage {
            csid,
            message_type: prev.message_type,
            length: prev.message_length,
            received: 0,
            control: Vec::new(),
        });
        // rml_rtmp's rule: a message no longer than the chunk size is read whole, a longer one
        // in chunk-size pieces.
        self.chunk_left = (message.length - message.received).min(self.chunk_size);
        if self.chunk_left == 0 {
            self.finish()?;
        }
        Ok(())
    }

    fn payload(&mut self, bytes: &[u8]) -> Result<(), ChunkError> {
        let n = bytes.len() as u32;
        self.chunk_left -= n;
        let message = self.message.as_mut().expect("a chunk payload belongs to a message");
        message.received += n;
        if message.message_type == SET_CHUNK_SIZE && message.control.len() < 4 {
            let take = (4 - message.control.len()).min(bytes.len());
            message.control.extend_from_slice(&bytes[..take]);
        }
        if message.received == message.length {
            self.finish()?;
        }
        Ok(())
    }

    /// A message is complete: apply what it changes in the framing.
    fn finish(&mut self) -> Result<(), ChunkError> {
        self.chunk_left = 0;
        let Some(message) = self.message.take() else { return Ok(()) };
        if message.message_type == SET_CHUNK_SIZE {
            // rml_rtmp refuses a short Set Chunk Size itself (and closes); the guard only needs
            // the new size when there is one.
            if let Ok(raw) = <[u8; 4]>::try_from(message.control.as_slice()) {
                let size = u32::from_be_bytes(raw);
                if size == 0 || size > 0x7FFF_FFFF {
                    return Err(ChunkError::BadChunkSize(u64::from(size)));
                }
                self.chunk_size = size;
            }
        }
        Ok(())
    }
}

fn u24(b: &[u8]) -> u32 {
    u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2])
}
