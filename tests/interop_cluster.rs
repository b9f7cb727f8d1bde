#![cfg(feature = "interop")]
//! "Answer the cluster" against real BEAM nodes of every release in `BEAMLINK_OTP`: every
//! row of the table in `contract.md`, checked from the remote shell of a real `mix release`
//! and from plain `erl`; OTP's `erl_call`; monitors and links both ways, node-down
//! included; malformed control messages; a panicking handler. (The example programs, a Rust
//! program calling a GenServer in the release among them, run in `tests/examples.rs`.)

mod support;

use beamlink::node::{Dest, Envelope, Node, RpcError};
use beamlink::proto::digest::Cookie;
use beamlink::proto::node_name::NodeName;
use beamlink::proto::term::Term;
use std::time::{Duration, Instant};
use support::{BeamNode, Beamlink, Epmd, Otp, Release, ReleaseConfig, TEST_COOKIE, unique_name};

fn start_beamlink(epmd: &Epmd) -> (Beamlink, String) {
    let name = format!("{}@127.0.0.1", unique_name("bl"));
    let bl = Beamlink::start(
        &[
            "run",
            "--name",
            &name,
            "--epmd",
            "client",
            "--epmd-port",
            &epmd.port().to_string(),
        ],
        TEST_COOKIE,
    );
    bl.wait_log("node started", Duration::from_secs(10));
    (bl, name)
}

/// The table of `contract.md` as one Elixir expression (one line, for the remote shell).
fn contract_rows_elixir(r: &str) -> String {
    format!(
        r#"r = :"{r}"; [ping: Node.ping(r), list: Enum.member?(Node.list(), r), hidden: Enum.member?(Node.list(:hidden), r), connected: Enum.member?(Node.list(:connected), r), node: :rpc.call(r, :erlang, :node, []), nodes: :rpc.call(r, :erlang, :nodes, []), conn: :rpc.call(r, :erlang, :nodes, [:connected]), hid: :rpc.call(r, :erlang, :nodes, [:hidden]), both: :rpc.call(r, :erlang, :nodes, [[:visible, :hidden]]), erpc: :erpc.call(r, :erlang, :nodes, [:connected]), undef: (case :rpc.call(r, :nosuch, :fun, []) do {{:badrpc, {{:EXIT, {{:undef, _}}}}}} -> :undef_ok; other -> other end), gen_nodes: GenServer.call({{:beamlink, r}}, :nodes), info: GenServer.call({{:beamlink, r}}, :info) |> Map.keys() |> Enum.sort(), noproc: (t = System.monotonic_time(:millisecond); e = (try do GenServer.call({{:nosuch, r}}, :x, 1000) catch :exit, {{reason, _}} -> reason end); {{e, System.monotonic_time(:millisecond) - t < 1000}}), block: :rpc.block_call(r, :erlang, :nodes, [:connected])]"#
    )
}

fn check_contract_rows(otp: Otp, r: &str, caller: &str, rows: &str, via: &str) {
    let expect = |key: &str, value: &str| {
        let needle = format!("{key}: {value}");
        assert!(
            rows.contains(&needle),
            "{otp} {via}: expected `{needle}` in {rows}"
        );
    };
    let me = format!(":\"{caller}\"");
    expect("ping", ":pong");
    expect("list", "false");
    expect("hidden", "true");
    expect("connected", "true");
    expect("node", &format!(":\"{r}\""));
    expect("nodes", "[]");
    expect("conn", &format!("[{me}]"));
    expect("hid", &format!("[{me}]"));
    expect("both", &format!("[{me}]"));
    expect("erpc", &format!("[{me}]"));
    expect("undef", ":undef_ok");
    expect("gen_nodes", &format!("[{me}]"));
    expect("info", "[:name, :peers, :uptime_ms, :version]");
    expect("noproc", "{:noproc, true}");
    expect("block", &format!("[{me}]"));
}

