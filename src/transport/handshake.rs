//! Runs the handshake state machines over a stream, with the setup timeout applied to every
//! step (`net_setuptime`, 7 s by default), and hands the stream and any bytes read past the
//! last handshake message to the connection. Generic over the stream: the node's
//! connections run over a [`super::DistStream`], tests drive it over plain TCP. The messages
//! are framed as the stream requires ([`Framing`]: 2-byte lengths on plain TCP, 4-byte inside
//! TLS).

use super::{HandshakeFailure, HandshakeFailureKind};
use crate::proto::flags::DistFlags;
use crate::proto::handshake::{
    Acceptor, AcceptorStep, Established, Framing, Initiator, InitiatorStep, Status, Step,
};
use crate::proto::node_name::NodeName;
use bytes::BytesMut;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A stream whose handshake succeeded.
#[derive(Debug)]
pub struct Handshaken<S> {
    /// The stream, now in 4-byte framing.
    pub stream: S,
    /// What was agreed.
    pub established: Established,
    /// Bytes already read that belong to the link.
    pub leftover: BytesMut,
}

/// The node's decisions during an incoming handshake (`net_kernel`'s part in
/// `dist_util:handshake_other_started/1`).
pub trait AcceptPolicy {
    /// The status for a peer that named itself.
    fn status_for(&mut self, peer: &NodeName, flags: DistFlags) -> Status;
    /// The peer says its old connection to us is dead (answer to `alive`): drop it.
    fn replace_old(&mut self, peer: &NodeName);
    /// A name and creation for a peer that asked to be named (`DFLAG_NAME_ME`, started with
    /// `-name undefined`), on the host it sent; `None` refuses it. The default does what
    /// `net_kernel:generate_node_name/2` does: a random 64-bit alive part in base 36, and a
    /// random creation. The name then goes through [`status_for`](Self::status_for) like any
    /// other.
    fn name_peer(&mut self, host: &str, _flags: DistFlags) -> Option<(NodeName, u32)> {
        let mut bytes = [0u8; 12];
        getrandom::fill(&mut bytes).ok()?;
        let alive = base36(u64::from_le_bytes(bytes[..8].try_into().ok()?));
        let name = NodeName::parse(&format!("{alive}@{host}")).ok()?;
        // Creations 0..=3 are the old 2-bit ones, which a BEAM avoids for new nodes.
        let creation = u32::from_le_bytes(bytes[8..].try_into().ok()?).max(4);
        Some((name, creation))
    }
}

/// `integer_to_list(N, 36)`: digits and upper-case letters, as `net_kernel` names peers.
fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

