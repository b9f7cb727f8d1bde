//! Local processes: pids of our own creation, registered names, and what each process owes
//! the rest of the cluster (the remote processes monitoring or linked to it).
//!
//! A process is either a *mailbox* owned by Rust code ([`super::Process`]), or a built-in
//! *service* (net_kernel, rex, ...) that handles each message inline on the task that
//! received it: no queue, no task switch.
//!
//! Mailboxes are bounded (`NodeConfig::mailbox_capacity`). A message for a full mailbox
//! waits: the link it came on reads nothing more until there is room, so a slow process
//! slows its senders' connections (TCP flow control carries the pressure back to the
//! BEAM, which suspends its senders) and nothing is dropped. Local senders get
//! [`crate::node::SendError::MailboxFull`] from `try_send` instead.

use super::{Node, lock};
use crate::proto::control::ProcessRef;
use crate::proto::term::{Atom, Pid, Reference, Term};
use rustc_hash::FxHashMap;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, MutexGuard};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What arrives in a mailbox.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Envelope {
    /// A message (`SEND`, `REG_SEND`, `ALIAS_SEND`, or a local send).
    Message {
        /// The sender, when the protocol says who it is.
        from: Option<Pid>,
        /// The message.
        message: Term,
    },
    /// An exit signal from a linked process (delivered when the process traps exits).
    Exit {
        /// The process that exited.
        from: Pid,
        /// Its exit reason (`noconnection` when the connection to its node dropped).
        reason: Term,
    },
    /// A monitor fired.
    Down {
        /// The monitor reference.
        reference: Reference,
        /// The monitored process, as it was monitored.
        process: ProcessRef,
        /// Exit reason (`noproc`, `noconnection`, or the process's reason).
        reason: Term,
    },
}

/// A built-in process that handles each message inline.
pub(crate) trait Service: Send + Sync + 'static {
    /// Handles one message; returns the reply to send, if any.
    fn handle(&self, ctx: &ServiceContext<'_>, from: Option<&Pid>, message: Term) -> Vec<Reply>;
}

/// What a service may look at while it handles a message.
pub(crate) struct ServiceContext<'a> {
    pub node: &'a super::Node,
    pub pid: &'a Pid,
}

/// A message a service sends back.
#[derive(Debug)]
pub(crate) struct Reply {
    /// Where it goes.
    pub to: ReplyTo,
    /// The message.
    pub message: Term,
}

/// The destination of a reply.
#[derive(Debug)]
pub(crate) enum ReplyTo {
    /// A pid.
    Pid(Pid),
    /// A `'$gen_call'` caller: its pid and the tag exactly as received (the alias is used
    /// when the tag is `[alias | Ref]` and the connection supports aliases).
    Caller { pid: Pid, tag: Term },
}

/// How a process receives.
#[derive(Clone)]
pub(crate) enum Inbox {
    Mailbox(mpsc::Sender<Envelope>),
    Service(Arc<dyn Service>),
}

impl fmt::Debug for Inbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Inbox::Mailbox(_) => f.write_str("Mailbox"),
            Inbox::Service(_) => f.write_str("Service"),
        }
    }
}

/// A remote process watching one of ours.
#[derive(Clone, Debug)]
pub(crate) struct Watcher {
    /// The monitoring process.
    pub pid: Pid,
    /// How it named ours (pid or registered name): the DOWN message says the same.
    pub target: ProcessRef,
}

/// Link state of one linked pair (`erl_dist_protocol.md`, "Link Protocol").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LinkState {
    /// Linked.
    Active,
    /// We sent UNLINK_ID with this id and wait for the ack; exits from the peer are ignored.
    Unlinking(u64),
}

#[derive(Debug)]
pub(crate) struct Entry {
    pub pid: Pid,
    pub name: Option<Atom>,
    pub inbox: Inbox,
    /// Remote monitors on this process, by monitor reference.
    pub watchers: HashMap<Reference, Watcher>,
    /// Links to other processes (remote or local).
    pub links: HashMap<Pid, LinkState>,
    /// Cancelled when the process must stop (an exit signal it does not trap).
    pub kill: CancellationToken,
    /// Deliver exit signals as messages instead of stopping.
    pub trap_exit: bool,
}

/// The local process table. Short critical sections only; never held across `.await`.
#[derive(Debug, Default)]
pub(crate) struct ProcessTable {
    by_id: FxHashMap<u32, Entry>,
    names: FxHashMap<Atom, u32>,
    next_id: u32,
}

