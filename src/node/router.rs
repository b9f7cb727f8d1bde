//! Where inbound control messages go: mailboxes, services, monitor and link bookkeeping.
//! One router per link, so per-peer state (such as which errors were already logged) needs
//! no locking.
//!
//! A message that does not decode goes to `bad_message.rs` (counted, logged, and the link
//! kept or closed per the node's setting). An obsolete UNLINK, which a BEAM ignores too, is
//! logged once per link.

use super::process::{Envelope, Inbox, LinkState, Reply, ReplyTo, ServiceContext, Watcher};
use super::{Dest, Node, lock};
use crate::proto::control::{Control, ProcessRef, SignalTarget};
use crate::proto::flags::DistFlags;
use crate::proto::frame::MessageError;
use crate::proto::term::{Atom, Pid, Reference, Term};
use crate::transport::DisconnectReason;
use crate::transport::connection::{Connection, ConnectionHandler, OnBadMessage};
use bytes::Bytes;
use std::collections::HashSet;
use std::sync::Mutex;
use tracing::{debug, warn};

pub(super) struct Router {
    node: Node,
    logged: Mutex<HashSet<String>>,
}

impl Router {
    pub(super) fn new(node: Node) -> Router {
        Router {
            node,
            logged: Mutex::new(HashSet::new()),
        }
    }

    /// Logs a problem at warn level the first time its kind shows up on this link.
    fn log_once(&self, link: &Connection, kind: String, detail: &str) {
        if lock(&self.logged).insert(kind.clone()) {
            warn!(peer = %link.peer(), "{detail} (further ones of this kind are logged at debug)");
        } else {
            debug!(peer = %link.peer(), "{detail}");
        }
    }
}

impl ConnectionHandler for Router {
    async fn on_message(&self, link: &Connection, message: Control) {
        self.node.dispatch(link, message, self).await;
    }

    fn on_bad_message(
        &self,
        link: &Connection,
        error: &MessageError,
        bytes: &Bytes,
    ) -> OnBadMessage {
        self.node.bad_message(link, error, bytes)
    }

    fn on_down(&self, link: &Connection, reason: DisconnectReason) {
        self.node.connection_down(link, reason);
        self.node.peer_gone(link);
    }
}

/// Where a local delivery goes.
enum Target {
    Mailbox(tokio::sync::mpsc::Sender<Envelope>),
    Service(std::sync::Arc<dyn super::process::Service>, Pid),
}

impl Node {
    fn target_of_pid(&self, pid: &Pid) -> Option<Target> {
        if !self.is_local(pid) {
            return None;
        }
        let table = self.processes();
        table.get(pid).map(|e| match &e.inbox {
            Inbox::Mailbox(tx) => Target::Mailbox(tx.clone()),
            Inbox::Service(s) => Target::Service(s.clone(), e.pid.clone()),
        })
    }

    fn target_of_name(&self, name: &Atom) -> Option<Target> {
        let table = self.processes();
        table.whereis(name).map(|e| match &e.inbox {
            Inbox::Mailbox(tx) => Target::Mailbox(tx.clone()),
            Inbox::Service(s) => Target::Service(s.clone(), e.pid.clone()),
        })
    }

    async fn deliver(&self, target: Target, from: Option<Pid>, message: Term) {
        match target {
            Target::Mailbox(tx) => {
                // A full mailbox holds up this link only; see the process module docs.
                let _ = tx.send(Envelope::Message { from, message }).await;
            }
            Target::Service(service, pid) => {
                let replies = {
                    let ctx = ServiceContext {
                        node: self,
                        pid: &pid,
                    };
                    service.handle(&ctx, from.as_ref(), message)
                };
                for reply in replies {
                    self.send_reply(&pid, reply).await;
                }
            }
        }
    }

