//! Private networks: the one description of "hosts on a private subnet" that every test
//! needing hosts of its own builds on (an EPMD behind a "firewall", a closed distribution
//! port, a virtual IP, and the simulated Swarm of [`super::swarm`]), plus a DNS server and
//! `epmd` inside a namespace.
//!
//! * [`Net`]: a bridge `blnet<X>` with the /24 `10.214.X.0/24` (and, with IPv6, the ULA /64
//!   `fd42:214:X::/64`), `X` in 10..=250 picked from the process id and a counter, skipping
//!   subnets and bridge names already in use, so the networks of concurrent test processes
//!   never collide. The host is `.1` (`::1`) on the bridge, so the test process reaches every
//!   namespace directly. [`Net::add_host`] adds a namespace (a veth pair, `lo` up, no default
//!   route: only the subnet is reachable) with IPv4, IPv6 or both, and optionally a decoy
//!   interface listed before `eth0`; [`Net::resolv_conf`] gives it an `/etc/resolv.conf`
//!   (`ip netns exec` mounts `/etc/netns/<ns>/resolv.conf` there); [`Net::remove_host`]
//!   deletes one. Drop deletes exactly what it created, newest first.
//! * [`Dns`]: `dnsmasq` serving a hosts file, authoritative for every name (unknown names get
//!   NXDOMAIN, as from a real resolver), on loopback, on a free port of a [`Net`]'s bridge
//!   address, or on port 53 of the bridge (where a namespace's resolv.conf can point).
//!   [`Dns::set_records`] rewrites its records (SIGHUP); [`Dns::stop`] and [`Dns::restart`]
//!   take it away and bring it back.
//! * [`NsEpmd`]: a real `epmd -port 4369` inside a namespace, optionally limited to some
//!   addresses with `ERL_EPMD_ADDRESS` (the hardening that makes it unreachable from peers).
//!
//! Needs root and iproute2; `dnsmasq` comes from `scripts/setup` (dnsmasq-base). A missing
//! tool panics with "run scripts/setup".

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::Otp;
use super::process::{signal, terminate};

/// First and last third octet of the subnets tests may use (10.214.X.0/24).
const FIRST_SUBNET: u32 = 10;
const LAST_SUBNET: u32 = 250;

/// Serialises `/etc/netns` creation and removal between the networks of one test process.
static ETC_NETNS: Mutex<()> = Mutex::new(());

/// Runs `ip ARGS`; panics with its stderr on failure.
pub fn ip(args: &[&str]) {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run ip: {e} (run scripts/setup)"));
    assert!(
        output.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

/// `ip netns exec NS ARGS`'s stdout; panics with its stderr if it fails.
pub fn exec(ns: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run ip netns exec: {e} (run scripts/setup)"));
    assert!(
        out.status.success(),
        "{args:?} in {ns}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn quiet_ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// How many addresses this host has in 10.214.`subnet`.0/24 (any error counts as in use).
fn addresses_in(subnet: u32) -> usize {
    Command::new("ip")
        .args(["-4", "-o", "addr", "show", "to"])
        .arg(format!("10.214.{subnet}.0/24"))
        .output()
        .map_or(usize::MAX, |o| {
            String::from_utf8_lossy(&o.stdout).lines().count()
        })
}

/// What a [`Net`] created, torn down newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resource {
    Link(String),
    Netns(String),
    /// `/etc/netns` itself, when this net had to create it (removed only if empty).
    EtcNetns,
    /// `/etc/netns/<ns>` and its resolv.conf.
    EtcNetnsDir(PathBuf),
}

/// A namespace on a [`Net`]'s bridge.
#[derive(Clone, Debug)]
pub struct Host {
    /// The namespace's name (`ip netns exec <name> ...`).
    pub netns: String,
    /// Its IPv4 address on the bridge, if it has one.
    pub ipv4: Option<Ipv4Addr>,
    /// Its IPv6 (ULA) address on the bridge, if it has one.
    pub ipv6: Option<Ipv6Addr>,
    /// The address on `decoy0` (192.0.2.<index>/32), an interface listed before `eth0`
    /// whose address routes nowhere, if it has one.
    pub decoy: Option<Ipv4Addr>,
}

/// What [`Net::add_host`] gives a namespace.
#[derive(Clone, Copy, Debug)]
pub struct HostSpec<'a> {
    /// Part of the namespace's name (`blnet<X>-<label><index>`).
    pub label: &'a str,
    pub ipv4: bool,
    pub ipv6: bool,
    pub decoy: bool,
}

impl HostSpec<'static> {
    /// IPv4 only, no decoy.
    pub const V4: HostSpec<'static> = HostSpec {
        label: "h",
        ipv4: true,
        ipv6: false,
        decoy: false,
    };
}

