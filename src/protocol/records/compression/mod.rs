//! Record-batch compression: the codecs of Kafka's `compression.type`, byte-compatible with
//! what the Java client writes and reads.
//!
//! Only the records section of a batch is compressed; the 61-byte header stays plain so a
//! broker can read offsets and producer state without decompressing. Each codec uses the
//! framing the Java client uses, because brokers and other clients decode with it:
//!
//! | codec  | id | framing                                                               |
//! |--------|----|-----------------------------------------------------------------------|
//! | gzip   | 1  | a standard gzip stream (RFC 1952)                                     |
//! | snappy | 2  | snappy-java's "xerial" stream: 16-byte header, then `[u32 len][block]` |
//! | lz4    | 3  | an LZ4 frame, 64 KiB independent blocks, no checksums (see [`lz4`])   |
//! | zstd   | 4  | plain zstd frames                                                     |
//!
//! Decompression is always bounded by a caller-given maximum: a batch is untrusted input,
//! and a few kilobytes of gzip or zstd can expand to gigabytes.

mod lz4;
mod snappy;
mod zstd;

use std::fmt;
use std::io::Read;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The default ceiling on one batch's decompressed size, 128 MiB.
///
/// Far above any batch a broker with the default `message.max.bytes` (1 MiB) holds at a
/// realistic compression ratio, yet low enough that a compression bomb in a fetch response
/// cannot exhaust memory.
pub const DEFAULT_MAX_DECOMPRESSED_SIZE: usize = 128 * 1024 * 1024;

const GZIP_LEVELS: (i32, i32, i32) = (1, 9, 6);
const LZ4_LEVELS: (i32, i32, i32) = (1, 17, 9);
const ZSTD_LEVELS: (i32, i32, i32) = (-131_072, 22, 3);

/// A record-batch compression codec, with its optional level (Java `compression.type` and
/// `compression.<codec>.level`).
///
/// `level: None` means the codec's default, as in the Java client. Parse the Java names with
/// [`FromStr`]:
///
/// ```
/// use kafka_client::protocol::records::Compression;
///
/// let c: Compression = "lz4".parse()?;
/// assert_eq!(c, Compression::Lz4 { level: None });
/// let c = Compression::Zstd { level: None }.with_level(9)?;
/// assert!(Compression::Gzip { level: None }.with_level(10).is_err());
/// # Ok::<(), kafka_client::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Compression {
    /// No compression (the Java default, `compression.type=none`).
    #[default]
    None,
    /// gzip; `level` 1..=9, default 6 (`compression.gzip.level`, where -1 also means 6).
    Gzip {
        /// The deflate level, `None` for the default.
        level: Option<i32>,
    },
    /// snappy, in snappy-java's framing. Snappy has no levels.
    Snappy,
    /// LZ4 frames; `level` 1..=17, default 9 (`compression.lz4.level`).
    ///
    /// The level is validated like Java's, but every level compresses with LZ4's fast
    /// compressor, which is what Java uses at its default level 9; higher levels would
    /// need LZ4-HC, which this crate does not link.
    Lz4 {
        /// The LZ4 level, `None` for the default.
        level: Option<i32>,
    },
    /// zstd; `level` -131072..=22, default 3 (`compression.zstd.level`).
    Zstd {
        /// The zstd level, `None` for the default.
        level: Option<i32>,
    },
}