    /// Sends a service's reply over the link to the destination's node.
    pub(crate) async fn send_reply(&self, from: &Pid, reply: Reply) {
        let Reply { to, message } = reply;
        let (pid, control_for) = match to {
            ReplyTo::Pid(pid) => (pid, None),
            ReplyTo::Caller { pid, tag } => (pid, Some(tag)),
        };
        if self.is_local(&pid) {
            // A caller on this node (a Rust process calling a Rust GenServer): no connection;
            // through its alias when the tag carries one, as gen:reply/2 does, so a reply
            // after the call gave up is dropped.
            let (to, message) = match control_for {
                Some(tag) => match alias_of(&tag).cloned() {
                    Some(alias) => (Dest::Alias(alias), Term::tuple([tag, message])),
                    None => (Dest::Pid(pid), Term::tuple([tag, message])),
                },
                None => (Dest::Pid(pid), message),
            };
            // Boxed: a reply delivered to a built-in service may make it reply in turn.
            Box::pin(self.send_local(Some(from), &to, message)).await;
            return;
        }
        let Some(link) = self.connection_by_atom(&pid.node) else {
            debug!(to = %pid, "reply dropped: no connection to its node");
            return;
        };
        let message = match control_for {
            // gen:reply/2 sends to the alias when the tag carries one.
            Some(tag) => {
                let alias = alias_of(&tag).cloned();
                let msg = Term::tuple([tag, message]);
                match alias {
                    Some(alias) if link.flags().contains(DistFlags::ALIAS) => Control::AliasSend {
                        from: from.clone(),
                        alias,
                        token: None,
                        message: msg,
                    },
                    _ => send_to(from, pid, msg),
                }
            }
            None => send_to(from, pid, message),
        };
        if let Err(e) = link.send(&message).await {
            debug!(peer = %link.peer(), "reply dropped: {e}");
        }
    }

    async fn dispatch(&self, link: &Connection, message: Control, router: &Router) {
        match message {
            Control::Send {
                from, to, message, ..
            } => match self.target_of_pid(&to) {
                Some(t) => self.deliver(t, from, message).await,
                None => debug!(%to, "message to an unknown pid dropped"),
            },
            Control::RegSend {
                from, to, message, ..
            } => match self.target_of_name(&to) {
                Some(t) => self.deliver(t, Some(from), message).await,
                None => debug!(name = %to, "message to an unregistered name dropped"),
            },
            Control::AliasSend {
                alias,
                message,
                from,
                ..
            } => self.deliver_to_alias(&alias, Some(from), message).await,
            Control::AltactSig {
                from,
                to,
                exit,
                payload,
                ..
            } => self.altact_signal(from, to, exit, payload).await,
            Control::MonitorP {
                from,
                to,
                reference,
            } => self.remote_monitor(link, from, to, reference).await,
            Control::DemonitorP { to, reference, .. } => {
                let mut table = self.processes();
                let entry = match &to {
                    ProcessRef::Pid(p) => table.get_mut(p),
                    ProcessRef::Name(n) => table.whereis_mut(n),
                };
                if let Some(e) = entry {
                    e.watchers.remove(&reference);
                }
            }
            Control::Link { from, to } => self.remote_link(link, from, to).await,
            Control::UnlinkId { id, from, to } => {
                {
                    let mut table = self.processes();
                    if let Some(e) = table.get_mut(&to) {
                        // Active or our own unlink in flight: either way the link is gone.
                        e.links.remove(&from);
                    }
                }
                let ack = Control::UnlinkIdAck {
                    id,
                    from: to,
                    to: from,
                };
                if let Err(e) = link.send(&ack).await {
                    debug!("UNLINK_ID_ACK not sent: {e}");
                }
            }
            Control::UnlinkIdAck { id, from, to } => {
                let mut table = self.processes();
                if let Some(e) = table.get_mut(&to)
                    && e.links.get(&from) == Some(&LinkState::Unlinking(id))
                {
                    e.links.remove(&from);
                }
            }
            Control::Exit {
                from, to, reason, ..
            } => {
                let linked = {
                    let mut table = self.processes();
                    match table.get_mut(&to) {
                        Some(e) if e.links.get(&from) == Some(&LinkState::Active) => {
                            e.links.remove(&from);
                            true
                        }
                        _ => false,
                    }
                };
                if linked {
                    self.exit_signal(&to, from, reason).await;
                }
            }
            Control::Exit2 {
                from, to, reason, ..
            } => self.exit_signal(&to, from, reason).await,
            Control::MonitorPExit {
                from,
                reference,
                reason,
                ..
            } => self.monitor_fired(reference, from, reason).await,
            m @ (Control::SpawnRequest { .. } | Control::SpawnReply { .. }) => {
                self.spawn_signal(link, m).await
            }
            Control::GroupLeader { .. } => {}
            Control::Unlink { from, to } => {
                router.log_once(
                    link,
                    "unlink".into(),
                    &format!("obsolete UNLINK from {from} to {to} ignored"),
                );
            }
            // A control message a newer beamlink-proto decodes but this runtime does not act
            // on yet: dropped, as a BEAM drops signals it has no receiver for.
            other => debug!(op = other.op(link.info().flags), "control message ignored"),
        }
    }

