//! Processes owned by Rust code: a pid, a bounded mailbox, and the operations a BEAM
//! process has (send, receive, `gen_server:call`, monitor, link).

use super::process::{Envelope, Inbox, LinkState};
use super::signals::RemoteMonitor;
use super::{ConnectError, Node, lock};
use crate::proto::control::{Control, ProcessRef};
use crate::proto::flags::DistFlags;
use crate::proto::node_name::NodeName;
use crate::proto::term::{Atom, Pid, Reference, Term};
use crate::transport::connection::SendError as LinkSendError;
use std::fmt;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Where a message goes.
#[derive(Clone, Debug, PartialEq)]
pub enum Dest {
    /// A process, local or remote.
    Pid(Pid),
    /// A registered name on a node (ours or another).
    Name {
        /// The name.
        name: Atom,
        /// The node.
        node: NodeName,
    },
    /// A process alias (a reference).
    Alias(Reference),
}

impl Dest {
    /// `{Name, Node}`.
    pub fn name(name: &str, node: &NodeName) -> Dest {
        Dest::Name {
            name: Atom::new(name),
            node: node.clone(),
        }
    }

    fn node(&self) -> &Atom {
        match self {
            Dest::Pid(p) => &p.node,
            Dest::Name { node, .. } => node.as_atom(),
            Dest::Alias(r) => &r.node,
        }
    }
}

impl From<Pid> for Dest {
    fn from(p: Pid) -> Dest {
        Dest::Pid(p)
    }
}

/// Why a send failed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SendError {
    /// No connection to the destination's node could be made.
    Connect(ConnectError),
    /// The connection went down or the message could not be encoded.
    Link(LinkSendError),
    /// The destination's node name is not valid.
    BadNode(Atom),
    /// A local mailbox is full (`try_send` only).
    MailboxFull,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Connect(e) => write!(f, "{e}"),
            SendError::Link(e) => write!(f, "{e}"),
            SendError::BadNode(n) => write!(f, "{n} is not a node name"),
            SendError::MailboxFull => f.write_str("the mailbox is full"),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::Connect(e) => Some(e),
            SendError::Link(e) => Some(e),
            SendError::BadNode(_) | SendError::MailboxFull => None,
        }
    }
}

/// Why a call failed, as `gen_server:call` would exit.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CallError {
    /// No reply in time (`timeout`).
    Timeout,
    /// The connection to the server's node is down (`{nodedown, Node}`).
    NodeDown(Atom),
    /// The server exited or did not exist (`noproc` and others).
    Exit(Term),
    /// The request could not be sent.
    Send(SendError),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Timeout => f.write_str("no reply in time (timeout)"),
            CallError::NodeDown(n) => write!(f, "node {n} is down (nodedown)"),
            CallError::Exit(reason) => write!(f, "the server exited: {reason}"),
            CallError::Send(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for CallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CallError::Send(e) => Some(e),
            CallError::Timeout | CallError::NodeDown(_) | CallError::Exit(_) => None,
        }
    }
}

/// A process owned by Rust code ([`Node::spawn_process`]): a pid that BEAM processes can send
/// to, link to and monitor, and a bounded mailbox. Dropping it ends the process with reason
/// `normal` (its monitors and links fire), unless [`Process::exit`] ended it first.
///
/// ```
/// use beamlink::node::{Dest, Envelope};
/// use beamlink::{Cookie, Node, Term};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let node = Node::builder()
///     .name("demo@127.0.0.1")
///     .cookie(Cookie::new("secret"))
///     .dial_only()
///     .start()
///     .await?;
/// let mut worker = node.spawn_process();
/// worker.register("worker")?; // {:worker, node} for a BEAM
/// let watcher = node.spawn_process();
///
/// // send/2 to a registered name; the worker receives it with the sender's pid.
/// watcher.send(Dest::name("worker", node.name()), Term::atom("hello")).await?;
/// match worker.recv().await {
///     Some(Envelope::Message { from, message }) => {
///         assert_eq!(from.as_ref(), Some(watcher.pid()));
///         assert!(message.is_atom("hello"));
///     }
///     other => panic!("{other:?}"),
/// }
///
/// // Process.link/1 from the worker's side: when the watcher ends, the worker (trapping
/// // exits) gets {:EXIT, pid, reason} as a message instead of ending too.
/// worker.trap_exit(true);
/// worker.link(watcher.pid()).await?;
/// let watcher_pid = watcher.pid().clone();
/// watcher.exit(Term::atom("shutdown")).await;
/// match worker.recv().await {
///     Some(Envelope::Exit { from, reason }) => {
///         assert_eq!(from, watcher_pid);
///         assert!(reason.is_atom("shutdown"));
///     }
///     other => panic!("{other:?}"),
/// }
/// node.shutdown().await;
/// # Ok(())
/// # }
/// ```
/// [`Process::monitor`] works the same way with [`Envelope::Down`]; `examples/link_monitor.rs`
/// links and monitors across a connection, with an Elixir process.
pub struct Process {
    node: Node,
    pid: Pid,
    mailbox: mpsc::Receiver<Envelope>,
    /// Messages a selective receive (a call waiting for its reply) passed over, in order.
    stash: std::collections::VecDeque<Envelope>,
    kill: CancellationToken,
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process").field("pid", &self.pid).finish()
    }
}