/// Why a name cannot be registered.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegisterError {
    /// Another process has the name.
    NameTaken(Atom),
    /// The process does not exist (any more).
    NoProcess,
    /// The process already has a name.
    AlreadyNamed(Atom),
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::NameTaken(n) => write!(f, "the name {n} is already registered"),
            RegisterError::NoProcess => f.write_str("the process does not exist"),
            RegisterError::AlreadyNamed(n) => write!(f, "the process is already registered as {n}"),
        }
    }
}

impl std::error::Error for RegisterError {}

impl Node {
    /// Registered names of this node.
    pub fn registered(&self) -> Vec<Atom> {
        lock(&self.inner.processes).registered()
    }

    /// Removes a registered name; true if it was registered.
    pub fn unregister(&self, name: &Atom) -> bool {
        self.processes().unregister(name)
    }

    /// The number of local processes (built-in services included).
    pub fn process_count(&self) -> usize {
        self.processes().len()
    }

    /// The pid registered as `name`.
    pub fn whereis(&self, name: &Atom) -> Option<Pid> {
        lock(&self.inner.processes)
            .whereis(name)
            .map(|e| e.pid.clone())
    }

    pub(crate) fn processes(&self) -> MutexGuard<'_, ProcessTable> {
        lock(&self.inner.processes)
    }

    pub(crate) fn add_process(&self, inbox: Inbox) -> (Pid, CancellationToken) {
        self.processes()
            .insert(self.inner.name.as_atom(), self.inner.creation, inbox)
    }

    pub(crate) fn register_pid(&self, name: Atom, pid: &Pid) -> Result<(), RegisterError> {
        self.processes().register(name, pid)
    }
}

impl ProcessTable {
    /// Adds a process; its pid uses `node` and `creation`.
    pub fn insert(&mut self, node: &Atom, creation: u32, inbox: Inbox) -> (Pid, CancellationToken) {
        // Ids start above the BEAM's usual range only to make our pids easy to tell apart
        // in logs; any non-colliding value would do.
        self.next_id = self.next_id.wrapping_add(1);
        while self.by_id.contains_key(&self.next_id) || self.next_id == 0 {
            self.next_id = self.next_id.wrapping_add(1);
        }
        let pid = Pid {
            node: node.clone(),
            id: self.next_id,
            serial: 0,
            creation,
        };
        let kill = CancellationToken::new();
        self.by_id.insert(
            pid.id,
            Entry {
                pid: pid.clone(),
                name: None,
                inbox,
                watchers: HashMap::new(),
                links: HashMap::new(),
                kill: kill.clone(),
                trap_exit: false,
            },
        );
        (pid, kill)
    }

    /// Removes a process and its name; returns its entry.
    pub fn remove(&mut self, pid: &Pid) -> Option<Entry> {
        let entry = self.by_id.remove(&pid.id)?;
        if let Some(name) = &entry.name {
            self.names.remove(name);
        }
        Some(entry)
    }

    /// Registers `name` for `pid`.
    pub fn register(&mut self, name: Atom, pid: &Pid) -> Result<(), RegisterError> {
        if self.names.contains_key(&name) {
            return Err(RegisterError::NameTaken(name));
        }
        let entry = self
            .by_id
            .get_mut(&pid.id)
            .ok_or(RegisterError::NoProcess)?;
        if let Some(old) = &entry.name {
            return Err(RegisterError::AlreadyNamed(old.clone()));
        }
        entry.name = Some(name.clone());
        self.names.insert(name, pid.id);
        Ok(())
    }

    /// Removes a registered name.
    pub fn unregister(&mut self, name: &Atom) -> bool {
        match self.names.remove(name) {
            Some(id) => {
                if let Some(e) = self.by_id.get_mut(&id) {
                    e.name = None;
                }
                true
            }
            None => false,
        }
    }

    /// The process with this id (the caller checks node and creation).
    pub fn get(&self, pid: &Pid) -> Option<&Entry> {
        self.by_id.get(&pid.id).filter(|e| e.pid == *pid)
    }

    /// Mutable access by pid.
    pub fn get_mut(&mut self, pid: &Pid) -> Option<&mut Entry> {
        self.by_id.get_mut(&pid.id).filter(|e| e.pid == *pid)
    }

    /// The process registered as `name`.
    pub fn whereis(&self, name: &Atom) -> Option<&Entry> {
        self.names.get(name).and_then(|id| self.by_id.get(id))
    }

    /// Mutable access by name.
    pub fn whereis_mut(&mut self, name: &Atom) -> Option<&mut Entry> {
        let id = *self.names.get(name)?;
        self.by_id.get_mut(&id)
    }

    /// Registered names.
    pub fn registered(&self) -> Vec<Atom> {
        self.names.keys().cloned().collect()
    }

    /// Number of processes.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Every entry, for clean-up when a peer goes down.
    pub fn entries_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.by_id.values_mut()
    }
}