#[test]
fn the_contract_table_holds_from_a_release_remote_shell() {
    for otp in Otp::from_env() {
        let epmd = Epmd::start();
        let (mut bl, r) = start_beamlink(&epmd);
        let release = Release::start(otp, ReleaseConfig::unique(epmd.port()));
        let rows = release.remote(&contract_rows_elixir(&r));
        check_contract_rows(otp, &r, release.node_name(), &rows, "remote shell");

        // Process.monitor({:beamlink, R}) then R stops: DOWN with noconnection.
        release.rpc(&format!(
            r#"pid = spawn(fn -> ref = Process.monitor({{:beamlink, :"{r}"}}); receive do {{:DOWN, ^ref, :process, _, reason}} -> :persistent_term.put(:beamlink_down, reason) end end); Process.register(pid, :down_watch); :ok"#
        ));
        let stopped = Instant::now();
        let status = bl.terminate(Duration::from_secs(5));
        let exit_time = stopped.elapsed();
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "{otp}: SIGTERM exit code"
        );
        let mut down = String::new();
        for _ in 0..50 {
            down = release.rpc(":persistent_term.get(:beamlink_down, :none)");
            if down != ":none" {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(down, ":noconnection", "{otp}: monitor on {{:beamlink, R}}");
        assert!(
            exit_time < Duration::from_secs(5),
            "{otp}: exit took {exit_time:?}"
        );
        let alive = r.split('@').next().unwrap();
        assert!(
            !epmd.names().iter().any(|(n, _)| n == alive),
            "{otp}: still registered after SIGTERM"
        );
    }
}

#[test]
fn the_contract_table_holds_from_plain_erl() {
    for otp in Otp::from_env() {
        let epmd = Epmd::start();
        let (_bl, r) = start_beamlink(&epmd);
        let beam = BeamNode::start(otp, epmd.port());
        let q = |e: &str| beam.eval(e).unwrap();
        let me = format!("['{}']", beam.node_name());
        let ra = format!("'{r}'");
        assert_eq!(q(&format!("net_adm:ping({ra})")), "pong", "{otp}");
        assert_eq!(q(&format!("lists:member({ra}, nodes())")), "false", "{otp}");
        assert_eq!(
            q(&format!("lists:member({ra}, nodes(hidden))")),
            "true",
            "{otp}"
        );
        assert_eq!(q(&format!("rpc:call({ra}, erlang, node, [])")), ra, "{otp}");
        assert_eq!(
            q(&format!("rpc:call({ra}, erlang, nodes, [])")),
            "[]",
            "{otp}"
        );
        assert_eq!(
            q(&format!("rpc:call({ra}, erlang, nodes, [connected])")),
            me,
            "{otp}"
        );
        assert_eq!(
            q(&format!("erpc:call({ra}, erlang, nodes, [connected])")),
            me,
            "{otp}"
        );
        assert_eq!(
            q(&format!(
                "rpc:call({ra}, erlang, nodes, [[visible, hidden]])"
            )),
            me,
            "{otp}"
        );
        assert_eq!(
            q(&format!(
                "element(1, element(2, element(2, rpc:call({ra}, nosuch, 'fun', []))))"
            )),
            "undef",
            "{otp}"
        );
        assert_eq!(
            q(&format!("gen_server:call({{beamlink, {ra}}}, nodes)")),
            me,
            "{otp}"
        );
        assert_eq!(
            q(&format!(
                "lists:sort(maps:keys(gen_server:call({{beamlink, {ra}}}, info)))"
            )),
            "[name,peers,uptime_ms,version]",
            "{otp}"
        );
        assert_eq!(
            q(&format!("catch gen_server:call({{nosuch, {ra}}}, x, 1000)")),
            format!("{{'EXIT',{{noproc,{{gen_server,call,[{{nosuch,{ra}}},x,1000]}}}}}}"),
            "{otp}"
        );
        assert_eq!(
            q(&format!("rpc:block_call({ra}, erlang, nodes, [connected])")),
            me,
            "{otp}"
        );
        // A client connected to R appears in R's nodes(connected), as on a BEAM: the table's
        // "every node R is connected to".
        assert_eq!(
            q(&format!("rpc:call({ra}, erlang, nodes, [hidden])")),
            me,
            "{otp}"
        );
    }
}

#[test]
fn erl_call_gets_an_answer_from_rex() {
    for otp in Otp::from_env() {
        let epmd = Epmd::start();
        let (_bl, r) = start_beamlink(&epmd);
        let out = otp
            .command("erl_call")
            .args([
                "-name",
                &r,
                "-c",
                TEST_COOKIE,
                "-a",
                "erlang nodes [connected]",
            ])
            .env("ERL_EPMD_PORT", epmd.port().to_string())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{otp}: erl_call failed: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // erl_call's own node (a short name, cN@host) is the one connected to R.
        let listed = stdout.trim();
        assert!(
            listed.starts_with("['c") || listed.starts_with("[c"),
            "{otp}: erl_call printed {listed}"
        );
    }
}

fn rust_node(epmd: &Epmd, alive: &str) -> Node {
    let builder = Node::builder()
        .name(format!("{}@127.0.0.1", unique_name(alive)))
        .cookie(Cookie::new(TEST_COOKIE))
        .no_epmd()
        .epmd_port(epmd.port())
        .listen("127.0.0.1:0".parse().unwrap());
    let rt = tokio::runtime::Handle::current();
    rt.block_on(async { builder.start().await.unwrap() })
}

/// Runs a blocking test body on a multi-thread runtime, so BEAM calls into our node are
/// served while the body waits.
fn with_runtime(body: impl FnOnce(&tokio::runtime::Runtime)) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    body(&rt);
    rt.shutdown_timeout(Duration::from_secs(5));
}

