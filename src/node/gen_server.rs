//! GenServers written in Rust, served the way `gen_server` serves them: `'$gen_call'` with
//! the reply sent as `{Tag, Reply}` (the tag exactly as received, `[alias | Ref]` included),
//! `'$gen_cast'`, and everything else as info.
//!
//! A callback that panics does not take the server down: the caller whose request caused it
//! sees the server exit with `{panic, Message}` (its call monitor fires, as when a BEAM
//! gen_server crashes), and the server goes on serving others with its state as it was.

use super::process::{Envelope, ReplyTo};
use super::services::GenCall;
use super::{Node, Process, RegisterError};
use crate::proto::control::{Control, ProcessRef};
use crate::proto::term::{Pid, Term};
use futures_util::FutureExt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use tracing::{Instrument, error, info_span};

/// The caller of a `'$gen_call'`, to reply later with [`Caller::reply`].
#[derive(Clone, Debug)]
pub struct Caller {
    /// The calling process.
    pub pid: Pid,
    /// The call tag, exactly as received.
    pub tag: Term,
}

impl Caller {
    /// Sends the reply `{Tag, reply}`.
    pub async fn reply(&self, node: &Node, server: &Pid, reply: Term) {
        node.send_reply(
            server,
            super::process::Reply {
                to: ReplyTo::Caller {
                    pid: self.pid.clone(),
                    tag: self.tag.clone(),
                },
                message: reply,
            },
        )
        .await;
    }
}

/// What `handle_call` decides.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum CallReply {
    /// Reply now with this term.
    Reply(Term),
    /// Reply later with [`Caller::reply`].
    NoReply,
}

/// A GenServer implemented in Rust: [`Node::spawn_gen_server`] registers it under a name, and
/// `GenServer.call({name, node}, request)` from Elixir (or `gen_server:call` from Erlang, or
/// [`Process::call`] from Rust) reaches [`handle_call`](GenServer::handle_call). Requests are
/// served one at a time, in the order they arrive, with `&mut self`.
///
/// ```
/// use beamlink::node::Dest;
/// use beamlink::{CallReply, Caller, Cookie, GenServer, Node, Term};
/// use std::time::Duration;
///
/// /// `{:push, item}` and `:pop`.
/// struct Stack(Vec<Term>);
///
/// impl GenServer for Stack {
///     async fn handle_call(&mut self, request: Term, _from: &Caller) -> CallReply {
///         CallReply::Reply(match request.as_tuple() {
///             Some([op, item]) if op.is_atom("push") => {
///                 self.0.push(item.clone());
///                 Term::atom("ok")
///             }
///             _ if request.is_atom("pop") => self.0.pop().unwrap_or(Term::atom("empty")),
///             _ => Term::tuple([Term::atom("error"), Term::atom("unknown_call")]),
///         })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A node on its own for this example; `Node::builder()` without `dial_only()` joins a
/// // cluster, where Elixir calls `GenServer.call({:stack, node}, {:push, 1})`.
/// let node = Node::builder()
///     .name("stack@127.0.0.1")
///     .cookie(Cookie::new("secret"))
///     .dial_only()
///     .start()
///     .await?;
/// node.spawn_gen_server("stack", Stack(Vec::new()))?;
///
/// let mut me = node.spawn_process();
/// let stack = Dest::name("stack", node.name());
/// let push = Term::tuple([Term::atom("push"), Term::Int(1)]);
/// let timeout = Duration::from_secs(5);
/// assert_eq!(me.call(&stack, push, timeout).await?, Term::atom("ok"));
/// assert_eq!(me.call(&stack, Term::atom("pop"), timeout).await?, Term::Int(1));
/// node.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub trait GenServer: Send + 'static {
    /// A `GenServer.call`.
    fn handle_call(
        &mut self,
        request: Term,
        from: &Caller,
    ) -> impl Future<Output = CallReply> + Send;

    /// A `GenServer.cast`.
    fn handle_cast(&mut self, request: Term) -> impl Future<Output = ()> + Send {
        let _ = request;
        async {}
    }

    /// Any other message, exit signal or DOWN.
    fn handle_info(&mut self, message: Envelope) -> impl Future<Output = ()> + Send {
        let _ = message;
        async {}
    }
}

impl Node {
    /// Starts `server` as a process registered as `name`; it runs until the node shuts
    /// down. Returns its pid.
    pub fn spawn_gen_server<S: GenServer>(
        &self,
        name: &str,
        server: S,
    ) -> Result<Pid, RegisterError> {
        let process = self.spawn_process();
        process.register(name)?;
        let pid = process.pid().clone();
        let node = self.internal();
        let span = info_span!("gen_server", name);
        self.inner
            .tracker
            .spawn(serve(node, process, server).instrument(span));
        Ok(pid)
    }
}

async fn serve<S: GenServer>(node: Node, mut process: Process, mut server: S) {
    loop {
        let envelope = tokio::select! {
            e = process.recv() => e,
            _ = node.shutting_down() => return,
        };
        let Some(envelope) = envelope else { return };
        if let Envelope::Message { message, .. } = &envelope {
            if let Some(call) = GenCall::parse(message) {
                let from = Caller {
                    pid: call.from.clone(),
                    tag: call.tag.clone(),
                };
                let request = call.request.clone();
                let outcome = AssertUnwindSafe(server.handle_call(request, &from))
                    .catch_unwind()
                    .await;
                match outcome {
                    Ok(CallReply::Reply(reply)) => from.reply(&node, process.pid(), reply).await,
                    Ok(CallReply::NoReply) => {}
                    Err(panic) => crashed_for(&node, &process, &from, panic_text(&panic)).await,
                }
                continue;
            }
            if let Some([label, request]) = message.as_tuple()
                && label.is_atom("$gen_cast")
            {
                let request = request.clone();
                if let Err(panic) = AssertUnwindSafe(server.handle_cast(request))
                    .catch_unwind()
                    .await
                {
                    error!("handle_cast panicked: {}", panic_text(&panic));
                }
                continue;
            }
        }
        if let Err(panic) = AssertUnwindSafe(server.handle_info(envelope))
            .catch_unwind()
            .await
        {
            error!("handle_info panicked: {}", panic_text(&panic));
        }
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

/// Makes the caller see this server exit with `{panic, Message}`: its call monitor fires.
async fn crashed_for(node: &Node, process: &Process, from: &Caller, text: String) {
    error!(caller = %from.pid, "handle_call panicked: {text}");
    let reason = Term::tuple([Term::atom("panic"), Term::binary(text.into_bytes())]);
    let mref = match &from.tag {
        Term::Ref(r) => Some((**r).clone()),
        t => super::router::alias_of(t).cloned(),
    };
    let Some(mref) = mref else { return };
    let watcher = {
        let mut table = node.processes();
        table
            .get_mut(process.pid())
            .and_then(|e| e.watchers.remove(&mref))
    };
    let target = watcher
        .map(|w| w.target)
        .unwrap_or_else(|| ProcessRef::Pid(process.pid().clone()));
    if node.is_local(&from.pid) {
        node.deliver_down(&from.pid, mref, target, reason).await;
    } else if let Some(link) = node.connection_by_atom(&from.pid.node) {
        let _ = link
            .send(&Control::MonitorPExit {
                from: target,
                to: from.pid.clone(),
                reference: mref,
                reason,
            })
            .await;
    }
}
