//! Signals between processes: exit signals and links, monitors held by our processes on
//! remote ones, aliases, and what happens when a local process ends
//! (`erl_dist_protocol.md`, "Link Protocol"; the BEAM's exit-signal semantics).

use super::process::{Envelope, Inbox, LinkState};
use super::{Node, lock};
use crate::proto::control::{Control, ProcessRef};
use crate::proto::term::{Atom, Pid, Reference, Term};
use crate::transport::connection::Connection;
use tracing::debug;

/// A monitor one of our processes holds on a remote process.
#[derive(Clone, Debug)]
pub(crate) struct RemoteMonitor {
    /// Our monitoring process.
    pub watcher: Pid,
    /// The monitored process, as named.
    pub target: ProcessRef,
    /// The node it lives on.
    pub node: Atom,
}

impl Node {
    /// An exit signal for local process `to`, from `from`, with `reason`.
    pub(crate) async fn exit_signal(&self, to: &Pid, from: Pid, reason: Term) {
        enum Action {
            Deliver(tokio::sync::mpsc::Sender<Envelope>),
            Die,
            Ignore,
        }
        let action = {
            let table = self.processes();
            match table.get(to) {
                None => Action::Ignore,
                Some(e) => match &e.inbox {
                    // Built-in services outlive their callers, as net_kernel does.
                    Inbox::Service(_) => Action::Ignore,
                    Inbox::Mailbox(tx) => {
                        if reason.is_atom("kill") {
                            Action::Die
                        } else if e.trap_exit {
                            Action::Deliver(tx.clone())
                        } else if reason.is_atom("normal") {
                            Action::Ignore
                        } else {
                            Action::Die
                        }
                    }
                },
            }
        };
        match action {
            Action::Deliver(tx) => {
                let _ = tx.send(Envelope::Exit { from, reason }).await;
            }
            Action::Die => {
                let reason = if reason.is_atom("kill") {
                    Term::atom("killed")
                } else {
                    reason
                };
                self.process_exit(to, reason).await;
            }
            Action::Ignore => {}
        }
    }

    /// Ends local process `pid` with `reason`: its watchers get DOWN, its links EXIT, its
    /// own monitors are removed, and its task is told to stop.
    pub(crate) async fn process_exit(&self, pid: &Pid, reason: Term) {
        let Some(entry) = self.processes().remove(pid) else {
            return;
        };
        entry.kill.cancel();
        lock(&self.inner.aliases).retain(|_, owner| owner != pid);
        let own_monitors: Vec<(Reference, RemoteMonitor)> = {
            let mut m = lock(&self.inner.remote_monitors);
            let refs: Vec<Reference> = m
                .iter()
                .filter(|(_, r)| r.watcher == *pid)
                .map(|(k, _)| k.clone())
                .collect();
            refs.into_iter()
                .filter_map(|r| m.remove(&r).map(|v| (r, v)))
                .collect()
        };
        for (reference, monitor) in own_monitors {
            if let Some(link) = self.connection_by_atom(&monitor.node) {
                let _ = link
                    .send(&Control::DemonitorP {
                        from: pid.clone(),
                        to: monitor.target,
                        reference,
                    })
                    .await;
            }
        }
        for (reference, watcher) in entry.watchers {
            if self.is_local(&watcher.pid) {
                self.deliver_down(&watcher.pid, reference, watcher.target, reason.clone())
                    .await;
            } else if let Some(link) = self.connection_by_atom(&watcher.pid.node) {
                let down = Control::MonitorPExit {
                    from: watcher.target,
                    to: watcher.pid,
                    reference,
                    reason: reason.clone(),
                };
                if let Err(e) = link.send(&down).await {
                    debug!("DOWN not sent: {e}");
                }
            }
        }
        for (linked, state) in entry.links {
            if state != LinkState::Active {
                continue;
            }
            if self.is_local(&linked) {
                Box::pin(self.exit_signal(&linked, pid.clone(), reason.clone())).await;
            } else if let Some(link) = self.connection_by_atom(&linked.node) {
                let exit = Control::Exit {
                    from: pid.clone(),
                    to: linked,
                    token: None,
                    reason: reason.clone(),
                };
                if let Err(e) = link.send(&exit).await {
                    debug!("EXIT not sent: {e}");
                }
            }
        }
    }