#[test]
fn monitors_and_links_fire_both_ways_with_a_release() {
    for otp in Otp::from_env() {
        with_runtime(|rt| {
            let _guard = rt.enter();
            let epmd = Epmd::start();
            let release = Release::start(otp, ReleaseConfig::unique(epmd.port()));
            let node = rust_node(&epmd, "rustmon");
            let peer = NodeName::parse(release.node_name()).unwrap();
            rt.block_on(node.connect(&peer)).unwrap();

            // Rust monitors and links a release process that then gets killed.
            let victim = release.rpc(
                "pid = spawn(fn -> receive do :never -> :ok end end); Process.register(pid, :victim); :ok",
            );
            assert_eq!(victim, ":ok");
            let mut watcher = node.spawn_process();
            watcher.trap_exit(true);
            let mref = rt.block_on(watcher.monitor(&Dest::name("victim", &peer)));
            let victim_pid = rt
                .block_on(node.rpc_call(
                    &peer,
                    "erlang",
                    "whereis",
                    vec![Term::atom("victim")],
                    Duration::from_secs(5),
                ))
                .unwrap();
            let Term::Pid(victim_pid) = victim_pid else {
                panic!("{otp}: whereis gave {victim_pid}")
            };
            rt.block_on(watcher.link(&victim_pid)).unwrap();
            std::thread::sleep(Duration::from_millis(200));
            release.rpc("Process.exit(Process.whereis(:victim), :kill)");
            let mut got_down = false;
            let mut got_exit = false;
            for _ in 0..2 {
                match rt.block_on(watcher.recv_timeout(Duration::from_secs(5))) {
                    Some(Envelope::Down {
                        reference, reason, ..
                    }) => {
                        assert_eq!(reference, mref);
                        assert!(reason.is_atom("killed"), "{otp}: DOWN {reason}");
                        got_down = true;
                    }
                    Some(Envelope::Exit { reason, .. }) => {
                        assert!(reason.is_atom("killed"), "{otp}: EXIT {reason}");
                        got_exit = true;
                    }
                    other => panic!("{otp}: {other:?}"),
                }
            }
            assert!(got_down && got_exit, "{otp}");

            // The release monitors and links a Rust process that then exits.
            release.rpc(
                r#"pid = spawn(fn -> Process.flag(:trap_exit, true); receive do {:watch, p} -> Process.link(p); ref = Process.monitor(p); send(p, :watching); loop = fn loop -> receive do {:DOWN, ^ref, :process, _, r} -> :persistent_term.put(:rust_down, r); loop.(loop); {:EXIT, ^p, r} -> :persistent_term.put(:rust_exit, r); loop.(loop) end end; loop.(loop) end end); Process.register(pid, :watch_rust); :ok"#,
            );
            let mut target = node.spawn_process();
            rt.block_on(target.send(
                Dest::name("watch_rust", &peer),
                Term::tuple([Term::atom("watch"), Term::Pid(target.pid().clone())]),
            ))
            .unwrap();
            match rt.block_on(target.recv_timeout(Duration::from_secs(5))) {
                Some(Envelope::Message { message, .. }) if message.is_atom("watching") => {}
                other => panic!("{otp}: expected :watching, got {other:?}"),
            }
            rt.block_on(target.exit(Term::atom("shutdown_by_rust")));
            let down = wait_rpc(&release, ":persistent_term.get(:rust_down, :none)");
            assert_eq!(
                down, ":shutdown_by_rust",
                "{otp}: release's monitor on a Rust process"
            );
            let exit = wait_rpc(&release, ":persistent_term.get(:rust_exit, :none)");
            assert_eq!(
                exit, ":shutdown_by_rust",
                "{otp}: release's link to a Rust process"
            );

            // Node-down: the release monitors a Rust process, the Rust node goes away.
            let r = node.name().to_string();
            let keeper = node.spawn_process();
            keeper.register("keeper").unwrap();
            release.rpc(&format!(
                r#"pid = spawn(fn -> ref = Process.monitor({{:keeper, :"{r}"}}); receive do {{:DOWN, ^ref, :process, _, reason}} -> :persistent_term.put(:node_down, reason) end end); :ok"#
            ));
            std::thread::sleep(Duration::from_millis(300));
            rt.block_on(node.shutdown());
            let nd = wait_rpc(&release, ":persistent_term.get(:node_down, :none)");
            assert_eq!(
                nd, ":noconnection",
                "{otp}: monitor on a Rust process when its node stops"
            );
            drop(keeper);
        });
    }
}

