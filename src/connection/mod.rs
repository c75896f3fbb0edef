//! One connection to one broker: framing, correlation ids, pipelining, version negotiation.
//!
//! A [`BrokerConnection`] is shared (`Arc`) between tasks; many requests are in flight on it
//! at once and each caller awaits only its own response. Two tasks sit behind it, one owning
//! the socket's write half and one its read half. On connect the client sends ApiVersions and
//! afterwards every request goes out at the highest version both sides support.
//!
//! The producer, consumer and admin client use this layer through the cluster's connection
//! pool. It is public as a low-level escape hatch: any request of the `kafka-protocol` crate
//! can be sent with [`BrokerConnection::request`].
//!
//! ```no_run
//! use kafka_client::config::ClientConfig;
//! use kafka_client::connection::{BrokerConnection, ConnectionOptions};
//! use kafka_protocol::messages::MetadataRequest;
//! # async fn demo() -> kafka_client::Result<()> {
//! let opts = ConnectionOptions::from(&ClientConfig::default());
//! let conn = BrokerConnection::connect("127.0.0.1:9092", "bootstrap", &opts).await?;
//! let metadata = conn.request(&MetadataRequest::default()).await?;
//! println!("{} brokers", metadata.brokers.len());
//! # Ok(()) }
//! ```

mod io;
pub(crate) mod versions;

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use crate::config::ClientConfig;
use crate::error::{Error, KafkaCode, Result};
use versions::{api_name, BrokerVersions};

/// How many requests may wait for the writer task before callers wait in turn.
const QUEUE_DEPTH: usize = 256;

/// The ApiVersions version tried first; older brokers answer with their range and we retry.
const API_VERSIONS_VERSION: i16 = 3;

/// The settings a connection needs; build them from a [`ClientConfig`] with `From`.
#[derive(Clone, Debug)]
pub struct ConnectionOptions {
    pub(crate) client_id: StrBytes,
    pub(crate) request_timeout: Duration,
    pub(crate) setup_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_response_size: usize,
}

impl From<&ClientConfig> for ConnectionOptions {
    fn from(c: &ClientConfig) -> Self {
        ConnectionOptions {
            client_id: StrBytes::from_string(c.client_id.clone()),
            request_timeout: c.request_timeout,
            setup_timeout: c.connection_setup_timeout,
            idle_timeout: c.connections_max_idle,
            max_response_size: c.max_response_size,
        }
    }
}

/// A live, pipelined connection to one broker. See the [module docs](self).
pub struct BrokerConnection {
    broker: Arc<str>,
    client_id: StrBytes,
    request_timeout: Duration,
    tx: mpsc::Sender<io::Outgoing>,
    shared: Arc<io::Shared>,
    versions: BrokerVersions,
    next_correlation_id: AtomicI32,
}

