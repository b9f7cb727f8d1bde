//! The latest view as the map `GenServer.call({:beamlink, R}, :cluster)` returns
//! (`docs/contract.md`, "Watching and meshing the cluster"). Keys are atoms, node names
//! are atoms, as `Node.list/0` gives them.

use super::{MeshMode, Snapshot, Watch};
use crate::proto::node_name::NodeName;
use crate::proto::term::Term;
use std::time::UNIX_EPOCH;

fn key(k: &str, v: Term) -> (Term, Term) {
    (Term::atom(k), v)
}

fn name(n: &NodeName) -> Term {
    Term::Atom(n.as_atom().clone())
}

fn names<'a>(list: impl IntoIterator<Item = &'a NodeName>) -> Term {
    Term::List(list.into_iter().map(name).collect())
}

fn pairs<'a>(list: impl IntoIterator<Item = &'a (NodeName, NodeName)>) -> Term {
    Term::List(
        list.into_iter()
            .map(|(a, b)| Term::tuple([name(a), name(b)]))
            .collect(),
    )
}

/// `{:error, :not_watching}` until the first view, then the map.
pub fn cluster_term(observer: &NodeName, watch: &Watch) -> Term {
    match watch.latest() {
        Some(s) => snapshot_term(
            observer,
            &s,
            watch.config().mesh,
            watch.config().interval.as_millis(),
        ),
        None => Term::tuple([Term::atom("error"), Term::atom("no_view_yet")]),
    }
}

fn snapshot_term(observer: &NodeName, s: &Snapshot, mesh: MeshMode, interval_ms: u128) -> Term {
    let view = &s.view;
    let nodes = view
        .nodes
        .iter()
        .map(|(n, e)| {
            let mut fields = vec![
                key(
                    "visible",
                    Term::atom(if e.visible { "true" } else { "false" }),
                ),
                key(
                    "linked",
                    Term::atom(if e.linked { "true" } else { "false" }),
                ),
                key(
                    "answered",
                    Term::atom(if e.answer.is_some() { "true" } else { "false" }),
                ),
            ];
            if let Some(a) = &e.answer {
                fields.push(key("sees", names(&a.visible)));
                fields.push(key("hidden", names(&a.hidden)));
            }
            if let Some(r) = s.releases.get(n) {
                fields.push(key("otp_release", Term::binary(r.as_bytes().to_vec())));
            }
            if let Some(st) = s.stats.get(n) {
                if let Some(total) = st.total_memory() {
                    fields.push(key("memory_bytes", Term::from_u64(total)));
                }
                fields.push(key("processes", Term::from_u64(st.processes)));
                fields.push(key("run_queue", Term::from_u64(st.run_queue)));
                fields.push(key("uptime_ms", Term::from_u64(st.uptime_ms)));
            }
            (name(n), Term::Map(fields))
        })
        .collect();
    let at_ms =
        s.at.duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
    Term::Map(vec![
        key("observer", name(observer)),
        key("at_ms", Term::from_u64(at_ms)),
        key("interval_ms", Term::from_u64(interval_ms as u64)),
        key("mesh", Term::atom(mesh.as_str())),
        key("nodes", Term::Map(nodes)),
        key("links", pairs(&view.links)),
        key(
            "partitions",
            Term::List(view.components.iter().map(names).collect()),
        ),
        key("asymmetric", pairs(&view.asymmetric)),
        key("missing", pairs(&view.missing)),
        key("split", pairs(&s.split)),
        key(
            "complete",
            Term::atom(if view.is_complete() { "true" } else { "false" }),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::view::{Answer, Report, View};
    use crate::watch::{Watch, WatchConfig};
    use std::time::{Duration, SystemTime};

    #[test]
    fn the_cluster_map_has_atom_keys_and_atom_names() {
        let n = |s: &str| NodeName::parse(s).unwrap();
        let me = n("beamlink@10.0.0.9");
        let watch = Watch::new(WatchConfig::new(Duration::from_secs(5), MeshMode::Report));
        assert_eq!(
            cluster_term(&me, &watch),
            Term::tuple([Term::atom("error"), Term::atom("no_view_yet")])
        );
        let view = View::build(
            &me,
            &[Report {
                name: n("a@10.0.0.1"),
                visible: true,
                answer: Some(Answer::default()),
            }],
        );
        watch.publish(Snapshot {
            at: SystemTime::now(),
            view,
            stats: Default::default(),
            releases: [(n("a@10.0.0.1"), "27".to_string())].into(),
            split: Vec::new(),
        });
        let Term::Map(fields) = cluster_term(&me, &watch) else {
            panic!("a map")
        };
        let get = |k: &str| fields.iter().find(|(f, _)| f.is_atom(k)).map(|(_, v)| v);
        assert!(get("mesh").unwrap().is_atom("report"));
        assert!(get("complete").unwrap().is_atom("true"));
        assert_eq!(
            get("partitions").unwrap(),
            &Term::list([Term::list([Term::atom("a@10.0.0.1")])])
        );
        let Some(Term::Map(nodes)) = get("nodes") else {
            panic!("nodes is a map")
        };
        assert!(nodes[0].0.is_atom("a@10.0.0.1"));
    }
}
