//! The kernel's process events (the proc connector): a netlink socket that
//! receives a message for every fork, exec and exit on the host, so worker
//! restarts are counted however short the lives, not only those a /proc
//! poll happens to see.
//!
//! Subscribing needs CAP_NET_ADMIN (in the initial user namespace) and an
//! AF_NETLINK socket; the agent runs without it where it is not allowed and
//! says so. Everything here is safe code through rustix; the messages are
//! parsed from bytes.

use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::net::netlink::{self, SocketAddrNetlink};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType, sockopt};

const NLMSG_HDR: usize = 16;
const CN_MSG: usize = 20;
const NLMSG_DONE: u16 = 3;
const NLMSG_ERROR: u16 = 2;
const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const PROC_CN_MCAST_LISTEN: u32 = 1;

const PROC_EVENT_FORK: u32 = 0x0000_0001;
const PROC_EVENT_EXEC: u32 = 0x0000_0002;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;

/// A process-level event (thread events are dropped when parsing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A new process (not a thread), a copy of its parent until it execs.
    Fork { parent: u32, child: u32 },
    /// A process replaced its program.
    Exec { pid: u32 },
    /// A process exited (it is a zombie until its parent reaps it).
    Exit { pid: u32 },
}

#[derive(Debug, thiserror::Error)]
pub enum ProcEventsError {
    #[error("cannot open a netlink connector socket: {0}")]
    Socket(rustix::io::Errno),
    #[error("cannot subscribe to process events (needs CAP_NET_ADMIN): {0}")]
    Subscribe(rustix::io::Errno),
}

/// A subscribed proc connector socket.
pub struct ProcEvents {
    fd: OwnedFd,
    buf: Vec<u8>,
}

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_ne_bytes(bytes))
}

fn u16_at(buf: &[u8], at: usize) -> Option<u16> {
    let bytes: [u8; 2] = buf.get(at..at + 2)?.try_into().ok()?;
    Some(u16::from_ne_bytes(bytes))
}

/// The subscription request: nlmsghdr, cn_msg, then the operation.
fn listen_message() -> Vec<u8> {
    let total = NLMSG_HDR + CN_MSG + 4;
    let mut m = Vec::with_capacity(total);
    m.extend_from_slice(&(total as u32).to_ne_bytes());
    m.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
    m.extend_from_slice(&0u16.to_ne_bytes()); // flags
    m.extend_from_slice(&0u32.to_ne_bytes()); // seq
    m.extend_from_slice(&std::process::id().to_ne_bytes());
    m.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
    m.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // ack
    m.extend_from_slice(&4u16.to_ne_bytes()); // len
    m.extend_from_slice(&0u16.to_ne_bytes()); // flags
    m.extend_from_slice(&PROC_CN_MCAST_LISTEN.to_ne_bytes());
    m
}

/// Parses one datagram, which may hold several netlink messages, appending
/// the process events to `out`. Returns false on a netlink error message.
pub fn parse(buf: &[u8], out: &mut Vec<Event>) -> bool {
    let mut at = 0;
    while let Some(len) = u32_at(buf, at).map(|l| l as usize) {
        if len < NLMSG_HDR || at + len > buf.len() {
            break;
        }
        let msg = &buf[at..at + len];
        if u16_at(msg, 4) == Some(NLMSG_ERROR) {
            return false;
        }
        // struct proc_event: what, cpu, timestamp (u64), then the union.
        let ev = NLMSG_HDR + CN_MSG;
        let data = ev + 16;
        let field = |i: usize| u32_at(msg, data + 4 * i);
        let event = match u32_at(msg, ev) {
            // fork: parent_pid, parent_tgid, child_pid, child_tgid.
            Some(PROC_EVENT_FORK) => match (field(1), field(2), field(3)) {
                (Some(parent), Some(child), Some(child_tgid)) if child == child_tgid => {
                    Some(Event::Fork { parent, child })
                }
                _ => None,
            },
            Some(PROC_EVENT_EXEC) => match (field(0), field(1)) {
                (Some(pid), Some(tgid)) if pid == tgid => Some(Event::Exec { pid }),
                _ => None,
            },
            Some(PROC_EVENT_EXIT) => match (field(0), field(1)) {
                (Some(pid), Some(tgid)) if pid == tgid => Some(Event::Exit { pid }),
                _ => None,
            },
            _ => None,
        };
        out.extend(event);
        // Messages are 4-byte aligned.
        at += (len + 3) & !3;
    }
    true
}

