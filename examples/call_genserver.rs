//! Calls a GenServer on a BEAM node from Rust, as `GenServer.call({name, node}, {:echo, ...})`
//! would, and prints the reply.
//!
//! ```text
//! BEAMLINK_COOKIE=... cargo run --example call_genserver -- app@10.0.1.5 labyrinth_echo
//! ```
//! `ERL_EPMD_PORT` is honoured. The request is `{echo, <<"hello from Rust">>}`.

use beamlink::node::Dest;
use beamlink::{Cookie, Node, NodeName, Term};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(peer), Some(name)) = (args.next(), args.next()) else {
        eprintln!("usage: call_genserver NODE REGISTERED_NAME");
        std::process::exit(64);
    };
    let peer = NodeName::parse(&peer)?;
    let cookie = std::env::var("BEAMLINK_COOKIE").map_err(|_| "set BEAMLINK_COOKIE")?;
    let host = peer
        .host_ip()
        .map(|ip| ip.to_string())
        .unwrap_or("127.0.0.1".into());
    let mut node = Node::builder()
        .name(format!("call-genserver-{}@{host}", std::process::id()))
        .cookie(Cookie::new(cookie))
        .dial_only();
    if let Ok(port) = std::env::var("ERL_EPMD_PORT") {
        node = node.epmd_port(port.parse()?);
    }
    let node = node.start().await?;
    let mut process = node.spawn_process();
    let request = Term::tuple([Term::atom("echo"), Term::binary(&b"hello from Rust"[..])]);
    let reply = process
        .call(&Dest::name(&name, &peer), request, Duration::from_secs(5))
        .await?;
    println!("{reply}");
    node.shutdown().await;
    Ok(())
}
