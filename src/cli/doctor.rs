//! `beamlink doctor`: every check of [`crate::diagnose::doctor`], printed for a terminal
//! (colour only on a TTY) or as one JSON document.

use super::{NodeOpts, PeerOpts, exit};
use crate::diagnose::{DoctorContext, SurveyOptions};
use clap::Args;
use std::io::IsTerminal;
use std::time::Duration;

/// The exit code rules, for `--help`.
pub(crate) const EXIT_CODES: &str = "\
Exit codes: 0 when no check failed (warnings do not count). When checks fail, the most \
fundamental class wins: 78 configuration (a virtual IP, short names, a node named after a \
host name or another address, a name in use), then 77 refused (cookie mismatch, \
not_allowed), then 76 protocol (missing distribution flags, a port that does not speak the \
protocol), then 69 unavailable (DNS, EPMD, distribution port, ping, rpc, an incomplete \
mesh). 64: no peers given. 130: interrupted.";

/// Exit code when SIGINT or SIGTERM ends the checks early (the shell's 128 + SIGINT).
const INTERRUPTED: u8 = 130;

#[derive(Args, Debug)]
pub(crate) struct DoctorArgs {
    #[command(flatten)]
    node: NodeOpts,
    #[command(flatten)]
    peers: PeerOpts,
    /// Print one JSON document instead of the checks.
    #[arg(long)]
    json: bool,
    /// Limit for each step with each peer (EPMD, connect, each handshake message, each call).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

pub(crate) async fn doctor(args: DoctorArgs) -> u8 {
    let surveyor = super::surveyor(&args.node, &args.peers, "doctor", false, "nothing to check");
    let (targets, node, cookie_source) = match surveyor.await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let options = SurveyOptions {
        timeout: args.timeout,
        ..SurveyOptions::default()
    };
    let context = DoctorContext {
        cookie_source: Some(cookie_source),
        name_given: args.node.name.is_some(),
        release_distribution: std::env::var("RELEASE_DISTRIBUTION").ok(),
        release_node: std::env::var("RELEASE_NODE").ok(),
    };
    let report = tokio::select! {
        r = crate::diagnose::doctor(&node, &targets, &options, &context) => r,
        _ = super::run::wait_for_signal() => {
            node.shutdown().await;
            return INTERRUPTED;
        }
    };
    node.shutdown().await;
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(doc) => println!("{doc}"),
            Err(e) => {
                eprintln!("beamlink: cannot write JSON: {e}");
                return exit::SOFTWARE;
            }
        }
    } else {
        print!("{}", report.to_text(std::io::stdout().is_terminal()));
    }
    report.exit_code
}
