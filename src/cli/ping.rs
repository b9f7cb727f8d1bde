//! `beamlink ping NODE`: handshake, then the `is_auth` call `Node.ping` makes.

use super::{NodeOpts, exit};
use crate::diagnose::PingError;
use crate::node::{CallError, Node};
use crate::proto::node_name::NodeName;
use clap::Args;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub(crate) struct PingArgs {
    #[command(flatten)]
    node: NodeOpts,
    /// The node to ping, e.g. minotaur@10.0.1.5.
    target: String,
    /// Give up after this long.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

pub(crate) async fn ping(args: PingArgs) -> u8 {
    let target = match NodeName::parse(&args.target) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("beamlink: {:?} is not a node name: {e}", args.target);
            return exit::USAGE;
        }
    };
    let (node, _) = match super::oneshot_node(
        &args.node,
        "ping",
        target.host_ip(),
        args.node.visible,
        true,
    )
    .await
    {
        Ok(n) => n,
        Err(code) => return code,
    };
    let code = match tokio::time::timeout(args.timeout, ping_once(&node, &target)).await {
        Ok(Ok((connect, call))) => {
            println!(
                "pong from {target} (connect {:.2} ms, is_auth {:.3} ms)",
                connect.as_secs_f64() * 1e3,
                call.as_secs_f64() * 1e3
            );
            exit::OK
        }
        Ok(Err((reason, code))) => {
            println!("pang: {reason}");
            code
        }
        Err(_) => {
            println!("pang: {target} did not answer within {:?}", args.timeout);
            exit::UNAVAILABLE
        }
    };
    node.shutdown().await;
    code
}

async fn ping_once(node: &Node, target: &NodeName) -> Result<(Duration, Duration), (String, u8)> {
    let started = Instant::now();
    node.connect(target)
        .await
        .map_err(|e| (e.to_string(), super::connect_exit_code(&e)))?;
    let connected = started.elapsed();
    match crate::diagnose::ping(node, target, Duration::from_secs(30)).await {
        Ok(call) => Ok((connected, call)),
        Err(e @ PingError::Answered(_)) => Err((format!("{target}'s {e}"), exit::PROTOCOL)),
        Err(PingError::Call(CallError::NodeDown(_))) => Err((
            format!("{target} dropped the connection during the ping"),
            exit::UNAVAILABLE,
        )),
        Err(e) => Err((format!("{target}: {e}"), exit::UNAVAILABLE)),
    }
}