struct Io<'a, S> {
    stream: &'a mut S,
    buf: BytesMut,
    out: BytesMut,
    timeout: Duration,
    addr: SocketAddr,
    framing: Framing,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Io<'_, S> {
    /// An I/O failure during `step`; on a TLS stream, the TLS failure it carries.
    fn io_fail(
        &self,
        peer: Option<&NodeName>,
        step: Step,
        source: std::io::Error,
    ) -> HandshakeFailure {
        let kind = match crate::tls::TlsError::unwrap_io(source) {
            Ok(tls) => HandshakeFailureKind::Tls(tls),
            Err(source) => HandshakeFailureKind::Io {
                step,
                source: source.into(),
            },
        };
        self.fail(peer, kind)
    }

    fn fail(&self, peer: Option<&NodeName>, kind: HandshakeFailureKind) -> HandshakeFailure {
        HandshakeFailure {
            peer: peer.cloned(),
            addr: self.addr,
            kind,
        }
    }

    async fn flush(&mut self, step: Step, peer: Option<&NodeName>) -> Result<(), HandshakeFailure> {
        if self.out.is_empty() {
            return Ok(());
        }
        self.framing.frame_outgoing(&mut self.out);
        let write = self.stream.write_all(&self.out);
        match tokio::time::timeout(self.timeout, write).await {
            Ok(Ok(())) => {
                self.out.clear();
                Ok(())
            }
            Ok(Err(source)) => Err(self.io_fail(peer, step, source)),
            Err(_) => Err(self.fail(
                peer,
                HandshakeFailureKind::Timeout {
                    step,
                    after: self.timeout,
                },
            )),
        }
    }

    /// Reads one handshake message; `Ok(None)` when the peer closed the connection.
    async fn read(
        &mut self,
        step: Step,
        peer: Option<&NodeName>,
    ) -> Result<Option<bytes::Bytes>, HandshakeFailure> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            match self.framing.take_packet(&mut self.buf) {
                Ok(Some(packet)) => return Ok(Some(packet)),
                Ok(None) => {}
                Err(error) => {
                    return Err(self.fail(peer, HandshakeFailureKind::Framing { step, error }));
                }
            }
            let read = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf));
            match read.await {
                Ok(Ok(0)) => return Ok(None),
                Ok(Ok(_)) => {}
                Ok(Err(source)) => return Err(self.io_fail(peer, step, source)),
                Err(_) => {
                    return Err(self.fail(
                        peer,
                        HandshakeFailureKind::Timeout {
                            step,
                            after: self.timeout,
                        },
                    ));
                }
            }
        }
    }
}

/// Runs our side of a handshake we started on `stream` (already connected to `addr`), on
/// plain TCP. `old_link_dead` answers the `alive` status: true when we have no live link to
/// the peer.
pub async fn initiate<S>(
    stream: S,
    addr: SocketAddr,
    machine: Initiator,
    setup_timeout: Duration,
    old_link_dead: impl FnOnce() -> bool,
) -> Result<Handshaken<S>, HandshakeFailure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    initiate_framed(
        stream,
        addr,
        machine,
        Framing::Plain,
        setup_timeout,
        old_link_dead,
    )
    .await
}

/// [`initiate`] with the framing the stream needs ([`Framing::Tls`] over a TLS stream).
pub async fn initiate_framed<S>(
    mut stream: S,
    addr: SocketAddr,
    mut machine: Initiator,
    framing: Framing,
    setup_timeout: Duration,
    old_link_dead: impl FnOnce() -> bool,
) -> Result<Handshaken<S>, HandshakeFailure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let peer = machine.peer().clone();
    let mut io = Io {
        stream: &mut stream,
        buf: BytesMut::with_capacity(512),
        out: BytesMut::with_capacity(256),
        timeout: setup_timeout,
        addr,
        framing,
    };
    machine.start(&mut io.out);
    io.flush(Step::Name, Some(&peer)).await?;
    let mut old_link_dead = Some(old_link_dead);
    let established = loop {
        let step = machine.awaiting();
        let Some(packet) = io.read(step, Some(&peer)).await? else {
            return Err(io.fail(
                Some(&peer),
                HandshakeFailureKind::Protocol(machine.closed_by_peer()),
            ));
        };
        let result = machine.receive(&packet, &mut io.out);
        let outcome = match result {
            Ok(InitiatorStep::Continue) => None,
            Ok(InitiatorStep::Alive) => {
                let dead = old_link_dead.take().is_some_and(|f| f());
                let answered = machine.answer_alive(dead, &mut io.out);
                io.flush(Step::AliveAnswer, Some(&peer)).await?;
                answered.map_err(|e| io.fail(Some(&peer), HandshakeFailureKind::Protocol(e)))?;
                None
            }
            Ok(InitiatorStep::Done(established)) => Some(established),
            Err(e) => return Err(io.fail(Some(&peer), HandshakeFailureKind::Protocol(e))),
        };
        io.flush(step, Some(&peer)).await?;
        if let Some(established) = outcome {
            break established;
        }
    };
    let leftover = std::mem::take(&mut io.buf);
    Ok(Handshaken {
        stream,
        established,
        leftover,
    })
}

