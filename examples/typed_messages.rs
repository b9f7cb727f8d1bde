//! Typed messages with serde between a Rust process and an Elixir process: Rust structs and
//! enums go out as the terms Elixir code matches on and come back as Rust values, with no
//! hand-built `Term` (the mapping is the table in `beamlink::term::typed`).
//!
//! The Rust process
//! 1. sends `{:ping, self(), %Shop.Order{...}}` to a registered process and waits for
//!    `{:pong, order}`;
//! 2. calls it as a GenServer with `{:echo, order}` and expects `{:echo, order}` back.
//!
//! Any process speaking that protocol will do: `examples/typed_messages.exs` (an Elixir
//! script that also ships the order), or `:labyrinth_echo` of the fixture release.
//!
//! ```text
//! elixir --name shop@127.0.0.1 --cookie secret examples/typed_messages.exs
//! BEAMLINK_COOKIE=secret cargo run --example typed_messages -- shop@127.0.0.1 shop
//! ```
//! Arguments (or the environment): the peer node (`BEAMLINK_PEER`) and the registered name
//! (`BEAMLINK_PEER_PROCESS`, default `labyrinth_echo`); the cookie only from
//! `BEAMLINK_COOKIE`; `ERL_EPMD_PORT` is honoured. Exits non-zero when a reply does not come
//! or does not match.

use beamlink::node::{Dest, Envelope};
use beamlink::term::{from_term, to_term};
use beamlink::{Cookie, Node, NodeName, Pid, Process};
use serde::{Deserialize, Serialize};
use std::error::Error;
use std::time::{Duration, Instant};

/// `%Shop.Order{}` in Elixir.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename = "Elixir.Shop.Order")]
struct Order {
    id: u64,
    item: String,
    quantity: u32,
    gift_note: Option<String>,
    status: Status,
}

/// `:pending | :confirmed | {:shipped, %{tracking: "..."}}`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Status {
    Pending,
    Confirmed,
    Shipped { tracking: String },
}

/// What we send: `{:ping, pid, order}` (a tuple variant is a flat tagged tuple).
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum Request<'a> {
    Ping(&'a Pid, &'a Order),
}

/// What comes back: `{:pong, order}`.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "snake_case")]
enum Reply {
    Pong(Order),
}

/// The GenServer request and its reply: `{:echo, order}`.
#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "snake_case")]
enum Echo {
    Echo(Order),
}

const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let Some(peer) = args.next().or_else(|| std::env::var("BEAMLINK_PEER").ok()) else {
        eprintln!("usage: typed_messages NODE [REGISTERED_NAME]   (or BEAMLINK_PEER)");
        std::process::exit(64);
    };
    let process_name = args
        .next()
        .or_else(|| std::env::var("BEAMLINK_PEER_PROCESS").ok())
        .unwrap_or_else(|| "labyrinth_echo".into());
    let peer = NodeName::parse(&peer)?;
    let cookie = std::env::var("BEAMLINK_COOKIE").map_err(|_| "set BEAMLINK_COOKIE")?;

    let host = peer
        .host_ip()
        .map(|ip| ip.to_string())
        .unwrap_or("127.0.0.1".into());
    // Only dials: the peer answers over the connection we open.
    let node = Node::builder()
        .name(format!("typed-{}@{host}", std::process::id()))
        .cookie(Cookie::new(cookie))
        .dial_only() // ERL_EPMD_PORT is honoured
        .start()
        .await?;
    let mut process = node.spawn_process();
    let result = exchange(&mut process, &Dest::name(&process_name, &peer)).await;
    drop(process);
    node.shutdown().await;
    result
}

async fn exchange(process: &mut Process, shop: &Dest) -> Result<(), Box<dyn Error>> {
    let order = Order {
        id: 42,
        item: "green tea".into(),
        quantity: 3,
        gift_note: None, // nil
        status: Status::Pending,
    };

    // 1. A plain message, and the typed reply it causes.
    let ping = to_term(&Request::Ping(process.pid(), &order))?;
    println!("sending {ping}");
    process.send(shop.clone(), ping).await?;
    let deadline = Instant::now() + TIMEOUT;
    let shipped = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match process.recv_timeout(left).await {
            Some(Envelope::Message { message, .. }) => match from_term::<Reply>(&message) {
                Ok(Reply::Pong(order)) => break order,
                Err(e) => eprintln!("not a pong ({e}): {message}"),
            },
            Some(other) => eprintln!("ignoring {other:?}"),
            None => return Err(format!("no {{:pong, order}} within {TIMEOUT:?}").into()),
        }
    };
    println!("pong: {shipped:?}");
    if shipped.id != order.id {
        return Err(format!("pong for order {}, sent {}", shipped.id, order.id).into());
    }

    // 2. A GenServer call with a typed request and a typed reply.
    let reply = process
        .call(shop, to_term(&Echo::Echo(order.clone()))?, TIMEOUT)
        .await?;
    let Echo::Echo(echoed) = from_term(&reply)?;
    println!("echo: {echoed:?}");
    if echoed != order {
        return Err(format!("echo returned {echoed:?}").into());
    }
    Ok(())
}
