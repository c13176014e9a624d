//! The two decoder configurations FLV carries, read just enough for [`VideoConfig`] and
//! [`AudioConfig`]: the codec strings, the picture size (from the first SPS) and the AAC sample
//! rate and channels. Private to the ingest until the shared parsers land in `avc.rs`.

use bytes::Bytes;

use crate::media::{AudioConfig, VideoConfig};

/// An `AVCDecoderConfigurationRecord` (ISO 14496-15 §5.3.3.1). `None` when it is not one.
pub(super) fn video_config(avcc: Bytes) -> Option<VideoConfig> {
    if avcc.len() < 7 || avcc[0] != 1 {
        return None;
    }
    let codec = format!("avc1.{:02x}{:02x}{:02x}", avcc[1], avcc[2], avcc[3]);
    let sps_count = avcc[5] & 0x1F;
    let (width, height) = if sps_count > 0 {
        let len = avcc.get(6..8)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let sps = avcc.get(8..8 + len)?;
        sps_size(sps).unwrap_or((0, 0))
    } else {
        (0, 0)
    };
    Some(VideoConfig { avcc, width, height, codec })
}

/// An `AudioSpecificConfig` (ISO 14496-3 §1.6.2.1). `None` when too short to be one.
pub(super) fn audio_config(asc: Bytes) -> Option<AudioConfig> {
    let mut r = Bits::new(&asc);
    let mut object_type = r.bits(5)?;
    if object_type == 31 {
        object_type = 32 + r.bits(6)?;
    }
    const RATES: [u32; 13] = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];
    let index = r.bits(4)?;
    let sample_rate = match index {
        15 => r.bits(24)?,
        i => *RATES.get(i as usize)?,
    };
    let channels = r.bits(4)? as u8;
    Some(AudioConfig { asc, sample_rate, channels, codec: format!("mp4a.40.{object_type}") })
}

/// Width and height from an H.264 SPS NAL unit (ITU-T H.264 §7.3.2.1.1), cropping applied.
fn sps_size(nal: &[u8]) -> Option<(u32, u32)> {
    // Emulation-prevention bytes (00 00 03) are not part of the syntax.
    let mut rbsp = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal.get(1..)? {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        rbsp.push(b);
    }
    let mut r = Bits::new(&rbsp);
    let profile = r.bits(8)?;
    r.bits(16)?; // constraint flags, level
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format = 1;
    if matches!(profile, 100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135) {
        chroma_format = r.ue()?;
        if chroma_format == 3 {
            r.bits(1)?; // separate_colour_plane_flag
        }
        r.ue()?; // bit_depth_luma
        r.ue()?; // bit_depth_chroma
        r.bits(1)?; // qpprime_y_zero_transform_bypass
        if r.bits(1)? == 1 {
            let lists = if chroma_format == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bits(1)? == 1 {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num
    match r.ue()? {
        0 => {
            r.ue()?;
        }
        1 => {
            r.bits(1)?;
            r.se()?;
            r.se()?;
            for _ in 0..r.ue()?.min(256) {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bits(1)?; // gaps_in_frame_num_allowed
    let width_mbs = r.ue()? + 1;
    let height_map_units = r.ue()? + 1;
    let frame_mbs_only = r.bits(1)?;
    if frame_mbs_only == 0 {
        r.bits(1)?; // mb_adaptive_frame_field
    }
    r.bits(1)?; // direct_8x8_inference
    let (mut crop_x, mut crop_y) = (0, 0);
    if r.bits(1)? == 1 {
        let (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        let (unit_x, unit_y) = match chroma_format {
            1 => (2, 2 * (2 - frame_mbs_only)),
            2 => (2, 2 - frame_mbs_only),
            _ => (1, 2 - frame_mbs_only),
        };
        crop_x = (left + right).saturating_mul(unit_x);
        crop_y = (top + bottom).saturating_mul(unit_y);
    }
    let width = (width_mbs * 16).checked_sub(crop_x)?;
    let height = ((2 - frame_mbs_only) * height_map_units * 16).checked_sub(crop_y)?;
    Some((width, height))
}

fn skip_scaling_list(r: &mut Bits, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            next = (last + i64::from(r.se()?) + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

/// A big-endian bit reader; every read is checked (the bytes are the publisher's).
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Bits { data, pos: 0 }
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.pos / 8)?;
            v = v << 1 | u32::from(byte >> (7 - self.pos % 8) & 1);
            self.pos += 1;
        }
        Some(v)
    }

    /// Exp-Golomb, unsigned. Values above 2^31 are refused (no honest SPS has them).
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bits(1)? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1u32 << zeros) - 1 + self.bits(zeros)?)
    }

    fn se(&mut self) -> Option<i32> {
        let k = self.ue()?;
        let v = k.div_ceil(2) as i32;
        Some(if k % 2 == 1 { v } else { -v })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_avcc_and_its_sps() {
        // x264's 320x240 High profile SPS (level 1.3), wrapped in an avcC record.
        let sps = [
            0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00,
            0x03, 0x03, 0xc0, 0xf1, 0x42, 0x99, 0x60,
        ];
        let mut avcc = vec![1, 0x64, 0x00, 0x0d, 0xff, 0xe1, 0, sps.len() as u8];
        avcc.extend_from_slice(&sps);
        avcc.extend_from_slice(&[1, 0, 4, 0x68, 0xeb, 0xe3, 0xcb]);
        let c = video_config(Bytes::from(avcc)).expect("an avcC");
        assert_eq!((c.codec.as_str(), c.width, c.height), ("avc1.64000d", 320, 240));
        assert!(video_config(Bytes::from_static(&[1, 2, 3])).is_none());
    }

    #[test]
    fn reads_an_audio_specific_config() {
        // AAC-LC, 44.1 kHz, stereo: 00010 0100 0010 000
        let c = audio_config(Bytes::from_static(&[0x12, 0x10])).expect("an ASC");
        assert_eq!((c.codec.as_str(), c.sample_rate, c.channels), ("mp4a.40.2", 44100, 2));
        assert!(audio_config(Bytes::from_static(&[0x12])).is_none());
    }
}
