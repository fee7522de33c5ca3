//! The gRPC server: the [`IngestService`] behind tonic's HTTP/2 server on
//! the connections the listeners accepted (plain, or TLS from
//! `crate::tls`), with the keepalive and message-size limits agents get.
//! The connection types are protocol-neutral; tonic's view of them (who
//! the peer is) is given here, so that only ingest names tonic.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use fleetwatch_proto::IngestServer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::{Connected, Router, TcpConnectInfo};

use super::IngestService;
use super::convert::MAX_MESSAGE_BYTES;
use crate::conn::Guarded;
use crate::tls::Tcp;

/// The gRPC server stopped with an error.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ServeError(#[from] tonic::transport::Error);

/// Serves `service` on the plain-text connections from `rx` until
/// `shutdown`.
pub async fn serve_plain(
    service: IngestService,
    rx: mpsc::Receiver<(Guarded<TcpStream>, SocketAddr)>,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    router(service)
        .serve_with_incoming_shutdown(
            crate::conn::listen::incoming(rx),
            shutdown.cancelled_owned(),
        )
        .await?;
    Ok(())
}

/// Serves `service` on the TLS connections from `rx` until `shutdown`.
pub async fn serve_tls(
    service: IngestService,
    rx: mpsc::Receiver<(TlsStream<Tcp>, SocketAddr)>,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    router(service)
        .serve_with_incoming_shutdown(tls_incoming(rx), shutdown.cancelled_owned())
        .await?;
    Ok(())
}

/// The `Ingest` service on tonic's server, with HTTP/2 keepalives (a dead
/// agent's stream ends) and the largest message decoded.
fn router(service: IngestService) -> Router {
    let ingest = IngestServer::new(service).max_decoding_message_size(MAX_MESSAGE_BYTES);
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(20)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .add_service(ingest)
}

/// A guarded connection tells tonic the peer of the connection inside.
impl<S: Connected> Connected for Guarded<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.get_ref().connect_info()
    }
}

/// A TLS connection as tonic sees it: its connect info is the TCP one, so
/// `Request::remote_addr` keeps working.
pub struct GrpcConn(TlsStream<Tcp>);

impl Connected for GrpcConn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.0.get_ref().0.get_ref().connect_info()
    }
}

impl AsyncRead for GrpcConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for GrpcConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

/// The incoming connections of the TLS gRPC listener.
fn tls_incoming(
    rx: mpsc::Receiver<(TlsStream<Tcp>, SocketAddr)>,
) -> impl tokio_stream::Stream<Item = io::Result<GrpcConn>> {
    use tokio_stream::StreamExt;
    tokio_stream::wrappers::ReceiverStream::new(rx).map(|(stream, _)| Ok(GrpcConn(stream)))
}
