//! A Rust process that an Elixir process links to and monitors, and that watches the Elixir
//! process in turn: whichever goes down first, the other one sees it.
//!
//! The program registers a process `worker` (on a node registered with EPMD) that traps exits.
//! An Elixir process sends it `{:watch, self()}`; the worker monitors that process (its
//! *owner*) and answers `{:watching, worker_pid}`, and the owner links to the worker and
//! monitors it. Then
//! * the owner sends `{:stop, reason}`: the worker ends with `reason`, and the owner receives
//!   `{:EXIT, worker_pid, reason}` (it traps exits) and `{:DOWN, ref, :process, worker_pid,
//!   reason}`;
//! * or the owner ends with some reason: the worker receives the exit signal as a message
//!   (it traps exits) and the DOWN of its monitor, both with that reason, and ends normally.
//!
//! `examples/link_monitor.exs` is the Elixir side, for both cases:
//!
//! ```text
//! BEAMLINK_COOKIE=secret cargo run --example link_monitor -- worker@127.0.0.1
//! elixir --name owner@127.0.0.1 --cookie secret examples/link_monitor.exs worker@127.0.0.1 stop
//! ```
//! (`... link_monitor.exs worker@127.0.0.1 exit` for the other way round; start the worker
//! again first.)
//!
//! Arguments (or the environment): our node name (`BEAMLINK_NAME`, default
//! `worker@127.0.0.1`); the cookie only from `BEAMLINK_COOKIE`; `ERL_EPMD_PORT` is honoured.
//! Once the worker has ended, the program waits until the owner's node disconnects (a node's
//! [`Node::shutdown`] closes its connections at once, and the worker's last signals must reach
//! the owner first), then exits 0. It exits 1 when the worker sees only one of the exit
//! signal and the DOWN within 10 s of the other.

use beamlink::node::{Dest, Envelope};
use beamlink::{Atom, Cookie, Node, NodeEvent, Pid, Process, Reference, Term};
use std::error::Error;
use std::time::Duration;

/// How long the worker waits for the second of the exit signal and the DOWN.
const BOTH_WITHIN: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let name = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("BEAMLINK_NAME").ok())
        .unwrap_or_else(|| "worker@127.0.0.1".into());
    let cookie = std::env::var("BEAMLINK_COOKIE").map_err(|_| "set BEAMLINK_COOKIE")?;
    let node = Node::builder()
        .name(name)
        .cookie(Cookie::new(cookie))
        .start()
        .await?;
    // Subscribed before anyone can connect, so the owner's nodedown cannot be missed.
    let mut events = node.events();
    let worker = node.spawn_process();
    worker.register("worker")?;
    worker.trap_exit(true);
    println!("{} is up: the worker is {{:worker, :\"{0}\"}}", node.name());

    let outcome = tokio::select! {
        outcome = serve(worker) => outcome,
        _ = tokio::signal::ctrl_c() => Ok(None),
    };
    let owner = match outcome {
        Ok(owner) => owner,
        Err(failure) => {
            node.shutdown().await;
            eprintln!("link_monitor: {failure}");
            std::process::exit(1);
        }
    };
    if let Some(owner_node) = owner {
        println!("waiting for {owner_node} to disconnect");
        while node.connection_by_atom(&owner_node).is_some() {
            match events.recv().await {
                Ok(NodeEvent::NodeDown { peer, .. }) if peer.as_atom() == &owner_node => break,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    }
    node.shutdown().await;
    println!("stopped");
    Ok(())
}

/// The owner, once a process asked to be watched.
struct Owner {
    pid: Pid,
    monitor: Reference,
    exit: Option<Term>,
    down: Option<Term>,
}

/// Serves until the worker ends; returns the owner's node, if there was an owner.
async fn serve(mut worker: Process) -> Result<Option<Atom>, String> {
    let mut owner: Option<Owner> = None;
    loop {
        // Once one of the two signals came, the other must follow within BOTH_WITHIN.
        let halfway = owner
            .as_ref()
            .is_some_and(|o| o.exit.is_some() != o.down.is_some());
        let envelope = if halfway {
            worker.recv_timeout(BOTH_WITHIN).await.ok_or_else(|| {
                format!("the owner's exit signal and DOWN did not both come within {BOTH_WITHIN:?}")
            })?
        } else {
            worker
                .recv()
                .await
                .ok_or("the worker was killed although it traps exits")?
        };
        match envelope {
            Envelope::Message { message, .. } => match message.as_tuple() {
                Some([tag, Term::Pid(pid)]) if tag.is_atom("watch") && owner.is_none() => {
                    let monitor = worker.monitor(&Dest::Pid(pid.clone())).await;
                    let reply =
                        Term::tuple([Term::atom("watching"), Term::Pid(worker.pid().clone())]);
                    worker
                        .send(pid.clone(), reply)
                        .await
                        .map_err(|e| format!("cannot answer {pid}: {e}"))?;
                    println!("watching {pid}");
                    owner = Some(Owner {
                        pid: pid.clone(),
                        monitor,
                        exit: None,
                        down: None,
                    });
                }
                Some([tag, reason]) if tag.is_atom("stop") => {
                    println!("stopping with reason {reason}");
                    let owner_node = owner.map(|o| o.pid.node);
                    worker.exit(reason.clone()).await;
                    return Ok(owner_node);
                }
                _ => println!("ignoring {message}"),
            },
            Envelope::Exit { from, reason } => match owner.as_mut() {
                Some(o) if o.pid == from => {
                    println!("linked process {from} exited: {reason}");
                    o.exit = Some(reason);
                }
                _ => println!("ignoring an exit signal from {from}: {reason}"),
            },
            Envelope::Down {
                reference, reason, ..
            } => match owner.as_mut() {
                Some(o) if o.monitor == reference => {
                    println!("monitored process {} went down: {reason}", o.pid);
                    o.down = Some(reason);
                }
                _ => println!("ignoring a DOWN: {reason}"),
            },
            other => println!("ignoring {other:?}"),
        }
        if let Some(o) = &owner
            && let (Some(exit), Some(down)) = (&o.exit, &o.down)
        {
            if exit != down {
                return Err(format!("the exit signal said {exit}, the DOWN {down}"));
            }
            println!("the owner is gone: the worker ends");
            let owner_node = o.pid.node.clone();
            worker.exit(Term::atom("normal")).await;
            return Ok(Some(owner_node));
        }
    }
}
