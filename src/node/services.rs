//! Built-in processes and functions that answer what a BEAM asks every node (`contract.md`,
//! "What a BEAM node sees"): `net_kernel` (the `is_auth` call behind `Node.ping`), `rex`,
//! the `beamlink` GenServer (`:nodes`, `:info`, `:stats`, `:cluster`), and `erlang:node/0`,
//! `erlang:nodes/0,1`.

use super::Node;
use super::process::{Inbox, Reply, ReplyTo, Service, ServiceContext};
use crate::proto::term::{Atom, Pid, Term};
use std::sync::Arc;
use tracing::debug;

/// A `'$gen_call'` message: `{'$gen_call', {From, Tag}, Request}`.
pub(crate) struct GenCall<'a> {
    pub from: &'a Pid,
    pub tag: &'a Term,
    pub request: &'a Term,
}

impl<'a> GenCall<'a> {
    /// Parses a gen_server call; `None` for anything else.
    pub fn parse(message: &'a Term) -> Option<GenCall<'a>> {
        let [label, from_tag, request] = message.as_tuple()? else {
            return None;
        };
        if !label.is_atom("$gen_call") {
            return None;
        }
        let [from, tag] = from_tag.as_tuple()? else {
            return None;
        };
        Some(GenCall {
            from: from.as_pid()?,
            tag,
            request,
        })
    }

    /// The reply to this call: `{Tag, Reply}` to the caller.
    pub fn reply(&self, value: Term) -> Reply {
        Reply {
            to: ReplyTo::Caller {
                pid: self.from.clone(),
                tag: self.tag.clone(),
            },
            message: value,
        }
    }
}

/// `net_kernel`: answers `{is_auth, Node}` with `yes`, as the real one does (reaching it
/// at all proves the cookie matched).
struct NetKernel;

impl Service for NetKernel {
    fn handle(&self, _ctx: &ServiceContext<'_>, _from: Option<&Pid>, message: Term) -> Vec<Reply> {
        let Some(call) = GenCall::parse(&message) else {
            debug!(%message, "net_kernel: message ignored");
            return Vec::new();
        };
        match call.request.as_tuple() {
            Some([op, _node]) if op.is_atom("is_auth") => vec![call.reply(Term::atom("yes"))],
            _ => {
                debug!(request = %call.request, "net_kernel: call not handled");
                Vec::new()
            }
        }
    }
}

/// Registers a service under `name`.
pub(crate) fn register_service(node: &Node, name: &str, service: Arc<dyn Service>) -> Pid {
    let (pid, _) = node.add_process(Inbox::Service(service));
    node.register_pid(Atom::new(name), &pid)
        .expect("built-in names are registered once, first");
    pid
}

/// The `beamlink` GenServer: `:nodes` gives `nodes(connected)`, `:info` a map about us,
/// `:stats` the resource counters an operator (or a soak test) watches for leaks,
/// `:cluster` the who-sees-whom view of `run`'s watcher (`{:error, :not_watching}` without
/// one).
struct Beamlink;

impl Service for Beamlink {
    fn handle(&self, ctx: &ServiceContext<'_>, _from: Option<&Pid>, message: Term) -> Vec<Reply> {
        let Some(call) = GenCall::parse(&message) else {
            return Vec::new();
        };
        let answer = if call.request.is_atom("nodes") {
            nodes_term(ctx.node, &[NodeKind::Connected])
        } else if call.request.is_atom("info") {
            info_term(ctx.node)
        } else if call.request.is_atom("stats") {
            stats_term(ctx.node)
        } else if call.request.is_atom("cluster") {
            ctx.node
                .cluster_answer()
                .unwrap_or_else(|| Term::tuple([Term::atom("error"), Term::atom("not_watching")]))
        } else {
            Term::tuple([Term::atom("error"), Term::atom("unknown_call")])
        };
        vec![call.reply(answer)]
    }
}

/// The arguments of `erlang:nodes/1`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum NodeKind {
    Visible,
    Hidden,
    Connected,
    This,
    Known,
}

fn node_kind(t: &Term) -> Option<NodeKind> {
    Some(match t.as_atom()?.as_str() {
        "visible" => NodeKind::Visible,
        "hidden" => NodeKind::Hidden,
        "connected" => NodeKind::Connected,
        "this" => NodeKind::This,
        "known" => NodeKind::Known,
        _ => return None,
    })
}

