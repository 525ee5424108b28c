//! Network namespaces and veth pairs (iproute2), and their removal.
//!
//! A run with id `R` makes one namespace per host, `mtbR-hI`, and one for the switch,
//! `mtbR-sw`. Host `I` gets a veth pair: `eth0` in its namespace, with address
//! [`host_ip`]`(I)/16`, and `pI` in the switch namespace, where [`crate::switch`] bridges all
//! the `pI`. Both ends have checksum and segmentation offloads turned off (`ethtool -K`):
//! with offloads on, a veth hands a packet socket frames with unfinished checksums and
//! 64 KiB super-frames, which the switch could not forward. Every name starts with
//! [`PREFIX`], so `muttr-testbed cleanup` can find leftovers of a run that was itself killed.
//!
//! [`Topology`] removes its namespaces when dropped (after an error or a panic too); deleting a
//! namespace deletes the veth ends inside it.

use std::net::Ipv4Addr;
use std::process::Command;

use anyhow::{Context, bail};

/// Prefix of every namespace the testbed makes.
pub const PREFIX: &str = "mtb";

/// The address of host `i`: 10.77.0.10 upwards, 200 hosts per /24, all in 10.77.0.0/16.
pub fn host_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, (i / 200) as u8, (i % 200 + 10) as u8)
}

/// Runs `program args…`; an error carries its stderr.
pub fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {program} (is it installed?)"))?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Why namespaces cannot be made here, if they cannot: tries to add and delete one.
pub fn check_privilege() -> Result<(), String> {
    let probe = format!("{PREFIX}-probe-{}", std::process::id());
    match run("ip", &["netns", "add", &probe]) {
        Ok(()) => {
            let _ = run("ip", &["netns", "del", &probe]);
        }
        Err(e) => {
            return Err(format!(
                "cannot create network namespaces here ({e:#}). The testbed needs root (or \
                 CAP_SYS_ADMIN and CAP_NET_ADMIN) and iproute2; run it as root, e.g. \
                 `sudo target/debug/muttr-testbed run …`"
            ));
        }
    }
    if Command::new("ethtool").arg("--version").output().is_err() {
        return Err(
            "ethtool is not installed (needed to turn veth offloads off): \
                    `apt-get install ethtool`"
                .into(),
        );
    }
    Ok(())
}

/// One host's place in the topology.
#[derive(Debug, Clone)]
pub struct Host {
    /// Index (seeds first, then pods).
    pub index: usize,
    /// Its namespace.
    pub ns: String,
    /// Its address.
    pub ip: Ipv4Addr,
    /// Its port's interface name in the switch namespace.
    pub port: String,
}

/// The namespaces and links of one run; removed on drop.
#[derive(Debug)]
pub struct Topology {
    /// The run id.
    pub run: String,
    /// The switch's namespace.
    pub switch_ns: String,
    /// The hosts.
    pub hosts: Vec<Host>,
    made: Vec<String>,
}

impl Topology {
    /// Makes the switch namespace and `n` hosts. On error, removes what it made.
    pub fn create(run_id: &str, n: usize) -> anyhow::Result<Topology> {
        let mut t = Topology {
            run: run_id.to_string(),
            switch_ns: format!("{PREFIX}{run_id}-sw"),
            hosts: Vec::new(),
            made: Vec::new(),
        };
        let sw = t.switch_ns.clone();
        t.add_ns(&sw)?;
        for i in 0..n {
            let host = Host {
                index: i,
                ns: format!("{PREFIX}{run_id}-h{i}"),
                ip: host_ip(i),
                port: format!("p{i}"),
            };
            t.add_ns(&host.ns)?;
            run(
                "ip",
                &[
                    "link", "add", "eth0", "netns", &host.ns, "type", "veth", "peer", "name",
                    &host.port, "netns", &sw,
                ],
            )?;
            run(
                "ip",
                &[
                    "-n",
                    &host.ns,
                    "addr",
                    "add",
                    &format!("{}/16", host.ip),
                    "dev",
                    "eth0",
                ],
            )?;
            offloads_off(&host.ns, "eth0")?;
            offloads_off(&sw, &host.port)?;
            run("ip", &["-n", &host.ns, "link", "set", "eth0", "up"])?;
            run("ip", &["-n", &sw, "link", "set", &host.port, "up"])?;
            t.hosts.push(host);
        }
        Ok(t)
    }