/// Runs our side of a handshake a peer started on `stream` (accepted from `addr`), on plain
/// TCP.
pub async fn accept<S>(
    stream: S,
    addr: SocketAddr,
    machine: Acceptor,
    setup_timeout: Duration,
    policy: &mut impl AcceptPolicy,
) -> Result<Handshaken<S>, HandshakeFailure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    accept_framed(stream, addr, machine, Framing::Plain, setup_timeout, policy).await
}

/// [`accept`] with the framing the stream needs ([`Framing::Tls`] over a TLS stream).
pub async fn accept_framed<S>(
    mut stream: S,
    addr: SocketAddr,
    mut machine: Acceptor,
    framing: Framing,
    setup_timeout: Duration,
    policy: &mut impl AcceptPolicy,
) -> Result<Handshaken<S>, HandshakeFailure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut io = Io {
        stream: &mut stream,
        buf: BytesMut::with_capacity(512),
        out: BytesMut::with_capacity(256),
        timeout: setup_timeout,
        addr,
        framing,
    };
    let established = loop {
        let step = machine.awaiting();
        let peer = machine.peer().cloned();
        let Some(packet) = io.read(step, peer.as_ref()).await? else {
            return Err(io.fail(
                peer.as_ref(),
                HandshakeFailureKind::Protocol(machine.closed_by_peer()),
            ));
        };
        let result = machine.receive(&packet, &mut io.out);
        let peer = machine.peer().cloned();
        let outcome = match result {
            Ok(AcceptorStep::NameReceived { peer, flags }) => {
                // The listener's span learns whom it is talking to.
                tracing::Span::current().record("peer", tracing::field::display(&peer));
                let status = policy.status_for(&peer, flags);
                let refusal = match status {
                    Status::Nok => Some(HandshakeFailureKind::Superseded),
                    Status::NotAllowed => Some(HandshakeFailureKind::Declined),
                    _ => None,
                };
                let sent = machine.send_status(status, &mut io.out);
                io.flush(Step::Status, Some(&peer)).await?;
                sent.map_err(|e| io.fail(Some(&peer), HandshakeFailureKind::Protocol(e)))?;
                if let Some(kind) = refusal {
                    return Err(io.fail(Some(&peer), kind));
                }
                None
            }
            Ok(AcceptorStep::NameMe { host, flags }) => {
                let named = policy.name_peer(&host, flags);
                let status = match &named {
                    Some((name, _)) => policy.status_for(name, flags),
                    None => Status::NotAllowed,
                };
                let sent = match (named, status) {
                    (Some((name, creation)), Status::Ok) => {
                        machine.send_named(name, creation, &mut io.out)
                    }
                    (_, _) => machine.send_status(Status::NotAllowed, &mut io.out),
                };
                let peer = machine.peer().cloned();
                io.flush(Step::Status, peer.as_ref()).await?;
                sent.map_err(|e| io.fail(peer.as_ref(), HandshakeFailureKind::Protocol(e)))?;
                if peer.is_none() {
                    return Err(io.fail(None, HandshakeFailureKind::Declined));
                }
                None
            }
            Ok(AcceptorStep::ReplaceOld) => {
                if let Some(peer) = &peer {
                    policy.replace_old(peer);
                }
                None
            }
            Ok(AcceptorStep::Continue) => None,
            Ok(AcceptorStep::Done(established)) => Some(established),
            Err(e) => {
                // A status (not_allowed) may have been written: send it before closing.
                let _ = io.flush(step, peer.as_ref()).await;
                return Err(io.fail(peer.as_ref(), HandshakeFailureKind::Protocol(e)));
            }
        };
        io.flush(step, peer.as_ref()).await?;
        if let Some(established) = outcome {
            break established;
        }
    };
    let leftover = std::mem::take(&mut io.buf);
    Ok(Handshaken {
        stream,
        established,
        leftover,
    })
}
