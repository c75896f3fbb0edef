//! LZ4 frames exactly as Kafka's `Lz4BlockOutputStream` writes them and
//! `Lz4BlockInputStream` accepts them.
//!
//! Writing: magic `04 22 4D 18`, FLG `0x60` (version 1, independent blocks, no block or
//! content checksum, no content size), BD `0x40` (64 KiB blocks), header checksum `0x82`,
//! then blocks of `[u32 LE size][data]` where the size's top bit marks a block stored raw
//! because compression did not shrink it, then a zero end mark. This is byte-for-byte the
//! frame layout Java produces, and librdkafka's and lz4's own readers take it too.
//!
//! Reading follows Java's rules rather than the full LZ4 spec: Java refuses dependent
//! blocks, a dictionary id, reserved bits and block sizes outside 64 KiB..4 MiB, so such
//! frames cannot come from a Kafka client and are refused here. A content size is skipped,
//! block checksums are verified and the content checksum is not (Java does not check it
//! either; the batch CRC already covers the compressed bytes).
//!
//! The frame codec is written here, on lz4_flex's block API, instead of using lz4_flex's
//! frame types because a Kafka reader needs things they do not offer: skipping the header
//! checksum of magic v0 data (old clients computed it wrongly, KAFKA-3160), a hard cap on
//! output, and decompressing straight into the output buffer.

use crate::error::{Error, Result};

const MAGIC: u32 = 0x184D_2204;
/// Version 01, block independence.
const FLG: u8 = 0x60;
/// 64 KiB maximum block size, as Java's `BLOCKSIZE_64KB`.
const BD: u8 = 0x40;
/// `(xxh32([FLG, BD], 0) >> 8) as u8`, checked in the tests.
const HEADER_CHECKSUM: u8 = 0x82;
const BLOCK_SIZE: usize = 64 * 1024;
const STORED_RAW: u32 = 0x8000_0000;

const FLG_VERSION_MASK: u8 = 0xC0;
const FLG_INDEPENDENT: u8 = 0x20;
const FLG_BLOCK_CHECKSUM: u8 = 0x10;
const FLG_CONTENT_SIZE: u8 = 0x08;
const FLG_CONTENT_CHECKSUM: u8 = 0x04;
/// Bit 1 is reserved and bit 0 is the dictionary id; Java refuses both.
const FLG_REFUSED: u8 = 0x03;

/// LZ4 cannot expand a block by more than 255 to 1 (a 255-byte match per length byte), so
/// this bounds the scratch space a block can need whatever its header claims.
const MAX_EXPANSION: usize = 256;

/// Header, a size word per block, the end mark, and the blocks at their worst.
pub(super) fn max_compressed_len(len: usize) -> usize {
    7 + 4 * (len.div_ceil(BLOCK_SIZE) + 1) + lz4_flex::block::get_maximum_output_size(len)
}

pub(super) fn compress(input: &[u8], out: &mut Vec<u8>) -> Result<()> {
    out.reserve(max_compressed_len(input.len()));
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&[FLG, BD, HEADER_CHECKSUM]);
    for chunk in input.chunks(BLOCK_SIZE) {
        let size_at = out.len();
        let data_at = size_at + 4;
        out.resize(
            data_at + lz4_flex::block::get_maximum_output_size(chunk.len()),
            0,
        );
        let n = lz4_flex::block::compress_into(chunk, &mut out[data_at..])
            .map_err(|e| Error::corrupt(format!("lz4 compression failed: {e}")))?;
        // As Java: a block that does not shrink is stored raw, flagged in the size's top bit.
        let size = if n < chunk.len() {
            out.truncate(data_at + n);
            n as u32
        } else {
            out.truncate(data_at);
            out.extend_from_slice(chunk);
            chunk.len() as u32 | STORED_RAW
        };
        out[size_at..data_at].copy_from_slice(&size.to_le_bytes());
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    Ok(())
}