    fn add_ns(&mut self, name: &str) -> anyhow::Result<()> {
        run("ip", &["netns", "add", name])?;
        self.made.push(name.to_string());
        run("ip", &["-n", name, "link", "set", "lo", "up"])
    }

    /// The names of the switch's ports, in host order.
    pub fn ports(&self) -> Vec<String> {
        self.hosts.iter().map(|h| h.port.clone()).collect()
    }

    /// Deletes every namespace of the run (killing what still runs inside); returns how many.
    pub fn destroy(&mut self) -> usize {
        let mut n = 0;
        for ns in self.made.drain(..).rev() {
            kill_inside(&ns);
            if run("ip", &["netns", "del", &ns]).is_ok() {
                n += 1;
            }
        }
        n
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        self.destroy();
    }
}

fn offloads_off(ns: &str, dev: &str) -> anyhow::Result<()> {
    run(
        "ip",
        &[
            "netns", "exec", ns, "ethtool", "-K", dev, "rx", "off", "tx", "off", "tso", "off",
            "gso", "off", "gro", "off",
        ],
    )
}

/// SIGKILLs every process still in namespace `ns`.
fn kill_inside(ns: &str) {
    let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() else {
        return;
    };
    for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        if pid.bytes().all(|b| b.is_ascii_digit()) {
            let _ = Command::new("kill").args(["-9", pid]).output();
        }
    }
}

/// Deletes every namespace named like the testbed's (leftovers of runs that were killed);
/// returns their names.
pub fn cleanup_all() -> Vec<String> {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return Vec::new();
    };
    let mut gone = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        if is_ours(name) {
            kill_inside(name);
            if run("ip", &["netns", "del", name]).is_ok() {
                gone.push(name.to_string());
            }
        }
    }
    gone
}

/// Whether a namespace name is one the testbed makes (`mtbR-sw`, `mtbR-hI`, `mtb-probe-P`).
pub fn is_ours(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(PREFIX) else {
        return false;
    };
    if rest.starts_with("-probe-") {
        return true;
    }
    match rest.split_once('-') {
        Some((run, tail)) => {
            !run.is_empty()
                && run.bytes().all(|b| b.is_ascii_alphanumeric())
                && (tail == "sw"
                    || tail
                        .strip_prefix('h')
                        .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit())))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_distinct_and_in_the_subnet() {
        assert_eq!(host_ip(0), Ipv4Addr::new(10, 77, 0, 10));
        assert_eq!(host_ip(199), Ipv4Addr::new(10, 77, 0, 209));
        assert_eq!(host_ip(200), Ipv4Addr::new(10, 77, 1, 10));
        let all: std::collections::HashSet<_> =
            (0..crate::scenario::MAX_HOSTS).map(host_ip).collect();
        assert_eq!(all.len(), crate::scenario::MAX_HOSTS);
        assert!(all.iter().all(|ip| ip.octets()[..2] == [10, 77]));
    }

    #[test]
    fn recognises_only_its_own_namespaces() {
        for ours in ["mtbab12-sw", "mtbab12-h0", "mtbab12-h31", "mtb-probe-77"] {
            assert!(is_ours(ours), "{ours}");
        }
        for theirs in [
            "mtb",
            "mtbx",
            "mtbab-hx",
            "mtbab-h",
            "blue",
            "mtb-sw",
            "xmtbab-sw",
        ] {
            assert!(!is_ours(theirs), "{theirs}");
        }
    }
}