impl std::fmt::Debug for BrokerConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerConnection")
            .field("broker", &self.broker)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl BrokerConnection {
    /// Opens a TCP connection to `addr` and negotiates API versions, all within
    /// `socket.connection.setup.timeout.ms`. `broker` names the peer in errors and logs.
    pub async fn connect(addr: &str, broker: &str, opts: &ConnectionOptions) -> Result<Self> {
        let setup = async {
            let stream = TcpStream::connect(addr).await.map_err(|e| Error::Connect {
                addr: addr.to_owned(),
                reason: e.to_string(),
            })?;
            stream.set_nodelay(true).map_err(|e| Error::Connect {
                addr: addr.to_owned(),
                reason: format!("cannot set TCP_NODELAY: {e}"),
            })?;
            let mut conn = Self::over(stream, broker, opts);
            conn.negotiate_versions().await?;
            Ok(conn)
        };
        match tokio::time::timeout(opts.setup_timeout, setup).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout {
                what: format!("connecting to {addr} (socket.connection.setup.timeout.ms)"),
                after: opts.setup_timeout,
            }),
        }
    }

    /// Wraps an established byte stream (TCP now; TLS later) and starts its two tasks.
    pub(crate) fn over<S>(stream: S, broker: &str, opts: &ConnectionOptions) -> Self
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let broker: Arc<str> = Arc::from(broker);
        let (read_half, write_half) = tokio::io::split(stream);
        let shared = Arc::new(io::Shared::new(broker.clone()));
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let reader = tokio::spawn(io::read_loop(
            read_half,
            shared.clone(),
            opts.max_response_size,
        ));
        let writer = tokio::spawn(io::write_loop(
            write_half,
            rx,
            shared.clone(),
            opts.idle_timeout,
        ));
        shared.set_tasks(vec![reader.abort_handle(), writer.abort_handle()]);
        BrokerConnection {
            broker,
            client_id: opts.client_id.clone(),
            request_timeout: opts.request_timeout,
            tx,
            shared,
            versions: BrokerVersions::default(),
            next_correlation_id: AtomicI32::new(0),
        }
    }

    /// The broker's name in errors: its id, or its address before metadata is known.
    pub fn broker(&self) -> &str {
        &self.broker
    }

    /// `true` once the connection failed or was closed; the next request needs a new one.
    pub fn is_closed(&self) -> bool {
        self.shared.is_poisoned() || self.tx.is_closed()
    }

    /// Closes the connection, failing requests still in flight.
    pub fn close(&self) {
        self.shared
            .poison_connection("connection closed by the client");
    }

    /// The version of `R` this connection uses.
    pub fn version<R: Request>(&self) -> Result<i16> {
        self.versions.pick::<R>(&self.broker)
    }

    /// Sends a request at the highest common version and awaits its response, within
    /// `request.timeout.ms`.
    ///
    /// # Cancellation
    /// Dropping the future never leaves a partial frame on the socket: a request not yet
    /// written is skipped whole, one already written has its response discarded.
    pub async fn request<R: Request>(&self, req: &R) -> Result<R::Response> {
        let version = self.version::<R>()?;
        self.request_at(req, version, self.request_timeout).await
    }

    /// [`request`](Self::request) with an explicit version and timeout (JoinGroup waits up to
    /// the rebalance timeout, for example).
    pub async fn request_at<R: Request>(
        &self,
        req: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response> {
        let encode = |id| {
            self.encode(req, version, id)
                .map(|frame| (frame, Vec::new()))
        };
        let body = self.roundtrip::<R>(encode, version, true, timeout).await?;
        self.decode::<R>(body, version)
    }

    /// Sends a request whose body the caller encoded as `body` (segments written one after
    /// the other, without being copied into one buffer) at `version`, and awaits its
    /// response within `request.timeout.ms`.
    ///
    /// # Cancellation
    /// As for [`request`](Self::request).
    pub(crate) async fn request_encoded<R: Request>(
        &self,
        body: Vec<Bytes>,
        version: i16,
    ) -> Result<R::Response> {
        let encode = |id| self.encode_head::<R>(body, version, id);
        let response = self
            .roundtrip::<R>(encode, version, true, self.request_timeout)
            .await?;
        self.decode::<R>(response, version)
    }

    /// [`request_encoded`](Self::request_encoded) for a request the broker does not answer
    /// (`acks=0` produce): resolves once the frame has been written.
    pub(crate) async fn send_encoded_only<R: Request>(
        &self,
        body: Vec<Bytes>,
        version: i16,
    ) -> Result<()> {
        let encode = |id| self.encode_head::<R>(body, version, id);
        self.roundtrip::<R>(encode, version, false, self.request_timeout)
            .await
            .map(drop)
    }

    fn decode<R: Request>(&self, mut body: Bytes, version: i16) -> Result<R::Response> {
        R::Response::decode(&mut body, version).map_err(|e| Error::Protocol {
            broker: self.broker.to_string(),
            reason: format!(
                "cannot decode {} v{version} response: {e}",
                api_name(R::KEY)
            ),
        })
    }

    /// Sends a request the broker does not answer (`acks=0` produce). Resolves once the frame
    /// has been written to the socket.
    pub async fn send_only<R: Request>(&self, req: &R, version: i16) -> Result<()> {
        let encode = |id| {
            self.encode(req, version, id)
                .map(|frame| (frame, Vec::new()))
        };
        self.roundtrip::<R>(encode, version, false, self.request_timeout)
            .await
            .map(drop)
    }

    /// Sends the frame `encode` makes for a fresh correlation id and awaits the response body.
    async fn roundtrip<R: Request>(
        &self,
        encode: impl FnOnce(i32) -> Result<(Bytes, Vec<Bytes>)>,
        version: i16,
        expects_response: bool,
        timeout: Duration,
    ) -> Result<Bytes> {
        if let Some(err) = self.shared.closed_error() {
            return Err(err);
        }
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed) & i32::MAX;
        let (frame, rest) = encode(correlation_id)?;
        let (reply, response) = oneshot::channel();
        let outgoing = io::Outgoing {
            correlation_id,
            header_version: R::Response::header_version(version),
            frame,
            rest,
            expects_response,
            reply,
        };
        let exchange = async {
            if self.tx.send(outgoing).await.is_err() {
                return Err(self.closed());
            }
            response.await.unwrap_or_else(|_| Err(self.closed()))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => {
                // As the Java client does: a request that timed out leaves the connection in an
                // unknown state, so close it; the next request reconnects.
                self.shared
                    .poison_connection(format!("{} request timed out", api_name(R::KEY)));
                Err(Error::Timeout {
                    what: format!("{} request to broker {}", api_name(R::KEY), self.broker),
                    after: timeout,
                })
            }
        }
    }

    fn closed(&self) -> Error {
        self.shared
            .closed_error()
            .unwrap_or_else(|| Error::Connection {
                broker: self.broker.to_string(),
                reason: "connection closed".into(),
            })
    }

    /// The length prefix and request header of a frame whose body is `body`, with `body`.
    fn encode_head<R: Request>(
        &self,
        body: Vec<Bytes>,
        version: i16,
        correlation_id: i32,
    ) -> Result<(Bytes, Vec<Bytes>)> {
        let body_len = body.iter().map(Bytes::len).sum();
        let head = self.frame_head::<R>(version, correlation_id, body_len, 0)?;
        Ok((head.freeze(), body))
    }

    /// The whole frame of `req`, in one buffer.
    fn encode<R: Request>(&self, req: &R, version: i16, correlation_id: i32) -> Result<Bytes> {
        let cannot = |e| encode_error(R::KEY, version, e);
        let body_len = req.compute_size(version).map_err(cannot)?;
        let mut buf = self.frame_head::<R>(version, correlation_id, body_len, body_len)?;
        let head_len = buf.len();
        req.encode(&mut buf, version).map_err(cannot)?;
        if buf.len() != head_len + body_len {
            return Err(encode_error(
                R::KEY,
                version,
                format!("encoded {} bytes, sized {body_len}", buf.len() - head_len),
            ));
        }
        Ok(buf.freeze())
    }

    /// A buffer holding the length prefix (for a body of `body_len` bytes) and the request
    /// header, with room for `room` more bytes.
    fn frame_head<R: Request>(
        &self,
        version: i16,
        correlation_id: i32,
        body_len: usize,
        room: usize,
    ) -> Result<BytesMut> {
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        let header_version = R::header_version(version);
        let cannot = |e| encode_error(R::KEY, version, e);
        let header_size = header.compute_size(header_version).map_err(cannot)?;
        let size = header_size + body_len;
        let len = i32::try_from(size).map_err(|_| {
            Error::InvalidArgument(format!(
                "{} request of {size} bytes is too large",
                api_name(R::KEY)
            ))
        })?;
        let mut head = BytesMut::with_capacity(4 + header_size + room);
        head.put_i32(len);
        header.encode(&mut head, header_version).map_err(cannot)?;
        Ok(head)
    }

    /// ApiVersions handshake. A broker that does not know our ApiVersions version answers
    /// with error 35 and a v0 body listing its own range; we retry at its highest version.
    async fn negotiate_versions(&mut self) -> Result<()> {
        let mut version = API_VERSIONS_VERSION;
        for _ in 0..2 {
            let mut req = ApiVersionsRequest::default();
            if version >= 3 {
                req = req
                    .with_client_software_name(StrBytes::from_static_str("kafka-client-rs"))
                    .with_client_software_version(StrBytes::from_static_str(env!(
                        "CARGO_PKG_VERSION"
                    )));
            }
            let encode = |id| {
                self.encode(&req, version, id)
                    .map(|frame| (frame, Vec::new()))
            };
            let body = self
                .roundtrip::<ApiVersionsRequest>(encode, version, true, self.request_timeout)
                .await?;
            let code = body
                .get(..2)
                .map(|b| i16::from_be_bytes([b[0], b[1]]))
                .unwrap_or(-1);
            let decode_version = if code == KafkaCode::UNSUPPORTED_VERSION.code() {
                0
            } else {
                version
            };
            let resp =
                ApiVersionsResponse::decode(&mut body.clone(), decode_version).map_err(|e| {
                    Error::Protocol {
                        broker: self.broker.to_string(),
                        reason: format!(
                            "cannot decode ApiVersions v{decode_version} response: {e}"
                        ),
                    }
                })?;
            if code == KafkaCode::UNSUPPORTED_VERSION.code() {
                let theirs = resp
                    .api_keys
                    .iter()
                    .find(|k| k.api_key == ApiKey::ApiVersions as i16)
                    .map(|k| k.max_version)
                    .unwrap_or(0);
                version = theirs.min(API_VERSIONS_VERSION);
                continue;
            }
            crate::error::check_code(resp.error_code, || crate::error::ErrorContext {
                broker: Some(self.broker.to_string()),
                ..Default::default()
            })?;
            self.versions = BrokerVersions::new(
                resp.api_keys
                    .iter()
                    .map(|k| (k.api_key, k.min_version, k.max_version)),
            );
            return Ok(());
        }
        Err(Error::Protocol {
            broker: self.broker.to_string(),
            reason: "ApiVersions negotiation did not converge".into(),
        })
    }
}

/// `kafka-protocol` reports codec failures as `anyhow::Error`; only their text is kept.
fn encode_error(api: i16, version: i16, e: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!(
        "cannot encode {} v{version} request: {e}",
        api_name(api)
    ))
}
