#![cfg(feature = "interop")]
//! Peers that pause, race and restart (ecosystem.md part C, items 8, 10 and 11), against real
//! BEAM nodes of every release in `BEAMLINK_OTP`:
//!
//! * a BEAM stopped with SIGSTOP until beamlink declares it down, then resumed (and the same
//!   for beamlink): the link comes back, once; nodeup and nodedown alternate on both sides;
//! * beamlink and a BEAM told to connect to each other at the same instant, many times, with
//!   beamlink's name on either side of the BEAM's: exactly one link each time, one nodeup;
//! * a peer restarted with a new creation, both ways: monitors on its old pids fire
//!   `noconnection` when it goes; afterwards its old pids are dead (a message to one is not
//!   delivered to the new incarnation's process with the same number; a new monitor gets
//!   `noproc`, as a BEAM answers); the new incarnation is connected within a discovery
//!   interval;
//! * a library node whose user drops every handle: it stops as `shutdown` stops it (the BEAM
//!   sees it go down, epmd forgets it), and not while one clone lives.

mod support;

use beamlink::EpmdMode;
use beamlink::node::{Dest, Envelope, Node, NodeEvent};
use beamlink::proto::digest::Cookie;
use beamlink::proto::node_name::NodeName;
use beamlink::proto::term::{Pid, Term};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::{
    BeamNode, Beamlink, Epmd, Otp, TEST_COOKIE, beamlink_stats, each_release, unique_name,
};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Records, on the BEAM, every nodeup/nodedown with its reason (`nd`).
const EVENTS: &str = r#"register(nd, spawn(fun() ->
    net_kernel:monitor_nodes(true, [{node_type, all}, nodedown_reason]),
    Loop = fun L(Acc) -> receive {get, From} -> From ! {nd, lists:reverse(Acc)}, L(Acc);
                                 M -> L([M | Acc]) end end,
    Loop([]) end)), ok"#;

/// The BEAM's events about `node`: `"up"`/`"down"` in order.
fn events_about(beam: &BeamNode, node: &str) -> Vec<String> {
    // REPL bindings persist: a variable bound by an earlier call would turn the receive
    // pattern into a match against its old value. The fun head binds afresh.
    let text = beam
        .eval(&format!(
            "nd ! {{get, self()}}, (fun(Node) -> receive {{nd, A}} -> \
             [element(1, E) || E <- A, element(2, E) =:= Node] after 2000 -> timeout end end)\
             ('{node}')"
        ))
        .unwrap();
    text.trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.trim().trim_start_matches("node").to_owned())
        .collect()
}

fn signal(pid: u32, name: &str) {
    support::kill(pid, name);
}

/// Up and down alternate, starting with up.
fn alternate(events: &[String]) -> bool {
    events
        .iter()
        .enumerate()
        .all(|(i, e)| e == if i % 2 == 0 { "up" } else { "down" })
}

/// SIGSTOP the BEAM until beamlink (net_ticktime 4) declares it down, keep it stopped while
/// beamlink's redials hang in its listen backlog, resume it; then the same with beamlink
/// stopped. Each time the link comes back, once: one link in beamlink's stats, the BEAM sees
/// up/down/up..., beamlink logged one more nodeup than nodedown.
///
/// Fails if a resumed BEAM's `alive` status were mishandled (the BEAM still holds the old
/// connection when beamlink redials: answering it wrongly leaves no link, accepting a second
/// link leaves two), or if a redial were not scheduled after the drop.
#[test]
fn a_stopped_peer_comes_back_with_one_link() {
    each_release(stopped_peer_comes_back);
}