impl Node {
    /// A new process with a mailbox of `NodeConfig::mailbox_capacity` messages.
    pub fn spawn_process(&self) -> Process {
        let (tx, rx) = mpsc::channel(self.inner.config.mailbox_capacity.max(1));
        let (pid, kill) = self.add_process(Inbox::Mailbox(tx));
        Process {
            node: self.internal(),
            pid,
            mailbox: rx,
            stash: Default::default(),
            kill,
        }
    }

    /// Sends `message` to `to`, from `from` (a local pid, or none). Remote destinations are
    /// connected to on demand, as a BEAM does. Waits while the link's send queue or the
    /// local mailbox is full.
    pub async fn send(
        &self,
        from: Option<&Pid>,
        to: &Dest,
        message: Term,
    ) -> Result<(), SendError> {
        if self.is_local_node(to.node()) {
            self.send_local(from, to, message).await;
            return Ok(());
        }
        let link = match self.connection_by_atom(to.node()) {
            Some(link) => link,
            None => {
                let node_name = NodeName::parse(to.node().as_str())
                    .map_err(|_| SendError::BadNode(to.node().clone()))?;
                self.connect(&node_name).await.map_err(SendError::Connect)?
            }
        };
        let from_pid = from.cloned().unwrap_or_else(|| self.anonymous_pid());
        let control = match to {
            Dest::Pid(pid) => Control::Send {
                from: Some(from_pid),
                to: pid.clone(),
                token: None,
                message,
            },
            Dest::Name { name, .. } => Control::RegSend {
                from: from_pid,
                to: name.clone(),
                token: None,
                message,
            },
            Dest::Alias(alias) => {
                if !link.flags().contains(DistFlags::ALIAS) {
                    // The BEAM drops these silently; so do we, but say so.
                    tracing::debug!(%alias, "alias send to a node without alias support dropped");
                    return Ok(());
                }
                Control::AliasSend {
                    from: from_pid,
                    alias: alias.clone(),
                    token: None,
                    message,
                }
            }
        };
        link.send(&control).await.map_err(SendError::Link)
    }

    fn is_local_node(&self, node: &Atom) -> bool {
        node == self.name().as_atom()
    }

    pub(super) async fn send_local(&self, from: Option<&Pid>, to: &Dest, message: Term) {
        let pid = match to {
            Dest::Pid(p) => Some(p.clone()),
            Dest::Name { name, .. } => self.whereis(name),
            Dest::Alias(a) => lock(&self.inner.aliases).get(a).cloned(),
        };
        let Some(pid) = pid else { return };
        let inbox = self.processes().get(&pid).map(|e| e.inbox.clone());
        match inbox {
            Some(Inbox::Mailbox(tx)) => {
                let _ = tx
                    .send(Envelope::Message {
                        from: from.cloned(),
                        message,
                    })
                    .await;
            }
            Some(Inbox::Service(service)) => {
                let replies = {
                    let ctx = super::process::ServiceContext {
                        node: self,
                        pid: &pid,
                    };
                    service.handle(&ctx, from, message)
                };
                for reply in replies {
                    self.send_reply(&pid, reply).await;
                }
            }
            None => {}
        }
    }

    /// A pid for messages sent without a sending process (SEND_SENDER needs one).
    fn anonymous_pid(&self) -> Pid {
        Pid {
            node: self.name().as_atom().clone(),
            id: 0,
            serial: 0,
            creation: self.creation(),
        }
    }
}

impl Process {
    /// This process's pid.
    pub fn pid(&self) -> &Pid {
        &self.pid
    }

    /// The node it runs on.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Registers a name for this process.
    pub fn register(&self, name: &str) -> Result<(), super::RegisterError> {
        self.node.register_pid(Atom::new(name), &self.pid)
    }

    /// Exit signals from links arrive as [`Envelope::Exit`] instead of ending the process.
    pub fn trap_exit(&self, trap: bool) {
        if let Some(e) = self.node.processes().get_mut(&self.pid) {
            e.trap_exit = trap;
        }
    }

