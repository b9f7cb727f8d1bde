//! EPMD client: register a node, look a node's port up, list names
//! (`erl_dist_protocol.md` "EPMD Protocol"; what the BEAM does is `lib/kernel/src/erl_epmd.erl`).
//!
//! One request per TCP connection, as EPMD requires. Every call takes a timeout that covers
//! the whole exchange (connect, send, reply); [`DEFAULT_TIMEOUT`] is the 10 s the BEAM waits
//! for a reply. Replies are read into bounded buffers: [`MAX_PORT2_REPLY_LEN`] and
//! [`MAX_NAMES_REPLY_LEN`] bytes, beyond which the reply is refused as malformed.

use super::error::{EpmdError, EpmdStep};
use crate::proto::epmd::{
    Alive2Request, Alive2Response, AliveName, EpmdRequest, MAX_NAMES_REPLY_LEN,
    MAX_PORT2_REPLY_LEN, NamesResponse, NodeEntry, Port2Response, PortPlease2Request,
};
use bytes::BytesMut;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

/// The timeout the BEAM uses for EPMD replies.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A live registration: the ALIVE2 socket. The name stays registered exactly as long as this
/// value (and so the socket) lives; dropping it unregisters the name. Nothing is ever written
/// on the socket after the request, because EPMD drops a registration that sends any further
/// byte.
#[derive(Debug)]
pub struct Registration {
    stream: TcpStream,
    epmd: SocketAddr,
    name: AliveName,
    creation: u32,
}

impl Registration {
    /// The creation EPMD handed out (32 bits for version-6 registrations).
    pub fn creation(&self) -> u32 {
        self.creation
    }

    /// The EPMD the name is registered with.
    pub fn epmd(&self) -> SocketAddr {
        self.epmd
    }

    /// The registered name.
    pub fn name(&self) -> &AliveName {
        &self.name
    }

    /// Completes when EPMD closes the registration socket (EPMD stopped, was killed, or
    /// dropped the name) and returns [`EpmdError::RegistrationClosed`]. Bytes EPMD might send
    /// are read and ignored. Cancel-safe, so it can sit in a `select!`.
    pub async fn closed(&mut self) -> EpmdError {
        let mut sink = [0u8; 64];
        loop {
            match self.stream.read(&mut sink).await {
                Ok(0) => {
                    return EpmdError::RegistrationClosed {
                        epmd: self.epmd,
                        name: self.name.clone(),
                        source: None,
                    };
                }
                Ok(_) => continue,
                Err(source) => {
                    return EpmdError::RegistrationClosed {
                        epmd: self.epmd,
                        name: self.name.clone(),
                        source: Some(source.into()),
                    };
                }
            }
        }
    }

    /// Unregisters by closing the socket (the same as dropping the value).
    pub fn unregister(self) {}
}

struct Exchange {
    epmd: SocketAddr,
    deadline: Instant,
    after: Duration,
}

impl Exchange {
    fn new(epmd: SocketAddr, after: Duration) -> Exchange {
        Exchange {
            epmd,
            deadline: Instant::now() + after,
            after,
        }
    }

    async fn step<T>(
        &self,
        step: EpmdStep,
        io: impl Future<Output = std::io::Result<T>>,
    ) -> Result<T, EpmdError> {
        match timeout_at(self.deadline, io).await {
            Err(_) => Err(EpmdError::Timeout {
                epmd: self.epmd,
                step,
                after: self.after,
            }),
            Ok(Err(source)) if step == EpmdStep::Connect => Err(EpmdError::Unreachable {
                epmd: self.epmd,
                source: source.into(),
            }),
            Ok(Err(source)) => Err(EpmdError::Io {
                epmd: self.epmd,
                step,
                source: source.into(),
            }),
            Ok(Ok(value)) => Ok(value),
        }
    }

    async fn send(&self, request: &EpmdRequest, step: EpmdStep) -> Result<TcpStream, EpmdError> {
        let mut stream = self
            .step(EpmdStep::Connect, TcpStream::connect(self.epmd))
            .await?;
        let mut out = BytesMut::new();
        request.encode(&mut out);
        self.step(step, stream.write_all(&out)).await?;
        Ok(stream)
    }

