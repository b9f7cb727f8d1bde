//! The sans-IO protocol core: every byte layout and state machine of Erlang distribution,
//! with no sockets, no tokio, no clock and no random numbers. Time, challenges and
//! creations are passed in, so a recorded exchange with a BEAM replays byte for byte in a
//! plain `#[test]`.
//!
//! Conventions:
//! * decoders take the bytes received so far and return `Ok(None)` when more are needed;
//!   they consume nothing unless they succeed;
//! * encoders append to a caller's [`bytes::BytesMut`], so one message is one write;
//! * every length read from the wire is checked against a limit before anything is
//!   allocated; errors are typed, never strings, and no input panics.
//!
//! | module | protocol part |
//! |---|---|
//! | [`term`] | external term format |
//! | [`node_name`] | `alive@host` names |
//! | [`flags`] | distribution flags and the mandatory sets |
//! | [`digest`] | cookie digest |
//! | [`epmd`] | EPMD requests and responses |
//! | [`handshake`] | handshake messages and both state machines |
//! | [`frame`] | post-handshake framing, ticks and pass-through messages |
//! | [`dist_header`] | distribution headers: atom cache and fragments |
//! | [`control`] | control messages |

pub mod control;
pub mod digest;
pub mod dist_header;
pub mod epmd;
pub mod flags;
pub mod frame;
pub mod handshake;
pub mod node_name;
pub mod term;

/// The code blocks of README.md, compiled and run by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub use flags::DistFlags;
pub use node_name::{NodeName, NodeNameError};
pub use term::{Atom, Pid, Reference, Term};