    /// Resolves when an exit signal ended this process.
    pub async fn killed(&self) {
        self.kill.cancelled().await
    }

    /// The next message, or `None` once the process has been ended by an exit signal.
    pub async fn recv(&mut self) -> Option<Envelope> {
        if let Some(e) = self.stash.pop_front() {
            return Some(e);
        }
        tokio::select! {
            biased;
            m = self.mailbox.recv() => m,
            _ = self.kill.cancelled() => None,
        }
    }

    /// The next message within `timeout`.
    pub async fn recv_timeout(&mut self, timeout: Duration) -> Option<Envelope> {
        tokio::time::timeout(timeout, self.recv())
            .await
            .ok()
            .flatten()
    }

    /// Sends `message` to `to`.
    pub async fn send(&self, to: impl Into<Dest>, message: Term) -> Result<(), SendError> {
        self.node.send(Some(&self.pid), &to.into(), message).await
    }

    /// Monitors `target` (a remote pid or `{name, node}`); a [`Envelope::Down`] with the
    /// returned reference follows when it ends, with `noproc` if it does not exist and
    /// `noconnection` if the connection fails.
    pub async fn monitor(&self, target: &Dest) -> Reference {
        let reference = self.node.make_ref();
        let (node, process) = match target {
            Dest::Pid(p) => (p.node.clone(), ProcessRef::Pid(p.clone())),
            Dest::Name { name, node } => (node.as_atom().clone(), ProcessRef::Name(name.clone())),
            Dest::Alias(r) => (r.node.clone(), ProcessRef::Name(Atom::new(""))),
        };
        if self.node.is_local_node(&node) {
            self.monitor_local(reference.clone(), process).await;
            return reference;
        }
        let link = match NodeName::parse(node.as_str()) {
            Ok(name) => self.node.connect(&name).await.ok(),
            Err(_) => None,
        };
        let Some(link) = link else {
            self.node
                .deliver_down(
                    &self.pid,
                    reference.clone(),
                    process,
                    Term::atom("noconnection"),
                )
                .await;
            return reference;
        };
        lock(&self.node.inner.remote_monitors).insert(
            reference.clone(),
            RemoteMonitor {
                watcher: self.pid.clone(),
                target: process.clone(),
                node,
            },
        );
        let monitor = Control::MonitorP {
            from: self.pid.clone(),
            to: process.clone(),
            reference: reference.clone(),
        };
        if link.send(&monitor).await.is_err() {
            // The link dropped: its clean-up fires noconnection unless it already ran.
            if lock(&self.node.inner.remote_monitors)
                .remove(&reference)
                .is_some()
            {
                self.node
                    .deliver_down(
                        &self.pid,
                        reference.clone(),
                        process,
                        Term::atom("noconnection"),
                    )
                    .await;
            }
        }
        reference
    }

    async fn monitor_local(&self, reference: Reference, process: ProcessRef) {
        let found = {
            let mut table = self.node.processes();
            let entry = match &process {
                ProcessRef::Pid(p) => table.get_mut(p),
                ProcessRef::Name(n) => table.whereis_mut(n),
            };
            match entry {
                Some(e) => {
                    e.watchers.insert(
                        reference.clone(),
                        super::process::Watcher {
                            pid: self.pid.clone(),
                            target: process.clone(),
                        },
                    );
                    true
                }
                None => false,
            }
        };
        if !found {
            self.node
                .deliver_down(&self.pid, reference, process, Term::atom("noproc"))
                .await;
        }
    }

    /// Removes a monitor made with [`Process::monitor`].
    pub async fn demonitor(&self, reference: &Reference) {
        let monitor = lock(&self.node.inner.remote_monitors).remove(reference);
        if let Some(m) = monitor {
            if let Some(link) = self.node.connection_by_atom(&m.node) {
                let _ = link
                    .send(&Control::DemonitorP {
                        from: self.pid.clone(),
                        to: m.target,
                        reference: reference.clone(),
                    })
                    .await;
            }
            return;
        }
        let mut table = self.node.processes();
        for e in table.entries_mut() {
            e.watchers.remove(reference);
        }
    }