impl Compression {
    /// The codec id in the low three bits of a batch's attributes: none 0, gzip 1,
    /// snappy 2, lz4 3, zstd 4.
    pub const fn id(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip { .. } => 1,
            Compression::Snappy => 2,
            Compression::Lz4 { .. } => 3,
            Compression::Zstd { .. } => 4,
        }
    }

    /// The codec of a batch's `attributes` (only the low three bits are read), with
    /// default levels. Ids 5 to 7 are corrupt data.
    pub fn from_attributes(attributes: i16) -> Result<Self> {
        Ok(match attributes & 0x07 {
            0 => Compression::None,
            1 => Compression::Gzip { level: None },
            2 => Compression::Snappy,
            3 => Compression::Lz4 { level: None },
            4 => Compression::Zstd { level: None },
            other => {
                return Err(Error::corrupt(format!(
                    "unknown compression codec id {other}"
                )))
            }
        })
    }

    /// The Java `compression.type` name: `none`, `gzip`, `snappy`, `lz4` or `zstd`.
    pub const fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip { .. } => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 { .. } => "lz4",
            Compression::Zstd { .. } => "zstd",
        }
    }

    /// The level as configured (`None`: the codec's default, or a codec without levels).
    pub const fn level(self) -> Option<i32> {
        match self {
            Compression::Gzip { level }
            | Compression::Lz4 { level }
            | Compression::Zstd { level } => level,
            Compression::None | Compression::Snappy => None,
        }
    }

    /// The same codec with `level`, checked against the range the Java client accepts.
    ///
    /// Fails with [`Error::Config`] naming `compression.<codec>.level`, or
    /// `compression.type` for a codec that has no levels.
    pub fn with_level(self, level: i32) -> Result<Self> {
        let with = match self {
            Compression::Gzip { .. } => Compression::Gzip { level: Some(level) },
            Compression::Lz4 { .. } => Compression::Lz4 { level: Some(level) },
            Compression::Zstd { .. } => Compression::Zstd { level: Some(level) },
            Compression::None | Compression::Snappy => {
                return Err(Error::config(
                    "compression.type",
                    self.name(),
                    "this codec takes no compression level",
                ))
            }
        };
        with.validate()?;
        Ok(with)
    }

    /// Checks the level against the Java client's ranges: gzip 1..=9 or -1, lz4 1..=17,
    /// zstd -131072..=22.
    pub fn validate(self) -> Result<()> {
        let (key, (min, max, _), level) = match self {
            Compression::Gzip { level: Some(l) } => ("compression.gzip.level", GZIP_LEVELS, l),
            Compression::Lz4 { level: Some(l) } => ("compression.lz4.level", LZ4_LEVELS, l),
            Compression::Zstd { level: Some(l) } => ("compression.zstd.level", ZSTD_LEVELS, l),
            _ => return Ok(()),
        };
        // Java's gzip validator also takes Deflater.DEFAULT_COMPRESSION (-1).
        let java_default = matches!(self, Compression::Gzip { .. }) && level == -1;
        if (min..=max).contains(&level) || java_default {
            return Ok(());
        }
        let extra = if matches!(self, Compression::Gzip { .. }) {
            ", or -1 for the default"
        } else {
            ""
        };
        Err(Error::config(
            key,
            level,
            format!("must be between {min} and {max}{extra}"),
        ))
    }

    /// The level compression runs at: the default when unset, clamped into the valid range
    /// so that an unvalidated level can never make a codec fail.
    pub fn effective_level(self) -> Option<i32> {
        let (level, (min, max, default)) = match self {
            Compression::Gzip { level } => (level, GZIP_LEVELS),
            Compression::Lz4 { level } => (level, LZ4_LEVELS),
            Compression::Zstd { level } => (level, ZSTD_LEVELS),
            Compression::None | Compression::Snappy => return None,
        };
        Some(match level {
            None | Some(-1) if matches!(self, Compression::Gzip { .. }) => default,
            None => default,
            Some(l) => l.clamp(min, max),
        })
    }

    /// Compresses `input`, appending the codec's stream to `out` (for `None`, a copy).
    pub fn compress(self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        match self {
            Compression::None => {
                out.extend_from_slice(input);
                Ok(())
            }
            Compression::Gzip { .. } => gzip_compress(input, self.level_or_default(), out),
            Compression::Snappy => snappy::compress(input, out),
            Compression::Lz4 { .. } => lz4::compress(input, out),
            Compression::Zstd { .. } => zstd::compress(input, self.level_or_default(), out),
        }
    }

    /// Decompresses a records section written by any Kafka client, refusing to produce more
    /// than `max_size` bytes ([`Error::Corrupt`]).
    pub fn decompress(self, input: &[u8], max_size: usize) -> Result<Vec<u8>> {
        self.decompress_for_magic(input, max_size, 2)
    }

    /// [`Compression::decompress`] for a batch of message format `magic`: magic 0 LZ4 data
    /// was written by clients that checksummed the LZ4 frame header wrongly (KAFKA-3160), so
    /// that checksum is not checked, as in Java.
    pub(crate) fn decompress_for_magic(
        self,
        input: &[u8],
        max_size: usize,
        magic: i8,
    ) -> Result<Vec<u8>> {
        match self {
            Compression::None => {
                if input.len() > max_size {
                    return Err(too_large("uncompressed", max_size));
                }
                Ok(input.to_vec())
            }
            Compression::Gzip { .. } => gzip_decompress(input, max_size),
            Compression::Snappy => snappy::decompress(input, max_size),
            Compression::Lz4 { .. } => lz4::decompress(input, max_size, magic == 0),
            Compression::Zstd { .. } => zstd::decompress(input, max_size),
        }
    }

    /// The most bytes [`compress`](Self::compress) can append for `len` input bytes, so a
    /// caller can allocate once.
    pub fn max_compressed_len(self, len: usize) -> usize {
        match self {
            Compression::None => len,
            // zlib's conservative deflateBound, plus the gzip header and trailer.
            Compression::Gzip { .. } => len + len.div_ceil(8) + len.div_ceil(64) + 5 + 18,
            Compression::Snappy => snappy::max_compressed_len(len),
            Compression::Lz4 { .. } => lz4::max_compressed_len(len),
            Compression::Zstd { .. } => ::zstd::zstd_safe::compress_bound(len),
        }
    }

    fn level_or_default(self) -> i32 {
        self.effective_level().unwrap_or(0)
    }
}