fn stopped_peer_comes_back(otp: Otp) {
    let epmd = Epmd::start();
    let beam = BeamNode::builder(otp, epmd.port())
        .arg("-kernel")
        .arg("net_ticktime")
        .arg("4")
        .start();
    beam.eval(EVENTS).unwrap();
    let name = format!("{}@127.0.0.1", unique_name("blstop"));
    let port = epmd.port().to_string();
    let bl = Beamlink::start_with(
        support::run_command_at(
            &port,
            &name,
            &[
                "--net-ticktime",
                "4",
                "--poll-interval",
                "1s",
                "--connect",
                beam.node_name(),
            ],
        ),
        TEST_COOKIE,
    );
    let up = format!("nodeup peer={}", beam.node_name());
    let down = format!("nodedown peer={}", beam.node_name());
    bl.wait_log(&up, Duration::from_secs(15));

    // The BEAM pauses.
    signal(beam.os_pid(), "STOP");
    bl.wait_log(&down, Duration::from_secs(10));
    // beamlink redials meanwhile: the stopped BEAM's kernel accepts, nobody answers.
    std::thread::sleep(Duration::from_secs(3));
    signal(beam.os_pid(), "CONT");
    let back = support::wait_for(|| bl.count(&up) == 2, Duration::from_secs(20));
    assert!(back, "{otp}: no link after the BEAM resumed:\n{}", bl.log());
    beam.wait_until(
        &format!("lists:member('{name}', nodes(hidden))"),
        "true",
        Duration::from_secs(10),
    )
    .unwrap();

    // beamlink pauses.
    signal(bl.pid(), "STOP");
    beam.wait_until(
        &format!("lists:member('{name}', nodes(hidden))"),
        "false",
        Duration::from_secs(10),
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    signal(bl.pid(), "CONT");
    let back = support::wait_for(|| bl.count(&up) == 3, Duration::from_secs(20));
    assert!(back, "{otp}: no link after beamlink resumed:\n{}", bl.log());
    beam.wait_until(
        &format!("lists:member('{name}', nodes(hidden))"),
        "true",
        Duration::from_secs(10),
    )
    .unwrap();
    // Settled: let any late duplicate show itself (a window in which the test asserts that
    // no further link comes up).
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        beam.eval(&format!("net_adm:ping('{name}')")).unwrap(),
        "pong"
    );
    let stats = beamlink_stats(&beam, &name);
    assert_eq!((stats.links, stats.pending), (1, 0), "{otp}: {stats:?}");
    assert_eq!(bl.count(&up), 3, "{otp}: {}", bl.log());
    assert_eq!(bl.count(&down), 2, "{otp}: {}", bl.log());
    let events = events_about(&beam, &name);
    eprintln!("{otp}: the BEAM saw {events:?}");
    assert!(alternate(&events), "{otp}: {events:?}");
    assert_eq!(events.last().map(String::as_str), Some("up"), "{otp}");
}

/// A library node registered with `epmd` (so that a BEAM can dial it), listening on
/// loopback; with `poll`, it keeps connecting to that peer. Its shutdown unregisters it.
fn registered_node(
    rt: &tokio::runtime::Runtime,
    epmd: &Epmd,
    name: &str,
    poll: Option<(NodeName, Duration)>,
) -> Node {
    let mut builder = Node::builder()
        .name(name)
        .cookie(Cookie::new(TEST_COOKIE))
        .epmd(EpmdMode::Client)
        .epmd_port(epmd.port())
        .registration_timeout(Duration::from_secs(5))
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)));
    if let Some((peer, interval)) = poll {
        builder = builder.connect(peer.to_string()).poll_interval(interval);
    }
    rt.block_on(builder.start())
        .expect("start a registered node")
}

fn now_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

/// beamlink and a BEAM each told to connect to the other at the same instant (the BEAM
/// busy-waits for a wall-clock microsecond, the Rust side sleeps until it, shifted by a few
/// hundred microseconds from round to round to walk through the interleavings), 50 rounds
/// with beamlink's name below the BEAM's and 50 above (the greater name's attempt wins).
/// Each round ends with exactly one link on both sides and one nodeup on each, and
/// beamlink's `connect` returns that link whichever attempt won; then beamlink drops it and
/// both see one nodedown.
///
/// Fails if simultaneous attempts were not resolved by name (two links, or none, or a
/// duplicate nodeup), or if a dial answered `nok` failed instead of waiting for the peer's
/// winning attempt (`Outcome::AwaitPeer` in `node::peers`: about one round in four failed).
#[test]
fn simultaneous_connects_give_one_link_every_time() {
    each_release(simultaneous_connects);
}

