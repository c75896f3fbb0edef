//! The two tasks behind one broker connection, and the state they share.
//!
//! ```text
//!  callers ──Outgoing──▶ [mpsc, bounded] ──▶ writer task ──frames──▶ socket
//!     ▲                                          │ registers the waiter first
//!     │                                          ▼
//!     └────── oneshot ◀── pending map ◀── reader task ◀──frames── socket
//! ```
//!
//! The writer registers a waiter under the request's correlation id *before* it writes the
//! frame, so a fast response always finds it. The reader owns the read half; any failure on
//! either side poisons the connection: every waiter gets the error at once, both tasks stop
//! and the socket closes. Nothing is ever half-written by a cancelled caller, because only the
//! writer task touches the write half and it always finishes a frame it started.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;
use tokio::time::{sleep_until, Instant};

use crate::error::{Error, Result};

/// A request on its way to the writer task.
pub(super) struct Outgoing {
    pub(super) correlation_id: i32,
    /// The response header version for this API and version (0 or 1).
    pub(super) header_version: i16,
    /// The frame, length prefix included: `frame`, then each of `rest` (a produce request's
    /// record batches travel there, written from their own buffers).
    pub(super) frame: Bytes,
    pub(super) rest: Vec<Bytes>,
    /// `false` for `acks=0` produce requests: the reply is sent once the frame is written.
    pub(super) expects_response: bool,
    pub(super) reply: oneshot::Sender<Result<Bytes>>,
}

/// Why a connection stopped serving requests.
#[derive(Clone, Debug)]
enum Poison {
    /// I/O failure, peer closed, idle close, a timed-out request, or the client closed it.
    Connection(String),
    /// The broker sent bytes that are not a valid response frame.
    Protocol(String),
}

struct Waiter {
    header_version: i16,
    reply: oneshot::Sender<Result<Bytes>>,
}

#[derive(Default)]
struct State {
    pending: HashMap<i32, Waiter>,
    poisoned: Option<Poison>,
}

/// State shared by the handle and the two tasks. The lock is never held across an `.await`.
pub(super) struct Shared {
    broker: Arc<str>,
    state: Mutex<State>,
    tasks: Mutex<Vec<AbortHandle>>,
}