impl ProcEvents {
    /// Opens the socket and subscribes. `poll` bounds how long
    /// [`next`](Self::next) blocks, so its caller can check for shutdown.
    pub fn subscribe(poll: Duration) -> Result<Self, ProcEventsError> {
        let fd = rustix::net::socket(
            AddressFamily::NETLINK,
            SocketType::DGRAM,
            Some(netlink::CONNECTOR),
        )
        .map_err(ProcEventsError::Socket)?;
        rustix::net::bind(&fd, &SocketAddrNetlink::new(0, CN_IDX_PROC))
            .map_err(ProcEventsError::Subscribe)?;
        // A burst of short-lived processes must not overflow the queue
        // while the agent classifies: ask for a large receive buffer.
        if let Err(e) = sockopt::set_socket_recv_buffer_size(&fd, 4 << 20) {
            tracing::debug!(error = %e, "cannot enlarge the proc connector buffer");
        }
        sockopt::set_socket_timeout(&fd, sockopt::Timeout::Recv, Some(poll))
            .map_err(ProcEventsError::Socket)?;
        rustix::net::sendto(
            &fd,
            &listen_message(),
            SendFlags::empty(),
            &SocketAddrNetlink::new(0, 0),
        )
        .map_err(ProcEventsError::Subscribe)?;
        Ok(Self {
            fd,
            buf: vec![0; 64 << 10],
        })
    }

    /// Waits up to the poll time for events and appends them to `out`.
    /// `Ok(false)` means the kernel dropped events (the buffer overflowed),
    /// so counts since are not exact.
    pub fn next(&mut self, out: &mut Vec<Event>) -> Result<bool, rustix::io::Errno> {
        match rustix::net::recv(&self.fd, &mut self.buf[..], RecvFlags::empty()) {
            Ok((n, _)) => {
                let n = n.min(self.buf.len());
                Ok(parse(&self.buf[..n], out))
            }
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => Ok(true),
            Err(rustix::io::Errno::NOBUFS) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(what: u32, fields: &[u32]) -> Vec<u8> {
        let len = NLMSG_HDR + CN_MSG + 16 + 4 * fields.len();
        let mut m = vec![0u8; len];
        m[..4].copy_from_slice(&(len as u32).to_ne_bytes());
        m[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
        let ev = NLMSG_HDR + CN_MSG;
        m[ev..ev + 4].copy_from_slice(&what.to_ne_bytes());
        for (i, f) in fields.iter().enumerate() {
            let at = ev + 16 + 4 * i;
            m[at..at + 4].copy_from_slice(&f.to_ne_bytes());
        }
        m
    }

    #[test]
    fn parses_process_events_and_drops_thread_events() {
        let mut buf = message(PROC_EVENT_FORK, &[10, 10, 11, 11]);
        buf.extend(message(PROC_EVENT_FORK, &[10, 10, 12, 11])); // a thread
        buf.extend(message(PROC_EVENT_EXEC, &[11, 11]));
        buf.extend(message(PROC_EVENT_EXIT, &[13, 11, 0, 17, 1, 1])); // a thread
        buf.extend(message(PROC_EVENT_EXIT, &[11, 11, 0, 17, 10, 10]));
        buf.extend(message(0x200, &[11, 11])); // comm: ignored
        let mut out = Vec::new();
        assert!(parse(&buf, &mut out));
        assert_eq!(
            out,
            [
                Event::Fork {
                    parent: 10,
                    child: 11
                },
                Event::Exec { pid: 11 },
                Event::Exit { pid: 11 },
            ]
        );
        let mut err = message(0, &[]);
        err[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        assert!(!parse(&err, &mut out));
        assert!(parse(&[1, 2, 3], &mut out), "a runt is ignored");
        assert_eq!(listen_message().len(), 40);
    }
}
