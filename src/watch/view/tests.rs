//! Unit tests of [`super`].

use super::*;

fn n(s: &str) -> NodeName {
    NodeName::parse(&format!("{s}@10.0.0.1")).unwrap()
}

fn visible(name: &str, sees: &[&str]) -> Report {
    Report {
        name: n(name),
        visible: true,
        answer: Some(Answer {
            visible: sees.iter().map(|s| n(s)).collect(),
            hidden: [n("beamlink")].into(),
        }),
    }
}

fn silent(name: &str) -> Report {
    Report {
        name: n(name),
        visible: true,
        answer: None,
    }
}

fn build(reports: &[Report]) -> View {
    View::build(&n("beamlink"), reports)
}

#[test]
fn a_full_mesh_is_one_complete_component() {
    let v = build(&[
        visible("a", &["b", "c"]),
        visible("b", &["a", "c"]),
        visible("c", &["a", "b"]),
    ]);
    assert_eq!(v.partitions(), 1);
    assert!(v.is_complete());
    assert!(v.asymmetric.is_empty() && v.missing.is_empty());
    assert_eq!(v.directed().count(), 6);
    // beamlink itself is never part of the view.
    assert!(!v.nodes.contains_key(&n("beamlink")));
    assert_eq!(v.counts(), (3, 0));
}

#[test]
fn unclustered_nodes_are_each_their_own_component_and_every_pair_is_missing() {
    let v = build(&[visible("a", &[]), visible("b", &[]), visible("c", &[])]);
    assert_eq!(v.partitions(), 3);
    assert!(!v.is_complete());
    assert_eq!(
        v.missing,
        vec![
            pair(&n("a"), &n("b")),
            pair(&n("a"), &n("c")),
            pair(&n("b"), &n("c"))
        ]
    );
}

#[test]
fn a_link_seen_from_one_side_joins_and_is_asymmetric() {
    // a still lists b (its tick timeout has not expired), b dropped a.
    let v = build(&[
        visible("a", &["b", "c"]),
        visible("b", &["c"]),
        visible("c", &["a", "b"]),
    ]);
    assert_eq!(v.partitions(), 1);
    assert!(v.is_complete());
    assert_eq!(v.asymmetric, vec![(n("a"), n("b"))]);
    assert!(v.missing.is_empty());
}

#[test]
fn a_cut_pair_with_a_bridge_is_one_component_but_incomplete() {
    let v = build(&[
        visible("a", &["c"]),
        visible("b", &["c"]),
        visible("c", &["a", "b"]),
    ]);
    assert_eq!(v.partitions(), 1);
    assert!(!v.is_complete());
    assert_eq!(v.missing, vec![pair(&n("a"), &n("b"))]);
}

#[test]
fn a_silent_node_joins_through_those_that_list_it_and_is_never_missing() {
    let v = build(&[visible("a", &["b"]), silent("b"), visible("c", &[])]);
    assert_eq!(
        v.components,
        vec![vec![n("a"), n("b")], vec![n("c")]],
        "largest first"
    );
    // b's side is unknown: a-b is linked (a lists it), b-c is unknown, a-c missing.
    assert_eq!(v.missing, vec![pair(&n("a"), &n("c"))]);
    assert_eq!(v.silent().collect::<Vec<_>>(), vec![&n("b")]);
}

#[test]
fn hidden_nodes_expect_nothing_and_join_no_component() {
    let mut shell = visible("shell", &["a"]);
    shell.visible = false;
    let v = build(&[visible("a", &[]), shell]);
    assert_eq!(v.partitions(), 1);
    assert!(v.is_complete());
    // The nodes a lists as hidden are in the view (not linked), as hidden.
    assert_eq!(v.counts(), (1, 1));
    assert!(build(&[]).is_complete());
    assert_eq!(build(&[]).partitions(), 0);
}

#[test]
fn nodes_only_others_list_are_in_the_view_but_not_members() {
    let v = build(&[visible("a", &["z"])]);
    assert!(!v.nodes[&n("z")].linked && v.nodes[&n("z")].visible);
    assert_eq!(v.members().collect::<Vec<_>>(), vec![&n("a")]);
    assert_eq!(v.partitions(), 1);
}

#[test]
fn transitions_are_reported_once_each() {
    let empty = View::default();
    let alone = build(&[visible("a", &[]), visible("b", &[]), visible("c", &[])]);
    let t = diff(&empty, &alone);
    assert_eq!(
        t,
        vec![
            Transition::Joined {
                node: n("a"),
                visible: true
            },
            Transition::Joined {
                node: n("b"),
                visible: true
            },
            Transition::Joined {
                node: n("c"),
                visible: true
            },
            Transition::Partitioned {
                components: vec![vec![n("a")], vec![n("b")], vec![n("c")]]
            },
        ]
    );
    assert!(diff(&alone, &alone).is_empty(), "no change, no news");

    let mesh = build(&[
        visible("a", &["b", "c"]),
        visible("b", &["a", "c"]),
        visible("c", &["a", "b"]),
    ]);
    let t = diff(&alone, &mesh);
    assert_eq!(t.len(), 4, "{t:?}");
    assert_eq!(t[3], Transition::Healed { nodes: 3 });
    assert_eq!(
        t[0],
        Transition::LinkUp {
            a: n("a"),
            b: n("b")
        }
    );

    // c is cut from a (one side first), then from both.
    let one_way = build(&[
        visible("a", &["b", "c"]),
        visible("b", &["a", "c"]),
        visible("c", &["b"]),
    ]);
    assert_eq!(
        diff(&mesh, &one_way),
        vec![Transition::Asymmetric {
            from: n("a"),
            to: n("c")
        }]
    );
    let split = build(&[
        visible("a", &["b"]),
        visible("b", &["a"]),
        visible("c", &[]),
    ]);
    let t = diff(&one_way, &split);
    assert_eq!(
        t,
        vec![
            Transition::LinkDown {
                a: n("a"),
                b: n("c")
            },
            Transition::LinkDown {
                a: n("b"),
                b: n("c")
            },
            Transition::Partitioned {
                components: vec![vec![n("a"), n("b")], vec![n("c")]]
            },
            Transition::Symmetric {
                from: n("a"),
                to: n("c")
            },
        ]
    );
    assert!(
        t[2].to_string()
            .contains("[a@10.0.0.1, b@10.0.0.1] | [c@10.0.0.1]")
    );
    assert!(diff(&split, &split).is_empty());

    // A node that stops answering, then leaves: one line each, and its links are news
    // of the node.
    let hung = build(&[
        visible("a", &["b", "c"]),
        visible("b", &["a", "c"]),
        silent("c"),
    ]);
    assert_eq!(
        diff(&mesh, &hung),
        vec![Transition::Silent { node: n("c") }]
    );
    let gone = build(&[visible("a", &["b"]), visible("b", &["a"])]);
    assert_eq!(diff(&hung, &gone), vec![Transition::Left { node: n("c") }]);
}
