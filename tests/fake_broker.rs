//! Error paths a real broker cannot produce on demand, against a fake server in the test:
//! hostile length prefixes, a peer that closes mid-frame, a broker that hangs.

use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use futures::future::join_all;
use kafka_client::config::ClientConfig;
use kafka_client::connection::{BrokerConnection, ConnectionOptions};
use kafka_client::Error;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsResponse, MetadataRequest};
use kafka_protocol::protocol::Encodable;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// What the fake broker does once it has read a request.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Answer with this raw length prefix and nothing else.
    LengthPrefix(i32),
    /// Announce a 100-byte frame, send 10 bytes, close.
    CloseMidFrame,
    /// Read requests and never answer.
    Hang,
    /// Answer ApiVersions properly, then apply the inner behaviour to later requests.
    Handshake(&'static Behaviour),
    /// Answer with a correlation id nobody asked for.
    WrongCorrelationId,
    /// Close the socket after reading one request.
    Close,
}

async fn fake_broker(behaviour: Behaviour) -> String {
    fake_broker_reporting(behaviour).await.0
}

/// A fake broker that also reports the correlation id of every request it reads.
async fn fake_broker_reporting(behaviour: Behaviour) -> (String, mpsc::UnboundedReceiver<i32>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (seen_tx, seen) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve(socket, behaviour, seen_tx.clone()));
        }
    });
    (addr, seen)
}

async fn read_request(socket: &mut TcpStream) -> Option<i32> {
    let len = socket.read_i32().await.ok()?;
    let mut body = vec![0u8; usize::try_from(len).ok()?];
    socket.read_exact(&mut body).await.ok()?;
    Some(i32::from_be_bytes([body[4], body[5], body[6], body[7]]))
}

async fn serve(mut socket: TcpStream, mut behaviour: Behaviour, seen: mpsc::UnboundedSender<i32>) {
    loop {
        let Some(correlation_id) = read_request(&mut socket).await else {
            return;
        };
        let _ = seen.send(correlation_id);
        match behaviour {
            Behaviour::Handshake(next) => {
                let resp = ApiVersionsResponse::default().with_api_keys(vec![
                    ApiVersion::default()
                        .with_api_key(18)
                        .with_min_version(0)
                        .with_max_version(3),
                    ApiVersion::default()
                        .with_api_key(3)
                        .with_min_version(0)
                        .with_max_version(12),
                ]);
                let mut body = BytesMut::new();
                resp.encode(&mut body, 3).unwrap();
                let mut frame = BytesMut::new();
                frame.put_i32(4 + body.len() as i32);
                frame.put_i32(correlation_id);
                frame.extend_from_slice(&body);
                socket.write_all(&frame).await.unwrap();
                behaviour = *next;
            }
            Behaviour::LengthPrefix(n) => {
                let _ = socket.write_all(&n.to_be_bytes()).await;
                std::future::pending::<()>().await;
            }
            Behaviour::CloseMidFrame => {
                let _ = socket.write_all(&100i32.to_be_bytes()).await;
                let _ = socket.write_all(&[0u8; 10]).await;
                return;
            }
            Behaviour::Hang => {}
            Behaviour::WrongCorrelationId => {
                let mut frame = BytesMut::new();
                frame.put_i32(8);
                frame.put_i32(correlation_id + 1000);
                frame.put_i32(0);
                let _ = socket.write_all(&frame).await;
            }
            Behaviour::Close => return,
        }
    }
}

fn options(setup_ms: u64, request_ms: u64) -> ConnectionOptions {
    let config = ClientConfig::default()
        .set("socket.connection.setup.timeout.ms", &setup_ms.to_string())
        .unwrap()
        .set("request.timeout.ms", &request_ms.to_string())
        .unwrap();
    ConnectionOptions::from(&config)
}

async fn connect(addr: &str) -> Result<BrokerConnection, Error> {
    BrokerConnection::connect(addr, "fake", &options(2_000, 2_000)).await
}

#[tokio::test]
async fn a_negative_length_prefix_is_a_protocol_error() {
    let addr = fake_broker(Behaviour::LengthPrefix(-2)).await;
    let err = connect(&addr).await.unwrap_err();
    assert!(
        matches!(&err, Error::Protocol { reason, .. } if reason.contains("length")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_huge_length_prefix_is_refused_without_allocating_it() {
    let addr = fake_broker(Behaviour::LengthPrefix(i32::MAX)).await;
    let err = connect(&addr).await.unwrap_err();
    assert!(
        matches!(&err, Error::Protocol { reason, .. } if reason.contains("receive.message.max.bytes")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_peer_closing_mid_frame_fails_the_request() {
    let addr = fake_broker(Behaviour::CloseMidFrame).await;
    let err = connect(&addr).await.unwrap_err();
    assert!(
        matches!(&err, Error::Connection { reason, .. } if reason.contains("mid-frame")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_hanging_broker_fails_the_connect_within_the_setup_timeout() {
    let addr = fake_broker(Behaviour::Hang).await;
    let started = Instant::now();
    let err = BrokerConnection::connect(&addr, "fake", &options(300, 30_000))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_request_without_answer_times_out_and_poisons_the_connection() {
    static HANG: Behaviour = Behaviour::Hang;
    let addr = fake_broker(Behaviour::Handshake(&HANG)).await;
    let conn = BrokerConnection::connect(&addr, "fake", &options(2_000, 300))
        .await
        .unwrap();
    let started = Instant::now();
    let err = conn.request(&MetadataRequest::default()).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(conn.is_closed());
    let err = conn.request(&MetadataRequest::default()).await.unwrap_err();
    assert!(matches!(err, Error::Connection { .. }), "{err:?}");
}

#[tokio::test]
async fn every_waiter_gets_the_error_when_the_broker_goes_away() {
    static HANG: Behaviour = Behaviour::Hang;
    let (addr, mut seen) = fake_broker_reporting(Behaviour::Handshake(&HANG)).await;
    let conn = BrokerConnection::connect(&addr, "fake", &options(2_000, 60_000))
        .await
        .unwrap();
    let req = MetadataRequest::default();
    let waiters = (0..10).map(|_| conn.request(&req));
    // Once the broker has read all ten (after the handshake), close from our side: each
    // waiter must resolve with the error.
    let closer = async {
        for _ in 0..11 {
            seen.recv().await.unwrap();
        }
        conn.close();
    };
    let (results, ()) = tokio::join!(join_all(waiters), closer);
    assert_eq!(results.len(), 10);
    for r in results {
        assert!(matches!(r, Err(Error::Connection { .. })), "{r:?}");
    }
}

#[tokio::test]
async fn a_broker_closing_the_socket_fails_pending_requests() {
    static CLOSE: Behaviour = Behaviour::Close;
    let addr = fake_broker(Behaviour::Handshake(&CLOSE)).await;
    let conn = connect(&addr).await.unwrap();
    let err = conn.request(&MetadataRequest::default()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Connection { reason, .. } if reason.contains("closed by the broker")),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unknown_correlation_id_poisons_the_connection() {
    static WRONG: Behaviour = Behaviour::WrongCorrelationId;
    let addr = fake_broker(Behaviour::Handshake(&WRONG)).await;
    let conn = connect(&addr).await.unwrap();
    let err = conn.request(&MetadataRequest::default()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Protocol { reason, .. } if reason.contains("correlation id")),
        "{err:?}"
    );
    assert!(conn.is_closed());
}
