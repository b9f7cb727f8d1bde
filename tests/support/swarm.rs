//! A simulated Docker Swarm service: network namespaces as containers on a private bridge,
//! each running its own `epmd` and a `labyrinth` release node, and a `dnsmasq` on the bridge
//! answering `tasks.<stack>_<service>` the way Swarm's embedded DNS does (one A record per
//! running task).
//!
//! ```text
//!   host netns:  bridge blnet<X>  10.214.<X>.1/24 (+ fd42:214:<X>::1/64)   dnsmasq :53 on it
//!                  |              |              |
//!   netns:     blnet<X>-n2    blnet<X>-n3    blnet<X>-c7 ...
//!              epmd           epmd           (beamlink: a "client" container)
//!              labyrinth@10.214.<X>.2 ...
//! ```
//!
//! * The network is a [`Net`] and the DNS server a [`Dns`] on port 53 of the bridge: the
//!   private networks of every other test, with their subnet choice (no collision between
//!   concurrent test processes) and their teardown. Containers have no default route: they
//!   reach the /24 (and the ULA /64) only.
//! * Every container gets a resolv.conf ([`Net::resolv_conf`]): nameserver = the bridge,
//!   `search <stack>.svc.cluster.local`, so the Kubernetes-style short name
//!   [`Swarm::headless_query`] resolves only through the search list, while [`Swarm::query`]
//!   is the Swarm name.
//! * Release nodes are `labyrinth@<ip>` with `DNS_CLUSTER_QUERY` = [`Swarm::query`], so they
//!   mesh among themselves as Phoenix's `dns_cluster` would (unless
//!   [`SwarmBuilder::release_clustering`] turns that off). Their OTP releases are the ones
//!   selected by `BEAMLINK_OTP`, round-robin, so one swarm mixes 25, 27 and 29.
//! * A DNS record is added once its node answers (as Swarm does for a task with a
//!   healthcheck) and dropped before the node stops.
//! * Each release node records the nodes that go up and down (`net_kernel:monitor_nodes`,
//!   hidden ones included, with wall-clock milliseconds): [`SwarmNode::events`].
//!
//! Teardown on drop: release nodes (stopped in parallel) and their epmds (by pid), then
//! dnsmasq, then the network ([`Net`]'s drop). Processes a test started inside a container
//! (e.g. beamlink) must be dropped before the swarm (declare them after it).
//!
//! [`SwarmBuilder::epmd_less`] runs the service without EPMD (no `epmd` anywhere, releases
//! started with `-start_epmd false -erl_epmd_port <port>`, every node on that port).
//!
//! Needs root, `ip` (iproute2) and `dnsmasq` (dnsmasq-base); a missing one is a panic that
//! says "run scripts/setup".

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::netns::{Dns, Host, HostSpec, Net};
use super::process::terminate;
use super::{
    Beamlink, Otp, Release, ReleaseConfig, TEST_COOKIE, beamlink_command_in_netns, require_tool,
    wait_for,
};

/// The Swarm stack name: services are `<stack>_<service>`.
pub const STACK: &str = "maze";
/// The Swarm service the release nodes belong to.
pub const SERVICE: &str = "labyrinth";
/// The release nodes' basename (`labyrinth@<ip>`).
pub const BASENAME: &str = "labyrinth";

/// How long a container's epmd may take to listen.
const EPMD_START: Duration = Duration::from_secs(10);
/// How long dnsmasq may take to serve a rewritten hosts file.
const DNS_SETTLE: Duration = Duration::from_secs(10);
/// dnsmasq's TTL for the records, as short as Swarm's embedded DNS answers change.
const DNS_TTL: u32 = 1;

/// A network namespace on the swarm's bridge.
#[derive(Clone, Debug)]
pub struct Container {
    host: Host,
}

/// Every node of `statuses` (from [`Swarm::statuses`]) lists every other.
pub fn full_mesh(statuses: &[(String, NodeStatus)]) -> bool {
    statuses.iter().all(|(me, s)| {
        statuses
            .iter()
            .all(|(other, _)| other == me || s.visible.contains(other))
    })
}

impl Container {
    /// The namespace's name (`ip netns exec <name> ...`).
    pub fn netns(&self) -> &str {
        &self.host.netns
    }

