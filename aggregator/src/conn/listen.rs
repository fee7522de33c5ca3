//! Plain-text listeners: an accept loop per listener that logs failed
//! accepts (out of descriptors and the like) and backs off, refuses
//! connections over the per-address cap, and hands out [`Guarded`]
//! connections to axum ([`ChannelListener`]) or tonic ([`incoming`]).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::guarded::Permit;
use super::{Guarded, Limits, PerAddress, Until};

/// How long the accept loop waits after a failed accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts on `listener` until `shutdown`, guarding each connection
/// (`until` picks the first deadline: `FirstWrite` for HTTP, `FirstRead`
/// for gRPC).
pub fn spawn_plain(
    listener: TcpListener,
    limits: Limits,
    until: Until,
    shutdown: CancellationToken,
    what: &'static str,
) -> mpsc::Receiver<(Guarded<TcpStream>, SocketAddr)> {
    let (tx, rx) = mpsc::channel(64);
    let cap = PerAddress::new(limits.connections_per_address);
    let first_timeout = match until {
        Until::FirstRead => limits.grpc_preface_timeout,
        _ => limits.http_header_timeout,
    };
    tokio::spawn(async move {
        while let Some((tcp, peer, permit)) = next(&listener, &cap, what, &shutdown).await {
            let conn = Guarded::new(tcp, permit, until, first_timeout, limits.idle_timeout);
            if tx.send((conn, peer)).await.is_err() {
                return;
            }
        }
    });
    rx
}

/// The next connection on `listener` whose address is under the cap, with
/// its place, Nagle off; `None` once `shutdown` comes. A failed accept (out
/// of descriptors and the like) is logged and retried after a pause. Both
/// the plain and the TLS accept loops take their connections from here.
pub(crate) async fn next(
    listener: &TcpListener,
    cap: &PerAddress,
    what: &'static str,
    shutdown: &CancellationToken,
) -> Option<(TcpStream, SocketAddr, Permit)> {
    loop {
        let (tcp, peer) = tokio::select! {
            () = shutdown.cancelled() => return None,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(listener = what, error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let Some(permit) = admit(cap, peer, what) else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        return Some((tcp, peer, permit));
    }
}

/// A place under the cap for `peer`, or a log line and `None`.
fn admit(cap: &PerAddress, peer: SocketAddr, what: &'static str) -> Option<Permit> {
    let permit = cap.admit(peer.ip());
    if permit.is_none() {
        tracing::warn!(
            listener = what,
            %peer,
            open = cap.open(peer.ip()),
            "connection refused: this address holds the most connections allowed \
             ([limits] connections_per_address)"
        );
    }
    permit
}

/// Connections from an accept loop, as axum's listener.
pub struct ChannelListener<Io> {
    rx: mpsc::Receiver<(Io, SocketAddr)>,
    local: SocketAddr,
}

impl<Io> ChannelListener<Io> {
    pub fn new(rx: mpsc::Receiver<(Io, SocketAddr)>, local: SocketAddr) -> Self {
        Self { rx, local }
    }
}

impl<Io> axum::serve::Listener for ChannelListener<Io>
where
    Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    type Io = Io;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(pair) => pair,
            // The accept loop stopped (shutdown): nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Connections from an accept loop, as tonic's incoming stream.
pub fn incoming<Io>(
    rx: mpsc::Receiver<(Io, SocketAddr)>,
) -> impl tokio_stream::Stream<Item = io::Result<Io>> {
    use tokio_stream::StreamExt;
    tokio_stream::wrappers::ReceiverStream::new(rx).map(|(io, _)| Ok(io))
}
