//! beamlink: a Rust node for Erlang distribution. It registers with EPMD (or serves EPMD),
//! connects to BEAM nodes as a hidden node, and answers what an operator asks from a remote
//! shell: `Node.ping`, `:rpc.call`, `:erpc.call`, `GenServer.call`.
//!
//! # Start here
//! * [`Node::builder`] joins a cluster: it registers with EPMD (or serves it) and connects to
//!   the peers it is given or finds by DNS, as `beamlink run` does.
//! * What BEAM code talks to: a [`GenServer`] (`GenServer.call({name, node}, ...)`), a
//!   [`Process`] of your own (send, receive, call, link, monitor), functions for `:rpc.call`
//!   and `:erpc.call` ([`Node::register_rpc`]).
//! * [`term`]: the values that travel, and serde between them and Rust types.
//!
//! README.md's example is `examples/readme.rs`; `examples/` has a program for each of these,
//! run against real BEAMs by the tests.
//!
//! # Layout
//! Dependencies point one way: [`node`] → [`transport`] → [`proto`].
//! * [`proto`]: the sans-IO protocol core (terms, EPMD messages, handshake, frames, control
//!   messages). No tokio, clock or RNG.
//! * [`transport`]: tokio; owns every socket and buffer: the listener, the dialler, the
//!   handshakes and the running connections.
//! * [`epmd`]: EPMD client and the embedded EPMD server.
//! * [`node`]: the runtime; sees node names and control messages, never bytes.
//! * [`discovery`] and [`cluster`]: DNS discovery and the connection manager of `run`.
//! * `diagnose` (private): the operator tools `nodes` and `doctor`, built on a node that only dials.
//! * [`watch`]: the cluster view over time and `--mesh`, as `run` keeps them;
//!   [`metrics`]: the Prometheus exporter and health endpoints of `run --metrics`.
//! * [`tls`]: TLS distribution (`-proto_dist inet_tls`): settings, OTP's option file, the TLS
//!   handshake under the distribution handshake.

#![warn(missing_docs)]

mod bench_services;
mod builder;
mod cli;
pub mod cluster;
pub(crate) mod config;
pub(crate) mod diagnose;
pub mod discovery;
pub mod epmd;
pub(crate) mod log_limit;
pub mod metrics;
pub mod node;
pub mod tls;
pub mod transport;
pub mod watch;

/// The sans-IO protocol core, the crate [`beamlink_proto`].
pub use beamlink_proto as proto;

/// Terms ([`beamlink_proto::term`]): the values of the external term format and their codec,
/// serde between Rust values and terms ([`term::to_term`], [`term::from_term`], the mapping in
/// [`term::typed`]; feature `serde`, on by default), and `TryFrom` to and from `eetf::Term`
/// (feature `eetf`).
pub use beamlink_proto::term;

/// The code blocks of README.md, compiled by `cargo test --doc` (the library example is also
/// `examples/readme.rs`, which `tests/examples.rs` runs against real BEAMs).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub use builder::{NodeBuilder, StartError};
pub use epmd::EpmdMode;
pub use node::{
    CallReply, Caller, ConnectError, GenServer, Node, NodeConfig, NodeError, NodeEvent,
    OnBadMessage, Process, RpcError,
};
pub use proto::digest::Cookie;
pub use proto::node_name::NodeName;
pub use proto::term::{Atom, Pid, Reference, Term};

/// The `beamlink` binary's entry point (the binary is a thin `main` over it); not part of the
/// library's API.
#[doc(hidden)]
pub fn cli_main() -> std::process::ExitCode {
    cli::main()
}