    /// Adds a rule to this container's own netfilter tables (never the host's); panics with
    /// iptables' error if it fails.
    pub fn iptables(&self, args: &[&str]) {
        super::netns::exec(self.netns(), &[&["iptables"][..], args].concat());
    }

    /// Its IPv4 address on the bridge, if it has one.
    pub fn ipv4(&self) -> Option<Ipv4Addr> {
        self.host.ipv4
    }

    /// Its IPv6 (ULA) address on the bridge, if it has one.
    pub fn ipv6(&self) -> Option<Ipv6Addr> {
        self.host.ipv6
    }

    /// The address on `decoy0`, an interface listed before `eth0`, if it has one: a
    /// second interface whose address routes nowhere, the trap for "first non-loopback
    /// address" naming.
    pub fn decoy(&self) -> Option<Ipv4Addr> {
        self.host.decoy
    }

    /// Starts `beamlink ARGS` in this container with [`TEST_COOKIE`].
    pub fn beamlink(&self, args: &[&str]) -> Beamlink {
        Beamlink::start_with(beamlink_command_in_netns(self.netns(), args), TEST_COOKIE)
    }
}

/// A node going up or down, as a release node saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeEvent {
    /// `true` for nodeup, `false` for nodedown.
    pub up: bool,
    /// The other node.
    pub node: String,
    /// When (wall clock of the machine, millisecond resolution).
    pub at: SystemTime,
}

/// One task of the service: a container with its epmd and release node.
pub struct SwarmNode {
    name: String,
    ip: IpAddr,
    otp: Otp,
    container: Container,
    epmd: Option<Child>,
    release: Option<Release>,
}

impl SwarmNode {
    /// `labyrinth@<ip>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address in its name and DNS record.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// Its OTP release.
    pub fn otp(&self) -> Otp {
        self.otp
    }

    /// Its container.
    pub fn container(&self) -> &Container {
        &self.container
    }

    /// The release node (rpc, remote shell, log).
    pub fn release(&self) -> &Release {
        self.release
            .as_ref()
            .unwrap_or_else(|| panic!("{}: the release is not running", self.name))
    }

    /// What the node sees now: `Node.list(:hidden)`, `Node.list()` and every nodeup/nodedown
    /// since it started (release helper nodes `rpc-*`/`rem-*` left out), in one rpc.
    pub fn status(&self) -> NodeStatus {
        let answer = self.release().rpc(STATUS);
        parse_status(&answer)
            .unwrap_or_else(|| panic!("{}: cannot parse the node status {answer}", self.name))
    }

    /// Boots the release and installs the node-event recorder.
    fn boot(
        &mut self,
        query: Option<&str>,
        poll: Duration,
        env: &[(String, String)],
        dist_port: Option<u16>,
    ) {
        let mut config = ReleaseConfig::new(self.name.clone(), 4369)
            .netns(self.container.netns().to_owned())
            .env("DNS_POLL_INTERVAL_MS", poll.as_millis().to_string());
        if let Some(query) = query {
            config = config.env("DNS_CLUSTER_QUERY", query);
        }
        if self.ip.is_ipv6() {
            config = config.env(
                "ELIXIR_ERL_OPTIONS",
                "-start_epmd false -proto_dist inet6_tcp",
            );
        }
        for (key, value) in env {
            config = config.env(key.clone(), value.clone());
        }
        if let Some(port) = dist_port {
            config = config.epmd_less(port);
        }
        let release = Release::start(self.otp, config);
        let installed = release.rpc(WATCHER);
        assert_eq!(
            installed, ":ok",
            "{}: installing the node-event recorder",
            self.name
        );
        self.release = Some(release);
    }
}

impl Drop for SwarmNode {
    fn drop(&mut self) {
        drop(self.release.take());
        if let Some(mut epmd) = self.epmd.take() {
            terminate(epmd.id(), Duration::from_secs(2));
            let _ = epmd.wait();
        }
    }
}