    /// Reads until EPMD closes, keeping at most `limit + 1` bytes so an oversized reply is
    /// detected without buffering it.
    async fn read_to_eof(
        &self,
        stream: TcpStream,
        limit: usize,
        step: EpmdStep,
    ) -> Result<Vec<u8>, EpmdError> {
        let mut reply = Vec::new();
        let mut limited = stream.take(limit as u64 + 1);
        self.step(step, limited.read_to_end(&mut reply)).await?;
        Ok(reply)
    }

    fn malformed(&self, step: EpmdStep, source: crate::proto::epmd::EpmdWireError) -> EpmdError {
        EpmdError::Malformed {
            epmd: self.epmd,
            step,
            source,
        }
    }
}

/// Registers `request.name` at the EPMD at `epmd` (only a local EPMD accepts: a real `epmd`
/// silently closes registrations from other hosts).
pub async fn register(
    epmd: SocketAddr,
    request: &Alive2Request,
    timeout: Duration,
) -> Result<Registration, EpmdError> {
    let exchange = Exchange::new(epmd, timeout);
    let mut stream = exchange
        .send(&EpmdRequest::Alive2(request.clone()), EpmdStep::SendAlive2)
        .await?;
    let mut buf = BytesMut::with_capacity(16);
    let response = loop {
        match Alive2Response::decode(&mut buf) {
            Ok(Some(response)) => break response,
            Ok(None) => {}
            Err(source) => return Err(exchange.malformed(EpmdStep::ReadAlive2, source)),
        }
        // The reply is at most 6 bytes; anything beyond the first 16 is not read here.
        if exchange
            .step(EpmdStep::ReadAlive2, stream.read_buf(&mut buf))
            .await?
            == 0
        {
            return Err(EpmdError::ClosedEarly {
                epmd,
                step: EpmdStep::ReadAlive2,
            });
        }
    };
    if response.result() != 0 {
        return Err(EpmdError::NameTaken {
            epmd,
            name: request.name.clone(),
        });
    }
    Ok(Registration {
        stream,
        epmd,
        name: request.name.clone(),
        creation: response.creation(),
    })
}

/// Asks the EPMD at `epmd` for the node `name`: `Ok(None)` when it is not registered there.
pub async fn port_please(
    epmd: SocketAddr,
    name: &AliveName,
    timeout: Duration,
) -> Result<Option<NodeEntry>, EpmdError> {
    let exchange = Exchange::new(epmd, timeout);
    let request = EpmdRequest::PortPlease2(PortPlease2Request {
        name: name.clone(),
        nul_terminated: false,
    });
    let stream = exchange.send(&request, EpmdStep::SendPortPlease2).await?;
    let reply = exchange
        .read_to_eof(stream, MAX_PORT2_REPLY_LEN, EpmdStep::ReadPort2)
        .await?;
    if reply.is_empty() {
        return Err(EpmdError::ClosedEarly {
            epmd,
            step: EpmdStep::ReadPort2,
        });
    }
    match Port2Response::decode(&reply) {
        Ok(Port2Response::Found(node)) => Ok(Some(node)),
        Ok(Port2Response::NotFound { .. }) => Ok(None),
        Err(source) => Err(exchange.malformed(EpmdStep::ReadPort2, source)),
    }
}

/// Lists the names registered at the EPMD at `epmd`, in EPMD's order.
pub async fn names(epmd: SocketAddr, timeout: Duration) -> Result<NamesResponse, EpmdError> {
    let exchange = Exchange::new(epmd, timeout);
    let stream = exchange
        .send(&EpmdRequest::Names, EpmdStep::SendNames)
        .await?;
    let reply = exchange
        .read_to_eof(stream, MAX_NAMES_REPLY_LEN, EpmdStep::ReadNames)
        .await?;
    if reply.is_empty() {
        return Err(EpmdError::ClosedEarly {
            epmd,
            step: EpmdStep::ReadNames,
        });
    }
    NamesResponse::decode(&reply).map_err(|source| exchange.malformed(EpmdStep::ReadNames, source))
}
