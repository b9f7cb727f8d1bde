//! Unit tests of [`super`].

use super::*;
use crate::watch::view::{Answer, Report};

fn n(s: &str) -> NodeName {
    NodeName::parse(&format!("{s}@10.0.0.1")).unwrap()
}

fn view(nodes: &[(&str, &[&str])]) -> View {
    let reports: Vec<Report> = nodes
        .iter()
        .map(|(name, sees)| Report {
            name: n(name),
            visible: !name.starts_with("shell"),
            answer: Some(Answer {
                visible: sees.iter().map(|s| n(s)).collect(),
                hidden: Default::default(),
            }),
        })
        .collect();
    View::build(&n("beamlink"), &reports)
}

const I: Duration = Duration::from_secs(5);

fn c(on: &str, to: &str) -> Connect {
    Connect {
        on: n(on),
        to: n(to),
    }
}

#[test]
fn every_missing_pair_is_asked_once_per_interval_and_nothing_else() {
    let t0 = Instant::now();
    let mut p = Planner::new(MeshMode::On, I);
    // a-b connected; c alone; a hidden shell that sees nobody.
    let v = view(&[("a", &["b"]), ("b", &["a"]), ("c", &[]), ("shell", &[])]);
    let (connects, notes) = p.plan(&v, t0);
    assert_eq!(connects, vec![c("a", "c"), c("b", "c")]);
    assert!(notes.is_empty());
    // In flight: not asked again, however often the view comes.
    assert!(p.plan(&v, t0 + I * 2).0.is_empty());
    assert_eq!(
        p.finished(&c("a", "c"), Outcome::Refused, t0 + I * 2),
        Some(Note::Asked {
            connect: c("a", "c"),
            outcome: Outcome::Refused
        })
    );
    // The next attempt waits for the interval, and asks the other side.
    assert!(p.plan(&v, t0 + I * 2).0.is_empty());
    assert_eq!(p.plan(&v, t0 + I * 3).0, vec![c("c", "a")]);
    // The same failure again is not logged again.
    assert_eq!(p.finished(&c("c", "a"), Outcome::Refused, t0 + I * 3), None);
    assert_eq!(
        p.finished(&c("b", "c"), Outcome::Connected, t0 + I * 3)
            .map(|n| n.is_warning()),
        Some(false)
    );
    assert_eq!(p.totals().get("false"), Some(&2));
    assert_eq!(p.totals().get("true"), Some(&1));
}

#[test]
fn a_complete_mesh_asks_nothing_and_report_mode_only_says_so_once() {
    let t0 = Instant::now();
    let full = view(&[("a", &["b"]), ("b", &["a"])]);
    let mut p = Planner::new(MeshMode::On, I);
    assert_eq!(p.plan(&full, t0), (vec![], vec![]));
    let apart = view(&[("a", &[]), ("b", &[])]);
    let mut r = Planner::new(MeshMode::Report, I);
    let (connects, notes) = r.plan(&apart, t0);
    assert!(connects.is_empty());
    assert_eq!(notes, vec![Note::WouldConnect(c("a", "b"))]);
    assert!(
        notes[0]
            .to_string()
            .contains("would ask a@10.0.0.1 to connect to b@10.0.0.1")
    );
    for k in 1..5 {
        assert_eq!(r.plan(&apart, t0 + I * k), (vec![], vec![]));
    }
    // An asymmetric pair is connected from one side: not touched.
    let one_side = view(&[("a", &["b"]), ("b", &[])]);
    assert_eq!(
        Planner::new(MeshMode::On, I).plan(&one_side, t0),
        (vec![], vec![])
    );
}

#[test]
fn a_pair_someone_disconnected_is_split_and_left_alone_for_a_while() {
    let t0 = Instant::now();
    let mut p = Planner::new(MeshMode::On, I);
    let full = view(&[("a", &["b"]), ("b", &["a"])]);
    let apart = view(&[("a", &[]), ("b", &[])]);
    p.plan(&full, t0);
    let (connects, notes) = p.plan(&apart, t0 + I);
    assert!(connects.is_empty(), "just dropped: wait");
    assert!(
        matches!(&notes[..], [Note::Split { after: None, retry_in, .. }] if *retry_in == I * 2),
        "{notes:?}"
    );
    assert!(
        notes[0]
            .to_string()
            .contains("disconnected while both are up")
    );
    assert!(p.plan(&apart, t0 + I * 2).0.is_empty());
    assert_eq!(p.plan(&apart, t0 + I * 3).0, vec![c("a", "b")]);
}

