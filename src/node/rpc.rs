//! Remote procedure calls into this node: the functions Rust code registers by module,
//! function and arity, and the three ways a BEAM calls them.
//!
//! * erpc (`erpc:call/4,5`, and `rpc:call/4,5` from OTP 25): a `SPAWN_REQUEST` for
//!   `erpc:execute_call/4`. We answer as a BEAM does: `SPAWN_REPLY` with a fresh pid, then
//!   the result as the exit reason of that "process", through the monitor the requester set
//!   up (`{Ref, return, Value}`, `{Ref, throw, T}`, `{Ref, exit, R}`, `{Ref, error, R, Stack}`;
//!   `lib/kernel/src/erpc.erl`). `erpc:execute_cast/3` (`rpc:cast`, `erpc:cast`) runs the
//!   function and exits `normal`. Any other spawn gets `SPAWN_REPLY` with the error
//!   `notsup` at once.
//! * `rex`, for `rpc:block_call` (`{block_call, M, F, A, GL}` in a `'$gen_call'`), for the
//!   OTP 23/24 `rpc:call` fallback (`{call, M, F, A, GL}`), and for OTP's C client
//!   `erl_call`, which sends the raw `{Pid, {call, M, F, A, user}}` and expects
//!   `{rex, Reply}`.
//!
//! A handler that panics is reported to its caller as an `error` exception; the node goes
//! on. Handlers run as tasks of the node, awaited at shutdown.

use super::Node;
use super::process::{Reply, ReplyTo, Service, ServiceContext};
use super::services::GenCall;
use crate::proto::control::Control;
use crate::proto::term::{Atom, Pid, Term};
use crate::transport::connection::Connection;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use tracing::{debug, warn};

/// How a function ends other than by returning, as the BEAM classes exceptions.
#[derive(Clone, Debug, PartialEq)]
pub enum RpcError {
    /// `throw(Value)`.
    Throw(Term),
    /// `exit(Reason)`.
    Exit(Term),
    /// `error(Reason)`, with a stack trace (a list, possibly empty).
    Error {
        /// The reason.
        reason: Term,
        /// The stack trace.
        stack: Term,
    },
}

impl RpcError {
    /// `error(Reason)` with an empty stack trace.
    pub fn error(reason: Term) -> RpcError {
        RpcError::Error {
            reason,
            stack: Term::NIL,
        }
    }

    /// `error(badarg)`, the usual answer to arguments a function does not take.
    pub fn badarg() -> RpcError {
        RpcError::error(Term::atom("badarg"))
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RpcError::Throw(t) => write!(f, "throw {t}"),
            RpcError::Exit(t) => write!(f, "exit {t}"),
            RpcError::Error { reason, .. } => write!(f, "error {reason}"),
        }
    }
}

impl std::error::Error for RpcError {}

/// Why a call to a remote function failed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum RpcCallError {
    /// The function raised: throw, exit or error, as on the remote node.
    Raised(RpcError),
    /// The remote node refused the spawn (`{erpc, Reason}`, e.g. `notsup`).
    Refused(Term),
    /// The connection failed or dropped (`{erpc, noconnection}`).
    NoConnection(String),
    /// No answer within the timeout (`{erpc, timeout}`).
    Timeout,
    /// The spawned process ended some other way (`{signal, Reason}`).
    Signal(Term),
}

impl fmt::Display for RpcCallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RpcCallError::Raised(e) => write!(f, "the function raised: {e}"),
            RpcCallError::Refused(r) => write!(f, "the node refused the call: {r}"),
            RpcCallError::NoConnection(e) => write!(f, "no connection: {e}"),
            RpcCallError::Timeout => f.write_str("no answer in time"),
            RpcCallError::Signal(r) => write!(f, "the call ended with {r}"),
        }
    }
}

impl std::error::Error for RpcCallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RpcCallError::Raised(e) => Some(e),
            _ => None,
        }
    }
}

/// What a handler returns.
pub type RpcResult = Result<Term, RpcError>;