fn simultaneous_connects(otp: Otp) {
    const ROUNDS: usize = 50;
    let epmd = Epmd::start();
    // The BEAM's name starts with "m": "a..." is below it, "z..." above.
    let beam = BeamNode::builder(otp, epmd.port())
        .name(unique_name("middle"))
        .start();
    beam.eval(EVENTS).unwrap();
    let beam_name = NodeName::parse(beam.node_name()).unwrap();
    let rt = runtime();
    let _guard = rt.enter();
    for prefix in ["asim", "zsim"] {
        let name = format!("{}@127.0.0.1", unique_name(prefix));
        let node = registered_node(&rt, &epmd, &name, None);
        let mut events = node.events();
        for round in 0..ROUNDS {
            let at = now_micros() + 150_000;
            beam.eval(&format!(
                "spawn(fun() -> W = fun Wait() -> case os:system_time(microsecond) >= {at} of \
                 true -> ok; false -> Wait() end end, timer:sleep(60), W(), \
                 net_kernel:connect_node('{name}') end), ok"
            ))
            .unwrap();
            let shift = (round % 9) as i128 * 150 - 600;
            let result = rt.block_on(async {
                let wait = at as i128 + shift - now_micros() as i128;
                if wait > 0 {
                    tokio::time::sleep(Duration::from_micros(wait as u64)).await;
                }
                node.connect(&beam_name).await
            });
            // The caller gets the link whichever attempt won (a dial answered `nok` waits
            // for the peer's attempt instead of failing).
            if let Err(e) = &result {
                panic!("{otp} {name} round {round} (shift {shift} us): connect: {e}");
            }
            // Both sides settle on one link.
            let linked = rt.block_on(async {
                for _ in 0..200 {
                    if node.connection(&beam_name).is_some_and(|l| l.is_up())
                        && node.pending_connections() == 0
                    {
                        return true;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                false
            });
            assert!(linked, "{otp} {name} round {round}: no link ({result:?})");
            beam.wait_until(
                &format!("lists:member('{name}', nodes(hidden))"),
                "true",
                Duration::from_secs(5),
            )
            .unwrap_or_else(|e| panic!("{otp} {name} round {round}: {e}"));
            assert_eq!(node.connections().len(), 1, "{otp} round {round}");
            // One nodeup on our side.
            let ups = rt.block_on(async {
                let mut ups = 0;
                while let Ok(Ok(e)) =
                    tokio::time::timeout(Duration::from_millis(50), events.recv()).await
                {
                    match e {
                        NodeEvent::NodeUp { .. } => ups += 1,
                        NodeEvent::NodeDown { reason, .. } => {
                            panic!("{otp} {name} round {round}: nodedown {reason}")
                        }
                        _ => {}
                    }
                }
                ups
            });
            assert_eq!(ups, 1, "{otp} {name} round {round}: {ups} nodeups");
            // Drop it and wait for both sides to see it go.
            node.connection(&beam_name).unwrap().close();
            beam.wait_until(
                &format!("lists:member('{name}', nodes(hidden))"),
                "false",
                Duration::from_secs(5),
            )
            .unwrap();
            rt.block_on(async {
                match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
                    Ok(Ok(NodeEvent::NodeDown { .. })) => {}
                    other => panic!("{otp} {name} round {round}: {other:?}"),
                }
            });
        }
        let seen = events_about(&beam, &name);
        assert_eq!(seen.len(), 2 * ROUNDS, "{otp} {name}: {seen:?}");
        assert!(alternate(&seen), "{otp} {name}: the BEAM saw {seen:?}");
        rt.block_on(node.shutdown());
    }
    eprintln!("{otp}: {} simultaneous rounds, one link each", 2 * ROUNDS);
}

/// Parses `<0.85.0>`-style text into the pid numbers.
fn pid_numbers(text: &str) -> (u32, u32) {
    let parts: Vec<u32> = text
        .trim_matches(|c| c == '<' || c == '>')
        .split('.')
        .map(|p| p.parse().unwrap())
        .collect();
    (parts[1], parts[2])
}

/// The BEAM restarts (killed, then started again under the same name: a new creation).
/// beamlink's monitor on a process of the old incarnation fires `noconnection`; the manager
/// (static peer, 1 s interval) connects to the new incarnation within an interval; a message
/// to the old pid does not reach the new process with the same number; a monitor set on the
/// old pid now gets `noproc`, the answer a BEAM gets in the same situation.
#[test]
fn a_restarted_beam_is_a_new_incarnation() {
    each_release(restarted_beam);
}

fn restarted_beam(otp: Otp) {
    let epmd = Epmd::start();
    let alive = unique_name("phoenix");
    let holder = "register(holder, spawn(fun() -> receive stop -> ok end end)), ok";
    let beam = BeamNode::builder(otp, epmd.port()).name(&alive).start();
    beam.eval(holder).unwrap();
    let beam_name = NodeName::parse(beam.node_name()).unwrap();
    let rt = runtime();
    let _guard = rt.enter();
    let name = format!("{}@127.0.0.1", unique_name("blwatch"));
    let interval = Duration::from_secs(1);
    let node = registered_node(&rt, &epmd, &name, Some((beam_name.clone(), interval)));
    let mut watcher = node.spawn_process();
    watcher.register("watcher").unwrap();
    let up = rt.block_on(support::node_up(&node, &beam_name, Duration::from_secs(5)));
    assert!(up, "{otp}: the manager did not connect");
    beam.eval(&format!(
        "{{watcher, '{name}'}} ! {{holder, whereis(holder)}}, ok"
    ))
    .unwrap();
    let old_creation = node.peers()[0].creation;
    let old_pid: Pid = rt.block_on(async {
        match watcher.recv_timeout(Duration::from_secs(5)).await {
            Some(Envelope::Message { message, .. }) => match message.as_tuple() {
                Some([_, Term::Pid(p)]) => p.clone(),
                _ => panic!("{message}"),
            },
            other => panic!("{otp}: {other:?}"),
        }
    });
    assert_eq!(old_pid.creation, old_creation);
    let before = rt.block_on(watcher.monitor(&Dest::Pid(old_pid.clone())));
    beam.kill();
    rt.block_on(async {
        match watcher.recv_timeout(Duration::from_secs(10)).await {
            Some(Envelope::Down {
                reference, reason, ..
            }) if reference == before => {
                assert!(reason.is_atom("noconnection"), "{otp}: {reason}")
            }
            other => panic!("{otp}: {other:?}"),
        }
    });
    let mut events = node.events();
    let again = BeamNode::builder(otp, epmd.port()).name(&alive).start();
    let restarted = Instant::now();
    again.eval(holder).unwrap();
    // Connected again within a discovery interval (plus a dial's worth of slack).
    rt.block_on(async {
        loop {
            match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
                Ok(Ok(NodeEvent::NodeUp { peer })) if peer == beam_name => break,
                Ok(Ok(_)) => {}
                other => panic!("{otp}: no nodeup for the new incarnation: {other:?}"),
            }
        }
    });
    let took = restarted.elapsed();
    eprintln!("{otp}: connected to the new incarnation {took:?} after it was up");
    assert!(took <= interval + Duration::from_secs(3), "{otp}: {took:?}");
    let new_creation = node.peers()[0].creation;
    assert_ne!(new_creation, old_creation, "{otp}: the same creation");
    let new_holder = again.eval("whereis(holder)").unwrap();
    eprintln!(
        "{otp}: old holder {old_pid} (creation {old_creation}), new {new_holder} \
         (creation {new_creation})"
    );
    // A message to the old pid: not for the new incarnation, whatever its numbers.
    rt.block_on(watcher.send(Dest::Pid(old_pid.clone()), Term::atom("for_the_old_one")))
        .unwrap();
    let fresh = Pid {
        creation: new_creation,
        ..old_pid.clone()
    };
    if pid_numbers(&new_holder) == (old_pid.id, old_pid.serial) {
        // Same numbers: the control (new creation) must arrive.
        rt.block_on(watcher.send(Dest::Pid(fresh), Term::atom("for_the_new_one")))
            .unwrap();
    }
    let same_numbers = pid_numbers(&new_holder) == (old_pid.id, old_pid.serial);
    // Both sends are over once a message sent after them on the same link has arrived.
    rt.block_on(watcher.send(Dest::name("holder", &beam_name), Term::atom("settled")))
        .unwrap();
    again
        .wait_until(
            "lists:member(settled, element(2, process_info(whereis(holder), messages)))",
            "true",
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| panic!("{otp}: {e}"));
    let inbox = again
        .eval("element(2, process_info(whereis(holder), messages))")
        .unwrap();
    assert!(!inbox.contains("for_the_old_one"), "{otp}: {inbox}");
    if same_numbers {
        assert!(inbox.contains("for_the_new_one"), "{otp}: {inbox}");
    }
    // A monitor on the old pid now: noproc, as a BEAM gets.
    let after = rt.block_on(watcher.monitor(&Dest::Pid(old_pid.clone())));
    rt.block_on(async {
        match watcher.recv_timeout(Duration::from_secs(5)).await {
            Some(Envelope::Down {
                reference, reason, ..
            }) if reference == after => {
                // A BEAM monitoring a pid of a peer's previous incarnation gets noproc too
                // (checked with OTP 25: the new incarnation answers for the old pid).
                assert!(reason.is_atom("noproc"), "{otp}: {reason}")
            }
            other => panic!("{otp}: no DOWN for a monitor on the old pid: {other:?}"),
        }
    });
    rt.block_on(node.shutdown());
}