/// Records nodeup/nodedown (hidden nodes too) in `:persistent_term` `:swarm_watch`, newest
/// first, with `System.os_time(:millisecond)`; answers `:ok` once monitoring is on.
const WATCHER: &str = r#"(me = self(); w = fn w -> receive do {ev, n, _} when ev in [:nodeup, :nodedown] -> (if not String.starts_with?(Atom.to_string(n), ["rpc-", "rem-"]), do: :persistent_term.put(:swarm_watch, [{ev, n, System.os_time(:millisecond)} | :persistent_term.get(:swarm_watch, [])])); w.(w) end end; pid = spawn(fn -> :net_kernel.monitor_nodes(true, node_type: :all); send(me, :watching); w.(w) end); Process.register(pid, :swarm_watch); receive do :watching -> :ok after 5000 -> :not_watching end)"#;

/// What [`Swarm::begin_rolling_update`] did.
#[derive(Clone, Debug)]
pub struct RollingUpdate {
    /// The node being replaced (still running until [`Swarm::finish_rolling_update`]).
    pub old: String,
    /// The new node, at a new address.
    pub new: String,
    /// When DNS started answering with the new node instead of the old one.
    pub dns_switched_at: SystemTime,
}

/// Environment for one release node computed from its address (e.g. a TLS option file that
/// names the node's own certificate); added after [`SwarmBuilder::release_env`].
pub type NodeEnv = Arc<dyn Fn(IpAddr) -> Vec<(String, String)> + Send + Sync>;

/// Options of a swarm; [`SwarmBuilder::start`] builds it.
pub struct SwarmBuilder {
    node_env: Option<NodeEnv>,
    nodes: usize,
    ipv6_nodes: usize,
    ipv6: bool,
    release_poll: Duration,
    otps: Vec<Otp>,
    clustering: bool,
    release_env: Vec<(String, String)>,
    dist_port: Option<u16>,
}

impl SwarmBuilder {
    /// EPMD-less: no container runs an `epmd`; every release listens on, and dials, `port`
    /// ([`ReleaseConfig::epmd_less`]).
    pub fn epmd_less(mut self, port: u16) -> Self {
        self.dist_port = Some(port);
        self
    }

    /// Whether the release nodes cluster among themselves through DNS (default true). Off,
    /// `DNS_CLUSTER_QUERY` is not set and the fixture's poller does nothing: a release with
    /// no clustering code, whose `Node.list()` stays `[]`.
    pub fn release_clustering(mut self, on: bool) -> Self {
        self.clustering = on;
        self
    }