    /// Links to a remote pid: if either ends, the other gets an exit signal.
    pub async fn link(&self, to: &Pid) -> Result<(), SendError> {
        if let Some(e) = self.node.processes().get_mut(&self.pid) {
            e.links.insert(to.clone(), LinkState::Active);
        }
        if self.node.is_local_node(&to.node) {
            let exists = match self.node.processes().get_mut(to) {
                Some(e) => {
                    e.links.insert(self.pid.clone(), LinkState::Active);
                    true
                }
                None => false,
            };
            if !exists {
                self.node
                    .exit_signal(&self.pid, to.clone(), Term::atom("noproc"))
                    .await;
            }
            return Ok(());
        }
        let name =
            NodeName::parse(to.node.as_str()).map_err(|_| SendError::BadNode(to.node.clone()))?;
        let link = match self.node.connect(&name).await {
            Ok(l) => l,
            Err(e) => {
                self.node
                    .exit_signal(&self.pid, to.clone(), Term::atom("noconnection"))
                    .await;
                return Err(SendError::Connect(e));
            }
        };
        link.send(&Control::Link {
            from: self.pid.clone(),
            to: to.clone(),
        })
        .await
        .map_err(SendError::Link)
    }

    /// Removes a link (the UNLINK_ID protocol for remote pids).
    pub async fn unlink(&self, to: &Pid) -> Result<(), SendError> {
        if self.node.is_local_node(&to.node) {
            if let Some(e) = self.node.processes().get_mut(&self.pid) {
                e.links.remove(to);
            }
            if let Some(e) = self.node.processes().get_mut(to) {
                e.links.remove(&self.pid);
            }
            return Ok(());
        }
        let id = self
            .node
            .inner
            .next_ref
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.node.processes().get_mut(&self.pid) {
            Some(e) if e.links.contains_key(to) => {
                e.links.insert(to.clone(), LinkState::Unlinking(id));
            }
            _ => return Ok(()),
        }
        let Some(link) = self.node.connection_by_atom(&to.node) else {
            return Ok(());
        };
        link.send(&Control::UnlinkId {
            id,
            from: self.pid.clone(),
            to: to.clone(),
        })
        .await
        .map_err(SendError::Link)
    }

    /// Calls a gen_server: `gen_server:call(To, Request, Timeout)`. Uses the monitor and
    /// alias a BEAM uses when the connection supports aliases, a plain reference otherwise.
    pub async fn call(
        &mut self,
        to: &Dest,
        request: Term,
        timeout: Duration,
    ) -> Result<Term, CallError> {
        let mref = self.monitor(to).await;
        let alias_ok = self.node.is_local_node(to.node())
            || self
                .node
                .connection_by_atom(to.node())
                .is_some_and(|l| l.flags().contains(DistFlags::ALIAS));
        let tag = if alias_ok {
            lock(&self.node.inner.aliases).insert(mref.clone(), self.pid.clone());
            Term::ImproperList(
                vec![Term::atom("alias")],
                Box::new(Term::reference(mref.clone())),
            )
        } else {
            Term::reference(mref.clone())
        };
        let message = Term::tuple([
            Term::atom("$gen_call"),
            Term::tuple([Term::Pid(self.pid.clone()), tag.clone()]),
            request,
        ]);
        let result = match self.send(to.clone(), message).await {
            Err(e) => Err(CallError::Send(e)),
            Ok(()) => self.await_reply(&tag, &mref, to, timeout).await,
        };
        lock(&self.node.inner.aliases).remove(&mref);
        self.demonitor(&mref).await;
        result
    }

    async fn await_reply(
        &mut self,
        tag: &Term,
        mref: &Reference,
        to: &Dest,
        timeout: Duration,
    ) -> Result<Term, CallError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let next = tokio::time::timeout_at(deadline, self.mailbox.recv()).await;
            let envelope = match next {
                Err(_) => return Err(CallError::Timeout),
                Ok(None) => return Err(CallError::Timeout),
                Ok(Some(e)) => e,
            };
            match &envelope {
                Envelope::Message { message, .. } => {
                    if let Some([t, reply]) = message.as_tuple()
                        && t == tag
                    {
                        return Ok(reply.clone());
                    }
                }
                Envelope::Down {
                    reference, reason, ..
                } if reference == mref => {
                    return Err(if reason.is_atom("noconnection") {
                        CallError::NodeDown(to.node().clone())
                    } else {
                        CallError::Exit(reason.clone())
                    });
                }
                _ => {}
            }
            // Not the reply: it stays, in order, for the next recv (a selective receive).
            // The stash holds what arrives during one call, beyond the mailbox bound.
            self.stash.push_back(envelope);
        }
    }

    /// Ends the process with `reason`.
    pub async fn exit(self, reason: Term) {
        self.node.process_exit(&self.pid, reason).await;
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let node = self.node.clone();
        let pid = self.pid.clone();
        let exists = node.processes().get(&pid).is_some();
        if exists && tokio::runtime::Handle::try_current().is_ok() {
            // Ending needs async sends; the node's tracker keeps it awaited at shutdown.
            node.inner.tracker.clone().spawn(async move {
                node.process_exit(&pid, Term::atom("normal")).await;
            });
        } else if exists {
            node.processes().remove(&pid);
        }
    }
}
