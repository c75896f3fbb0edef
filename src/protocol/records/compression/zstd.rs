//! zstd: plain zstd frames, as zstd-jni's `ZstdOutputStream` writes them for the Java client.
//!
//! Contexts are expensive to set up (hundreds of KiB of tables), and every produced and
//! fetched zstd batch needs one, so each thread keeps one compression and one
//! decompression context and resets it per batch. The streaming API is used both ways: it
//! writes straight after the batch header in the output buffer, and on reading it handles
//! frames without a content size (what Java's streaming writer produces) and caps the output
//! as it grows instead of trusting a size claimed in the frame.

use std::cell::RefCell;

use zstd::zstd_safe::zstd_sys::ZSTD_EndDirective;
use zstd::zstd_safe::{self, CCtx, CParameter, DCtx, InBuffer, OutBuffer, ResetDirective};

use crate::error::{Error, Result};

/// Output grows by at least this much at a time while decompressing.
const CHUNK: usize = 64 * 1024;

thread_local! {
    static COMPRESSOR: RefCell<Option<CCtx<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<DCtx<'static>>> = const { RefCell::new(None) };
}

pub(super) fn compress(input: &[u8], level: i32, out: &mut Vec<u8>) -> Result<()> {
    let cached = COMPRESSOR.try_with(|cell| {
        let mut slot = cell.try_borrow_mut().ok()?;
        if slot.is_none() {
            *slot = CCtx::try_create();
        }
        slot.as_mut()
            .map(|ctx| compress_with(ctx, input, level, &mut *out))
    });
    match cached {
        Ok(Some(result)) => result,
        // The thread is shutting down or allocation failed: try a one-off context.
        _ => compress_with(
            &mut CCtx::try_create().ok_or_else(no_context)?,
            input,
            level,
            out,
        ),
    }
}

pub(super) fn decompress(input: &[u8], max_size: usize) -> Result<Vec<u8>> {
    let cached = DECOMPRESSOR.try_with(|cell| {
        let mut slot = cell.try_borrow_mut().ok()?;
        if slot.is_none() {
            *slot = DCtx::try_create();
        }
        slot.as_mut()
            .map(|ctx| decompress_with(ctx, input, max_size))
    });
    match cached {
        Ok(Some(result)) => result,
        _ => decompress_with(
            &mut DCtx::try_create().ok_or_else(no_context)?,
            input,
            max_size,
        ),
    }
}

fn compress_with(
    ctx: &mut CCtx<'static>,
    input: &[u8],
    level: i32,
    out: &mut Vec<u8>,
) -> Result<()> {
    ctx.reset(ResetDirective::SessionAndParameters)
        .map_err(err)?;
    ctx.set_parameter(CParameter::CompressionLevel(level))
        .map_err(err)?;
    // Knowing the size lets zstd size its tables to the batch, and records it in the frame
    // header, which every reader accepts.
    ctx.set_pledged_src_size(Some(input.len() as u64))
        .map_err(err)?;
    out.reserve(zstd_safe::compress_bound(input.len()));
    let mut src = InBuffer::around(input);
    loop {
        if out.len() == out.capacity() {
            out.reserve(CHUNK);
        }
        let pos = out.len();
        let mut dst = OutBuffer::around_pos(out, pos);
        let left = ctx
            .compress_stream2(&mut dst, &mut src, ZSTD_EndDirective::ZSTD_e_end)
            .map_err(err)?;
        if left == 0 {
            return Ok(());
        }
    }
}

fn decompress_with(ctx: &mut DCtx<'static>, input: &[u8], max_size: usize) -> Result<Vec<u8>> {
    ctx.reset(ResetDirective::SessionOnly).map_err(err)?;
    // A frame's declared size only sizes the first allocation; it is not trusted.
    let hint = match zstd_safe::get_frame_content_size(input) {
        Ok(Some(n)) => usize::try_from(n).unwrap_or(usize::MAX),
        _ => input.len().saturating_mul(4),
    };
    let cap = max_size.saturating_add(1);
    let mut out = Vec::with_capacity(hint.min(cap));
    let mut src = InBuffer::around(input);
    loop {
        if out.len() == out.capacity() {
            // One byte past the limit is enough room to notice the limit was passed.
            let room = CHUNK.max(out.len() / 2).min(cap.saturating_sub(out.len()));
            if room == 0 {
                return Err(super::too_large("zstd", max_size));
            }
            out.reserve_exact(room);
        }
        let (in_before, out_before) = (src.pos, out.len());
        let hint = ctx
            .decompress_stream(&mut OutBuffer::around_pos(&mut out, out_before), &mut src)
            .map_err(err)?;
        if out.len() > max_size {
            return Err(super::too_large("zstd", max_size));
        }
        let input_done = src.pos >= input.len();
        if hint == 0 && input_done {
            return Ok(out);
        }
        // With output room left, zstd has flushed all it can: it needs input there is not.
        let room_left = out.len() < out.capacity();
        if hint != 0 && input_done && room_left {
            return Err(Error::corrupt("invalid zstd data: frame ends early"));
        }
        if src.pos == in_before && out.len() == out_before && room_left {
            return Err(Error::corrupt(
                "invalid zstd data: decoder made no progress",
            ));
        }
    }
}

fn err(code: usize) -> Error {
    Error::corrupt(format!("zstd: {}", zstd_safe::get_error_name(code)))
}

fn no_context() -> Error {
    Error::corrupt("zstd: cannot allocate a context")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_frames_without_content_size_and_concatenated_frames() {
        // zstd::stream::Encoder does not pledge a size, like zstd-jni's ZstdOutputStream.
        let data = vec![42u8; 300_000];
        let mut frame = zstd::stream::encode_all(&data[..], 3).unwrap();
        assert!(matches!(
            zstd_safe::get_frame_content_size(&frame),
            Ok(None)
        ));
        assert_eq!(decompress(&frame, data.len()).unwrap(), data);

        frame.extend(zstd::stream::encode_all(&b"tail"[..], 1).unwrap());
        let back = decompress(&frame, data.len() + 4).unwrap();
        assert_eq!(&back[data.len()..], b"tail");
    }

    #[test]
    fn our_frames_decode_with_the_reference_decoder() {
        let data: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 1000).to_le_bytes())
            .collect();
        let mut out = Vec::new();
        compress(&data, 3, &mut out).unwrap();
        assert_eq!(zstd::stream::decode_all(&out[..]).unwrap(), data);
    }

    #[test]
    fn truncated_and_lying_frames_fail() {
        let mut out = Vec::new();
        compress(&vec![1u8; 10_000], 3, &mut out).unwrap();
        for cut in 0..out.len() {
            assert!(decompress(&out[..cut], 1 << 20).is_err(), "cut at {cut}");
        }
        // Claimed content size far above the data: capped by the limit, not the claim.
        assert!(decompress(&out, 100).is_err());
    }

    #[test]
    fn contexts_survive_errors() {
        assert!(decompress(b"\x28\xb5\x2f\xfd garbage", 1000).is_err());
        let mut out = Vec::new();
        compress(b"still fine", 3, &mut out).unwrap();
        assert_eq!(decompress(&out, 100).unwrap(), b"still fine");
    }
}
