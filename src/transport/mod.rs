//! The tokio transport: owns every socket and buffer. It accepts connections
//! ([`listener`]) and dials them ([`dialler`]), runs the handshake state machines of
//! [`crate::proto::handshake`] over a [`DistStream`] ([`handshake`]), and keeps a connection
//! alive once it is up ([`connection`], with the tick rule in [`tick`]). It makes no decision
//! a node must make (which status to give an incoming name, which of two simultaneous
//! attempts wins, where a message goes); those come in through traits
//! ([`handshake::AcceptPolicy`], [`listener::AcceptHandler`],
//! [`connection::ConnectionHandler`]) and closures.

pub mod connection;
pub mod dialler;
mod error;
pub mod handshake;
pub mod listener;
mod stream;
pub mod tick;

pub use error::{ConnectError, DisconnectReason, HandshakeFailure, HandshakeFailureKind};
pub use stream::{DistReader, DistStream, DistWriter};

/// A 32-bit value from the OS CSPRNG (handshake challenges, creations).
pub fn random_u32() -> Result<u32, getrandom::Error> {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b)?;
    Ok(u32::from_ne_bytes(b))
}
