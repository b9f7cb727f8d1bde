//! Two beamlink nodes on loopback: the library against itself (the BEAM tests are in the
//! interop suites).

use beamlink::node::{CallError, Dest, Envelope, Node, RpcCallError, RpcError};
use beamlink::proto::digest::Cookie;
use beamlink::proto::term::Term;
use std::net::SocketAddr;
use std::time::Duration;

async fn node(name: &str, cookie: &str) -> Node {
    Node::builder()
        .name(name)
        .cookie(Cookie::new(cookie))
        .no_epmd()
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .start()
        .await
        .unwrap()
}

fn addr(n: &Node) -> SocketAddr {
    n.listen_addr().unwrap()
}

/// Whether `condition` holds within 5 s (checked every 10 ms).
async fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !condition() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

#[tokio::test]
async fn ping_rpc_and_genserver_between_two_nodes() {
    let a = node("a@127.0.0.1", "c").await;
    let b = node("b@127.0.0.1", "c").await;
    a.connect_addr(b.name(), addr(&b)).await.unwrap();
    assert_eq!(a.connected_nodes(), vec![b.name().clone()]);

    let mut p = a.spawn_process();
    let is_auth = Term::tuple([Term::atom("is_auth"), Term::atom("a@127.0.0.1")]);
    let reply = p
        .call(
            &Dest::name("net_kernel", b.name()),
            is_auth,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(reply, Term::atom("yes"));

    let who = a
        .rpc_call(b.name(), "erlang", "node", vec![], Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(who, Term::atom("b@127.0.0.1"));
    let visible = a
        .rpc_call(b.name(), "erlang", "nodes", vec![], Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(visible, Term::NIL);
    let connected = a
        .rpc_call(
            b.name(),
            "erlang",
            "nodes",
            vec![Term::list([Term::atom("visible"), Term::atom("hidden")])],
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(connected, Term::list([Term::atom("a@127.0.0.1")]));
    let undef = a
        .rpc_call(b.name(), "nosuch", "fun", vec![], Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        matches!(&undef, RpcCallError::Raised(RpcError::Error { reason, .. }) if reason.is_atom("undef")),
        "{undef:?}"
    );
    let nodes = p
        .call(
            &Dest::name("beamlink", b.name()),
            Term::atom("nodes"),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(nodes, Term::list([Term::atom("a@127.0.0.1")]));

    // A monitor on a name nobody has comes back noproc, well inside the timeout.
    let err = p
        .call(
            &Dest::name("nosuch", b.name()),
            Term::atom("x"),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CallError::Exit(r) if r.is_atom("noproc")),
        "{err:?}"
    );

    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn monitors_fire_noconnection_when_the_peer_stops() {
    let a = node("a@127.0.0.1", "c").await;
    let b = node("b@127.0.0.1", "c").await;
    a.connect_addr(b.name(), addr(&b)).await.unwrap();
    let mut target = b.spawn_process();
    target.register("worker").unwrap();
    let mut watcher = a.spawn_process();
    let mref = watcher.monitor(&Dest::name("worker", b.name())).await;
    let linked = a.spawn_process();
    linked.trap_exit(true);
    let mut linked = linked;
    linked.link(target.pid()).await.unwrap();
    // The monitor and the link have reached b once a message sent after them on the same
    // connection has.
    linked
        .send(target.pid().clone(), Term::atom("after"))
        .await
        .unwrap();
    match target.recv_timeout(Duration::from_secs(5)).await {
        Some(Envelope::Message { message, .. }) => assert_eq!(message, Term::atom("after")),
        other => panic!("expected the message sent after the link, got {other:?}"),
    }
    b.shutdown().await;
    match watcher.recv_timeout(Duration::from_secs(5)).await {
        Some(Envelope::Down {
            reference, reason, ..
        }) => {
            assert_eq!(reference, mref);
            assert!(reason.is_atom("noconnection"));
        }
        other => panic!("expected DOWN, got {other:?}"),
    }
    match linked.recv_timeout(Duration::from_secs(5)).await {
        Some(Envelope::Exit { reason, .. }) => assert!(reason.is_atom("noconnection")),
        other => panic!("expected EXIT, got {other:?}"),
    }
    a.shutdown().await;
}

#[tokio::test]
async fn wrong_cookie_names_the_peer_and_the_step() {
    let a = node("a@127.0.0.1", "one").await;
    let b = node("b@127.0.0.1", "two").await;
    let err = a.connect_addr(b.name(), addr(&b)).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("b@127.0.0.1"), "{text}");
    assert!(text.contains("cookie mismatch"), "{text}");
    assert!(!text.contains("one") && !text.contains("two"), "{text}");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn simultaneous_connects_give_exactly_one_link() {
    for round in 0..50 {
        let a = node("a@127.0.0.1", "c").await;
        let b = node("b@127.0.0.1", "c").await;
        let (ra, rb) = tokio::join!(
            a.connect_addr(b.name(), addr(&b)),
            b.connect_addr(a.name(), addr(&a))
        );
        let (la, lb) = (ra.unwrap(), rb.unwrap());
        // The losing handshake may still be closing: wait until each side holds one link.
        let settled = eventually(|| a.connections().len() == 1 && b.connections().len() == 1);
        assert!(
            settled.await,
            "round {round}: the links did not settle to one"
        );
        assert_eq!(a.connections().len(), 1, "round {round}");
        assert_eq!(b.connections().len(), 1, "round {round}");
        assert!(la.is_up() && lb.is_up(), "round {round}");
        a.shutdown().await;
        b.shutdown().await;
    }
}

struct Counter {
    n: i64,
}

impl beamlink::node::GenServer for Counter {
    async fn handle_call(
        &mut self,
        request: Term,
        _from: &beamlink::node::Caller,
    ) -> beamlink::node::CallReply {
        if request.is_atom("boom") {
            panic!("asked to fail");
        }
        self.n += request.as_i64().unwrap_or(0);
        beamlink::node::CallReply::Reply(Term::Int(self.n))
    }

    async fn handle_cast(&mut self, request: Term) {
        self.n = request.as_i64().unwrap_or(self.n);
    }
}

#[tokio::test]
async fn a_rust_genserver_answers_and_survives_a_panicking_call() {
    let a = node("a@127.0.0.1", "c").await;
    let b = node("b@127.0.0.1", "c").await;
    b.spawn_gen_server("counter", Counter { n: 0 }).unwrap();
    a.connect_addr(b.name(), addr(&b)).await.unwrap();
    let mut p = a.spawn_process();
    let to = Dest::name("counter", b.name());
    let t = Duration::from_secs(5);
    assert_eq!(p.call(&to, Term::Int(2), t).await.unwrap(), Term::Int(2));
    assert_eq!(p.call(&to, Term::Int(3), t).await.unwrap(), Term::Int(5));
    let err = p.call(&to, Term::atom("boom"), t).await.unwrap_err();
    match &err {
        CallError::Exit(Term::Tuple(r)) => assert!(r[0].is_atom("panic")),
        other => panic!("expected a panic exit, got {other:?}"),
    }
    p.send(
        to.clone(),
        Term::tuple([Term::atom("$gen_cast"), Term::Int(100)]),
    )
    .await
    .unwrap();
    assert_eq!(p.call(&to, Term::Int(1), t).await.unwrap(), Term::Int(101));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn large_binaries_arrive_whole_and_in_order() {
    let a = node("a@127.0.0.1", "c").await;
    let b = node("b@127.0.0.1", "c").await;
    let mut receiver = b.spawn_process();
    receiver.register("sink").unwrap();
    a.connect_addr(b.name(), addr(&b)).await.unwrap();
    let sender = a.spawn_process();
    let to = Dest::name("sink", b.name());
    // Sizes around the zero-copy threshold, small ones between them, a 1 MiB one.
    let sizes = [10usize, 4095, 4096, 4097, 70_000, 5, 1 << 20, 3, 65_536];
    for (i, size) in sizes.iter().enumerate() {
        let data: Vec<u8> = (0..*size).map(|j| (i * 31 + j) as u8).collect();
        let msg = Term::tuple([
            Term::Int(i as i64),
            Term::binary(data.clone()),
            Term::binary(data),
        ]);
        sender.send(to.clone(), msg).await.unwrap();
    }
    for (i, size) in sizes.iter().enumerate() {
        let Some(Envelope::Message { message, .. }) =
            receiver.recv_timeout(Duration::from_secs(5)).await
        else {
            panic!("message {i} missing");
        };
        let parts = message.as_tuple().unwrap();
        assert_eq!(parts[0], Term::Int(i as i64));
        let expected: Vec<u8> = (0..*size).map(|j| (i * 31 + j) as u8).collect();
        assert_eq!(
            parts[1].as_binary().unwrap()[..],
            expected[..],
            "message {i}"
        );
        assert_eq!(
            parts[2].as_binary().unwrap()[..],
            expected[..],
            "message {i}"
        );
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_rust_process_calls_a_genserver_on_its_own_node() {
    struct Double;
    impl beamlink::GenServer for Double {
        async fn handle_call(
            &mut self,
            request: Term,
            _from: &beamlink::Caller,
        ) -> beamlink::CallReply {
            beamlink::CallReply::Reply(Term::Int(2 * request.as_i64().unwrap_or(0)))
        }
    }
    let a = node("a@127.0.0.1", "c").await;
    a.spawn_gen_server("double", Double).unwrap();
    let mut p = a.spawn_process();
    let t = Duration::from_secs(5);
    let dest = Dest::name("double", a.name());
    assert_eq!(
        p.call(&dest, Term::Int(21), t).await.unwrap(),
        Term::Int(42)
    );
    assert_eq!(p.call(&dest, Term::Int(4), t).await.unwrap(), Term::Int(8));
    // Nothing stray is left in the mailbox: each reply was taken by its call.
    assert_eq!(p.recv_timeout(Duration::from_millis(100)).await, None);
    a.shutdown().await;
}

#[tokio::test]
async fn a_monitor_on_a_process_of_the_same_node_fires_when_it_ends() {
    let a = node("a@127.0.0.1", "c").await;
    let mut watcher = a.spawn_process();
    let worker = a.spawn_process();
    let worker_pid = worker.pid().clone();
    let reference = watcher.monitor(&Dest::Pid(worker_pid.clone())).await;
    worker.exit(Term::atom("done")).await;
    match watcher.recv_timeout(Duration::from_secs(5)).await {
        Some(Envelope::Down {
            reference: r,
            reason,
            ..
        }) => {
            assert_eq!(r, reference);
            assert_eq!(reason, Term::atom("done"));
        }
        other => panic!("expected the DOWN of {worker_pid}, got {other:?}"),
    }
    a.shutdown().await;
}