impl fmt::Display for Compression {
    /// The Java `compression.type` name; the level is not shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Compression {
    type Err = Error;

    /// Parses a Java `compression.type` value (`none`, `gzip`, `snappy`, `lz4`, `zstd`;
    /// ASCII case ignored), with the codec's default level.
    fn from_str(s: &str) -> Result<Self> {
        let name = s.trim();
        let parsed = [
            Compression::None,
            Compression::Gzip { level: None },
            Compression::Snappy,
            Compression::Lz4 { level: None },
            Compression::Zstd { level: None },
        ]
        .into_iter()
        .find(|c| c.name().eq_ignore_ascii_case(name));
        parsed.ok_or_else(|| {
            Error::config(
                "compression.type",
                s,
                "expected one of none, gzip, snappy, lz4, zstd",
            )
        })
    }
}

/// The error for output that would pass the caller's limit.
fn too_large(codec: &str, max_size: usize) -> Error {
    Error::corrupt(format!(
        "{codec} data decompresses to more than the {max_size}-byte limit"
    ))
}

fn gzip_compress(input: &[u8], level: i32, out: &mut Vec<u8>) -> Result<()> {
    use std::io::Write;
    // `effective_level` keeps the level within 1..=9, so the cast cannot wrap.
    let level = flate2::Compression::new(level.unsigned_abs());
    let mut encoder = flate2::write::GzEncoder::new(out, level);
    encoder
        .write_all(input)
        .and_then(|()| encoder.try_finish())
        .map_err(|e| Error::corrupt(format!("gzip compression failed: {e}")))
}

fn gzip_decompress(input: &[u8], max_size: usize) -> Result<Vec<u8>> {
    // Java's GZIPInputStream reads concatenated members, so read them all too.
    let decoder = flate2::bufread::MultiGzDecoder::new(input);
    read_bounded(decoder, max_size, input.len().saturating_mul(4), "gzip")
}

