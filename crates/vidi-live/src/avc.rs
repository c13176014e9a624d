//! Reading the two decoder configurations a publisher sends (FLV's sequence headers) far enough
//! to fill [`VideoConfig`] and [`AudioConfig`]: the picture size from the H.264 SPS (cropping
//! included) and the codec strings a playlist's CODECS attribute carries.
//!
//! Only what the segmenter and the playlist need is read; the configuration bytes themselves are
//! kept as sent, because they go into the init segment unchanged.

use bytes::Bytes;

use crate::media::{AudioConfig, VideoConfig};

/// A configuration that cannot be used. The ingest refuses the stream with this in its log line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn bad(what: impl Into<String>) -> ConfigError {
    ConfigError(what.into())
}

/// The parts of an `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §5.3.3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvcRecord {
    pub profile: u8,
    pub compatibility: u8,
    pub level: u8,
    /// Bytes of each NAL unit's length prefix in the samples (4 from every encoder we know).
    pub length_size: u8,
    pub sps: Vec<Vec<u8>>,
    pub pps: Vec<Vec<u8>>,
}

impl AvcRecord {
    pub fn parse(avcc: &[u8]) -> Result<Self, ConfigError> {
        let mut at = Reader { bytes: avcc, at: 0 };
        let version = at.u8()?;
        if version != 1 {
            return Err(bad(format!("avcC version {version}, expected 1")));
        }
        let profile = at.u8()?;
        let compatibility = at.u8()?;
        let level = at.u8()?;
        let length_size = (at.u8()? & 0x03) + 1;
        let mut sps = Vec::new();
        for _ in 0..(at.u8()? & 0x1f) {
            let len = at.u16()? as usize;
            sps.push(at.take(len)?.to_vec());
        }
        let mut pps = Vec::new();
        for _ in 0..at.u8()? {
            let len = at.u16()? as usize;
            pps.push(at.take(len)?.to_vec());
        }
        if sps.is_empty() || pps.is_empty() {
            return Err(bad("avcC without an SPS or a PPS"));
        }
        Ok(AvcRecord { profile, compatibility, level, length_size, sps, pps })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ConfigError> {
        let end = self.at.checked_add(n).filter(|end| *end <= self.bytes.len());
        let end = end.ok_or_else(|| bad("avcC is truncated"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, ConfigError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, ConfigError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
}

/// An RBSP bit reader (emulation prevention bytes already removed).
struct Bits {
    bytes: Vec<u8>,
    bit: usize,
}

impl Bits {
    fn new(nal_payload: &[u8]) -> Self {
        // 00 00 03 → 00 00: the encoder inserted the 03 so the payload never looks like a
        // start code; the syntax is read without it.
        let mut bytes = Vec::with_capacity(nal_payload.len());
        let mut zeros = 0;
        for &b in nal_payload {
            if zeros >= 2 && b == 3 {
                zeros = 0;
                continue;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            bytes.push(b);
        }
        Bits { bytes, bit: 0 }
    }
    fn u1(&mut self) -> Result<u32, ConfigError> {
        let byte = self.bytes.get(self.bit / 8).ok_or_else(|| bad("SPS is truncated"))?;
        let v = (byte >> (7 - self.bit % 8)) & 1;
        self.bit += 1;
        Ok(v as u32)
    }
    fn u(&mut self, n: u32) -> Result<u32, ConfigError> {
        let mut v = 0;
        for _ in 0..n {
            v = (v << 1) | self.u1()?;
        }
        Ok(v)
    }
    /// Exp-Golomb, unsigned.
    fn ue(&mut self) -> Result<u32, ConfigError> {
        let mut zeros = 0;
        while self.u1()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return Err(bad("SPS has an invalid Exp-Golomb code"));
            }
        }
        Ok(((1u64 << zeros) - 1 + self.u(zeros)? as u64) as u32)
    }
    /// Exp-Golomb, signed.
    fn se(&mut self) -> Result<i32, ConfigError> {
        let k = self.ue()? as i64;
        Ok(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) } as i32)
    }
}

/// The displayed picture size of an SPS NAL unit (header byte included), cropping applied
/// (H.264 §7.3.2.1.1 and the frame cropping equations of §7.4.2.1.1).
pub fn sps_size(sps: &[u8]) -> Result<(u32, u32), ConfigError> {
    if sps.len() < 4 || sps[0] & 0x1f != 7 {
        return Err(bad("not an SPS NAL unit"));
    }
    let mut r = Bits::new(&sps[1..]);
    let profile = r.u(8)?;
    r.u(16)?; // constraint flags, level
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = 0;
    if matches!(profile, 100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.u1()?;
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.u1()?; // qpprime_y_zero_transform_bypass_flag
        if r.u1()? == 1 {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.u1()? == 1 {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.u1()?;
            r.se()?;
            r.se()?;
            for _ in 0..r.ue()? {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.u1()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = r.ue()? + 1;
    let height_map_units = r.ue()? + 1;
    let frame_mbs_only = r.u1()?;
    if frame_mbs_only == 0 {
        r.u1()?; // mb_adaptive_frame_field_flag
    }
    r.u1()?; // direct_8x8_inference_flag
    let (mut left, mut right, mut top, mut bottom) = (0, 0, 0, 0);
    if r.u1()? == 1 {
        (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
    }
    let chroma_array_type = if separate_colour_plane == 1 { 0 } else { chroma_format_idc };
    let (crop_x, crop_y) = match chroma_array_type {
        0 => (1, 2 - frame_mbs_only),
        1 => (2, 2 * (2 - frame_mbs_only)),
        2 => (2, 2 - frame_mbs_only),
        _ => (1, 2 - frame_mbs_only),
    };
    let width = (width_mbs * 16).checked_sub(crop_x * (left + right));
    let height = ((2 - frame_mbs_only) * height_map_units * 16).checked_sub(crop_y * (top + bottom));
    match (width, height) {
        (Some(w), Some(h)) if w > 0 && h > 0 => Ok((w, h)),
        _ => Err(bad("SPS cropping exceeds the picture")),
    }
}

fn skip_scaling_list(r: &mut Bits, size: usize) -> Result<(), ConfigError> {
    let (mut last, mut next) = (8i32, 8i32);
    for _ in 0..size {
        if next != 0 {
            next = (last + r.se()? + 256) % 256;
        }
        last = if next == 0 { last } else { next };
    }
    Ok(())
}

impl VideoConfig {
    /// Reads an `AVCDecoderConfigurationRecord` (FLV's AVC sequence header body): the codec
    /// string from its profile bytes, the picture size from its first SPS.
    pub fn from_avcc(avcc: Bytes) -> Result<VideoConfig, ConfigError> {
        let record = AvcRecord::parse(&avcc)?;
        let (width, height) = sps_size(&record.sps[0])?;
        let codec = format!("avc1.{:02x}{:02x}{:02x}", record.profile, record.compatibility, record.level);
        Ok(VideoConfig { avcc, width, height, codec })
    }
}

/// The sampling frequencies of an `AudioSpecificConfig`'s 4-bit index (ISO/IEC 14496-3).
const SAMPLE_RATES: [u32; 13] =
    [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

impl AudioConfig {
    /// Reads an `AudioSpecificConfig` (FLV's AAC sequence header body): object type, sample
    /// rate (indexed or explicit) and channel configuration.
    pub fn from_asc(asc: Bytes) -> Result<AudioConfig, ConfigError> {
        let mut r = Bits { bytes: asc.to_vec(), bit: 0 };
        let short = |_| bad("AudioSpecificConfig is truncated");
        let mut object_type = r.u(5).map_err(short)?;
        if object_type == 31 {
            object_type = 32 + r.u(6).map_err(short)?;
        }
        let index = r.u(4).map_err(short)?;
        let sample_rate = if index == 15 {
            r.u(24).map_err(short)?
        } else {
            *SAMPLE_RATES
                .get(index as usize)
                .ok_or_else(|| bad(format!("AAC sampling frequency index {index} is reserved")))?
        };
        let channels = r.u(4).map_err(short)? as u8;
        if object_type == 0 || sample_rate == 0 {
            return Err(bad("AudioSpecificConfig without an object type or a sample rate"));
        }
        Ok(AudioConfig { asc, sample_rate, channels, codec: format!("mp4a.40.{object_type}") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // x264's SPS for 1280×720 High@3.1 (720 = 45 macroblock rows: no cropping) and for
    // 1920×1080 High@4.0 (68 rows = 1088, cropped by 8).
    const SPS_720: &[u8] = &[
        0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x80, 0x50, 0x05, 0xbb, 0x01, 0x6a, 0x02, 0x02, 0x02, 0x80, 0x00, 0x00,
        0x03, 0x00, 0x80, 0x00, 0x00, 0x1e, 0x07, 0x8c, 0x18, 0xcd,
    ];
    const SPS_1080: &[u8] = &[
        0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0xc0, 0x44, 0x00, 0x00, 0x03, 0x00, 0x04,
        0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc6, 0x58,
    ];

    fn record(sps: &[u8]) -> Vec<u8> {
        let pps = [0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];
        let mut v = vec![1, sps[1], sps[2], sps[3], 0xff, 0xe1];
        v.extend((sps.len() as u16).to_be_bytes());
        v.extend(sps);
        v.push(1);
        v.extend((pps.len() as u16).to_be_bytes());
        v.extend(pps);
        v
    }

    #[test]
    fn sizes_and_codec_strings_come_from_the_sps() {
        let c = VideoConfig::from_avcc(Bytes::from(record(SPS_720))).unwrap();
        assert_eq!((c.width, c.height, c.codec.as_str()), (1280, 720, "avc1.64001f"));
        let c = VideoConfig::from_avcc(Bytes::from(record(SPS_1080))).unwrap();
        assert_eq!((c.width, c.height, c.codec.as_str()), (1920, 1080, "avc1.640028"));
    }

    #[test]
    fn broken_records_are_errors_not_panics() {
        let full = record(SPS_720);
        for len in 0..full.len() {
            let _ = VideoConfig::from_avcc(Bytes::copy_from_slice(&full[..len]));
        }
        assert!(VideoConfig::from_avcc(Bytes::from_static(&[2, 0x64, 0, 0x1f])).is_err());
    }

    #[test]
    fn audio_specific_configs() {
        // AAC-LC 44.1 kHz stereo (ffmpeg's default), 48 kHz mono, and HE-AAC with an explicit
        // 24-bit rate.
        let c = AudioConfig::from_asc(Bytes::from_static(&[0x12, 0x10])).unwrap();
        assert_eq!((c.sample_rate, c.channels, c.codec.as_str()), (44100, 2, "mp4a.40.2"));
        let c = AudioConfig::from_asc(Bytes::from_static(&[0x11, 0x88])).unwrap();
        assert_eq!((c.sample_rate, c.channels, c.codec.as_str()), (48000, 1, "mp4a.40.2"));
        let c = AudioConfig::from_asc(Bytes::from_static(&[0x2f, 0x80, 0x2e, 0xe0, 0x10])).unwrap();
        assert_eq!((c.sample_rate, c.channels, c.codec.as_str()), (24000, 2, "mp4a.40.5"));
        assert!(AudioConfig::from_asc(Bytes::from_static(&[0x12])).is_err());
        assert!(AudioConfig::from_asc(Bytes::from_static(&[0x16, 0x80])).is_err());
    }
}
