//! `beamlink nodes`: join hidden, connect to every peer, ask each whom it sees, print the
//! cluster and the links it lacks ([`crate::diagnose::ClusterView`]).

use super::{NodeOpts, PeerOpts, exit};
use crate::diagnose::{ClusterView, SurveyOptions, survey};
use clap::Args;
use std::io::IsTerminal;
use std::time::Duration;

/// The exit code rules, for `--help`.
pub(crate) const EXIT_CODES: &str = "\
Exit codes: 0 when every peer answered, missing links or not (the view shows them; `doctor` \
fails on them). When a peer could not be asked, the code of its failure as `doctor` ranks \
them: 78 configuration, 77 cookie refused, 76 protocol, 69 unavailable (also when no node \
was found). 64: no peers given.";

#[derive(Args, Debug)]
pub(crate) struct NodesArgs {
    #[command(flatten)]
    node: NodeOpts,
    #[command(flatten)]
    peers: PeerOpts,
    /// Print one JSON document (with --watch, one per line per refresh).
    #[arg(long)]
    json: bool,
    /// Refresh every poll interval until interrupted.
    #[arg(long)]
    watch: bool,
    /// Also ask each node for its figures (erlang:memory(), process count, run queue,
    /// uptime) and print them next to the cluster table (in --json: `stats` per node).
    #[arg(long)]
    stats: bool,
    /// Limit for each step with each peer (EPMD, connect, each handshake message, each call).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

pub(crate) async fn nodes(args: NodesArgs) -> u8 {
    let (targets, node, _) =
        match super::surveyor(&args.node, &args.peers, "nodes", true, "no peers").await {
            Ok(s) => s,
            Err(code) => return code,
        };
    let options = SurveyOptions {
        timeout: args.timeout,
        ..SurveyOptions::default()
    };
    let tty = std::io::stdout().is_terminal();
    let code = loop {
        let found = tokio::select! {
            s = survey(&node, &targets, &options) => s,
            _ = super::run::wait_for_signal() => break exit::OK,
        };
        let mut view = ClusterView::from_survey(&found);
        if args.stats {
            add_stats(&node, &mut view, &found, args.timeout).await;
        }
        if args.json {
            let doc = if args.watch {
                serde_json::to_string(&view)
            } else {
                serde_json::to_string_pretty(&view)
            };
            match doc {
                Ok(doc) => println!("{doc}"),
                Err(e) => {
                    eprintln!("beamlink: cannot write JSON: {e}");
                    break exit::SOFTWARE;
                }
            }
        } else {
            if args.watch {
                let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
                if tty {
                    print!("\x1b[H\x1b[2J");
                }
                println!(
                    "--- {now} (every {})",
                    humantime::format_duration(args.peers.poll_interval)
                );
            }
            print!("{}", view.to_text());
            let table = crate::diagnose::stats_table(&view.nodes);
            if !table.is_empty() {
                print!("\n{table}");
            }
        }
        let code = exit_code(&view);
        if !args.watch {
            break code;
        }
        tokio::select! {
            _ = tokio::time::sleep(args.peers.poll_interval) => {}
            _ = super::run::wait_for_signal() => break exit::OK,
        }
    };
    node.shutdown().await;
    code
}

/// Asks every node that answered the survey for its figures, concurrently.
async fn add_stats(
    node: &crate::node::Node,
    view: &mut ClusterView,
    found: &crate::diagnose::Survey,
    timeout: Duration,
) {
    use futures_util::StreamExt;
    let reached: Vec<_> = found
        .probes
        .iter()
        .filter(|p| {
            p.failure.is_none() && matches!(p.software, Some(crate::diagnose::Software::Otp(_)))
        })
        .map(|p| p.name.clone())
        .collect();
    let stats: Vec<_> = futures_util::stream::iter(reached)
        .map(|peer| async move {
            let s = crate::diagnose::beam_stats(node, &peer, timeout).await;
            (peer.to_string(), s.ok())
        })
        .buffer_unordered(64)
        .collect()
        .await;
    for (name, s) in stats {
        if let Some(n) = view.nodes.iter_mut().find(|n| n.name == name) {
            n.stats = s;
        }
    }
}

/// 0 when every peer answered (missing links are what the view shows, not a failure of the
/// command); otherwise the most fundamental failure's code, as `doctor` ranks them.
fn exit_code(view: &ClusterView) -> u8 {
    let causes = view.causes();
    if view.nodes.is_empty() {
        return exit::UNAVAILABLE;
    }
    causes
        .into_iter()
        .map(|c| c.exit_class())
        .max()
        .map_or(exit::OK, |class| class.code())
}
