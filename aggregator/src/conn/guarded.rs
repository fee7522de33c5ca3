//! A connection with deadlines and a place under its address's cap.
//!
//! [`Guarded`] wraps any stream: it fails with `TimedOut` when nothing was
//! read or written for the idle timeout, or when the first deadline passes
//! before its condition ([`Until`]): the first byte read (an HTTP/2
//! preface) or the first byte written (an HTTP response, so the request
//! head arrived). Failing the I/O makes hyper drop the connection, which
//! frees its descriptor and its [`Permit`].

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Open connections per address on one listener, capped.
#[derive(Debug, Clone)]
pub struct PerAddress {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    cap: usize,
}

impl PerAddress {
    pub fn new(cap: usize) -> Self {
        Self {
            open: Arc::default(),
            cap,
        }
    }

    /// A place for one more connection from `ip`, or `None` at the cap.
    pub fn admit(&self, ip: IpAddr) -> Option<Permit> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(Permit {
            open: self.open.clone(),
            ip,
        })
    }

    /// Connections open from `ip`.
    pub fn open(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&ip).copied().unwrap_or(0)
    }
}

/// One connection's place under its address's cap; given back on drop.
#[derive(Debug)]
pub struct Permit {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// What ends a connection's first deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// The first byte read: an HTTP/2 client starts with its preface.
    FirstRead,
    /// The first byte written: an HTTP/1 server answers once the request
    /// head is in.
    FirstWrite,
    /// No first deadline (TLS has its handshake timeout).
    Never,
}

/// See the module docs.
#[derive(Debug)]
pub struct Guarded<S> {
    inner: S,
    first: Option<(Until, Pin<Box<Sleep>>)>,
    idle: Pin<Box<Sleep>>,
    idle_timeout: Duration,
    _permit: Permit,
}

impl<S> Guarded<S> {
    pub fn new(
        inner: S,
        permit: Permit,
        until: Until,
        first_timeout: Duration,
        idle_timeout: Duration,
    ) -> Self {
        let first =
            (until != Until::Never).then(|| (until, Box::pin(tokio::time::sleep(first_timeout))));
        Self {
            inner,
            first,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            idle_timeout,
            _permit: permit,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    fn progressed(&mut self, kind: Until) {
        self.idle.as_mut().reset(Instant::now() + self.idle_timeout);
        if self.first.as_ref().is_some_and(|(until, _)| *until == kind) {
            self.first = None;
        }
    }

    /// Registers for the deadlines; `Err` once one has passed.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if let Some((until, deadline)) = &mut self.first
            && deadline.as_mut().poll(cx).is_ready()
        {
            let what = match until {
                Until::FirstRead => "no HTTP/2 preface",
                _ => "no complete request head",
            };
            return Err(io::Error::new(io::ErrorKind::TimedOut, what));
        }
        if self.idle.as_mut().poll(cx).is_ready() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "idle connection"));
        }
        Ok(())
    }

    /// A write's outcome, with its bookkeeping: bytes written are progress;
    /// a write that waits is checked against the deadlines.
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match written {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.progressed(Until::FirstWrite);
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match self.check(cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.progressed(Until::FirstRead);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.check(cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.after_write(cx, written)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.after_write(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_counts_open_connections_per_address() {
        let cap = PerAddress::new(2);
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let first = cap.admit(a).unwrap();
        let _second = cap.admit(a).unwrap();
        assert!(cap.admit(a).is_none());
        assert!(cap.admit(b).is_some(), "another address is not held up");
        drop(first);
        assert_eq!(cap.open(a), 1);
        assert!(cap.admit(a).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_end_silent_and_idle_connections() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let cap = PerAddress::new(8);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let guard = |stream, until| {
            Guarded::new(
                stream,
                cap.admit(ip).unwrap(),
                until,
                Duration::from_secs(10),
                Duration::from_secs(60),
            )
        };

        // Nothing written back within the first deadline: a request head
        // that never completed.
        let (server, mut client) = tokio::io::duplex(64);
        let mut conn = guard(server, Until::FirstWrite);
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        assert!(conn.read(&mut buf).await.unwrap() > 0);
        let started = Instant::now();
        let err = conn.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        assert_eq!(cap.open(ip), 1);
        drop(conn);
        assert_eq!(cap.open(ip), 0, "the place is given back");

        // Once answered, only the idle timeout applies, from the last byte.
        let (server, mut client) = tokio::io::duplex(64);
        let mut conn = guard(server, Until::FirstWrite);
        conn.write_all(b"HTTP/1.1 200 OK\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_secs(50)).await;
        client.write_all(b"x").await.unwrap();
        assert_eq!(conn.read(&mut buf).await.unwrap(), 1);
        let started = Instant::now();
        let err = conn.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(60));

        // A gRPC client that never sends its preface.
        let (server, _client) = tokio::io::duplex(64);
        let mut conn = guard(server, Until::FirstRead);
        conn.write_all(b"settings").await.unwrap();
        let err = conn.read(&mut buf).await.unwrap_err();
        assert!(err.to_string().contains("preface"), "{err}");
    }
}
