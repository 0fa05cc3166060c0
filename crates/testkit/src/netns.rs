//! A network namespace joined to this one by a veth pair, for black-holing a connection:
//! packets between the two ends can be silently dropped (a `blackhole` route on each side; this
//! machine's kernel has neither netem nor the matchall classifier, and no iptables/nft), so a
//! peer vanishes without FIN or RST. Needs root and `ip`; fails the test loudly when either is
//! missing. The namespace and the veth pair are removed on drop, even when the test fails.

use std::process::Command;

/// Runs `ip <args>`; panics with its stderr when it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("half-open scenario needs `ip` (iproute2): {e}"));
    assert!(
        out.status.success(),
        "half-open scenario needs root and network namespaces: `ip {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The namespace `fsoak<pid>`, joined to this one by a veth pair (a /30 in 10.213.0.0/16).
pub struct NetNs {
    /// The namespace's name (for `ip netns exec <name> ...`).
    pub name: String,
    veth: String,
    /// This side's address.
    pub outer: std::net::Ipv4Addr,
    /// The namespace's address.
    pub inner: std::net::Ipv4Addr,
    /// Whether [`NetNs::black_hole`] added its routes (removed on drop).
    holed: std::cell::Cell<bool>,
}

impl NetNs {
    /// Creates the namespace and the veth pair; panics (with the reason) when it cannot.
    /// One per process at a time.
    pub fn create() -> NetNs {
        let pid = std::process::id();
        let name = format!("fsoak{pid}");
        let veth = format!("fsk{pid}a");
        let peer = format!("fsk{pid}b");
        // A stale namespace of an earlier run with the same pid (killed before its drop).
        let _ = Command::new("ip").args(["link", "del", &veth]).output();
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let octet = (pid % 250) as u8;
        let outer = std::net::Ipv4Addr::new(10, 213, octet, 1);
        let inner = std::net::Ipv4Addr::new(10, 213, octet, 2);
        ip(&["netns", "add", &name]);
        let ns = NetNs {
            name: name.clone(),
            veth: veth.clone(),
            outer,
            inner,
            holed: std::cell::Cell::new(false),
        };
        ip(&[
            "link", "add", &veth, "type", "veth", "peer", "name", &peer, "netns", &name,
        ]);
        ip(&["addr", "add", &format!("{outer}/30"), "dev", &veth]);
        ip(&["link", "set", &veth, "up"]);
        ip(&[
            "netns",
            "exec",
            &name,
            "ip",
            "addr",
            "add",
            &format!("{inner}/30"),
            "dev",
            &peer,
        ]);
        ip(&["netns", "exec", &name, "ip", "link", "set", &peer, "up"]);
        ip(&["netns", "exec", &name, "ip", "link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's TcpExt counters (`/proc/net/netstat` read inside it): `name -> value`.
    pub fn tcp_ext(&self) -> std::collections::HashMap<String, u64> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name, "cat", "/proc/net/netstat"])
            .output()
            .expect("ip netns exec cat /proc/net/netstat");
        assert!(
            out.status.success(),
            "reading /proc/net/netstat in {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        parse_tcp_ext(&String::from_utf8_lossy(&out.stdout))
    }

    /// From now on, packets between the two ends are dropped, both ways, without a word to
    /// either side.
    pub fn black_hole(&self) {
        self.holed.set(true);
        ip(&["route", "add", "blackhole", &format!("{}/32", self.inner)]);
        ip(&[
            "netns",
            "exec",
            &self.name,
            "ip",
            "route",
            "add",
            "blackhole",
            &format!("{}/32", self.outer),
        ]);
    }
}

/// The `TcpExt:` name and value lines of a `/proc/net/netstat` text, as `name -> value`.
pub fn parse_tcp_ext(text: &str) -> std::collections::HashMap<String, u64> {
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        panic!("no TcpExt lines in /proc/net/netstat");
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .skip(1)
        .map(|(n, v)| (n.to_owned(), v.parse().expect("a TcpExt counter")))
        .collect()
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let route = format!("{}/32", self.inner);
        let mut steps = vec![
            vec!["link", "del", &self.veth],
            vec!["netns", "del", &self.name],
        ];
        if self.holed.get() {
            steps.insert(0, vec!["route", "del", "blackhole", &route]);
        }
        for args in steps {
            match Command::new("ip").args(&args).output() {
                Ok(out) if out.status.success() => {}
                Ok(out) => eprintln!(
                    "cleanup: ip {} failed: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                ),
                Err(e) => eprintln!("cleanup: ip {}: {e}", args.join(" ")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_tcp_ext;

    #[test]
    fn tcp_ext_pairs_names_with_values() {
        let text = "TcpExt: SyncookiesSent ListenOverflows ListenDrops\n\
                    TcpExt: 0 159 161\n\
                    IpExt: InNoRoutes\nIpExt: 3\n";
        let c = parse_tcp_ext(text);
        assert_eq!(c["ListenOverflows"], 159);
        assert_eq!(c["ListenDrops"], 161);
        assert_eq!(c.len(), 3);
    }
}
