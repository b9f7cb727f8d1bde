//! The peers `scripts/bench` measures against (`run --bench-services`,
//! [`crate::NodeBuilder::bench_services`]): `rig_sink` decodes and counts every message and
//! answers `{rig_done, Pid, Ref}` with `{rig_done, Ref, Count}` once every earlier message was
//! handled; `rig_echo` answers `{ping, Pid, T}` with `{pong, T}`. They are the Rust side of
//! `bench/bench_target.erl`'s processes of the same names, so both targets do the same work
//! per message (docs/performance.md, "Method"). Not part of a node's services otherwise.

use crate::node::process::{Reply, ReplyTo, Service, ServiceContext};
use crate::node::{Node, register_service};
use crate::proto::term::{Pid, Term};
use std::sync::Arc;

/// `rig_sink` (benchmarks): counts every message; `{rig_done, Pid, Ref}` is answered with
/// `{rig_done, Ref, Count}` after every earlier message was handled, and resets the count.
struct RigSink {
    count: std::sync::atomic::AtomicU64,
}

impl Service for RigSink {
    fn handle(&self, _ctx: &ServiceContext<'_>, _from: Option<&Pid>, message: Term) -> Vec<Reply> {
        use std::sync::atomic::Ordering;
        if let Some([label, pid, reference]) = message.as_tuple()
            && label.is_atom("rig_done")
            && let Some(pid) = pid.as_pid()
        {
            let n = self.count.swap(0, Ordering::Relaxed);
            return vec![Reply {
                to: ReplyTo::Pid(pid.clone()),
                message: Term::tuple([
                    Term::atom("rig_done"),
                    reference.clone(),
                    Term::from_u64(n),
                ]),
            }];
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        Vec::new()
    }
}

/// `rig_echo` (benchmarks): `{ping, Pid, T}` is answered with `{pong, T}`.
struct RigEcho;

impl Service for RigEcho {
    fn handle(&self, _ctx: &ServiceContext<'_>, _from: Option<&Pid>, message: Term) -> Vec<Reply> {
        let Term::Tuple(mut parts) = message else {
            return Vec::new();
        };
        if parts.len() != 3 || !parts[0].is_atom("ping") {
            return Vec::new();
        }
        let term = parts.pop().unwrap_or(Term::NIL);
        let Some(Term::Pid(pid)) = parts.pop() else {
            return Vec::new();
        };
        vec![Reply {
            to: ReplyTo::Pid(pid),
            message: Term::tuple([Term::atom("pong"), term]),
        }]
    }
}

/// Registers `rig_sink` and `rig_echo` on `node`.
pub(crate) fn start(node: &Node) {
    register_service(
        node,
        "rig_sink",
        Arc::new(RigSink {
            count: Default::default(),
        }),
    );
    register_service(node, "rig_echo", Arc::new(RigEcho));
}
