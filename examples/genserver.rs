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
//! The node registers with the local EPMD (`ERL_EPMD_PORT`, else 4369), or serves EPMD itself
//! when none runs, and stays until Ctrl-C; the cookie only from `BEAMLINK_COOKIE`.

use beamlink::{CallReply, Caller, Cookie, EpmdMode, GenServer, Node, RpcError, Term};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

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
    let cookie = std::env::var("BEAMLINK_COOKIE").map_err(|_| "set BEAMLINK_COOKIE")?;
    // EpmdMode::Auto is the default; ERL_EPMD_PORT is honoured as erl honours it.
    let node = Node::builder()
        .name(name)
        .cookie(Cookie::new(cookie))
        .epmd(EpmdMode::Auto)
        .start()
        .await?;

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
    Ok(())
}