/// The same with beamlink restarting: a library node registered under a fixed name gives
/// its first process's pid to a BEAM, which monitors it, then stops; the BEAM's monitor fires
/// `noconnection`. A new node of the same name starts (new EPMD registration, new creation)
/// and its first process has the same number. The BEAM's message to the old pid is not
/// delivered to it (only one to the new pid is), a monitor on the old pid gets `noproc`, and
/// a link to it an exit with `noproc`.
///
/// Fails if beamlink matched local pids by number without the creation
/// (`ProcessTable::get` / `Node::is_local`).
#[test]
fn a_restarted_beamlink_is_a_new_incarnation() {
    each_release(restarted_beamlink);
}

fn restarted_beamlink(otp: Otp) {
    let epmd = Epmd::start();
    let beam = BeamNode::start(otp, epmd.port());
    beam.eval("register(keeper, self()), ok").unwrap();
    let beam_name = NodeName::parse(beam.node_name()).unwrap();
    let name = format!("{}@127.0.0.1", unique_name("blreborn"));
    let rt = runtime();
    let _guard = rt.enter();

    let first = registered_node(&rt, &epmd, &name, None);
    let old = first.spawn_process();
    rt.block_on(old.send(
        Dest::name("keeper", &beam_name),
        Term::tuple([Term::atom("old"), Term::Pid(old.pid().clone())]),
    ))
    .unwrap();
    beam.eval(
        "Old = receive {old, P} -> P after 5000 -> timeout end, \
         OldRef = erlang:monitor(process, Old), ok",
    )
    .unwrap();
    rt.block_on(first.shutdown());
    drop(old);
    let down = beam
        .eval("receive {'DOWN', OldRef, process, _, Why} -> Why after 10000 -> timeout end")
        .unwrap();
    assert_eq!(down, "noconnection", "{otp}");

    let second = registered_node(&rt, &epmd, &name, None);
    assert_ne!(second.creation(), first.creation());
    let mut new = second.spawn_process();
    let old_pid = beam.eval("Old").unwrap();
    eprintln!(
        "{otp}: old pid {old_pid} (creation {}), new process {} (creation {})",
        first.creation(),
        new.pid(),
        second.creation()
    );
    assert_eq!(new.pid().id, first_id(&old_pid), "{otp}: same number");
    // The BEAM reaches the new node (it redials by name) and sends to both pids.
    rt.block_on(new.send(
        Dest::name("keeper", &beam_name),
        Term::tuple([Term::atom("new"), Term::Pid(new.pid().clone())]),
    ))
    .unwrap();
    beam.eval(
        "New = receive {new, Q} -> Q after 5000 -> timeout end, \
         Old ! to_old, New ! to_new, ok",
    )
    .unwrap();
    let got = rt.block_on(async {
        let mut got = Vec::new();
        while let Some(Envelope::Message { message, .. }) =
            new.recv_timeout(Duration::from_millis(1500)).await
        {
            got.push(message.to_string());
        }
        got
    });
    assert_eq!(got, vec!["to_new".to_owned()], "{otp}");
    let monitor = beam
        .eval(
            "R = erlang:monitor(process, Old), \
             receive {'DOWN', R, process, _, W} -> W after 5000 -> timeout end",
        )
        .unwrap();
    assert_eq!(monitor, "noproc", "{otp}");
    let link = beam
        .eval(
            "process_flag(trap_exit, true), link(Old), \
             receive {'EXIT', Old, E} -> E after 5000 -> timeout end",
        )
        .unwrap();
    assert_eq!(link, "noproc", "{otp}");
    rt.block_on(second.shutdown());
}