    /// An environment variable for every release node (e.g. `ELIXIR_ERL_OPTIONS`; give
    /// `-start_epmd false` in it too, the swarm runs each container's epmd).
    pub fn release_env(mut self, key: &str, value: &str) -> Self {
        self.release_env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Environment per release node, from its address: see [`NodeEnv`].
    pub fn node_env(mut self, env: NodeEnv) -> Self {
        self.node_env = Some(env);
        self
    }

    /// IPv4 release nodes to start with (default 3).
    pub fn nodes(mut self, count: usize) -> Self {
        self.nodes = count;
        self
    }

    /// Also release nodes that have only an IPv6 address (`-proto_dist inet6_tcp`, AAAA
    /// record); turns [`SwarmBuilder::ipv6`] on.
    pub fn ipv6_nodes(mut self, count: usize) -> Self {
        self.ipv6_nodes = count;
        self.ipv6 = self.ipv6 || count > 0;
        self
    }

    /// Give the bridge and client containers IPv6 ULA addresses too (default off).
    pub fn ipv6(mut self, on: bool) -> Self {
        self.ipv6 = on;
        self
    }

    /// The release nodes' own DNS poll interval (default 1 s).
    pub fn release_poll(mut self, interval: Duration) -> Self {
        self.release_poll = interval;
        self
    }

    /// The releases to use round-robin (default [`Otp::from_env`]).
    pub fn otps(mut self, otps: Vec<Otp>) -> Self {
        assert!(!otps.is_empty(), "a swarm needs at least one OTP release");
        self.otps = otps;
        self
    }

    /// Creates the bridge, dnsmasq and the nodes (booted in parallel), then publishes their
    /// DNS records. Panics (after tearing down what it made) if anything fails.
    pub fn start(self) -> Swarm {
        require_root();
        require_tool("ip", "iproute2");
        require_tool("dnsmasq", "dnsmasq-base");
        let net = Net::create_with(self.ipv6);
        let mut listen = vec![IpAddr::V4(net.gateway())];
        listen.extend(net.gateway6().map(IpAddr::V6));
        let mut swarm = Swarm {
            dns: Dns::on_port_53(listen, DNS_TTL),
            net,
            otps: self.otps,
            next_otp: 0,
            next_index: 2,
            release_poll: self.release_poll,
            clustering: true,
            release_env: Vec::new(),
            node_env: None,
            dist_port: None,
            records: BTreeSet::new(),
            nodes: Vec::new(),
        };
        swarm.clustering = self.clustering;
        swarm.release_env = self.release_env;
        swarm.node_env = self.node_env;
        swarm.dist_port = self.dist_port;
        swarm.start_dns();
        let mut fresh = Vec::new();
        for _ in 0..self.nodes {
            fresh.push(swarm.create_node(false));
        }
        for _ in 0..self.ipv6_nodes {
            fresh.push(swarm.create_node(true));
        }
        swarm.boot(&fresh);
        let ips: Vec<IpAddr> = fresh.iter().map(|&i| swarm.nodes[i].ip).collect();
        swarm.records.extend(ips);
        swarm.publish();
        swarm
    }
}

/// A running swarm simulation; see the module documentation.
pub struct Swarm {
    // Field order is drop order after `Drop::drop`: the nodes, then dnsmasq, then the network.
    nodes: Vec<SwarmNode>,
    dns: Dns,
    net: Net,
    otps: Vec<Otp>,
    next_otp: usize,
    next_index: u16,
    release_poll: Duration,
    clustering: bool,
    release_env: Vec<(String, String)>,
    node_env: Option<NodeEnv>,
    dist_port: Option<u16>,
    records: BTreeSet<IpAddr>,
}

impl Swarm {
    /// Options, starting from 3 IPv4 nodes, no IPv6, releases from `BEAMLINK_OTP`.
    pub fn builder() -> SwarmBuilder {
        SwarmBuilder {
            nodes: 3,
            ipv6_nodes: 0,
            ipv6: false,
            release_poll: Duration::from_secs(1),
            otps: Otp::from_env(),
            clustering: true,
            release_env: Vec::new(),
            node_env: None,
            dist_port: None,
        }
    }

    /// The Swarm DNS name of the service's tasks: `tasks.maze_labyrinth`.
    pub fn query(&self) -> String {
        format!("tasks.{STACK}_{SERVICE}")
    }

    /// A name with the same records that resolves only through the containers' search list
    /// (as a Kubernetes headless service's short name does): `labyrinth-headless`.
    pub fn headless_query(&self) -> String {
        format!("{SERVICE}-headless")
    }

    /// The search domain of every container's resolv.conf.
    pub fn search_domain(&self) -> String {
        format!("{STACK}.svc.cluster.local")
    }

    /// The bridge's IPv4 address: where dnsmasq listens.
    pub fn gateway(&self) -> Ipv4Addr {
        self.net.gateway()
    }

    /// The bridge's IPv6 address, when the swarm has IPv6.
    pub fn gateway6(&self) -> Option<Ipv6Addr> {
        self.net.gateway6()
    }

    /// `ip:53` of the DNS server, for `--dns-server`.
    pub fn dns_server(&self) -> String {
        format!("{}:53", self.gateway())
    }

    /// The bridge's name.
    pub fn bridge(&self) -> &str {
        self.net.bridge()
    }

    /// The running release nodes, oldest first.
    pub fn nodes(&self) -> &[SwarmNode] {
        &self.nodes
    }

    /// Their names.
    pub fn node_names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    /// The node called `name`; panics if there is none.
    pub fn node(&self, name: &str) -> &SwarmNode {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name} in the swarm ({:?})", self.node_names()))
    }

    /// The addresses DNS answers now, sorted.
    pub fn records(&self) -> Vec<IpAddr> {
        self.records.iter().copied().collect()
    }

    /// [`SwarmNode::status`] of every node, asked in parallel, in node order.
    pub fn statuses(&self) -> Vec<(String, NodeStatus)> {
        std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .nodes
                .iter()
                .map(|n| scope.spawn(move || (n.name.clone(), n.status())))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    }