impl Shared {
    pub(super) fn new(broker: Arc<str>) -> Self {
        Shared {
            broker,
            state: Mutex::new(State::default()),
            tasks: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the map inconsistent (each operation is
        // a single insert or remove), so a poisoned mutex is still safe to use.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn set_tasks(&self, handles: Vec<AbortHandle>) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        *tasks = handles;
        // A task may have poisoned the connection before its handles were stored.
        if self.lock().poisoned.is_some() {
            tasks.iter().for_each(AbortHandle::abort);
        }
    }

    /// The error a new request gets once the connection is poisoned.
    pub(super) fn closed_error(&self) -> Option<Error> {
        self.lock().poisoned.as_ref().map(|p| self.error(p))
    }

    fn error(&self, poison: &Poison) -> Error {
        match poison {
            Poison::Connection(reason) => Error::Connection {
                broker: self.broker.to_string(),
                reason: reason.clone(),
            },
            Poison::Protocol(reason) => Error::Protocol {
                broker: self.broker.to_string(),
                reason: reason.clone(),
            },
        }
    }

    pub(super) fn is_poisoned(&self) -> bool {
        self.lock().poisoned.is_some()
    }

    /// Registers a waiter; when the connection is already poisoned the waiter gets the error
    /// and `false` comes back, so the writer does not send the frame.
    fn register(
        &self,
        correlation_id: i32,
        header_version: i16,
        reply: oneshot::Sender<Result<Bytes>>,
    ) -> bool {
        let mut state = self.lock();
        if let Some(p) = &state.poisoned {
            let err = self.error(p);
            drop(state);
            let _ = reply.send(Err(err));
            return false;
        }
        state.pending.insert(
            correlation_id,
            Waiter {
                header_version,
                reply,
            },
        );
        true
    }

    fn take(&self, correlation_id: i32) -> Option<Waiter> {
        self.lock().pending.remove(&correlation_id)
    }

    fn has_pending(&self) -> bool {
        !self.lock().pending.is_empty()
    }

    /// Marks the connection dead, fails every waiter with the reason and stops both tasks.
    /// Later calls keep the first reason.
    pub(super) fn poison_connection(&self, reason: impl Into<String>) {
        self.poison(Poison::Connection(reason.into()));
    }

    fn poison(&self, poison: Poison) {
        let waiters = {
            let mut state = self.lock();
            if state.poisoned.is_some() {
                return;
            }
            state.poisoned = Some(poison.clone());
            std::mem::take(&mut state.pending)
        };
        if !waiters.is_empty() {
            tracing::debug!(broker = %self.broker, waiters = waiters.len(), ?poison, "connection poisoned");
        }
        for (_, waiter) in waiters {
            let _ = waiter.reply.send(Err(self.error(&poison)));
        }
        let tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.iter().for_each(AbortHandle::abort);
    }
}

/// Most frames gathered into one write: enough to cut syscalls under load, small enough
/// that one write does not delay the first frame's waiter noticeably.
const MAX_FRAMES_PER_FLUSH: usize = 64;

/// Owns the write half: registers waiters, writes whole frames, closes idle connections.
///
/// Frames go out with vectored writes straight from their buffers (a produce request's
/// record batches are not copied again into a write buffer); the frames that queued up
/// while the previous write ran leave together, in one system call when the socket takes
/// them all.
pub(super) async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut rx: mpsc::Receiver<Outgoing>,
    shared: Arc<Shared>,
    idle: Duration,
) {
    let mut deadline = Instant::now() + idle;
    let mut written_without_response = Vec::new();
    let mut frames: Vec<Bytes> = Vec::with_capacity(MAX_FRAMES_PER_FLUSH);
    loop {
        let first = tokio::select! {
            msg = rx.recv() => match msg {
                Some(m) => m,
                None => {
                    // Every handle is gone: close quietly.
                    shared.poison_connection("connection closed by the client");
                    return;
                }
            },
            _ = sleep_until(deadline) => {
                if shared.has_pending() {
                    deadline = Instant::now() + idle;
                    continue;
                }
                shared.poison_connection(format!("idle for connections.max.idle.ms ({idle:?})"));
                return;
            }
        };
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(msg) = next.take() {
            // A caller that gave up before its frame was written: skip it whole.
            if !msg.reply.is_closed() {
                let sent = if msg.expects_response {
                    shared.register(msg.correlation_id, msg.header_version, msg.reply)
                } else {
                    written_without_response.push(msg.reply);
                    true
                };
                if sent {
                    frames.push(msg.frame);
                    frames.extend(msg.rest);
                }
            }
            taken += 1;
            if taken < MAX_FRAMES_PER_FLUSH {
                next = rx.try_recv().ok();
            }
        }
        if let Err(e) = write_frames(&mut writer, &mut frames).await {
            shared.poison_connection(format!("write failed: {e}"));
            return;
        }
        for reply in written_without_response.drain(..) {
            let _ = reply.send(Ok(Bytes::new()));
        }
        deadline = Instant::now() + idle;
    }
}

/// Writes every frame whole, in order, gathering them into vectored writes; empties
/// `frames`.
async fn write_frames<W: AsyncWrite + Unpin>(
    writer: &mut W,
    frames: &mut Vec<Bytes>,
) -> std::io::Result<()> {
    let mut first = 0; // the first frame not fully written
    while first < frames.len() {
        let mut written = {
            let mut slices = [std::io::IoSlice::new(&[]); MAX_FRAMES_PER_FLUSH];
            let mut count = 0;
            for (slot, frame) in slices.iter_mut().zip(&frames[first..]) {
                *slot = std::io::IoSlice::new(frame);
                count += 1;
            }
            writer.write_vectored(&slices[..count]).await?
        };
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while written > 0 {
            let Some(frame) = frames.get_mut(first) else {
                break;
            };
            if written >= frame.len() {
                written -= frame.len();
                first += 1;
            } else {
                frame.advance(written);
                written = 0;
            }
        }
    }
    frames.clear();
    writer.flush().await
}

/// Owns the read half: reads frames, checks their length, hands each body to its waiter.
pub(super) async fn read_loop<R: AsyncRead + Unpin>(
    mut reader: R,
    shared: Arc<Shared>,
    max_size: usize,
) {
    loop {
        match read_frame(&mut reader, max_size).await {
            Ok(frame) => {
                if let Err(poison) = dispatch(&shared, frame) {
                    shared.poison(poison);
                    return;
                }
            }
            Err(poison) => {
                shared.poison(poison);
                return;
            }
        }
    }
}

/// Reads one size-prefixed frame. Memory grows with the bytes that actually arrive, never
/// with the length the peer claims, so a lying length prefix cannot allocate gigabytes.
async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_size: usize,
) -> Result<Bytes, Poison> {
    let len = match reader.read_i32().await {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(Poison::Connection("closed by the broker".into()))
        }
        Err(e) => return Err(Poison::Connection(format!("read failed: {e}"))),
    };
    let len = usize::try_from(len).unwrap_or(0);
    if len < 4 || len > max_size {
        return Err(Poison::Protocol(format!(
            "response length {len} outside 4..={max_size} (receive.message.max.bytes)"
        )));
    }
    // Up to 8 MiB at once: a Fetch response of that size (several partitions at the
    // default max.partition.fetch.bytes) lands without being regrown and copied. Past that,
    // memory grows with the bytes that actually arrive, so a lying length prefix costs at
    // most 8 MiB.
    const FIRST: usize = 8 * 1024 * 1024;
    let mut buf = BytesMut::with_capacity(len.min(FIRST));
    while buf.len() < len {
        if buf.capacity() == buf.len() {
            let grow = (len - buf.len()).min(buf.len().max(FIRST));
            buf.reserve(grow);
        }
        let want = len - buf.len();
        let mut limited = (&mut *reader).take(want as u64);
        match limited.read_buf(&mut buf).await {
            Ok(0) => {
                return Err(Poison::Connection(format!(
                    "closed by the broker mid-frame ({} of {len} bytes read)",
                    buf.len()
                )))
            }
            Ok(_) => {}
            Err(e) => return Err(Poison::Connection(format!("read failed: {e}"))),
        }
    }
    Ok(buf.freeze())
}