#[test]
fn a_bridge_global_keeps_cutting_is_asked_ever_more_rarely() {
    // a and b cannot reach each other; c is connected to both, and global drops one of
    // c's links each time the other is restored.
    let t0 = Instant::now();
    let mut p = Planner::new(MeshMode::On, I);
    let ac_only = view(&[("a", &["c"]), ("b", &[]), ("c", &["a"])]);
    let bc_only = view(&[("a", &[]), ("b", &["c"]), ("c", &["b"])]);
    let mut now = t0;
    p.plan(
        &view(&[("a", &["c"]), ("b", &["c"]), ("c", &["a", "b"])]),
        now,
    );
    let mut asked = Vec::new();
    let mut views = [ac_only, bc_only].into_iter().cycle();
    let mut current = views.next().unwrap();
    for _ in 0..60 {
        now += I;
        let (connects, _) = p.plan(&current, now);
        for connect in connects {
            let bridges =
                connect.on.as_str().starts_with('c') || connect.to.as_str().starts_with('c');
            if bridges {
                asked.push(now);
                p.finished(&connect, Outcome::Connected, now);
                // global answers by cutting the other link.
                current = views.next().unwrap();
            } else {
                p.finished(&connect, Outcome::Refused, now);
            }
        }
    }
    // Each round (both bridges restored once, both cut once by global) is longer.
    let rounds: Vec<u64> = asked
        .chunks(2)
        .map(|c| c[0].duration_since(t0).as_secs() / I.as_secs())
        .collect::<Vec<_>>()
        .windows(2)
        .map(|w| w[1] - w[0])
        .collect();
    assert!(rounds.len() >= 3, "{rounds:?}");
    assert!(
        rounds.windows(2).all(|w| w[1] >= w[0]) && rounds.last() > rounds.first(),
        "the bridge is asked ever more rarely: {rounds:?}"
    );
    assert!(!p.split().is_empty());
}

#[test]
fn a_pair_disconnected_again_after_we_connected_it_is_split_and_backed_off() {
    let t0 = Instant::now();
    let mut p = Planner::new(MeshMode::On, I);
    let apart = view(&[("a", &[]), ("b", &[]), ("c", &["a"]), ("a2", &[])]);
    let (connects, _) = p.plan(&apart, t0);
    assert!(connects.contains(&c("a", "b")));
    p.finished(
        &c("a", "b"),
        Outcome::Connected,
        t0 + Duration::from_millis(50),
    );
    // global disconnected them again before the next view: split, backed off 2 intervals.
    let (connects, notes) = p.plan(&apart, t0 + I);
    assert!(!connects.contains(&c("a", "b")) && !connects.contains(&c("b", "a")));
    let split = notes
        .iter()
        .find(|n| matches!(n, Note::Split { .. }))
        .expect("split noted");
    assert!(split.is_warning());
    assert!(split.to_string().contains("are split"), "{split}");
    assert_eq!(p.split(), vec![(n("a"), n("b"))]);
    assert!(
        p.plan(&apart, t0 + I * 2)
            .0
            .iter()
            .all(|x| x != &c("a", "b"))
    );
    let t3 = t0 + I * 3 + Duration::from_millis(60);
    assert!(p.plan(&apart, t3).0.contains(&c("a", "b")));
    // Connected and split again: 4 intervals, not logged again.
    p.finished(&c("a", "b"), Outcome::Connected, t3);
    let (_, notes) = p.plan(&apart, t3 + I);
    assert!(notes.is_empty(), "{notes:?}");
    for k in 2..5 {
        assert!(
            p.plan(&apart, t3 + I * k)
                .0
                .iter()
                .all(|x| x != &c("a", "b"))
        );
    }
    assert!(p.plan(&apart, t3 + I * 5).0.contains(&c("a", "b")));
    p.finished(&c("a", "b"), Outcome::Connected, t3 + I * 5);
    // It stays: settled after SETTLE intervals, no longer split.
    let joined = view(&[("a", &["b"]), ("b", &["a"]), ("c", &["a"]), ("a2", &[])]);
    let mut settled = Vec::new();
    // Twice the back-off of the second split (4 intervals), then it is settled.
    for k in 6..6 + 9 {
        settled.extend(p.plan(&joined, t3 + I * k).1);
    }
    assert!(settled.contains(&Note::Settled {
        pair: (n("a"), n("b"))
    }));
    assert!(p.split().is_empty());
}

#[test]
fn the_backoff_of_a_split_pair_is_capped() {
    let t0 = Instant::now();
    let mut p = Planner::new(MeshMode::On, I);
    let apart = view(&[("a", &[]), ("b", &[])]);
    let mut now = t0;
    let mut last = Duration::ZERO;
    for _ in 0..10 {
        // Ask as soon as the planner allows.
        loop {
            let (connects, _) = p.plan(&apart, now);
            if !connects.is_empty() {
                break;
            }
            now += I;
        }
        p.finished(&c("a", "b"), Outcome::Connected, now);
        now += I;
        p.plan(&apart, now);
        let start = now;
        loop {
            now += I;
            if !p.plan(&apart, now).0.is_empty() {
                p.finished(&c("a", "b"), Outcome::Connected, now);
                break;
            }
        }
        last = now.duration_since(start);
        now += I;
        p.plan(&apart, now);
    }
    assert_eq!(last, I * MAX_SPLIT_BACKOFF);
}

#[test]
fn mesh_modes_parse() {
    assert_eq!("report".parse::<MeshMode>(), Ok(MeshMode::Report));
    assert_eq!("on".parse::<MeshMode>(), Ok(MeshMode::On));
    assert!("sometimes".parse::<MeshMode>().is_err());
}