    /// ALTACT_SIG_SEND (OTP 28+): a message or exit signal to a pid, name or alias, as
    /// `erts_net_message` dispatches it. A priority message is delivered in order with the
    /// others: a beamlink mailbox has no priority queue (EEP 76 only promises that priority
    /// messages are not stuck behind ordinary ones at a process that asked for them).
    async fn altact_signal(&self, from: Pid, to: SignalTarget, exit: bool, payload: Term) {
        if !exit {
            return match to {
                SignalTarget::Pid(pid) => match self.target_of_pid(&pid) {
                    Some(t) => self.deliver(t, Some(from), payload).await,
                    None => debug!(to = %pid, "message to an unknown pid dropped"),
                },
                SignalTarget::Name(name) => match self.target_of_name(&name) {
                    Some(t) => self.deliver(t, Some(from), payload).await,
                    None => debug!(%name, "message to an unregistered name dropped"),
                },
                SignalTarget::Alias(alias) => {
                    self.deliver_to_alias(&alias, Some(from), payload).await
                }
            };
        }
        let pid = match &to {
            SignalTarget::Pid(pid) => Some(pid.clone()),
            SignalTarget::Name(name) => self.whereis(name),
            SignalTarget::Alias(alias) => lock(&self.inner.aliases).get(alias).cloned(),
        };
        match pid {
            Some(pid) => self.exit_signal(&pid, from, payload).await,
            None => debug!(%to, "exit signal to an unknown process dropped"),
        }
    }

    async fn remote_monitor(
        &self,
        link: &Connection,
        from: Pid,
        to: ProcessRef,
        reference: Reference,
    ) {
        let found = {
            let mut table = self.processes();
            let entry = match &to {
                ProcessRef::Pid(p) if self.is_local(p) => table.get_mut(p),
                ProcessRef::Pid(_) => None,
                ProcessRef::Name(n) => table.whereis_mut(n),
            };
            match entry {
                Some(e) => {
                    e.watchers.insert(
                        reference.clone(),
                        Watcher {
                            pid: from.clone(),
                            target: to.clone(),
                        },
                    );
                    true
                }
                None => false,
            }
        };
        if !found {
            let down = Control::MonitorPExit {
                from: to,
                to: from,
                reference,
                reason: Term::atom("noproc"),
            };
            if let Err(e) = link.send(&down).await {
                debug!("noproc not sent: {e}");
            }
        }
    }

    async fn remote_link(&self, link: &Connection, from: Pid, to: Pid) {
        let found = {
            let mut table = self.processes();
            match table.get_mut(&to) {
                Some(e) if self.is_local(&to) => {
                    e.links.insert(from.clone(), LinkState::Active);
                    true
                }
                _ => false,
            }
        };
        if !found {
            let exit = Control::Exit {
                from: to,
                to: from,
                token: None,
                reason: Term::atom("noproc"),
            };
            if let Err(e) = link.send(&exit).await {
                debug!("noproc exit not sent: {e}");
            }
        }
    }

    /// The connection to a peer is gone: forget its watchers, and fire our links and
    /// monitors towards it with `noconnection`.
    pub(super) fn peer_gone(&self, link: &Connection) {
        let peer = link.peer().as_atom().clone();
        let mut exits = Vec::new();
        {
            let mut table = self.processes();
            for e in table.entries_mut() {
                e.watchers.retain(|_, w| w.pid.node != peer);
                let gone: Vec<Pid> = e.links.keys().filter(|p| p.node == peer).cloned().collect();
                for p in gone {
                    if e.links.remove(&p) == Some(LinkState::Active) {
                        exits.push((e.pid.clone(), p));
                    }
                }
            }
        }
        let node = self.internal();
        let fired = self.take_monitors_of(&peer);
        if exits.is_empty() && fired.is_empty() {
            return;
        }
        self.inner.tracker.spawn(async move {
            for (local, remote) in exits {
                node.exit_signal(&local, remote, Term::atom("noconnection"))
                    .await;
            }
            for (reference, target, watcher) in fired {
                node.deliver_down(&watcher, reference, target, Term::atom("noconnection"))
                    .await;
            }
        });
    }
}

/// `Send` from a service: SEND_SENDER when negotiated (the control layer decides).
fn send_to(from: &Pid, to: Pid, message: Term) -> Control {
    Control::Send {
        from: Some(from.clone()),
        to,
        token: None,
        message,
    }
}

/// The reference in a `[alias | Ref]` call tag.
pub(crate) fn alias_of(tag: &Term) -> Option<&Reference> {
    match tag {
        Term::ImproperList(head, tail) if head.len() == 1 && head[0].is_atom("alias") => {
            tail.as_ref().as_ref()
        }
        _ => None,
    }
}