fn wait_rpc(release: &Release, expr: &str) -> String {
    let mut last = String::new();
    for _ in 0..50 {
        last = release.rpc(expr);
        if last != ":none" {
            return last;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    last
}

#[test]
fn a_panicking_handler_is_an_error_for_its_caller_and_the_node_goes_on() {
    for otp in Otp::from_env() {
        with_runtime(|rt| {
            let _guard = rt.enter();
            let epmd = Epmd::start();
            let node = rust_node(&epmd, "rustpanic");
            node.register_rpc("demo", "boom", 0, |_, _| async {
                panic!("handler failure")
            });
            node.register_rpc("demo", "thrower", 0, |_, _| async {
                Err(RpcError::Throw(Term::atom("thrown")))
            });
            let beam = BeamNode::start(otp, epmd.port());
            let peer = NodeName::parse(beam.node_name()).unwrap();
            rt.block_on(node.connect(&peer)).unwrap();
            let r = node.name().to_string();
            let boom = beam
                .eval(&format!("try erpc:call('{r}', demo, boom, []) catch error:{{exception, R, _}} -> {{error, R}} end"))
                .unwrap();
            assert!(
                boom.starts_with("{error,{beamlink_handler_failed"),
                "{otp}: {boom}"
            );
            assert_eq!(
                beam.eval(&format!("catch erpc:call('{r}', demo, thrower, [])"))
                    .unwrap(),
                "thrown",
                "{otp}"
            );
            assert_eq!(
                beam.eval(&format!("rpc:call('{r}', erlang, node, [])"))
                    .unwrap(),
                format!("'{r}'")
            );
            rt.block_on(node.shutdown());
        });
    }
}

#[test]
fn large_binaries_cross_both_ways_intact() {
    use md5::{Digest, Md5};
    for otp in Otp::from_env() {
        with_runtime(|rt| {
            let _guard = rt.enter();
            let epmd = Epmd::start();
            let node = rust_node(&epmd, "rustbig");
            let beam = BeamNode::start(otp, epmd.port());
            let peer = NodeName::parse(beam.node_name()).unwrap();
            let t = Duration::from_secs(10);
            for size in [100usize, 4096, 70_000, 1 << 20, 3 << 20] {
                let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
                let theirs = rt
                    .block_on(node.rpc_call(
                        &peer,
                        "erlang",
                        "md5",
                        vec![Term::binary(data.clone())],
                        t,
                    ))
                    .unwrap();
                let ours = Md5::digest(&data);
                assert_eq!(
                    theirs.as_binary().unwrap()[..],
                    ours[..],
                    "{otp}: {size} bytes to the BEAM"
                );
                let back = rt
                    .block_on(node.rpc_call(
                        &peer,
                        "binary",
                        "copy",
                        vec![Term::binary(vec![7u8, 8, 9]), Term::Int(size as i64 / 3)],
                        t,
                    ))
                    .unwrap();
                let back = back.as_binary().unwrap();
                assert_eq!(
                    back.len(),
                    size / 3 * 3,
                    "{otp}: {size} bytes from the BEAM"
                );
                assert!(back.chunks(3).all(|c| c == [7, 8, 9]), "{otp}");
            }
            rt.block_on(node.shutdown());
        });
    }
}

/// `#nr2:point{x = 1, y = 2}` from an exported native record, as OTP 29.1's
/// `term_to_binary/1` writes it (`RECORD_EXT`).
const NATIVE_RECORD: &str =
    "<<131,67,0,0,0,2,1,119,3,110,114,50,119,5,112,111,105,110,116,119,1,120,119,1,121,97,1,97,2>>";

/// The signals of OTP 28 and 29 (ALTACT_SIG_SEND, native records) with a plain `erl` of each
/// release: what the connection negotiates, gen_server calls both ways (their replies go to
/// an alias, as ALTACT_SIG_SEND on OTP 28+), priority messages to a name and to an alias, and
/// a native record to a Rust process and back. OTP 25 and 27 negotiate neither flag and the
/// calls work as before.
#[test]
fn otp28_signals_and_native_records_reach_rust_processes() {
    use beamlink::proto::flags::DistFlags;
    for otp in Otp::from_env() {
        with_runtime(|rt| {
            let _guard = rt.enter();
            let epmd = Epmd::start();
            let node = rust_node(&epmd, "rustsig");
            let beam = BeamNode::start(otp, epmd.port());
            let peer = NodeName::parse(beam.node_name()).unwrap();
            rt.block_on(node.connect(&peer)).unwrap();
            let r = node.name().to_string();
            let modern = otp.release() >= "29";

            let flags = node.connection(&peer).unwrap().flags();
            eprintln!("{otp}: negotiated flags {flags:?}");
            for flag in [DistFlags::ALTACT_SIG, DistFlags::NATIVE_RECORDS] {
                assert_eq!(flags.contains(flag), modern, "{otp}: {flag:?} in {flags:?}");
            }

            // BEAM -> Rust GenServer (our reply goes to the caller's alias).
            assert_eq!(
                beam.eval(&format!(
                    "is_map(gen_server:call({{beamlink, '{r}'}}, info))"
                ))
                .unwrap(),
                "true",
                "{otp}"
            );
            // Rust -> BEAM gen_server (its reply comes to our alias).
            let mut caller = node.spawn_process();
            let t = Duration::from_secs(10);
            let apps = rt
                .block_on(caller.call(
                    &Dest::name("application_controller", &peer),
                    Term::atom("which_applications"),
                    t,
                ))
                .unwrap();
            assert!(
                apps.to_string().contains("kernel"),
                "{otp}: which_applications gave {apps}"
            );

            if !modern {
                rt.block_on(node.shutdown());
                return;
            }
            let mut sink = node.spawn_process();
            sink.register("sink").unwrap();
            // A priority message to a registered name: {37, PRIO|NAME, From, sink}.
            assert_eq!(
                beam.eval(&format!(
                    "erlang:send({{sink, '{r}'}}, {{prio, 1}}, [priority])"
                ))
                .unwrap(),
                "ok"
            );
            match rt.block_on(sink.recv_timeout(t)) {
                Some(Envelope::Message {
                    from: Some(_),
                    message,
                }) => assert_eq!(message, Term::tuple([Term::atom("prio"), Term::Int(1)])),
                other => panic!("{otp}: priority message: {other:?}"),
            }
            // A priority reply to the alias of our call (EEP 76: erlang:send/3 to an alias).
            beam.eval(
                "P = spawn(fun() -> receive {'$gen_call', {_, [alias | A] = Tag}, Req} -> \
                 erlang:send(A, {Tag, {prio_reply, Req}}, [priority]) end end), \
                 register(prio_server, P)",
            )
            .unwrap();
            let reply = rt
                .block_on(caller.call(&Dest::name("prio_server", &peer), Term::atom("hi"), t))
                .unwrap();
            assert_eq!(
                reply,
                Term::tuple([Term::atom("prio_reply"), Term::atom("hi")]),
                "{otp}"
            );
            // A native record made by the BEAM, and back.
            beam.eval("register(record_back, self())").unwrap();
            assert!(
                beam.eval(&format!(
                    "erlang:send({{sink, '{r}'}}, binary_to_term({NATIVE_RECORD}))"
                ))
                .unwrap()
                .starts_with("#nr2:point"),
            );
            let record = match rt.block_on(sink.recv_timeout(t)) {
                Some(Envelope::Message { message, .. }) => message,
                other => panic!("{otp}: native record: {other:?}"),
            };
            let Term::Record(rec) = &record else {
                panic!("{otp}: not a record: {record:?}")
            };
            assert_eq!((rec.module.as_str(), rec.name.as_str()), ("nr2", "point"));
            assert!(rec.exported);
            assert_eq!(rec.get("x"), Some(&Term::Int(1)));
            assert_eq!(rec.get("y"), Some(&Term::Int(2)));
            rt.block_on(sink.send(Dest::name("record_back", &peer), record.clone()))
                .unwrap();
            assert_eq!(
                beam.eval(&format!(
                    "receive R -> R =:= binary_to_term({NATIVE_RECORD}) after 10000 -> timeout end"
                ))
                .unwrap(),
                "true",
                "{otp}"
            );
            rt.block_on(node.shutdown());
        });
    }
}