pub(super) fn decompress(
    input: &[u8],
    max_size: usize,
    skip_header_checksum: bool,
) -> Result<Vec<u8>> {
    let mut r = Reader { input, pos: 0 };
    if r.u32_le()? != MAGIC {
        return Err(corrupt("bad magic number".into()));
    }
    let [flg, bd] = r.array::<2>()?;
    if flg & FLG_VERSION_MASK != 0x40 {
        return Err(corrupt(format!(
            "unsupported frame version in FLG {flg:#04x}"
        )));
    }
    if flg & FLG_REFUSED != 0 {
        return Err(corrupt(format!(
            "reserved or dictionary bits set in FLG {flg:#04x}"
        )));
    }
    if flg & FLG_INDEPENDENT == 0 {
        return Err(corrupt("dependent blocks are not supported".into()));
    }
    if bd & 0x8F != 0 {
        return Err(corrupt(format!("reserved bits set in BD {bd:#04x}")));
    }
    let block_max = match (bd >> 4) & 0x07 {
        code @ 4..=7 => 1usize << (2 * code + 8),
        code => return Err(corrupt(format!("block size code {code} outside 4..=7"))),
    };
    let content_size = if flg & FLG_CONTENT_SIZE != 0 {
        Some(u64::from_le_bytes(r.array::<8>()?))
    } else {
        None
    };
    let descriptor_end = r.pos;
    let [checksum] = r.array::<1>()?;
    if !skip_header_checksum && checksum != (xxh32(&input[4..descriptor_end], 0) >> 8) as u8 {
        return Err(corrupt("frame descriptor checksum mismatch".into()));
    }

    let hint = content_size
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(input.len().saturating_mul(4));
    let mut out = Vec::with_capacity(hint.min(max_size));
    loop {
        let word = r.u32_le()?;
        if word == 0 {
            if flg & FLG_CONTENT_CHECKSUM != 0 {
                r.array::<4>()?;
            }
            return Ok(out);
        }
        let size = (word & !STORED_RAW) as usize;
        if size > block_max {
            return Err(corrupt(format!(
                "block of {size} bytes exceeds the frame's {block_max}"
            )));
        }
        let block = r.take(size)?;
        if flg & FLG_BLOCK_CHECKSUM != 0 && u32::from_le_bytes(r.array::<4>()?) != xxh32(block, 0) {
            return Err(corrupt("block checksum mismatch".into()));
        }
        if word & STORED_RAW != 0 {
            out.extend_from_slice(block);
        } else {
            let start = out.len();
            out.resize(start + block_max.min(size.saturating_mul(MAX_EXPANSION)), 0);
            let n = lz4_flex::block::decompress_into(block, &mut out[start..])
                .map_err(|e| corrupt(format!("invalid block: {e}")))?;
            out.truncate(start + n);
        }
        if out.len() > max_size {
            return Err(super::too_large("lz4", max_size));
        }
    }
}

fn corrupt(reason: String) -> Error {
    Error::corrupt(format!("invalid lz4 frame: {reason}"))
}

/// A bounds-checked cursor over the frame.
struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let bytes = self
            .pos
            .checked_add(n)
            .and_then(|end| self.input.get(self.pos..end))
            .ok_or_else(|| corrupt("frame ends early".into()))?;
        self.pos += n;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u32_le(&mut self) -> Result<u32> {
        self.array::<4>().map(u32::from_le_bytes)
    }
}

const P1: u32 = 0x9E37_79B1;
const P2: u32 = 0x85EB_CA77;
const P3: u32 = 0xC2B2_AE3D;
const P4: u32 = 0x27D4_EB2F;
const P5: u32 = 0x1656_67B1;