/// `erlang:nodes(Kinds)` with BEAM semantics: our own connections to BEAM nodes are hidden
/// unless both sides publish, so a hidden node's `nodes()` is `[]`.
fn nodes_term(node: &Node, kinds: &[NodeKind]) -> Term {
    let has = |k| kinds.contains(&k);
    let mut out = Vec::new();
    if has(NodeKind::This) || has(NodeKind::Known) {
        out.push(Term::Atom(node.name().as_atom().clone()));
    }
    for peer in node.peers() {
        let wanted = has(NodeKind::Connected)
            || has(NodeKind::Known)
            || (peer.hidden && has(NodeKind::Hidden))
            || (!peer.hidden && has(NodeKind::Visible));
        if wanted {
            out.push(Term::Atom(peer.name.as_atom().clone()));
        }
    }
    Term::List(out)
}

fn info_term(node: &Node) -> Term {
    let atom_key = |k: &str, v: Term| (Term::atom(k), v);
    let peers = node
        .peers()
        .into_iter()
        .map(|p| {
            let since = p
                .connected_since
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0);
            Term::Map(vec![
                atom_key("name", Term::Atom(p.name.as_atom().clone())),
                atom_key("address", Term::binary(p.addr.to_string().into_bytes())),
                atom_key("flags", Term::from_u64(p.flags.0)),
                atom_key("connected_since", Term::Int(since)),
                atom_key("tls", tls_term(p.tls.as_ref())),
            ])
        })
        .collect::<Vec<_>>();
    Term::Map(vec![
        atom_key("name", Term::Atom(node.name().as_atom().clone())),
        atom_key(
            "version",
            Term::binary(env!("CARGO_PKG_VERSION").as_bytes().to_vec()),
        ),
        atom_key("uptime_ms", Term::Int(node.uptime().as_millis() as i64)),
        atom_key("peers", Term::List(peers)),
    ])
}

/// A peer's `tls` entry in `:info`: `false` on plain TCP, else
/// `%{version: :"tlsv1.3", cipher_suite: "TLS13_AES_256_GCM_SHA384", key_exchange:
/// "X25519MLKEM768"}` (`key_exchange` is `nil` when unknown).
fn tls_term(session: Option<&crate::tls::TlsSession>) -> Term {
    let Some(s) = session else {
        return Term::atom("false");
    };
    Term::Map(vec![
        (Term::atom("version"), Term::atom(&s.otp_version())),
        (
            Term::atom("cipher_suite"),
            Term::binary(s.cipher_suite.as_bytes().to_vec()),
        ),
        (
            Term::atom("key_exchange"),
            match &s.key_exchange {
                Some(k) => Term::binary(k.as_bytes().to_vec()),
                None => Term::atom("nil"),
            },
        ),
    ])
}

/// `%{tasks:, links:, pending:, processes:}`: the tokio tasks alive in the runtime the node
/// runs on, live links, connection attempts whose handshake is under way, local processes.
/// Each returns to its resting value when peers come and go; growth is a leak.
fn stats_term(node: &Node) -> Term {
    let tasks = tokio::runtime::Handle::try_current()
        .map(|h| h.metrics().num_alive_tasks())
        .unwrap_or(0);
    let count = |n: usize| Term::from_u64(n as u64);
    Term::Map(vec![
        (Term::atom("tasks"), count(tasks)),
        (Term::atom("links"), count(node.connections().len())),
        (Term::atom("pending"), count(node.pending_connections())),
        (Term::atom("processes"), count(node.process_count())),
    ])
}

/// Starts the services and functions every node has.
pub(super) fn start_builtin(node: &Node) {
    register_service(node, "net_kernel", Arc::new(NetKernel));
    register_service(node, "rex", Arc::new(super::rpc::Rex));
    register_service(node, "beamlink", Arc::new(Beamlink));
    node.register_rpc("erlang", "node", 0, |call, _| async move {
        Ok(Term::Atom(call.node.name().as_atom().clone()))
    });
    node.register_rpc("erlang", "nodes", 0, |call, _| async move {
        Ok(nodes_term(&call.node, &[NodeKind::Visible]))
    });
    node.register_rpc("erlang", "nodes", 1, |call, args| async move {
        // One atom, or one list of atoms: nodes([visible, hidden]).
        let kinds: Option<Vec<NodeKind>> = match &args[0] {
            Term::List(l) => l.iter().map(node_kind).collect(),
            t => node_kind(t).map(|k| vec![k]),
        };
        match kinds {
            Some(k) => Ok(nodes_term(&call.node, &k)),
            None => Err(super::RpcError::badarg()),
        }
    });
}
