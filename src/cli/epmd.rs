//! `beamlink names HOST` and `beamlink epmd`.

use super::exit;
use crate::epmd::{EpmdServer, NamesReport, ServerConfig};
use clap::Args;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Args, Debug)]
pub(crate) struct NamesArgs {
    /// The host whose EPMD to ask (IP address or name).
    host: String,
    /// The EPMD port.
    #[arg(
        long,
        env = "ERL_EPMD_PORT",
        default_value_t = 4369,
        value_name = "PORT"
    )]
    epmd_port: u16,
    /// One JSON document instead of lines.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn names(args: NamesArgs) -> u8 {
    let ip = match args.host.parse() {
        Ok(ip) => ip,
        Err(_) => match crate::discovery::resolve_host(&args.host).await {
            Ok(ip) => ip,
            Err(e) => {
                eprintln!("beamlink: cannot resolve {}: {e}", args.host);
                return exit::UNAVAILABLE;
            }
        },
    };
    let epmd = SocketAddr::new(ip, args.epmd_port);
    match crate::epmd::names(epmd, Duration::from_secs(5)).await {
        Ok(reply) => {
            let report = NamesReport::new(epmd, &reply);
            if args.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(j) => println!("{j}"),
                    Err(e) => {
                        eprintln!("beamlink: {e}");
                        return exit::SOFTWARE;
                    }
                }
            } else {
                for line in report.lines() {
                    println!("{line}");
                }
            }
            exit::OK
        }
        Err(e) => {
            eprintln!("beamlink: {e}");
            exit::UNAVAILABLE
        }
    }
}

#[derive(Args, Debug)]
pub(crate) struct EpmdArgs {
    /// The port to serve EPMD on.
    #[arg(
        long,
        env = "ERL_EPMD_PORT",
        default_value_t = 4369,
        value_name = "PORT"
    )]
    epmd_port: u16,
}

pub(crate) async fn serve(args: EpmdArgs) -> u8 {
    let stop = CancellationToken::new();
    let server = match EpmdServer::start(ServerConfig::new(args.epmd_port), &stop).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("beamlink: {e}");
            return exit::UNAVAILABLE;
        }
    };
    tracing::info!(addrs = ?server.local_addrs(), "serving EPMD");
    super::run::wait_for_signal().await;
    server.shutdown().await;
    exit::OK
}
