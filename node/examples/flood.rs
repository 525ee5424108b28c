//! Flood test (hardening): one source sends 100,000 valid requests to a seed as fast as it
//! can, while another source keeps probing it. Reports the probe latency before and during the
//! flood, what the flooder got back, what the seed dropped, and the process's memory.
//!
//! The flooder must not be on loopback (loopback sources are exempt from the per-source limit,
//! see `kad::Node`), so the seed and the flooder bind the host's first non-loopback IPv4
//! address (or `--ip`); the prober sends from loopback, another source.
//!
//! ```text
//! cargo run --release -p muttr-node --example flood -- [--count 100000] [--ip 192.0.2.2]
//! ```

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use clap::Parser;
use muttr_node::driver::{SeedOptions, spawn_seed};
use muttr_node::net::{Clock, TokioTransport};
use muttr_node::store::{MemStore, Quotas};
use muttr_node::wire::{self, Body, Contact, Message};
use tokio::net::UdpSocket;

#[derive(Debug, Parser)]
struct Args {
    /// Datagrams the flooder sends.
    #[arg(long, default_value_t = 100_000)]
    count: u32,
    /// A non-loopback address of this host.
    #[arg(long)]
    ip: Option<IpAddr>,
    /// Probes before and during the flood.
    #[arg(long, default_value_t = 200)]
    probes: u32,
}

fn host_ip() -> Option<IpAddr> {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        let i = w.iter().position(|x| *x == "inet")?;
        let ip: IpAddr = w.get(i + 1)?.split('/').next()?.parse().ok()?;
        (!ip.is_loopback()).then_some(ip)
    })
}

fn memory_kb(field: &str) -> u64 {
    muttr_node::process::memory_kib(field).unwrap_or(0)
}

fn ping(from: SocketAddr, n: u32) -> Vec<u8> {
    wire::encode(&Message::new(
        Contact::from_addr(from),
        format!("{n:040x}"),
        Body::Ping,
    ))
}

/// Sends `n` pings one after another, each waiting for its PONG (or 1 s); returns latencies.
async fn probe(sock: &UdpSocket, seed: SocketAddr, n: u32) -> (Vec<Duration>, u32) {
    let me = sock.local_addr().expect("addr");
    let mut lat = Vec::new();
    let mut lost = 0;
    let mut buf = vec![0u8; 70_000];
    for i in 0..n {
        let t = Instant::now();
        sock.send_to(&ping(me, i), seed).await.expect("send");
        match tokio::time::timeout(Duration::from_secs(1), sock.recv_from(&mut buf)).await {
            Ok(Ok(_)) => lat.push(t.elapsed()),
            _ => lost += 1,
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    lat.sort();
    (lat, lost)
}

fn pct(v: &[Duration], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    let ip = args.ip.or_else(host_ip).unwrap_or_else(|| {
        eprintln!("no non-loopback IPv4 address found: pass --ip");
        std::process::exit(2)
    });
    let config = muttr_node::Config::default();
    let seed = spawn_seed(
        TokioTransport,
        SeedOptions::new(SocketAddr::new(ip, 0), 1),
        MemStore::new(Quotas::from_config(&config)),
        Clock::system(),
    )
    .await
    .expect("seed");
    let seed_addr = seed.local_addr();
    let flooder = UdpSocket::bind(SocketAddr::new(ip, 0)).await.expect("bind");
    // The prober is another source: on one host the only other address is loopback.
    let prober = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let rss0 = memory_kb("VmRSS:");
    let (before, lost_before) = probe(&prober, seed_addr, args.probes).await;
    println!(
        "seed {seed_addr}; limit {} requests/s per source; baseline probe RTT p50 {:.3} ms p99 {:.3} ms ({} lost)",
        config.max_requests_per_sec_per_source,
        pct(&before, 0.5),
        pct(&before, 0.99),
        lost_before
    );
    let flood_me = flooder.local_addr().expect("addr");
    let count = args.count;
    let flood = tokio::spawn(async move {
        let start = Instant::now();
        for i in 0..count {
            let _ = flooder.send_to(&ping(flood_me, i), seed_addr).await;
        }
        let sent_in = start.elapsed();
        // Count the answers that came back.
        let mut buf = vec![0u8; 70_000];
        let mut answers = 0u32;
        while let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(500), flooder.recv_from(&mut buf)).await
        {
            answers += 1;
        }
        (sent_in, answers)
    });
    let (during, lost_during) = probe(&prober, seed_addr, args.probes).await;
    let (sent_in, answers) = flood.await.expect("flood");
    let stats = seed.stats().await.expect("stats");
    let rss1 = memory_kb("VmRSS:");
    let hwm = memory_kb("VmHWM:");
    println!(
        "flood: {count} PINGs from one source in {:.2} s ({:.0}/s); {answers} answered",
        sent_in.as_secs_f64(),
        count as f64 / sent_in.as_secs_f64()
    );
    println!(
        "during the flood: probe RTT p50 {:.3} ms p99 {:.3} ms ({} of {} lost)",
        pct(&during, 0.5),
        pct(&during, 0.99),
        lost_during,
        args.probes
    );
    println!(
        "seed: {} datagrams in, drops {:?}; table {} contacts",
        stats.stats.datagrams_in, stats.stats.dropped, stats.table_size
    );
    println!("memory: RSS {rss0} kB before, {rss1} kB after, peak {hwm} kB");
}
