//! The EPMD-less checks of a probe ([`super::probe`]): which port a peer without EPMD
//! answers on, and what the host's EPMD says when `--dist-port` finds nothing. A BEAM started
//! with `-erl_epmd_port PORT` listens on PORT and never needs an EPMD
//! (`erl_epmd:port_please/3` answers PORT through `listen_port_please/2`).

use super::probe::Failure;
use crate::node::Node;
use crate::proto::handshake::{HandshakeError, Step};
use crate::proto::node_name::NodeName;
use crate::transport::HandshakeFailureKind;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The ports tried when nothing listens at a peer's EPMD address: 4370, the port after
/// EPMD's that EPMD-less set-ups (and `inet_dist_listen_min` examples) commonly pin, and
/// 6789, the port of the EPMD-less example in the `vm.args` that `mix release` generates
/// (`-start_epmd false -erl_epmd_port 6789`).
pub const EPMD_LESS_PORTS: [u16; 2] = [4370, 6789];

/// A distribution port that takes no connections: [`Failure::Connect`], or EPMD-less
/// [`Failure::DistPort`] with what the host's EPMD lists, if one answers.
pub(super) async fn connect_failure(
    node: &Node,
    addr: SocketAddr,
    reason: String,
    timed_out: bool,
    timeout: Duration,
) -> Failure {
    if node.config().dist_port.is_none() {
        return Failure::Connect {
            addr,
            reason,
            timed_out,
        };
    }
    let epmd = SocketAddr::new(addr.ip(), node.config().epmd_port);
    let listed = crate::epmd::names(epmd, timeout).await.ok().map(|r| {
        let names = r.nodes.iter();
        (
            epmd,
            names
                .map(|e| (e.name.as_str().to_string(), e.port))
                .collect(),
        )
    });
    Failure::DistPort {
        addr,
        reason,
        timed_out,
        epmd: listed,
    }
}

/// The first of [`EPMD_LESS_PORTS`] at `ip` that answers the distribution handshake (the
/// handshake got as far as the peer's status, whatever it said), all tried at once.
pub(super) async fn epmd_less_port(
    node: &Node,
    peer: &NodeName,
    ip: IpAddr,
    timeout: Duration,
) -> Option<u16> {
    let dialler = node.dialler().with_setup_timeout(timeout);
    let tries = EPMD_LESS_PORTS.map(|port| {
        let dialler = dialler.clone();
        async move {
            let addr = SocketAddr::new(ip, port);
            let stream = dialler.connect(peer, addr).await.ok()?;
            // `false` to `alive`, as in `dial`; the connection is dropped either way.
            let answered = match dialler.handshake(stream, peer, addr, || false).await {
                Ok(_) => true,
                Err(e) => match e.kind {
                    HandshakeFailureKind::Protocol(
                        HandshakeError::Malformed(_)
                        | HandshakeError::Unexpected { .. }
                        | HandshakeError::ClosedByPeer { step: Step::Status },
                    ) => false,
                    HandshakeFailureKind::Protocol(_) => true,
                    _ => false,
                },
            };
            answered.then_some(port)
        }
    });
    futures_util::future::join_all(tries)
        .await
        .into_iter()
        .flatten()
        .next()
}