/// The process number of a pid printed as `<X.N.S>`.
fn first_id(text: &str) -> u32 {
    pid_numbers(text).0
}

/// Dropping the handles a library user holds stops the node as `shutdown` does: while one
/// clone lives the node stays registered and the BEAM still reaches it; once the last one is
/// dropped (a process of the node is still held, which does not count) the BEAM sees the
/// node go down and epmd forgets its name.
///
/// Fails if a dropped node stayed registered (the BEAM's `net_adm:ping` would find a node
/// nobody can use), or if a clone did not keep it running.
#[test]
fn dropping_the_last_handle_stops_and_unregisters_the_node() {
    each_release(dropping_the_last_handle);
}

fn dropping_the_last_handle(otp: Otp) {
    let epmd = Epmd::start_with(otp);
    let beam = BeamNode::start(otp, epmd.port());
    beam.eval(EVENTS).unwrap();
    let name = format!("{}@127.0.0.1", unique_name("bldropped"));
    let alive = name.split('@').next().unwrap().to_owned();
    let rt = runtime();
    let _guard = rt.enter();

    let node = registered_node(&rt, &epmd, &name, None);
    let process = node.spawn_process();
    assert_eq!(
        beam.eval(&format!("net_adm:ping('{name}')")).unwrap(),
        "pong"
    );
    let clone = node.clone();
    drop(node);
    assert_eq!(
        beam.eval(&format!("net_adm:ping('{name}')")).unwrap(),
        "pong",
        "{otp}: a clone keeps the node running"
    );
    assert!(epmd.names().iter().any(|(n, _)| *n == alive), "{otp}");

    drop(clone);
    assert!(
        support::wait_for(
            || !epmd.names().iter().any(|(n, _)| *n == alive),
            Duration::from_secs(10)
        ),
        "{otp}: {alive} is still registered with epmd after its last handle was dropped"
    );
    assert!(
        support::wait_for(
            || events_about(&beam, &name).last().map(String::as_str) == Some("down"),
            Duration::from_secs(10)
        ),
        "{otp}: the BEAM never saw the node go down: {:?}",
        events_about(&beam, &name)
    );
    assert_eq!(
        beam.eval(&format!("net_adm:ping('{name}')")).unwrap(),
        "pang",
        "{otp}"
    );
    drop(process);
}
