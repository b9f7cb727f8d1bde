//! A GenServer written in Rust, called from Elixir.
//!
//! ```text
//! BEAMLINK_COOKIE=secret cargo run --example genserver -- counter@127.0.0.1
//! iex --name me@127.0.0.1 --cookie secret
//! iex> GenServer.call({:counter, :"counter@127.0.0.1"}, {:add, 5})
//! 5
//! iex> GenServer.cast({:counter, :"counter@127.0.0.1"}, :reset)
//! iex> :rpc.call(:"counter@127.0.0.1", :counter, :value, [])
//! 0
//! ```
//! The node registers with the local EPMD (or serves EPMD itself when none runs) and stays
//! until Ctrl-C.

use beamlink::epmd::{EpmdMode, EpmdStatus, Registrar, RegistrarConfig};
use beamlink::node::{CallReply, Caller, GenServer, Node, NodeConfig, RpcError};
use beamlink::proto::digest::Cookie;
use beamlink::proto::epmd::{Alive2Request, AliveName};
use beamlink::proto::node_name::NodeName;
use beamlink::proto::term::Term;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use tokio_util::sync::CancellationToken;

/// Adds numbers; `:reset` (a cast) sets it back to zero.
struct Counter {
    total: Arc<AtomicI64>,
}

impl GenServer for Counter {
    async fn handle_call(&mut self, request: Term, _from: &Caller) -> CallReply {
        let reply = match request.as_tuple() {
            Some([op, n]) if op.is_atom("add") && n.as_i64().is_some() => {
                let n = n.as_i64().unwrap_or(0);
                Term::Int(self.total.fetch_add(n, Ordering::Relaxed) + n)
            }
            _ => Term::tuple([Term::atom("error"), Term::atom("unknown_call")]),
        };
        CallReply::Reply(reply)
    }

    async fn handle_cast(&mut self, request: Term) {
        if request.is_atom("reset") {
            self.total.store(0, Ordering::Relaxed);
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "counter@127.0.0.1".into());
    let name = NodeName::parse_long(&name)?;
    let cookie = std::env::var("BEAMLINK_COOKIE").map_err(|_| "set BEAMLINK_COOKIE")?;
    let epmd_port = std::env::var("ERL_EPMD_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(4369);

    // Bind first: EPMD needs our port, and the node needs the creation EPMD gives.
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await?;
    let port = listener.local_addr()?.port();
    let stop_epmd = CancellationToken::new();
    let registrar = Registrar::start(
        RegistrarConfig::new(
            EpmdMode::Auto,
            epmd_port,
            Alive2Request::new(AliveName::new(name.alive())?, port),
        ),
        &stop_epmd,
    );
    let Some(EpmdStatus::Registered { creation, .. }) = registrar.registered().await else {
        return Err("EPMD registration failed".into());
    };
    let mut config = NodeConfig::new(name, Cookie::new(cookie));
    config.creation = Some(creation);
    let node = Node::start_on(config, Some(listener)).await?;

    let total = Arc::new(AtomicI64::new(0));
    node.spawn_gen_server(
        "counter",
        Counter {
            total: total.clone(),
        },
    )?;
    node.register_rpc("counter", "value", 0, move |_, _| {
        let total = total.clone();
        async move { Ok::<_, RpcError>(Term::Int(total.load(Ordering::Relaxed))) }
    });
    println!("{} is up; Ctrl-C to stop", node.name());
    tokio::signal::ctrl_c().await?;
    node.shutdown().await;
    registrar.shutdown().await;
    Ok(())
}
