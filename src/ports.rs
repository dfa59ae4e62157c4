//! Choosing a loopback port now for a listener that binds it later: a laid-out federation writes
//! every member's addresses into configs and the signed manifest before any node runs.
//!
//! A port taken from the kernel's ephemeral range (what binding port 0 returns) can be handed to
//! an outgoing connection between the choice and the bind, and the node then fails to start. So
//! ports are chosen *below* that range, where the kernel never picks a port on its own, starting
//! at a point that differs per process and never handing out the same port twice in a process.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};

/// The lowest port handed out.
const FLOOR: u16 = 10_000;
/// The kernel's ephemeral range starts here unless it says otherwise.
const DEFAULT_EPHEMERAL_LOW: u16 = 32_768;

/// How many ports this process has tried (the offset of the next candidate).
static TRIED: AtomicU32 = AtomicU32::new(0);

/// A loopback address whose port is free now and outside the kernel's ephemeral range.
pub fn free_loopback() -> io::Result<SocketAddr> {
    let low = ephemeral_low();
    if low <= FLOOR + 1_000 {
        // An unusual kernel setting leaves no room below the range: take what the kernel gives.
        return TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr();
    }
    let span = u32::from(low - FLOOR);
    let start = process_seed() % span;
    // The offset counts from one starting point per process, so walking on from it never
    // returns a port this process handed out before.
    for _ in 0..span {
        let n = TRIED.fetch_add(1, Ordering::Relaxed);
        let port = FLOOR + ((start + n) % span) as u16;
        let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
        if TcpListener::bind(addr).is_ok() {
            return Ok(addr.into());
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("no free loopback port between {FLOOR} and {low}"),
    ))
}

/// The first port of the kernel's ephemeral range (Linux: `ip_local_port_range`).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(DEFAULT_EPHEMERAL_LOW)
}

/// A number that differs between processes, so two test binaries or two `jol demo` runs do not
/// walk the same ports in the same order; fixed for the life of the process (taken once).
fn process_seed() -> u32 {
    static SEED: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        std::process::id().wrapping_mul(2_654_435_761) ^ nanos
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_below_the_ephemeral_range_and_never_repeat() {
        let low = ephemeral_low();
        let ports: Vec<u16> = (0..50)
            .map(|_| free_loopback().expect("a free port").port())
            .collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len(), "a port was handed out twice");
        if low > FLOOR + 1_000 {
            assert!(
                ports.iter().all(|&p| (FLOOR..low).contains(&p)),
                "{ports:?}"
            );
        }
    }
}
