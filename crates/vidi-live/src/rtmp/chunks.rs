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
//! - the chunk size a peer sets must be 1..=2^31-1, and the acknowledgement window below
//!   2^31 (rml_rtmp's byte counter would overflow);
//! - AMF0 commands and data messages (64 KiB at most) must have the values rml_rtmp's
//!   handlers index unchecked (a `connect` with no transaction id, a `play` with no name, an
//!   `@setDataFrame` alone all panicked it).
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
/// The RTMP message type of Window Acknowledgement Size.
const WINDOW_ACK_SIZE: u8 = 5;
/// The RTMP message types of AMF0 data (`@setDataFrame`) and AMF0 commands, and their AMF3
/// twins, which rml_rtmp reads as AMF0 too (after a leading 0 byte, for a command).
const AMF0_DATA: u8 = 18;
const AMF0_COMMAND: u8 = 20;
const AMF3_DATA: u8 = 15;
const AMF3_COMMAND: u8 = 17;
/// The longest AMF0 message. Honest commands and metadata are a few hundred bytes; the guard
/// keeps a copy of each to check its shape.
const MAX_AMF0_MESSAGE: u32 = 64 << 10;
/// rml_rtmp adds each read's length to a `u32` until it reaches the peer's window: a window
/// near `u32::MAX` overflows it (a panic in debug builds). Honest windows are a few MB.
const MAX_WINDOW_ACK_SIZE: u32 = 0x7FFF_FFFF;

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
    #[error("window acknowledgement size {0} is too large")]
    BadWindow(u32),
    #[error("an AMF0 message of {0} bytes; the limit is {MAX_AMF0_MESSAGE}")]
    LargeAmf0(u32),
    #[error("an AMF0 {0} without the values it needs")]
    ShortAmf0(String),
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
    /// The first bytes of a Set Chunk Size or Window Acknowledgement Size message (4 are
    /// needed; a chunk size of 1 can split them over chunks).
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
    /// Changes the longest message accepted from the next chunk header on.
    pub(crate) fn set_max_message(&mut self, max_message: u32) {
        self.max_message = max_message;
    }

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
        let amf = matches!(prev.message_type, AMF0_DATA | AMF0_COMMAND | AMF3_DATA | AMF3_COMMAND);
        if amf && prev.message_length > MAX_AMF0_MESSAGE {
            return Err(ChunkError::LargeAmf0(prev.message_length));
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
        match message.message_type {
            SET_CHUNK_SIZE | WINDOW_ACK_SIZE if message.control.len() < 4 => {
                let take = (4 - message.control.len()).min(bytes.len());
                message.control.extend_from_slice(&bytes[..take]);
            }
            AMF0_DATA | AMF0_COMMAND | AMF3_DATA | AMF3_COMMAND => message.control.extend_from_slice(bytes),
            _ => {}
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
        match message.message_type {
            AMF0_DATA | AMF3_DATA => return amf0_shape(AMF0_DATA, &message.control),
            AMF0_COMMAND => return amf0_shape(AMF0_COMMAND, &message.control),
            AMF3_COMMAND => {
                let payload = match message.control.first() {
                    Some(0) => &message.control[1..],
                    _ => &message.control[..],
                };
                return amf0_shape(AMF0_COMMAND, payload);
            }
            _ => {}
        }
        // rml_rtmp refuses a short control message itself (and closes); the guard only needs
        // the value when there is one.
        let Ok(raw) = <[u8; 4]>::try_from(message.control.as_slice()) else { return Ok(()) };
        let value = u32::from_be_bytes(raw);
        match message.message_type {
            SET_CHUNK_SIZE if value == 0 || value > 0x7FFF_FFFF => {
                return Err(ChunkError::BadChunkSize(u64::from(value)));
            }
            SET_CHUNK_SIZE => self.chunk_size = value,
            WINDOW_ACK_SIZE if value > MAX_WINDOW_ACK_SIZE => return Err(ChunkError::BadWindow(value)),
            _ => {}
        }
        Ok(())
    }
}

/// rml_rtmp's handlers index AMF0 values without checking there are enough of them: a command
/// needs a name, a transaction id and a command object (and `play` a stream name after them),
/// `@setDataFrame` a name and a value. Values that do not parse are left to rml_rtmp, which
/// refuses them with an error.
fn amf0_shape(message_type: u8, payload: &[u8]) -> Result<(), ChunkError> {
    use rml_amf0::Amf0Value;
    let Ok(values) = rml_amf0::deserialize(&mut std::io::Cursor::new(payload)) else { return Ok(()) };
    let first = match values.first() {
        Some(Amf0Value::Utf8String(s)) => s.as_str(),
        _ => "",
    };
    let needed = match (message_type, first) {
        (AMF0_COMMAND, "play") => 4,
        (AMF0_COMMAND, _) => 3,
        (_, "@setDataFrame") => 3,
        _ => 0,
    };
    if values.len() < needed {
        let what = if message_type == AMF0_COMMAND { "command" } else { "data message" };
        return Err(ChunkError::ShortAmf0(format!("{what} {:?}", first.chars().take(32).collect::<String>())));
    }
    Ok(())
}

fn u24(b: &[u8]) -> u32 {
    u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2])
}