/// A bridge with a private /24 (and /64) and the namespaces attached to it.
pub struct Net {
    subnet: u8,
    bridge: String,
    ipv6: bool,
    created: Vec<Resource>,
}

impl Net {
    /// An IPv4-only network; see [`Net::create_with`].
    pub fn create() -> Net {
        Net::create_with(false)
    }

    /// Creates a bridge on a free 10.214.X.0/24 with the host at `.1` (and, with `ipv6`, at
    /// `fd42:214:X::1/64`). Panics if none is free.
    pub fn create_with(ipv6: bool) -> Net {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let span = LAST_SUBNET - FIRST_SUBNET + 1;
        let start = std::process::id()
            .wrapping_mul(7)
            .wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed) * 13);
        for step in 0..span {
            let subnet = FIRST_SUBNET + (start.wrapping_add(step) % span);
            let bridge = format!("blnet{subnet}");
            if addresses_in(subnet) > 0 || Path::new("/sys/class/net").join(&bridge).exists() {
                continue;
            }
            // Creating the bridge is the lock: a concurrent test that picked the same subnet
            // gets "File exists" and moves on.
            if !quiet_ip(&["link", "add", "name", &bridge, "type", "bridge"]) {
                continue;
            }
            let net = Net {
                subnet: subnet as u8,
                bridge: bridge.clone(),
                ipv6,
                created: vec![Resource::Link(bridge.clone())],
            };
            // A bridge without an explicit MAC takes the lowest MAC of its ports: deleting a
            // namespace could change the gateway's MAC and leave the other namespaces' ARP
            // entries stale for seconds (lost DNS packets).
            let mac = format!("02:42:0a:d6:{subnet:02x}:01");
            ip(&["link", "set", &bridge, "address", &mac]);
            ip(&[
                "addr",
                "add",
                &format!("{}/24", net.gateway()),
                "dev",
                &bridge,
            ]);
            if let Some(gw6) = net.gateway6() {
                let cidr = format!("{gw6}/64");
                ip(&["-6", "addr", "add", &cidr, "dev", &bridge, "nodad"]);
            }
            ip(&["link", "set", &bridge, "up"]);
            // A subnet that another process took between the check and our address: leave it.
            if addresses_in(subnet) > 1 {
                drop(net);
                continue;
            }
            return net;
        }
        panic!("no free subnet in 10.214.{FIRST_SUBNET}-{LAST_SUBNET}.0/24");
    }

    /// The host's address on the bridge (`.1`).
    pub fn gateway(&self) -> Ipv4Addr {
        self.ip(1)
    }

    /// The host's IPv6 address on the bridge, when the net has IPv6.
    pub fn gateway6(&self) -> Option<Ipv6Addr> {
        self.ipv6.then(|| self.ip6(1))
    }

    /// The bridge's name.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// `10.214.X.index`.
    pub fn ip(&self, index: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 214, self.subnet, index)
    }

    /// `fd42:214:X::index`, the digits read as hex (unique per subnet and index).
    pub fn ip6(&self, index: u8) -> Ipv6Addr {
        format!("fd42:214:{}::{index}", self.subnet)
            .parse()
            .expect("a valid IPv6 address")
    }

    /// Adds an IPv4 namespace at `10.214.X.index` (2..=254); returns its name.
    pub fn add_ns(&mut self, index: u8) -> String {
        self.add_host(index, HostSpec::V4).netns
    }

    /// Adds namespace `index` (2..=254), attached to the bridge, with the addresses `spec`
    /// asks for (IPv6 only on a net created with it).
    pub fn add_host(&mut self, index: u8, spec: HostSpec<'_>) -> Host {
        assert!((2..=254).contains(&index), "namespace index {index}");
        assert!(!spec.ipv6 || self.ipv6, "IPv6 asked of an IPv4-only net");
        let ns = format!("{}-{}{index}", self.bridge, spec.label);
        let veth = format!("{}v{index}", self.bridge);
        ip(&["netns", "add", &ns]);
        self.created.push(Resource::Netns(ns.clone()));
        let decoy = spec.decoy.then(|| Ipv4Addr::new(192, 0, 2, index));
        if let Some(d) = decoy {
            // Created before eth0, so it is listed first. A veth pair with both ends inside
            // (this kernel has no dummy driver).
            let cidr = format!("{d}/32");
            for args in [
                &[
                    "link", "add", "decoy0", "type", "veth", "peer", "name", "decoy1",
                ][..],
                &["link", "set", "decoy1", "up"],
                &["addr", "add", &cidr, "dev", "decoy0"],
                &["link", "set", "decoy0", "up"],
            ] {
                ip(&[&["-n", ns.as_str()][..], args].concat());
            }
        }
        ip(&[
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ]);
        self.created.push(Resource::Link(veth.clone()));
        ip(&["link", "set", &veth, "master", &self.bridge, "up"]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        let ipv4 = spec.ipv4.then(|| self.ip(index));
        let ipv6 = spec.ipv6.then(|| self.ip6(index));
        if let Some(a) = ipv4 {
            ip(&["-n", &ns, "addr", "add", &format!("{a}/24"), "dev", "eth0"]);
        }
        if let Some(a) = ipv6 {
            let cidr = format!("{a}/64");
            ip(&[
                "-n", &ns, "-6", "addr", "add", &cidr, "dev", "eth0", "nodad",
            ]);
        }
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        Host {
            netns: ns,
            ipv4,
            ipv6,
            decoy,
        }
    }

    /// Gives `ns` an `/etc/resolv.conf`: `nameserver`, the `search` list if any, and a short
    /// timeout.
    pub fn resolv_conf(&mut self, ns: &str, nameserver: IpAddr, search: Option<&str>) {
        let _guard = ETC_NETNS.lock().unwrap_or_else(|p| p.into_inner());
        let root = Path::new("/etc/netns");
        let dir = root.join(ns);
        // Another process may remove an empty /etc/netns between our mkdirs: retry.
        let mut created_root = false;
        for attempt in 0.. {
            if !root.exists() && std::fs::create_dir(root).is_ok() {
                created_root = true;
            }
            match std::fs::create_dir(&dir) {
                Ok(()) => break,
                Err(e) if attempt < 5 && e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => panic!("cannot create {}: {e}", dir.display()),
            }
        }
        if created_root {
            self.created.push(Resource::EtcNetns);
        }
        self.created.push(Resource::EtcNetnsDir(dir.clone()));
        let mut text = format!("nameserver {nameserver}\n");
        if let Some(search) = search {
            text.push_str(&format!("search {search}\n"));
        }
        text.push_str("options timeout:1 attempts:2\n");
        std::fs::write(dir.join("resolv.conf"), text)
            .unwrap_or_else(|e| panic!("cannot write {}/resolv.conf: {e}", dir.display()));
    }

    /// Deletes namespace `ns` (made by [`Net::add_host`]) with its veth and resolv.conf.
    pub fn remove_host(&mut self, ns: &str) {
        let index = ns
            .rsplit(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap_or("");
        let veth = Resource::Link(format!("{}v{index}", self.bridge));
        let mine: Vec<Resource> = self
            .created
            .iter()
            .filter(|r| match r {
                Resource::Netns(n) => n == ns,
                Resource::EtcNetnsDir(d) => d.ends_with(ns),
                link => **link == veth,
            })
            .cloned()
            .collect();
        self.created.retain(|r| !mine.contains(r));
        for r in mine.into_iter().rev() {
            remove(&r);
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for resource in std::mem::take(&mut self.created).into_iter().rev() {
            remove(&resource);
        }
    }
}

fn remove(resource: &Resource) {
    match resource {
        Resource::Netns(ns) => {
            let pids = Command::new("ip")
                .args(["netns", "pids", ns])
                .output()
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            if !pids.is_empty() {
                eprintln!("netns teardown: processes still in {ns}: {pids} (not ours to kill)");
            }
            if !quiet_ip(&["netns", "del", ns]) {
                eprintln!("netns teardown: cannot delete {ns}");
            }
        }
        Resource::Link(link) => {
            // A veth goes away with its namespace; delete only what is left.
            if Path::new("/sys/class/net").join(link).exists() {
                quiet_ip(&["link", "del", link]);
            }
        }
        Resource::EtcNetnsDir(dir) => {
            let _guard = ETC_NETNS.lock().unwrap_or_else(|p| p.into_inner());
            let _ = std::fs::remove_file(dir.join("resolv.conf"));
            let _ = std::fs::remove_dir(dir);
        }
        Resource::EtcNetns => {
            let _guard = ETC_NETNS.lock().unwrap_or_else(|p| p.into_inner());
            // Only if empty: other networks may still use it.
            let _ = std::fs::remove_dir("/etc/netns");
        }
    }
}

/// A UDP port free on `addr` a moment ago.
fn free_dns_port(addr: IpAddr) -> u16 {
    let udp = UdpSocket::bind((addr, 0)).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    udp.local_addr().expect("bound").port()
}

/// dnsmasq in the foreground, answering only what it is told (no resolv.conf, no
/// /etc/hosts, authoritative for every name), on the addresses it is given only.
pub const DNSMASQ_FLAGS: [&str; 7] = [
    "--conf-file=/dev/null",
    "--keep-in-foreground",
    "--no-resolv",
    "--no-hosts",
    "--local=/#/",
    "--bind-interfaces",
    "--user=root",
];

/// `dnsmasq` answering the records of a hosts file (and NXDOMAIN for anything else).
pub struct Dns {
    child: Option<Child>,
    listen: Vec<IpAddr>,
    port: u16,
    ttl: u32,
    dir: PathBuf,
}

impl Dns {
    /// Serves `records` (name, addresses) on a free port of `addr` (127.0.0.1, or a
    /// [`Net::gateway`]), TTL 0.
    pub fn start(addr: Ipv4Addr, records: &[(&str, Vec<Ipv4Addr>)]) -> Dns {
        let mut dns = Dns::new(vec![IpAddr::V4(addr)], None, 0);
        let records: Vec<(String, Vec<IpAddr>)> = records
            .iter()
            .map(|(name, ips)| (name.to_string(), ips.iter().map(|&a| a.into()).collect()))
            .collect();
        dns.write_hosts(&records);
        dns.restart();
        dns
    }

    /// Serves nothing yet on port 53 of every address of `listen` (where a namespace's
    /// resolv.conf can point), with `ttl`; [`Dns::set_records`] then [`Dns::restart`].
    pub fn on_port_53(listen: Vec<IpAddr>, ttl: u32) -> Dns {
        let dns = Dns::new(listen, Some(53), ttl);
        dns.write_hosts(&[]);
        dns
    }

    fn new(listen: Vec<IpAddr>, port: Option<u16>, ttl: u32) -> Dns {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "beamlink-dns-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let port = port.unwrap_or_else(|| free_dns_port(listen[0]));
        Dns {
            child: None,
            listen,
            port,
            ttl,
            dir,
        }
    }

    /// `IP:PORT` of its first address, for `--dns-server` (and `DNS_CLUSTER_RESOLVER`).
    pub fn server(&self) -> String {
        std::net::SocketAddr::new(self.listen[0], self.port).to_string()
    }

    /// The dnsmasq pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether dnsmasq is still running.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// What dnsmasq wrote to stderr and its log (for failure messages).
    pub fn output(&self) -> String {
        ["dnsmasq.out", "dnsmasq.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Replaces the records (name, addresses) and makes a running dnsmasq reload them
    /// (SIGHUP). The caller waits for the new answer if it needs it.
    pub fn set_records(&mut self, records: &[(String, Vec<IpAddr>)]) {
        self.write_hosts(records);
        if let Some(pid) = self.pid() {
            signal(pid, "HUP");
        }
    }

    fn write_hosts(&self, records: &[(String, Vec<IpAddr>)]) {
        let mut text = String::new();
        for (name, ips) in records {
            for ip in ips {
                text.push_str(&format!("{ip} {name}\n"));
            }
        }
        // Renamed into place, so a reload never reads half a file.
        let tmp = self.dir.join("hosts.new");
        std::fs::write(&tmp, text).expect("write the hosts file");
        std::fs::rename(&tmp, self.dir.join("hosts")).expect("replace the hosts file");
    }

    /// Stops dnsmasq (SIGTERM, by pid): nothing answers on its port any more.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            assert!(
                terminate(child.id(), Duration::from_secs(5)),
                "dnsmasq {} survived SIGKILL",
                child.id()
            );
            let _ = child.wait();
        }
    }

    /// Starts dnsmasq (again) with the current records; waits until it listens.
    pub fn restart(&mut self) {
        self.stop();
        let listen: Vec<String> = self.listen.iter().map(IpAddr::to_string).collect();
        let out = std::fs::File::create(self.dir.join("dnsmasq.out")).expect("dnsmasq.out");
        let child = Command::new("dnsmasq")
            .args(DNSMASQ_FLAGS)
            .arg(format!("--local-ttl={}", self.ttl))
            .arg(format!("--listen-address={}", listen.join(",")))
            .arg(format!("--port={}", self.port))
            .arg(format!("--addn-hosts={}", self.dir.join("hosts").display()))
            .arg(format!("--pid-file={}", self.dir.join("pid").display()))
            .arg(format!(
                "--log-facility={}",
                self.dir.join("dnsmasq.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start dnsmasq: {e} (run scripts/setup)"));
        self.child = Some(child);
        let (addr, port) = (self.listen[0], self.port);
        let listening = super::wait_for(
            || self.alive() && super::answers((addr, port).into()),
            Duration::from_secs(10),
        );
        assert!(
            listening,
            "dnsmasq did not start on {}: {}",
            self.server(),
            self.output()
        );
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A real `epmd` on port 4369 inside a namespace.
pub struct NsEpmd {
    child: Child,
}

impl NsEpmd {
    /// Starts `otp`'s epmd in `ns`, listening on `only` (`ERL_EPMD_ADDRESS`) or on every
    /// address; waits until `ss` in the namespace shows it listening on 4369.
    pub fn start(otp: Otp, ns: &str, only: Option<&str>) -> NsEpmd {
        let mut command = otp.command_in_netns(ns, "epmd");
        command
            .args(["-port", "4369"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match only {
            Some(addresses) => command.env("ERL_EPMD_ADDRESS", addresses),
            None => command.env_remove("ERL_EPMD_ADDRESS"),
        };
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("{otp}: cannot start epmd in {ns}: {e}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let listening = Command::new("ip")
                .args(["netns", "exec", ns, "ss", "-Hltn", "sport = :4369"])
                .output()
                .map(|o| !o.stdout.is_empty())
                .unwrap_or(false);
            if listening {
                return NsEpmd { child };
            }
            if Instant::now() > deadline || !matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{otp}: epmd did not start in {ns}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NsEpmd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