    /// One line per node: name and OTP release.
    pub fn describe(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("{} ({})", n.name, n.otp))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A container for a program under test (beamlink): IPv4, plus IPv6 when the swarm has
    /// it, and with `decoy` an interface `decoy0` (192.0.2.<n>/32, a veth pair kept inside) listed before
    /// `eth0`. No DNS record points at it.
    pub fn add_client(&mut self, decoy: bool) -> Container {
        let ipv6 = self.net.gateway6().is_some();
        self.add_container("c", true, ipv6, decoy)
    }

    /// Starts one more IPv4 node; its DNS record is added once it answers. Returns its name.
    pub fn add_node(&mut self) -> String {
        let index = self.create_node(false);
        self.boot(&[index]);
        let ip = self.nodes[index].ip;
        self.records.insert(ip);
        self.publish();
        self.nodes[index].name.clone()
    }

    /// Drops the node's DNS record, then stops it and deletes its container.
    pub fn remove_node(&mut self, name: &str) {
        let index = self.index_of(name);
        if self.records.remove(&self.nodes[index].ip) {
            self.publish();
        }
        let node = self.nodes.remove(index);
        let netns = node.container.netns().to_owned();
        drop(node);
        self.net.remove_host(&netns);
    }

    /// A rolling update, start-first: a new node (same release rotation, new address) boots;
    /// once it answers, DNS answers with it instead of `old`. `old` keeps running until
    /// [`Swarm::finish_rolling_update`].
    pub fn begin_rolling_update(&mut self, old: &str) -> RollingUpdate {
        let old_index = self.index_of(old);
        let ipv6_only = self.nodes[old_index].ip.is_ipv6();
        let old_ip = self.nodes[old_index].ip;
        let index = self.create_node(ipv6_only);
        self.boot(&[index]);
        let new_ip = self.nodes[index].ip;
        self.records.remove(&old_ip);
        self.records.insert(new_ip);
        self.publish();
        RollingUpdate {
            old: old.to_owned(),
            new: self.nodes[index].name.clone(),
            dns_switched_at: SystemTime::now(),
        }
    }

    /// Stops the replaced node and deletes its container.
    pub fn finish_rolling_update(&mut self, update: &RollingUpdate) {
        self.remove_node(&update.old);
    }

    /// [`Swarm::begin_rolling_update`] then [`Swarm::finish_rolling_update`].
    pub fn replace_node(&mut self, old: &str) -> RollingUpdate {
        let update = self.begin_rolling_update(old);
        self.finish_rolling_update(&update);
        update
    }

    /// Adds `count` A records for addresses of the /24 that nothing answers on (no
    /// container: ARP gets no reply, connects fail after the kernel's ARP timeout).
    pub fn add_phantom_records(&mut self, count: usize) -> Vec<IpAddr> {
        let ips: Vec<IpAddr> = (0..count)
            .map(|_| {
                let index = self.alloc_index();
                IpAddr::V4(self.net.ip(index))
            })
            .collect();
        self.records.extend(ips.iter().copied());
        self.publish();
        ips
    }

    /// Removes the records of `ips` (e.g. phantoms) from DNS.
    pub fn remove_records(&mut self, ips: &[IpAddr]) {
        for ip in ips {
            self.records.remove(ip);
        }
        self.publish();
    }

    /// Stops dnsmasq (SIGTERM, by pid): nothing answers on port 53 any more.
    pub fn stop_dns(&mut self) {
        self.dns.stop();
    }

    /// Starts dnsmasq (again) with the current records and waits until it answers.
    pub fn start_dns(&mut self) {
        assert!(self.dns.pid().is_none(), "dnsmasq is already running");
        self.dns.set_records(&self.dns_records());
        self.dns.restart();
        let mut last = None;
        let answered = wait_for(
            || {
                let answer = self.lookup();
                let up = !matches!(answer, Err(beamlink::discovery::DnsError::Failed { .. }));
                last = Some(answer);
                up
            },
            DNS_SETTLE,
        );
        assert!(
            answered,
            "dnsmasq on {} does not answer (last lookup: {last:?}): {}",
            self.gateway(),
            self.dns.output()
        );
    }

