//! The library example of README.md ("## The library"), verbatim from the line after this
//! comment: `tests/readme.rs` checks that both say the same, and `tests/examples.rs` runs
//! it while Elixir nodes of OTP 25, 27 and 29 call it as the README shows.
//!
//! ```text
//! BEAMLINK_COOKIE=secret cargo run --example readme
//! elixir --name me@127.0.0.1 --cookie secret -e 'IO.inspect GenServer.call({:counter, :"counter@127.0.0.1"}, 5)'
//! ```

use beamlink::{CallReply, Caller, Cookie, GenServer, Node, RpcError, Term};

/// Adds up what it is called with: `GenServer.call({:counter, node}, 5)` returns the total.
struct Counter(i64);

impl GenServer for Counter {
    async fn handle_call(&mut self, request: Term, _from: &Caller) -> CallReply {
        self.0 += request.as_i64().unwrap_or(0);
        CallReply::Reply(Term::Int(self.0))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cookie = std::env::var("BEAMLINK_COOKIE")?; // never on the command line
    let node = Node::builder()
        .name("counter@127.0.0.1")
        .cookie(Cookie::new(cookie))
        .start() // registers with EPMD (ERL_EPMD_PORT, else 4369), or serves it if none runs
        .await?;
    node.spawn_gen_server("counter", Counter(0))?;
    node.register_rpc("counter", "hello", 0, |_, _| async {
        Ok::<_, RpcError>(Term::atom("world"))
    });
    println!("{} is up", node.name());
    tokio::signal::ctrl_c().await?;
    node.shutdown().await; // closes the connections, then unregisters from EPMD
    Ok(())
}