/// XXH32, the checksum of the LZ4 frame format (header and block checksums).
fn xxh32(input: &[u8], seed: u32) -> u32 {
    fn round(acc: u32, lane: &[u8]) -> u32 {
        let v = u32::from_le_bytes([lane[0], lane[1], lane[2], lane[3]]);
        acc.wrapping_add(v.wrapping_mul(P2))
            .rotate_left(13)
            .wrapping_mul(P1)
    }
    let mut stripes = input.chunks_exact(16);
    let mut h = if input.len() >= 16 {
        let mut v = [
            seed.wrapping_add(P1).wrapping_add(P2),
            seed.wrapping_add(P2),
            seed,
            seed.wrapping_sub(P1),
        ];
        for stripe in &mut stripes {
            for (acc, lane) in v.iter_mut().zip(stripe.chunks_exact(4)) {
                *acc = round(*acc, lane);
            }
        }
        v[0].rotate_left(1)
            .wrapping_add(v[1].rotate_left(7))
            .wrapping_add(v[2].rotate_left(12))
            .wrapping_add(v[3].rotate_left(18))
    } else {
        seed.wrapping_add(P5)
    };
    // The length is mixed in modulo 2^32, as the reference implementation does.
    h = h.wrapping_add(input.len() as u32);
    let tail = stripes.remainder();
    let mut words = tail.chunks_exact(4);
    for w in &mut words {
        let v = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        h = h
            .wrapping_add(v.wrapping_mul(P3))
            .rotate_left(17)
            .wrapping_mul(P4);
    }
    for &b in words.remainder() {
        h = h
            .wrapping_add(u32::from(b).wrapping_mul(P5))
            .rotate_left(11)
            .wrapping_mul(P1);
    }
    h ^= h >> 15;
    h = h.wrapping_mul(P2);
    h ^= h >> 13;
    h = h.wrapping_mul(P3);
    h ^ (h >> 16)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use lz4_flex::frame::{BlockMode, BlockSize, FrameDecoder, FrameEncoder, FrameInfo};

    use super::*;

    fn data(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i % 251) as u8 ^ (i / 1000) as u8)
            .collect()
    }

    #[test]
    fn xxh32_reference_values() {
        // Published XXH32 test vectors (seed 0).
        assert_eq!(xxh32(b"", 0), 0x02CC_5D05);
        assert_eq!(xxh32(b"abc", 0), 0x32D1_53FF);
        assert_eq!(
            xxh32(b"Nobody inspects the spammish repetition", 0),
            0xE229_3B2F
        );
        assert_eq!((xxh32(&[FLG, BD], 0) >> 8) as u8, HEADER_CHECKSUM);
    }

    #[test]
    fn header_is_the_one_java_writes() {
        let mut out = Vec::new();
        compress(b"hello hello hello hello", &mut out).unwrap();
        // Lz4BlockOutputStream(blockSize=64KB, blockChecksum=false): magic, FLG, BD, HC.
        assert_eq!(&out[..7], &[0x04, 0x22, 0x4D, 0x18, 0x60, 0x40, 0x82]);
        assert_eq!(
            &out[out.len() - 4..],
            &[0, 0, 0, 0],
            "end mark, no content checksum"
        );
    }

    #[test]
    fn incompressible_blocks_are_stored_raw() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let noise: Vec<u8> = (0..1000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        let mut out = Vec::new();
        compress(&noise, &mut out).unwrap();
        let word = u32::from_le_bytes([out[7], out[8], out[9], out[10]]);
        assert_eq!(word, 1000 | STORED_RAW);
        assert_eq!(decompress(&out, 1000, false).unwrap(), noise);
    }

    #[test]
    fn lz4_flex_reads_our_frames() {
        for len in [0, 10, BLOCK_SIZE, 3 * BLOCK_SIZE + 17] {
            let input = data(len);
            let mut out = Vec::new();
            compress(&input, &mut out).unwrap();
            let mut back = Vec::new();
            FrameDecoder::new(&out[..]).read_to_end(&mut back).unwrap();
            assert_eq!(back, input, "{len}");
        }
    }

    /// lz4_flex's frame encoder, configured as Java writes frames, produces frames Java's
    /// rules accept; with its defaults (`BlockSize::Auto`) it may pick other block sizes,
    /// which is why this crate does not rely on it for writing.
    #[test]
    fn we_read_lz4_flex_frames_including_checksums() {
        let input = data(300_000);
        for info in [
            FrameInfo::new()
                .block_size(BlockSize::Max64KB)
                .block_mode(BlockMode::Independent),
            FrameInfo::new()
                .block_size(BlockSize::Max256KB)
                .block_checksums(true)
                .content_checksum(true)
                .content_size(Some(300_000)),
            FrameInfo::new().block_size(BlockSize::Max4MB),
        ] {
            let mut enc = FrameEncoder::with_frame_info(info, Vec::new());
            enc.write_all(&input).unwrap();
            let frame = enc.finish().unwrap();
            assert_eq!(decompress(&frame, input.len(), false).unwrap(), input);
        }
    }

    #[test]
    fn refuses_what_java_refuses() {
        let mut frame = Vec::new();
        compress(&data(100), &mut frame).unwrap();
        let with = |i: usize, b: u8| {
            let mut f = frame.clone();
            f[i] = b;
            f[6] = (xxh32(&f[4..6], 0) >> 8) as u8;
            f
        };
        assert!(
            decompress(&with(4, 0x40), 1000, false).is_err(),
            "dependent blocks"
        );
        assert!(
            decompress(&with(4, 0x61), 1000, false).is_err(),
            "dictionary id"
        );
        assert!(
            decompress(&with(4, 0xA0), 1000, false).is_err(),
            "version 2"
        );
        assert!(
            decompress(&with(5, 0x30), 1000, false).is_err(),
            "block size code 3"
        );
        assert!(
            decompress(&with(5, 0x41), 1000, false).is_err(),
            "reserved BD bits"
        );
        let mut bad_hc = frame.clone();
        bad_hc[6] ^= 1;
        assert!(decompress(&bad_hc, 1000, false).is_err());
        assert_eq!(
            decompress(&bad_hc, 1000, true).unwrap(),
            data(100),
            "magic v0 skips the HC"
        );
        for cut in 0..frame.len() {
            assert!(
                decompress(&frame[..cut], 1000, false).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_tiny_block_cannot_demand_a_large_buffer() {
        // A 4 MiB-block frame of many 2-byte blocks must not zero 4 MiB per block (that
        // would be 40 GB of memset here); the expansion bound keeps it to 512 bytes each.
        let mut frame = vec![0x04, 0x22, 0x4D, 0x18, 0x60, 0x70];
        frame.push((xxh32(&frame[4..6], 0) >> 8) as u8);
        for _ in 0..10_000 {
            frame.extend_from_slice(&2u32.to_le_bytes());
            frame.extend_from_slice(&[0x10, b'x']); // token: one literal, then the literal
        }
        frame.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            decompress(&frame, 1 << 20, false).unwrap(),
            vec![b'x'; 10_000]
        );
    }
}