    /// A monitor of ours on a remote process fired.
    pub(crate) async fn monitor_fired(&self, reference: Reference, from: ProcessRef, reason: Term) {
        let Some(monitor) = lock(&self.inner.remote_monitors).remove(&reference) else {
            return;
        };
        let _ = from;
        self.deliver_down(&monitor.watcher, reference, monitor.target, reason)
            .await;
    }

    /// Puts a DOWN message in a local mailbox.
    pub(crate) async fn deliver_down(
        &self,
        watcher: &Pid,
        reference: Reference,
        process: ProcessRef,
        reason: Term,
    ) {
        let tx = {
            let table = self.processes();
            match table.get(watcher).map(|e| &e.inbox) {
                Some(Inbox::Mailbox(tx)) => tx.clone(),
                _ => return,
            }
        };
        let _ = tx
            .send(Envelope::Down {
                reference,
                process,
                reason,
            })
            .await;
    }

    /// Removes and returns the monitors our processes hold on processes of `node`.
    pub(crate) fn take_monitors_of(&self, node: &Atom) -> Vec<(Reference, ProcessRef, Pid)> {
        let mut m = lock(&self.inner.remote_monitors);
        let refs: Vec<Reference> = m
            .iter()
            .filter(|(_, r)| r.node == *node)
            .map(|(k, _)| k.clone())
            .collect();
        refs.into_iter()
            .filter_map(|r| m.remove(&r).map(|v| (r, v.target, v.watcher)))
            .collect()
    }

    /// A message sent to one of our aliases.
    pub(crate) async fn deliver_to_alias(
        &self,
        alias: &Reference,
        from: Option<Pid>,
        message: Term,
    ) {
        let owner = lock(&self.inner.aliases).get(alias).cloned();
        let Some(owner) = owner else {
            debug!(%alias, "message to an inactive alias dropped");
            return;
        };
        let tx = {
            let table = self.processes();
            match table.get(&owner).map(|e| &e.inbox) {
                Some(Inbox::Mailbox(tx)) => tx.clone(),
                _ => return,
            }
        };
        let _ = tx.send(Envelope::Message { from, message }).await;
    }

    /// SPAWN_REQUEST and SPAWN_REPLY.
    pub(crate) async fn spawn_signal(&self, link: &Connection, message: Control) {
        match message {
            m @ Control::SpawnRequest { .. } => self.spawn_request(link, m).await,
            Control::SpawnReply {
                req_id, to, result, ..
            } => {
                // Our spawn request (an rpc call): an error goes to the caller as the BEAM's
                // {spawn_reply, ReqId, error, Reason}; a pid means the monitor is in place.
                if matches!(result, Term::Pid(_)) {
                    return;
                }
                self.unwatch_remote(&req_id);
                let message = Term::tuple([
                    Term::atom("spawn_reply"),
                    Term::reference(req_id),
                    Term::atom("error"),
                    result,
                ]);
                self.send(None, &super::Dest::Pid(to), message).await.ok();
            }
            _ => {}
        }
    }

    /// Records that local `watcher` monitors a remote process under `reference`.
    pub(crate) fn watch_remote(
        &self,
        watcher: &Pid,
        reference: &Reference,
        node: &crate::proto::node_name::NodeName,
    ) {
        lock(&self.inner.remote_monitors).insert(
            reference.clone(),
            RemoteMonitor {
                watcher: watcher.clone(),
                target: ProcessRef::Name(Atom::new("")),
                node: node.as_atom().clone(),
            },
        );
    }

    /// Forgets a monitor recorded with [`Node::watch_remote`].
    pub(crate) fn unwatch_remote(&self, reference: &Reference) {
        lock(&self.inner.remote_monitors).remove(reference);
    }
}
