//! Built-in processes that answer what a BEAM asks every node: `net_kernel` (the `is_auth`
//! call behind `net_adm:ping/1` and `Node.ping/1`).

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

/// Starts the services every node has.
pub(super) fn start_builtin(node: &Node) {
    register_service(node, "net_kernel", Arc::new(NetKernel));
}
