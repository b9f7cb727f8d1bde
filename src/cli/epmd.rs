//! `beamlink names HOST` and `beamlink epmd`.

use super::exit;
use crate::epmd::{EpmdError, EpmdServer, NamesReport, ServerConfig, describe};
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
                println!("{}", report.header());
                for line in report.lines() {
                    println!("{line}");
                }
            }
            exit::OK
        }
        Err(e) => {
            match names_failure(&e, ip.to_canonical().is_loopback()) {
                (Stream::Stdout, line) => println!("{line}"),
                (Stream::Stderr, line) => eprintln!("{line}"),
            }
            exit::UNAVAILABLE
        }
    }
}

/// Where a line goes.
#[derive(Debug, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

/// Why NAMES failed, in `epmd -names`' own words (`epmd_cli.c`: `conn_to_epmd` writes to
/// stderr, `epmd_call` to stdout). `epmd` only ever asks the local EPMD; for another host the
/// same words name the address, and the reason when nothing answered.
fn names_failure(e: &EpmdError, local: bool) -> (Stream, String) {
    let whose = if local {
        "local epmd".to_owned()
    } else {
        format!("epmd at {}", e.epmd())
    };
    match e {
        EpmdError::Unreachable { source, .. } if !local => (
            Stream::Stderr,
            format!("epmd: Cannot connect to {whose}: {}", describe(source)),
        ),
        EpmdError::Timeout { after, .. } if e.is_unreachable() && !local => (
            Stream::Stderr,
            format!("epmd: Cannot connect to {whose}: no answer within {after:?}"),
        ),
        _ if e.is_unreachable() => (Stream::Stderr, format!("epmd: Cannot connect to {whose}")),
        EpmdError::Malformed { .. } => (Stream::Stderr, format!("beamlink: {e}")),
        _ => (Stream::Stdout, format!("epmd: no response from {whose}")),
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
    /// Close a connection that sends nothing for more than SECS seconds before its request
    /// is complete, as epmd's -packet_timeout (registrations are exempt).
    #[arg(
        long,
        default_value_t = 60,
        value_name = "SECS",
        // epmd reads it into a C int and refuses 0.
        value_parser = clap::value_parser!(u64).range(1..=2_147_483_647)
    )]
    packet_timeout: u64,
    /// As epmd -relaxed_command_check (also when ERL_EPMD_RELAXED_COMMAND_CHECK is set, to
    /// anything): `epmd -kill` stops the server even while names are registered, and
    /// `epmd -stop NAME` unregisters NAME.
    #[arg(long)]
    relaxed_command_check: bool,
}

pub(crate) async fn serve(args: EpmdArgs) -> u8 {
    let mut config = ServerConfig::new(args.epmd_port);
    config.packet_timeout = Duration::from_secs(args.packet_timeout);
    // Standalone, the server is the host's epmd: `epmd -kill` stops it as it stops epmd.
    config.killable = true;
    // epmd's check_relaxed: the variable's presence is enough, whatever its value.
    config.relaxed_command_check =
        args.relaxed_command_check || std::env::var_os("ERL_EPMD_RELAXED_COMMAND_CHECK").is_some();
    let stop = CancellationToken::new();
    let server = match EpmdServer::start(config, &stop).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("beamlink: {e}");
            return exit::UNAVAILABLE;
        }
    };
    tokio::select! {
        _ = super::run::wait_for_signal() => {}
        _ = server.killed() => tracing::info!("stopping: KILL_REQ (epmd -kill)"),
    }
    server.shutdown().await;
    exit::OK
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::epmd::EpmdStep;
    use std::io;

    #[test]
    fn names_failures_read_as_epmd_names_prints_them() {
        let local: SocketAddr = "127.0.0.1:4369".parse().unwrap();
        let remote: SocketAddr = "10.0.1.5:4369".parse().unwrap();
        let refused = |epmd| EpmdError::Unreachable {
            epmd,
            source: io::Error::from(io::ErrorKind::ConnectionRefused).into(),
        };
        let silent = |epmd, step| EpmdError::Timeout {
            epmd,
            step,
            after: Duration::from_secs(5),
        };
        let closed = |epmd| EpmdError::ClosedEarly {
            epmd,
            step: EpmdStep::ReadNames,
        };
        let cases = [
            (
                refused(local),
                true,
                Stream::Stderr,
                "epmd: Cannot connect to local epmd",
            ),
            (
                silent(local, EpmdStep::Connect),
                true,
                Stream::Stderr,
                "epmd: Cannot connect to local epmd",
            ),
            (
                closed(local),
                true,
                Stream::Stdout,
                "epmd: no response from local epmd",
            ),
            (
                silent(local, EpmdStep::ReadNames),
                true,
                Stream::Stdout,
                "epmd: no response from local epmd",
            ),
            (
                refused(remote),
                false,
                Stream::Stderr,
                "epmd: Cannot connect to epmd at 10.0.1.5:4369: connection refused",
            ),
            (
                silent(remote, EpmdStep::Connect),
                false,
                Stream::Stderr,
                "epmd: Cannot connect to epmd at 10.0.1.5:4369: no answer within 5s",
            ),
            (
                closed(remote),
                false,
                Stream::Stdout,
                "epmd: no response from epmd at 10.0.1.5:4369",
            ),
        ];
        for (error, is_local, stream, text) in cases {
            assert_eq!(
                names_failure(&error, is_local),
                (stream, text.to_owned()),
                "{error:?}"
            );
        }
    }
}
