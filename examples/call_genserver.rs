//! Calls a GenServer on a BEAM node from Rust, as `GenServer.call({name, node}, {:echo, ...})`
//! would, and prints the reply.
//!
//! ```text
//! BEAMLINK_COOKIE=... cargo run --example call_genserver -- app@10.0.1.5 labyrinth_echo
//! ```
//! The peer and the registered name come from the arguments or from `BEAMLINK_PEER` and
//! `BEAMLINK_PEER_PROCESS`; the cookie only from `BEAMLINK_COOKIE`; `ERL_EPMD_PORT` is
//! honoured. The request is `{echo, <<"hello from Rust">>}`; the program prints the reply and
//! exits non-zero when none comes.

use beamlink::node::Dest;
use beamlink::{Cookie, Node, NodeName, Term};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let peer = args.next().or_else(|| std::env::var("BEAMLINK_PEER").ok());
    let name = args
        .next()
        .or_else(|| std::env::var("BEAMLINK_PEER_PROCESS").ok());
    let (Some(peer), Some(name)) = (peer, name) else {
        eprintln!(
            "usage: call_genserver NODE REGISTERED_NAME   (or BEAMLINK_PEER, BEAMLINK_PEER_PROCESS)"
        );
        std::process::exit(64);
    };
    let peer = NodeName::parse(&peer)?;
    let cookie = std::env::var("BEAMLINK_COOKIE").map_err(|_| "set BEAMLINK_COOKIE")?;
    let host = peer
        .host_ip()
        .map(|ip| ip.to_string())
        .unwrap_or("127.0.0.1".into());
    // Only dials (no listener, no EPMD registration); ERL_EPMD_PORT is honoured.
    let node = Node::builder()
        .name(format!("call-genserver-{}@{host}", std::process::id()))
        .cookie(Cookie::new(cookie))
        .dial_only()
        .start()
        .await?;
    let mut process = node.spawn_process();
    let request = Term::tuple([Term::atom("echo"), Term::binary(&b"hello from Rust"[..])]);
    let reply = process
        .call(&Dest::name(&name, &peer), request, Duration::from_secs(5))
        .await?;
    println!("{reply}");
    node.shutdown().await;
    Ok(())
}