    /// The dnsmasq pid, while it runs.
    pub fn dns_pid(&self) -> Option<u32> {
        self.dns.pid()
    }

    // ---- construction ---------------------------------------------------------------------

    fn alloc_index(&mut self) -> u8 {
        let index = self.next_index;
        assert!(
            index <= 254,
            "swarm {}/24 has no address left",
            self.net.gateway()
        );
        self.next_index += 1;
        index as u8
    }

    fn add_container(&mut self, label: &str, ipv4: bool, ipv6: bool, decoy: bool) -> Container {
        let index = self.alloc_index();
        let spec = HostSpec {
            label,
            ipv4,
            ipv6,
            decoy,
        };
        let host = self.net.add_host(index, spec);
        let nameserver = match (host.ipv4, self.gateway6()) {
            (None, Some(gw6)) => IpAddr::V6(gw6),
            _ => IpAddr::V4(self.gateway()),
        };
        let search = self.search_domain();
        self.net.resolv_conf(&host.netns, nameserver, Some(&search));
        Container { host }
    }

    /// A container with a running epmd; the release is booted by [`Swarm::boot`]. Returns
    /// its index in `nodes`.
    fn create_node(&mut self, ipv6_only: bool) -> usize {
        let otp = self.otps[self.next_otp % self.otps.len()];
        self.next_otp += 1;
        let container = self.add_container("n", !ipv6_only, ipv6_only, false);
        let ip = match (container.ipv4(), container.ipv6()) {
            (Some(a), _) => IpAddr::V4(a),
            (None, Some(a)) => IpAddr::V6(a),
            (None, None) => unreachable!("a node container has an address"),
        };
        let epmd = self.dist_port.is_none().then(|| {
            otp.command_in_netns(container.netns(), "epmd")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("{otp}: cannot start epmd in {}: {e}", container.netns())
                })
        });
        let name = format!("{BASENAME}@{ip}");
        let has_epmd = epmd.is_some();
        self.nodes.push(SwarmNode {
            name,
            ip,
            otp,
            container,
            epmd,
            release: None,
        });
        if !has_epmd {
            return self.nodes.len() - 1;
        }
        let node = self.nodes.last().expect("just pushed");
        let listening = wait_for(
            || {
                TcpStream::connect_timeout(&SocketAddr::new(ip, 4369), Duration::from_millis(200))
                    .is_ok()
            },
            EPMD_START,
        );
        assert!(
            listening,
            "{otp}: epmd in {} does not listen",
            node.container.netns()
        );
        self.nodes.len() - 1
    }

    /// Boots the releases of `indexes` in parallel; panics (after all finished) if any failed.
    fn boot(&mut self, indexes: &[usize]) {
        let query = self.clustering.then(|| self.query());
        let poll = self.release_poll;
        let env = self.release_env.clone();
        let node_env = self.node_env.clone();
        let dist_port = self.dist_port;
        let mut failure = None;
        std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .nodes
                .iter_mut()
                .enumerate()
                .filter(|(i, _)| indexes.contains(i))
                .map(|(_, node)| {
                    let mut env = env.clone();
                    if let Some(per_node) = &node_env {
                        env.extend(per_node(node.ip));
                    }
                    let query = query.clone();
                    scope.spawn(move || node.boot(query.as_deref(), poll, &env, dist_port))
                })
                .collect();
            for handle in handles {
                if let Err(panic) = handle.join() {
                    failure.get_or_insert(panic);
                }
            }
        });
        if let Some(panic) = failure {
            std::panic::resume_unwind(panic);
        }
    }

    fn index_of(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name} in the swarm ({:?})", self.node_names()))
    }

    // ---- DNS --------------------------------------------------------------------------------

    /// Every record under the Swarm name and under the headless name's search-list form.
    fn dns_records(&self) -> Vec<(String, Vec<IpAddr>)> {
        let ips = self.records();
        [
            self.query(),
            format!("{}.{}", self.headless_query(), self.search_domain()),
        ]
        .into_iter()
        .map(|name| (name, ips.clone()))
        .collect()
    }

    /// Rewrites the records, makes dnsmasq reload them and waits until it answers with
    /// exactly the new ones.
    fn publish(&mut self) {
        let records = self.dns_records();
        self.dns.set_records(&records);
        if self.dns.pid().is_none() {
            return;
        }
        let want = self.records();
        let mut last = None;
        let settled = wait_for(
            || {
                let got = self.lookup();
                let ok = match &got {
                    Ok(ips) => *ips == want,
                    Err(beamlink::discovery::DnsError::NoRecords { .. }) => want.is_empty(),
                    Err(_) => false,
                };
                last = Some(got);
                ok
            },
            DNS_SETTLE,
        );
        assert!(
            settled,
            "dnsmasq did not serve the new records {want:?}; last answer {last:?}"
        );
    }

    /// Asks dnsmasq for [`Swarm::query`] (A and AAAA), as beamlink does.
    pub fn lookup(&self) -> Result<Vec<IpAddr>, beamlink::discovery::DnsError> {
        let server: SocketAddr = self.dns_server().parse().expect("dns server address");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        runtime.block_on(async {
            beamlink::discovery::DnsQuery::new(&self.query(), Some(server))?
                .lookup()
                .await
        })
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        // Release nodes stop in parallel (each takes a second or two); dnsmasq and the
        // network go with the fields, in their order.
        let nodes = std::mem::take(&mut self.nodes);
        std::thread::scope(|scope| {
            for node in nodes {
                scope.spawn(move || drop(node));
            }
        });
    }
}

