//! Private networks for tests whose failures need hosts of their own (an EPMD behind a
//! "firewall", a closed distribution port, a virtual IP), plus a DNS server and `epmd`
//! inside a namespace.
//!
//! * [`Net`]: a bridge with a /24 from 10.214.10.0/24 to 10.214.250.0/24, picked from the
//!   process id and a counter, skipping subnets and bridge names already in use (other
//!   developers' swarm tests use 10.213.x.x). [`Net::add_ns`] adds a namespace on it (a veth
//!   pair, `lo` up, no default route). The test process stays in the host namespace, which
//!   has the bridge's `.1` address, so it reaches every namespace directly. Drop deletes
//!   exactly the namespaces, veths and bridge it created, newest first.
//! * [`Dns`]: `dnsmasq` serving fixed A records on a free port, authoritative for every name
//!   (unknown names get NXDOMAIN, as from a real resolver), on loopback or on a [`Net`]'s
//!   bridge address (where namespaces reach it).
//! * [`NsEpmd`]: a real `epmd -port 4369` inside a namespace, optionally limited to some
//!   addresses with `ERL_EPMD_ADDRESS` (the hardening that makes it unreachable from peers).
//!
//! Included by the tests that need it with `#[path = "support/netns.rs"] mod netns;`, beside
//! `mod support;`. Needs root and iproute2; `dnsmasq` comes from `scripts/setup`
//! (dnsmasq-base). A missing tool panics with "run scripts/setup".

#![allow(dead_code)]

use std::io::Read;
use std::net::{Ipv4Addr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::support::Otp;

/// First and last third octet of the subnets tests may use (10.214.X.0/24).
const FIRST_SUBNET: u32 = 10;
const LAST_SUBNET: u32 = 250;

fn run(what: &str, command: &mut Command) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot run: {e} (run scripts/setup)"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    run(
        &format!("ip {}", args.join(" ")),
        Command::new("ip").args(args),
    )
}

/// True if anything on this host already has an address in 10.214.`subnet`.0/24.
fn subnet_in_use(subnet: u32) -> bool {
    let output = Command::new("ip")
        .args([
            "-4",
            "-o",
            "addr",
            "show",
            "to",
            &format!("10.214.{subnet}.0/24"),
        ])
        .output();
    match output {
        Ok(o) => !o.stdout.is_empty(),
        Err(_) => true,
    }
}