fn dispatch(shared: &Shared, mut frame: Bytes) -> Result<(), Poison> {
    let correlation_id = frame.get_i32();
    let Some(waiter) = shared.take(correlation_id) else {
        return Err(Poison::Protocol(format!(
            "response with unknown correlation id {correlation_id}"
        )));
    };
    // Response header v1 adds tagged fields after the correlation id.
    if waiter.header_version >= 1 && skip_tagged_fields(&mut frame).is_none() {
        let _ = waiter.reply.send(Err(Error::Protocol {
            broker: shared.broker.to_string(),
            reason: format!("truncated response header for correlation id {correlation_id}"),
        }));
        return Err(Poison::Protocol(format!(
            "truncated response header for correlation id {correlation_id}"
        )));
    }
    let _ = waiter.reply.send(Ok(frame));
    Ok(())
}

/// Skips a tagged-field section (count, then tag, size and bytes per field); `None` when the
/// bytes run out first.
fn skip_tagged_fields(buf: &mut Bytes) -> Option<()> {
    let count = read_unsigned_varint(buf)?;
    for _ in 0..count {
        let _tag = read_unsigned_varint(buf)?;
        let size = read_unsigned_varint(buf)? as usize;
        if buf.remaining() < size {
            return None;
        }
        buf.advance(size);
    }
    Some(())
}

fn read_unsigned_varint(buf: &mut Bytes) -> Option<u32> {
    let mut value = 0u32;
    for shift in (0..35).step_by(7) {
        if !buf.has_remaining() {
            return None;
        }
        let b = buf.get_u8();
        value |= u32::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_tagged_fields() {
        let mut b = Bytes::from_static(&[2, 0, 1, 0xAA, 5, 2, 0xBB, 0xCC, 9, 9]);
        assert!(skip_tagged_fields(&mut b).is_some());
        assert_eq!(&b[..], &[9, 9]);
        let mut truncated = Bytes::from_static(&[1, 0, 5, 1]);
        assert!(skip_tagged_fields(&mut truncated).is_none());
    }

    /// A socket that takes at most `limit` bytes per (vectored) write.
    struct Trickle {
        written: Vec<u8>,
        limit: usize,
        calls: usize,
    }

    impl Trickle {
        fn take<'a>(&mut self, bufs: impl Iterator<Item = &'a [u8]>) -> usize {
            self.calls += 1;
            let mut taken = 0;
            for b in bufs {
                let n = b.len().min(self.limit - taken);
                self.written.extend_from_slice(&b[..n]);
                taken += n;
                if taken == self.limit {
                    break;
                }
            }
            taken
        }
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            std::task::Poll::Ready(Ok(self.take(std::iter::once(buf))))
        }

        fn poll_write_vectored(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            bufs: &[std::io::IoSlice<'_>],
        ) -> std::task::Poll<std::io::Result<usize>> {
            std::task::Poll::Ready(Ok(self.take(bufs.iter().map(|b| &b[..]))))
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn frames_go_out_whole_and_in_order_across_partial_writes() {
        let frames: Vec<Bytes> = (0..10u8)
            .map(|i| Bytes::from(vec![i; 3 + usize::from(i) * 5]))
            .collect();
        let expected: Vec<u8> = frames.iter().flat_map(|f| f.iter().copied()).collect();
        for limit in [1, 7, 64, 10_000] {
            let mut socket = Trickle {
                written: Vec::new(),
                limit,
                calls: 0,
            };
            let mut pending = frames.clone();
            write_frames(&mut socket, &mut pending).await.unwrap();
            assert_eq!(socket.written, expected, "limit {limit}");
            assert!(pending.is_empty());
            if limit == 10_000 {
                assert_eq!(socket.calls, 1, "everything in one vectored write");
            }
        }
    }
}