fn require_root() {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        });
    assert_eq!(
        uid.as_deref(),
        Some("0"),
        "the swarm simulation needs root (network namespaces, /etc/netns)"
    );
}

/// `"<hidden>|<visible>|<events>"`: space-separated names, events as `nodeup=<node>=<ms>`.
const STATUS: &str = r##"(j = fn l -> Enum.map_join(l, " ", &Atom.to_string/1) end; e = :persistent_term.get(:swarm_watch, []) |> Enum.reverse() |> Enum.map_join(" ", fn {ev, n, t} -> "#{ev}=#{n}=#{t}" end); j.(Node.list(:hidden)) <> "|" <> j.(Node.list()) <> "|" <> e)"##;

/// What a release node sees; see [`SwarmNode::status`].
#[derive(Clone, Debug)]
pub struct NodeStatus {
    /// `Node.list(:hidden)`.
    pub hidden: Vec<String>,
    /// `Node.list()`.
    pub visible: Vec<String>,
    /// Nodes that went up and down, oldest first.
    pub events: Vec<NodeEvent>,
}

impl NodeStatus {
    /// When `node` first came up, if it did.
    pub fn first_up(&self, node: &str) -> Option<SystemTime> {
        self.events
            .iter()
            .find(|e| e.up && e.node == node)
            .map(|e| e.at)
    }

    /// The nodedown events of `node`.
    pub fn downs(&self, node: &str) -> Vec<SystemTime> {
        self.events
            .iter()
            .filter(|e| !e.up && e.node == node)
            .map(|e| e.at)
            .collect()
    }
}

fn parse_status(answer: &str) -> Option<NodeStatus> {
    let text = answer.strip_prefix('"')?.strip_suffix('"')?;
    let mut parts = text.split('|');
    let names = |part: &str| part.split_whitespace().map(str::to_owned).collect();
    let hidden = names(parts.next()?);
    let visible = names(parts.next()?);
    let mut events = Vec::new();
    for item in parts.next()?.split_whitespace() {
        let (kind, rest) = item.split_once('=')?;
        let (node, millis) = rest.rsplit_once('=')?;
        events.push(NodeEvent {
            up: match kind {
                "nodeup" => true,
                "nodedown" => false,
                _ => return None,
            },
            node: node.to_owned(),
            at: UNIX_EPOCH + Duration::from_millis(millis.parse().ok()?),
        });
    }
    Some(NodeStatus {
        hidden,
        visible,
        events,
    })
}

/// CPU time (user + system) `pid` has used so far, from `/proc/<pid>/stat`.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the command name: state is field 3, utime 14, stime 15.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64))
}

fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100)
    })
}

/// Milliseconds from `from` to `to` (negative when `to` is earlier).
pub fn millis_between(from: SystemTime, to: SystemTime) -> i64 {
    match to.duration_since(from) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}