/// A bridge with a private /24 and the namespaces attached to it.
pub struct Net {
    subnet: u32,
    bridge: String,
    /// What was created, in order: `("netns", name)` or `("link", name)`.
    created: Vec<(&'static str, String)>,
}

impl Net {
    /// Creates a bridge on a free 10.214.X.0/24 with the host at `.1`. Panics if none is free.
    pub fn create() -> Net {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let span = LAST_SUBNET - FIRST_SUBNET + 1;
        let start = std::process::id()
            .wrapping_mul(7)
            .wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed) * 13);
        let mut errors = Vec::new();
        for step in 0..span {
            let subnet = FIRST_SUBNET + (start.wrapping_add(step) % span);
            let bridge = format!("bldoc{subnet}");
            if subnet_in_use(subnet) {
                continue;
            }
            // Creating the bridge is the lock: a concurrent test that picked the same subnet
            // fails here and moves on.
            if let Err(e) = ip(&["link", "add", "name", &bridge, "type", "bridge"]) {
                errors.push(e);
                continue;
            }
            let net = Net {
                subnet,
                bridge: bridge.clone(),
                created: vec![("link", bridge.clone())],
            };
            let gateway = format!("{}/24", net.gateway());
            ip(&["addr", "add", &gateway, "dev", &bridge]).unwrap_or_else(|e| panic!("{e}"));
            ip(&["link", "set", &bridge, "up"]).unwrap_or_else(|e| panic!("{e}"));
            // A subnet that another process took between the check and our address: leave it.
            if Command::new("ip")
                .args([
                    "-4",
                    "-o",
                    "addr",
                    "show",
                    "to",
                    &format!("10.214.{subnet}.0/24"),
                ])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).lines().count() > 1)
                .unwrap_or(false)
            {
                drop(net);
                continue;
            }
            return net;
        }
        panic!("no free subnet in 10.214.{FIRST_SUBNET}-{LAST_SUBNET}.0/24: {errors:?}");
    }

    /// The host's address on the bridge (`.1`).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 214, self.subnet as u8, 1)
    }

    /// The address of namespace `index`.
    pub fn ip(&self, index: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 214, self.subnet as u8, index)
    }

    /// Adds namespace `index` (2..=254) at `10.214.X.index`, attached to the bridge; returns
    /// its name.
    pub fn add_ns(&mut self, index: u8) -> String {
        assert!((2..=254).contains(&index), "namespace index {index}");
        let ns = format!("bldoc-{}-{index}", self.subnet);
        let veth = format!("{}v{index}", self.bridge);
        ip(&["netns", "add", &ns]).unwrap_or_else(|e| panic!("{e}"));
        self.created.push(("netns", ns.clone()));
        ip(&[
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        self.created.push(("link", veth.clone()));
        ip(&["link", "set", &veth, "master", &self.bridge, "up"]).unwrap_or_else(|e| panic!("{e}"));
        let address = format!("{}/24", self.ip(index));
        for args in [
            vec!["-n", &ns, "link", "set", "lo", "up"],
            vec!["-n", &ns, "addr", "add", &address, "dev", "eth0"],
            vec!["-n", &ns, "link", "set", "eth0", "up"],
        ] {
            ip(&args).unwrap_or_else(|e| panic!("{e}"));
        }
        ns
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for (kind, name) in self.created.iter().rev() {
            let result = match *kind {
                "netns" => ip(&["netns", "del", name]),
                _ => ip(&["link", "del", name]),
            };
            // A veth disappears with its namespace; anything else left behind is reported.
            if let Err(e) = result
                && *kind == "netns"
            {
                eprintln!("netns teardown: {e}");
            }
        }
    }
}

/// A UDP and TCP port free on `addr` a moment ago.
fn free_dns_port(addr: Ipv4Addr) -> u16 {
    let udp = UdpSocket::bind((addr, 0)).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    udp.local_addr().expect("bound").port()
}

/// `dnsmasq` answering fixed A records (and NXDOMAIN for anything else).
pub struct Dns {
    child: Child,
    addr: Ipv4Addr,
    port: u16,
    dir: PathBuf,
}

/// dnsmasq in the foreground, answering only what it is told (no resolv.conf, no
/// /etc/hosts, authoritative for every name, TTL 0), on the addresses it is given only.
pub const DNSMASQ_FLAGS: [&str; 9] = [
    "--conf-file=/dev/null",
    "--keep-in-foreground",
    "--no-resolv",
    "--no-hosts",
    "--local=/#/",
    "--local-ttl=0",
    "--bind-interfaces",
    "--user=root",
    "--log-facility=-",
];

impl Dns {
    /// Serves `records` (name, addresses) on `addr` (127.0.0.1, or a [`Net::gateway`]).
    pub fn start(addr: Ipv4Addr, records: &[(&str, Vec<Ipv4Addr>)]) -> Dns {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "beamlink-dns-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let hosts = dir.join("hosts");
        let mut text = String::new();
        for (name, ips) in records {
            for ip in ips {
                text.push_str(&format!("{ip} {name}\n"));
            }
        }
        std::fs::write(&hosts, text).expect("write the hosts file");
        let mut failures = Vec::new();
        for _ in 0..5 {
            let port = free_dns_port(addr);
            let mut child = Command::new("dnsmasq")
                .args(DNSMASQ_FLAGS)
                .arg(format!("--listen-address={addr}"))
                .arg(format!("--port={port}"))
                .arg(format!("--addn-hosts={}", hosts.display()))
                .arg(format!("--pid-file={}", dir.join("pid").display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start dnsmasq: {e} (run scripts/setup)"));
            let listening = super::support::wait_for(
                || matches!(child.try_wait(), Ok(None)) && TcpStream::connect((addr, port)).is_ok(),
                Duration::from_secs(10),
            );
            if listening {
                return Dns {
                    child,
                    addr,
                    port,
                    dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            failures.push(format!("port {port}: {err}"));
        }
        panic!("dnsmasq did not start on {addr}: {failures:?}");
    }

    /// `IP:PORT` for `--dns-server` (and `DNS_CLUSTER_RESOLVER`).
    pub fn server(&self) -> String {
        format!("{}:{}", self.addr, self.port)
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A real `epmd` on port 4369 inside a namespace.
pub struct NsEpmd {
    child: Child,
}

impl NsEpmd {
    /// Starts `otp`'s epmd in `ns`, listening on `only` (`ERL_EPMD_ADDRESS`) or on every
    /// address; waits until it answers on `probe:4369` from inside the namespace's view
    /// (`probe` is an address the test process reaches when it listens there, or loopback
    /// checked with `ss` in the namespace).
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