/// Reads `reader` to the end, failing once more than `max_size` bytes come out; `hint` sizes
/// the first allocation, growth after that follows the actual output.
fn read_bounded(reader: impl Read, max_size: usize, hint: usize, codec: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(hint.min(max_size));
    let limit = u64::try_from(max_size)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| Error::corrupt(format!("invalid {codec} data: {e}")))?;
    if out.len() > max_size {
        return Err(too_large(codec, max_size));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip { level: None },
        Compression::Snappy,
        Compression::Lz4 { level: None },
        Compression::Zstd { level: None },
    ];

    fn sample(len: usize) -> Vec<u8> {
        // Compressible but not trivial: a repeating text with a counter in it.
        let mut v = Vec::with_capacity(len);
        let mut i = 0u32;
        while v.len() < len {
            v.extend_from_slice(format!("record-{i} payload ").as_bytes());
            i += 1;
        }
        v.truncate(len);
        v
    }

    #[test]
    fn ids_names_and_parsing_follow_java() {
        for (i, c) in ALL.into_iter().enumerate() {
            assert_eq!(c.id(), i as i16);
            assert_eq!(Compression::from_attributes(c.id()).unwrap(), c);
            assert_eq!(c.to_string().parse::<Compression>().unwrap(), c);
        }
        assert_eq!(
            "ZSTD".parse::<Compression>().unwrap(),
            Compression::Zstd { level: None }
        );
        assert_eq!(
            Compression::from_attributes(0x0b).unwrap(),
            Compression::Lz4 { level: None }
        );
        assert!(Compression::from_attributes(5).is_err());
        let err = "brotli".parse::<Compression>().unwrap_err();
        assert!(err.to_string().contains("compression.type"), "{err}");
    }

    #[test]
    fn levels_are_validated_like_java() {
        let gzip = Compression::Gzip { level: None };
        assert_eq!(gzip.effective_level(), Some(6));
        assert_eq!(gzip.with_level(-1).unwrap().effective_level(), Some(6));
        assert!(gzip.with_level(9).is_ok());
        let err = gzip.with_level(10).unwrap_err();
        assert!(
            err.to_string().contains("compression.gzip.level=\"10\""),
            "{err}"
        );
        assert!(gzip.with_level(0).is_err());

        let lz4 = Compression::Lz4 { level: None };
        assert_eq!(lz4.effective_level(), Some(9));
        assert!(lz4.with_level(17).is_ok());
        assert!(lz4
            .with_level(18)
            .unwrap_err()
            .to_string()
            .contains("compression.lz4.level"));

        let zstd = Compression::Zstd { level: None };
        assert_eq!(zstd.effective_level(), Some(3));
        assert!(zstd.with_level(-131_072).is_ok());
        assert!(zstd
            .with_level(23)
            .unwrap_err()
            .to_string()
            .contains("compression.zstd.level"));

        assert!(Compression::Snappy.with_level(1).is_err());
        // An unvalidated level is clamped rather than handed to the codec.
        assert_eq!(
            Compression::Gzip { level: Some(42) }.effective_level(),
            Some(9)
        );
    }

    #[test]
    fn every_codec_round_trips() {
        for len in [0, 1, 100, 70_000, 200_000] {
            let data = sample(len);
            for c in ALL {
                let mut out = b"prefix".to_vec();
                c.compress(&data, &mut out).unwrap();
                assert_eq!(&out[..6], b"prefix", "{c} appends");
                let back = c.decompress(&out[6..], data.len()).unwrap();
                assert_eq!(back, data, "{c} at {len} bytes");
            }
        }
    }

    #[test]
    fn max_compressed_len_is_an_upper_bound() {
        let noise: Vec<u8> = (0..200_000u64)
            .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8)
            .collect();
        for len in [0, 1, 1000, 65_536, 200_000] {
            for c in ALL {
                let mut out = Vec::new();
                c.compress(&noise[..len], &mut out).unwrap();
                assert!(
                    out.len() <= c.max_compressed_len(len),
                    "{c} at {len}: {}",
                    out.len()
                );
            }
        }
    }

    #[test]
    fn levels_round_trip() {
        let data = sample(10_000);
        for c in [
            Compression::Gzip { level: Some(1) },
            Compression::Gzip { level: Some(9) },
            Compression::Zstd { level: Some(-5) },
            Compression::Zstd { level: Some(19) },
            Compression::Lz4 { level: Some(17) },
        ] {
            let mut out = Vec::new();
            c.compress(&data, &mut out).unwrap();
            assert_eq!(c.decompress(&out, data.len()).unwrap(), data, "{c:?}");
        }
    }

    #[test]
    fn decompression_is_bounded() {
        let bomb = vec![0u8; 1 << 20];
        for c in ALL {
            let mut out = Vec::new();
            c.compress(&bomb, &mut out).unwrap();
            let err = c.decompress(&out, 1000).unwrap_err();
            assert!(matches!(err, Error::Corrupt { .. }), "{c}: {err}");
            assert!(
                c.decompress(&out, bomb.len()).is_ok(),
                "{c} at exactly the limit"
            );
            assert!(
                c.decompress(&out, bomb.len() - 1).is_err(),
                "{c} one byte over"
            );
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for c in ALL.into_iter().skip(1) {
            for junk in [&b""[..], b"\x00", b"not compressed at all", &[0xff; 64]] {
                // Some codecs accept some junk (an empty gzip stream is valid); none may panic.
                let _ = c.decompress(junk, 1 << 20);
            }
        }
    }
}
