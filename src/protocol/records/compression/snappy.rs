//! Snappy as Kafka clients frame it.
//!
//! The Java client writes with snappy-java's `SnappyOutputStream`, the "xerial" framing:
//!
//! ```text
//! 82 53 4E 41 50 50 59 00   magic: 0x82 "SNAPPY" 0
//! 00 00 00 01               version 1 (big-endian i32)
//! 00 00 00 01               minimum compatible version 1
//! [u32 BE length][raw snappy block]  ...one per 32 KiB of input
//! ```
//!
//! This is not the official snappy framing format (`snap::read::FrameDecoder`). On reading,
//! input without the xerial magic is one raw snappy block, which is what librdkafka sends
//! and what snappy-java's `SnappyInputStream` falls back to.

use snap::raw::{decompress_len, max_compress_len, Decoder, Encoder};

use crate::error::{Error, Result};

const MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const HEADER_LEN: usize = 16;
/// snappy-java's `SnappyOutputStream` default block size.
const BLOCK_SIZE: usize = 32 * 1024;

/// A raw snappy block cannot expand more than about 22 to 1 (a 64-byte copy per 3-byte
/// tag); a claimed length beyond this bound is corrupt and is refused before allocating.
const MAX_EXPANSION: usize = 32;

/// The header, then each block's length and worst-case size.
pub(super) fn max_compressed_len(len: usize) -> usize {
    HEADER_LEN + len.div_ceil(BLOCK_SIZE) * (4 + max_compress_len(BLOCK_SIZE))
}

pub(super) fn compress(input: &[u8], out: &mut Vec<u8>) -> Result<()> {
    out.reserve(max_compressed_len(input.len()));
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    let mut encoder = Encoder::new();
    for chunk in input.chunks(BLOCK_SIZE) {
        let size_at = out.len();
        let data_at = size_at + 4;
        out.resize(data_at + max_compress_len(chunk.len()), 0);
        let n = encoder
            .compress(chunk, &mut out[data_at..])
            .map_err(|e| Error::corrupt(format!("snappy compression failed: {e}")))?;
        out.truncate(data_at + n);
        // A 32 KiB block compresses to well under 4 GiB, so the length always fits.
        out[size_at..data_at].copy_from_slice(&(n as u32).to_be_bytes());
    }
    Ok(())
}

pub(super) fn decompress(input: &[u8], max_size: usize) -> Result<Vec<u8>> {
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    if !input.starts_with(&MAGIC) {
        raw_block_into(&mut decoder, input, &mut out, max_size)?;
        return Ok(out);
    }
    if input.len() < HEADER_LEN {
        return Err(corrupt("stream shorter than its 16-byte header"));
    }
    out.reserve(input.len().saturating_mul(3).min(max_size));
    let mut pos = HEADER_LEN;
    while pos < input.len() {
        let rest = &input[pos..];
        // snappy-java reads concatenated streams, each with its own header.
        if rest.len() >= HEADER_LEN && rest.starts_with(&MAGIC) {
            pos += HEADER_LEN;
            continue;
        }
        let Some(len_bytes) = rest.get(..4) else {
            return Err(corrupt("stream ends inside a block length"));
        };
        let len =
            u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]) as usize;
        let block = rest
            .get(4..4usize.saturating_add(len))
            .ok_or_else(|| corrupt("block runs past the end of the stream"))?;
        raw_block_into(&mut decoder, block, &mut out, max_size)?;
        pos += 4 + len;
    }
    Ok(out)
}

/// Decompresses one raw snappy block, appending to `out`.
fn raw_block_into(
    decoder: &mut Decoder,
    block: &[u8],
    out: &mut Vec<u8>,
    max_size: usize,
) -> Result<()> {
    let len = decompress_len(block).map_err(|e| corrupt(&e.to_string()))?;
    if len > max_size.saturating_sub(out.len()) {
        return Err(super::too_large("snappy", max_size));
    }
    if len > block.len().saturating_mul(MAX_EXPANSION) {
        return Err(corrupt("block claims an impossible decompressed length"));
    }
    let start = out.len();
    out.resize(start + len, 0);
    let n = decoder
        .decompress(block, &mut out[start..])
        .map_err(|e| corrupt(&e.to_string()))?;
    if n != len {
        return Err(corrupt("block shorter than its declared length"));
    }
    Ok(())
}

fn corrupt(reason: &str) -> Error {
    Error::corrupt(format!("invalid snappy data: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_snappy_javas() {
        let mut out = Vec::new();
        compress(b"kafka", &mut out).unwrap();
        assert_eq!(
            &out[..16],
            &[0x82, 0x53, 0x4E, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1]
        );
        let len = u32::from_be_bytes([out[16], out[17], out[18], out[19]]) as usize;
        assert_eq!(out.len(), 20 + len, "one block, length-prefixed big-endian");
        assert_eq!(
            snap::raw::Decoder::new()
                .decompress_vec(&out[20..])
                .unwrap(),
            b"kafka"
        );
    }

    #[test]
    fn splits_input_into_32k_blocks() {
        let input = vec![7u8; 2 * BLOCK_SIZE + 1];
        let mut out = Vec::new();
        compress(&input, &mut out).unwrap();
        let mut pos = HEADER_LEN;
        let mut sizes = Vec::new();
        while pos < out.len() {
            let len =
                u32::from_be_bytes([out[pos], out[pos + 1], out[pos + 2], out[pos + 3]]) as usize;
            sizes.push(decompress_len(&out[pos + 4..pos + 4 + len]).unwrap());
            pos += 4 + len;
        }
        assert_eq!(sizes, [BLOCK_SIZE, BLOCK_SIZE, 1]);
        assert_eq!(decompress(&out, input.len()).unwrap(), input);
    }

    #[test]
    fn reads_raw_snappy_as_librdkafka_sends_it() {
        let raw = snap::raw::Encoder::new()
            .compress_vec(b"from librdkafka")
            .unwrap();
        assert_eq!(decompress(&raw, 100).unwrap(), b"from librdkafka");
    }

    #[test]
    fn reads_concatenated_xerial_streams() {
        let mut out = Vec::new();
        compress(b"one ", &mut out).unwrap();
        compress(b"two", &mut out).unwrap();
        assert_eq!(decompress(&out, 100).unwrap(), b"one two");
    }

    #[test]
    fn refuses_truncation_and_lies() {
        let mut out = Vec::new();
        compress(&[1u8; 1000], &mut out).unwrap();
        for cut in 1..out.len() {
            if cut == HEADER_LEN {
                continue; // a bare header is a valid empty stream
            }
            assert!(decompress(&out[..cut], 10_000).is_err(), "cut at {cut}");
        }
        // A 6-byte raw block claiming 100 MB is refused before any allocation.
        let liar = [0x80, 0xE1, 0xEB, 0x17, 0x00, 0x00];
        assert!(decompress(&liar, usize::MAX).is_err());
    }
}