/// The future a handler returns.
pub type RpcFuture = Pin<Box<dyn Future<Output = RpcResult> + Send>>;

/// Who is calling, for handlers that care.
#[derive(Clone, Debug)]
pub struct RpcCall {
    /// Our node.
    pub node: Node,
    /// The calling process.
    pub caller: Pid,
}

/// A registered function.
pub type RpcHandler = Arc<dyn Fn(RpcCall, Vec<Term>) -> RpcFuture + Send + Sync>;

/// Functions by `(module, function, arity)`.
#[derive(Default)]
pub(crate) struct RpcTable {
    handlers: RwLock<HashMap<(Atom, Atom, u8), RpcHandler>>,
}

impl RpcTable {
    fn get(&self, module: &Atom, function: &Atom, arity: u8) -> Option<RpcHandler> {
        self.handlers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(module.clone(), function.clone(), arity))
            .cloned()
    }
}

impl Node {
    /// Makes `module:function/arity` callable with `rpc:call`, `erpc:call`,
    /// `rpc:block_call` and `erl_call`. Replaces an earlier handler of the same name.
    ///
    /// The handler gets the caller ([`RpcCall`]) and the arguments; its [`RpcError`] is the
    /// exception the caller sees (`throw`, `exit` or `error`, as `erpc:call` raises them).
    ///
    /// ```
    /// use beamlink::{Atom, Cookie, Node, RpcError, Term};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let node = Node::builder()
    ///     .name("math@127.0.0.1")
    ///     .cookie(Cookie::new("secret"))
    ///     .dial_only()
    ///     .start()
    ///     .await?;
    /// // :rpc.call(node, :math, :double, [21]) from Elixir
    /// node.register_rpc("math", "double", 1, |_call, args| async move {
    ///     match args.first().and_then(Term::as_i64) {
    ///         Some(n) => Ok(Term::Int(2 * n)),
    ///         None => Err(RpcError::badarg()),
    ///     }
    /// });
    ///
    /// // What a caller gets, without a BEAM in between:
    /// let me = node.spawn_process();
    /// let (math, double) = (Atom::new("math"), Atom::new("double"));
    /// let answer = node.apply(me.pid(), &math, &double, vec![Term::Int(21)]).await;
    /// assert_eq!(answer, Ok(Term::Int(42)));
    /// # node.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn register_rpc<F, Fut>(&self, module: &str, function: &str, arity: u8, handler: F)
    where
        F: Fn(RpcCall, Vec<Term>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = RpcResult> + Send + 'static,
    {
        let handler: RpcHandler = Arc::new(move |call, args| Box::pin(handler(call, args)));
        self.inner
            .rpc
            .handlers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert((Atom::new(module), Atom::new(function), arity), handler);
    }

    /// Runs `module:function(args)` as a registered handler would be run for a caller:
    /// an unknown function is `error(undef)` with the BEAM's stack shape, a panic is an
    /// `error`.
    pub async fn apply(
        &self,
        caller: &Pid,
        module: &Atom,
        function: &Atom,
        args: Vec<Term>,
    ) -> RpcResult {
        let arity = u8::try_from(args.len()).unwrap_or(u8::MAX);
        let Some(handler) = self.inner.rpc.get(module, function, arity) else {
            return Err(RpcError::Error {
                reason: Term::atom("undef"),
                stack: Term::list([Term::tuple([
                    Term::Atom(module.clone()),
                    Term::Atom(function.clone()),
                    Term::List(args),
                    Term::NIL,
                ])]),
            });
        };
        let call = RpcCall {
            node: self.internal(),
            caller: caller.clone(),
        };
        let task = tokio::spawn(handler(call, args));
        match task.await {
            Ok(result) => result,
            Err(e) => {
                let what = if e.is_panic() {
                    "panicked"
                } else {
                    "was cancelled"
                };
                warn!(%module, %function, arity, "rpc handler {what}");
                Err(RpcError::Error {
                    reason: Term::tuple([
                        Term::atom("beamlink_handler_failed"),
                        Term::Atom(module.clone()),
                        Term::Atom(function.clone()),
                        Term::Int(arity as i64),
                    ]),
                    stack: Term::NIL,
                })
            }
        }
    }

    /// Calls `module:function(args)` on `peer` the way `erpc:call/5` does: a spawn request
    /// for `erpc:execute_call/4` with a monitor, the result read from the DOWN reason.
    pub async fn rpc_call(
        &self,
        peer: &crate::proto::node_name::NodeName,
        module: &str,
        function: &str,
        args: Vec<Term>,
        timeout: std::time::Duration,
    ) -> Result<Term, RpcCallError> {
        use super::process::Envelope;
        let link = self
            .connect(peer)
            .await
            .map_err(|e| RpcCallError::NoConnection(e.to_string()))?;
        let mut me = self.spawn_process();
        let req_id = self.make_ref();
        let tag = Term::reference(self.make_ref());
        let arg_list = Term::list([
            tag.clone(),
            Term::atom(module),
            Term::atom(function),
            Term::List(args),
        ]);
        self.watch_remote(me.pid(), &req_id, peer);
        let request = Control::SpawnRequest {
            req_id: req_id.clone(),
            from: me.pid().clone(),
            group_leader: me.pid().clone(),
            module: Atom::new("erpc"),
            function: Atom::new("execute_call"),
            arity: 4,
            opts: Term::list([Term::atom("monitor")]),
            token: None,
            args: arg_list,
        };
        if let Err(e) = link.send(&request).await {
            self.unwatch_remote(&req_id);
            return Err(RpcCallError::NoConnection(e.to_string()));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let Ok(envelope) = tokio::time::timeout_at(deadline, me.recv()).await else {
                self.unwatch_remote(&req_id);
                return Err(RpcCallError::Timeout);
            };
            match envelope {
                None => return Err(RpcCallError::Timeout),
                Some(Envelope::Message { message, .. }) => {
                    // {spawn_reply, ReqId, error, Reason}
                    if let Some([label, r, status, reason]) = message
                        .as_tuple()
                        .and_then(|t| <&[Term; 4]>::try_from(t).ok())
                        && label.is_atom("spawn_reply")
                        && r.as_ref() == Some(&req_id)
                        && status.is_atom("error")
                    {
                        self.unwatch_remote(&req_id);
                        return Err(RpcCallError::Refused(reason.clone()));
                    }
                }
                Some(Envelope::Down {
                    reference, reason, ..
                }) if reference == req_id => return erpc_outcome(&tag, reason),
                Some(_) => {}
            }
        }
    }

    /// Handles SPAWN_REQUEST: erpc calls and casts run, anything else is refused.
    pub(crate) async fn spawn_request(&self, link: &Connection, request: Control) {
        let Control::SpawnRequest {
            req_id,
            from,
            module,
            function,
            arity,
            opts,
            args,
            ..
        } = request
        else {
            return;
        };
        let monitor = has_opt(&opts, "monitor");
        let linked = has_opt(&opts, "link");
        let kind = if module.as_str() != "erpc" {
            None
        } else {
            match (function.as_str(), arity) {
                ("execute_call", 4) => Some(true),
                ("execute_cast", 3) => Some(false),
                _ => None,
            }
        };
        let args = match args {
            Term::List(a) => a,
            _ => Vec::new(),
        };
        let Some(is_call) = kind else {
            debug!(%module, %function, arity, "spawn of a function we do not run refused");
            let reply = Control::SpawnReply {
                req_id,
                to: from,
                flags: 0,
                result: Term::atom("notsup"),
                token: None,
            };
            if let Err(e) = link.send(&reply).await {
                debug!("SPAWN_REPLY not sent: {e}");
            }
            return;
        };
        // The "process" that runs the call: a pid of ours that exists while it runs.
        let (pid, _) = self.add_process(super::process::Inbox::Service(Arc::new(Transient)));
        let flags = (monitor as u8) << 1 | linked as u8;
        let reply = Control::SpawnReply {
            req_id: req_id.clone(),
            to: from.clone(),
            flags,
            result: Term::Pid(pid.clone()),
            token: None,
        };
        if let Err(e) = link.send(&reply).await {
            debug!("SPAWN_REPLY not sent: {e}");
            self.processes().remove(&pid);
            return;
        }
        let node = self.internal();
        let link = link.clone();
        self.inner.tracker.spawn(async move {
            let reason = if is_call {
                node.erpc_call(&from, args).await
            } else {
                node.erpc_cast(&from, args).await;
                Term::atom("normal")
            };
            node.processes().remove(&pid);
            if monitor {
                let down = Control::MonitorPExit {
                    from: crate::proto::control::ProcessRef::Pid(pid.clone()),
                    to: from.clone(),
                    reference: req_id,
                    reason: reason.clone(),
                };
                if let Err(e) = link.send(&down).await {
                    debug!("erpc result not sent: {e}");
                }
            }
            if linked {
                let exit = Control::Exit {
                    from: pid,
                    to: from,
                    token: None,
                    reason,
                };
                let _ = link.send(&exit).await;
            }
        });
    }

    /// `erpc:execute_call(Ref, M, F, A)`: the result as an exit reason.
    async fn erpc_call(&self, caller: &Pid, args: Vec<Term>) -> Term {
        let [reference, module, function, call_args] =
            <[Term; 4]>::try_from(args).unwrap_or([Term::NIL, Term::NIL, Term::NIL, Term::NIL]);
        let (Some(m), Some(f), Some(a)) =
            (module.as_atom(), function.as_atom(), call_args.as_list())
        else {
            // erpc:execute_call with bad arguments fails with badarg before it runs anything.
            return Term::tuple([
                reference,
                Term::atom("error"),
                Term::tuple([Term::atom("erpc"), Term::atom("badarg")]),
            ]);
        };
        match self.apply(caller, m, f, a.to_vec()).await {
            Ok(value) => Term::tuple([reference, Term::atom("return"), value]),
            Err(RpcError::Throw(t)) => Term::tuple([reference, Term::atom("throw"), t]),
            Err(RpcError::Exit(r)) => Term::tuple([reference, Term::atom("exit"), r]),
            Err(RpcError::Error { reason, stack }) => {
                Term::tuple([reference, Term::atom("error"), reason, stack])
            }
        }
    }

    /// `erpc:execute_cast(M, F, A)`.
    async fn erpc_cast(&self, caller: &Pid, args: Vec<Term>) {
        if let [module, function, call_args] = args.as_slice()
            && let (Some(m), Some(f), Some(a)) =
                (module.as_atom(), function.as_atom(), call_args.as_list())
            && let Err(e) = self.apply(caller, m, f, a.to_vec()).await
        {
            debug!(%m, %f, "cast failed: {e}");
        }
    }
}

fn has_opt(opts: &Term, name: &str) -> bool {
    opts.as_list()
        .is_some_and(|l| l.iter().any(|o| o.is_atom(name)))
}

/// The inbox of an erpc "process": messages to it are dropped, as they would be by a
/// process busy running a function.
struct Transient;

impl Service for Transient {
    fn handle(&self, _ctx: &ServiceContext<'_>, _from: Option<&Pid>, _message: Term) -> Vec<Reply> {
        Vec::new()
    }
}

/// `rex`: the classic rpc server.
pub(crate) struct Rex;

impl Service for Rex {
    fn handle(&self, ctx: &ServiceContext<'_>, _from: Option<&Pid>, message: Term) -> Vec<Reply> {
        let node = ctx.node.clone();
        let rex = ctx.pid.clone();
        if let Some(call) = GenCall::parse(&message) {
            let Some([op, m, f, a, _gl]) = call
                .request
                .as_tuple()
                .and_then(|t| <&[Term; 5]>::try_from(t).ok())
            else {
                debug!(request = %call.request, "rex: call not handled");
                return Vec::new();
            };
            if !(op.is_atom("block_call") || op.is_atom("call")) {
                debug!(request = %call.request, "rex: call not handled");
                return Vec::new();
            }
            let reply_to = ReplyTo::Caller {
                pid: call.from.clone(),
                tag: call.tag.clone(),
            };
            let caller = call.from.clone();
            let (m, f, a) = (m.clone(), f.clone(), a.clone());
            ctx.node.inner.tracker.spawn(async move {
                let result = rex_apply(&node, &caller, &m, &f, &a).await;
                node.send_reply(
                    &rex,
                    Reply {
                        to: reply_to,
                        message: result,
                    },
                )
                .await;
            });
            return Vec::new();
        }
        // erl_call: {Pid, {call, M, F, A, user}} answered with {rex, Reply}.
        if let Some([pid, request]) = message
            .as_tuple()
            .and_then(|t| <&[Term; 2]>::try_from(t).ok())
            && let Some(pid) = pid.as_pid()
            && let Some([op, m, f, a, _gl]) = request
                .as_tuple()
                .and_then(|t| <&[Term; 5]>::try_from(t).ok())
            && op.is_atom("call")
        {
            let caller = pid.clone();
            let (m, f, a) = (m.clone(), f.clone(), a.clone());
            ctx.node.inner.tracker.spawn(async move {
                let result = rex_apply(&node, &caller, &m, &f, &a).await;
                node.send_reply(
                    &rex,
                    Reply {
                        to: ReplyTo::Pid(caller.clone()),
                        message: Term::tuple([Term::atom("rex"), result]),
                    },
                )
                .await;
            });
            return Vec::new();
        }
        debug!(%message, "rex: message ignored");
        Vec::new()
    }
}

/// What `rpc:block_call` returns: the value, or `{badrpc, {'EXIT', Reason}}`.
async fn rex_apply(node: &Node, caller: &Pid, m: &Term, f: &Term, a: &Term) -> Term {
    let badrpc = |reason: Term| {
        Term::tuple([
            Term::atom("badrpc"),
            Term::tuple([Term::atom("EXIT"), reason]),
        ])
    };
    let (Some(m), Some(f), Some(a)) = (m.as_atom(), f.as_atom(), a.as_list()) else {
        return badrpc(Term::atom("badarg"));
    };
    match node.apply(caller, m, f, a.to_vec()).await {
        Ok(v) => v,
        Err(RpcError::Throw(t)) => t,
        Err(RpcError::Exit(r)) => badrpc(r),
        Err(RpcError::Error { reason, stack }) => badrpc(Term::tuple([reason, stack])),
    }
}

/// Reads erpc's result conventions out of a DOWN reason.
fn erpc_outcome(tag: &Term, reason: Term) -> Result<Term, RpcCallError> {
    if reason.is_atom("noconnection") {
        return Err(RpcCallError::NoConnection("the connection dropped".into()));
    }
    let Term::Tuple(mut parts) = reason else {
        return Err(RpcCallError::Signal(reason));
    };
    if parts.first() != Some(tag) {
        return Err(RpcCallError::Signal(Term::Tuple(parts)));
    }
    match (
        parts.len(),
        parts.get(1).and_then(|k| k.as_atom()).map(|a| a.as_str()),
    ) {
        (3, Some("return")) => Ok(parts.swap_remove(2)),
        (3, Some("throw")) => Err(RpcCallError::Raised(RpcError::Throw(parts.swap_remove(2)))),
        (3, Some("exit")) => Err(RpcCallError::Raised(RpcError::Exit(parts.swap_remove(2)))),
        (3, Some("error")) => Err(RpcCallError::Raised(RpcError::error(parts.swap_remove(2)))),
        (4, Some("error")) => {
            let stack = parts.swap_remove(3);
            let reason = parts.swap_remove(2);
            Err(RpcCallError::Raised(RpcError::Error { reason, stack }))
        }
        _ => Err(RpcCallError::Signal(Term::Tuple(parts))),
    }
}
