//! Which address a request counts as coming from, for the per-IP limits: the TCP peer, or —
//! when the peer is one of the configured `trusted_proxies` — the client its `Forwarded`
//! (RFC 7239) or `X-Forwarded-For` header names.
//!
//! The header is read from the right: each proxy appends the address it received the request
//! from, so the rightmost address that is not itself a trusted proxy is the first one no proxy
//! of ours vouches for — the client. Anything to its left was written by that client and is
//! not believed. A peer that is not a trusted proxy is never asked: a client cannot choose its
//! own address by sending the header.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

use crate::config::PodConfig;

/// The address a request counts as coming from (a request extension, set by the server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The client address of a request from `peer` with `headers`.
pub fn client_ip(config: &PodConfig, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let peer = muttr_node::id::canonical_ip(peer);
    if !config.is_trusted_proxy(peer) {
        return peer;
    }
    let hops = forwarded_for(headers);
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop {
            Some(ip) => {
                client = *ip;
                if !config.is_trusted_proxy(*ip) {
                    break;
                }
            }
            // `unknown`, an obfuscated name or garbage: nothing further left is believable.
            None => break,
        }
    }
    client
}

/// The addresses of the `for=` parameters of `Forwarded`, else of `X-Forwarded-For`, left to
/// right (`None` for one that is not an IP address). Several header lines count as one list.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<&str> = headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|line| line.split(','))
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    k.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| parse_node(v.trim().trim_matches('"')))
                })
            })
            .collect();
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|line| line.split(','))
        .map(|s| parse_node(s.trim()))
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]`, `[2001:db8::1]:4711`, `2001:db8::1`.
fn parse_node(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(muttr_node::id::canonical_ip(ip));
    }
    if let Ok(sa) = text.parse::<SocketAddr>() {
        return Some(muttr_node::id::canonical_ip(sa.ip()));
    }
    text.strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .and_then(|t| t.parse::<IpAddr>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(proxies: &[&str]) -> PodConfig {
        PodConfig {
            trusted_proxies: proxies.iter().map(|p| p.parse().unwrap()).collect(),
            ..PodConfig::default()
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let c = config(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")]);
        assert_eq!(client_ip(&c, ip("203.0.113.9"), &h), ip("203.0.113.9"));
        // No proxies configured: never believed, even from loopback.
        assert_eq!(
            client_ip(&config(&[]), ip("127.0.0.1"), &h),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn a_trusted_proxy_is_seen_through_to_the_rightmost_untrusted_hop() {
        let c = config(&["10.0.0.0/8", "127.0.0.1/32"]);
        // The client wrote 6.6.6.6 itself; 198.51.100.7 is who connected to our proxy 10.1.1.1.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.1.1.1")]);
        assert_eq!(client_ip(&c, ip("127.0.0.1"), &h), ip("198.51.100.7"));
        // No header: the proxy itself.
        assert_eq!(
            client_ip(&c, ip("10.2.2.2"), &HeaderMap::new()),
            ip("10.2.2.2")
        );
        // IPv4-mapped IPv6 peers are the same proxy.
        assert_eq!(
            client_ip(
                &c,
                ip("::ffff:10.2.2.2"),
                &headers(&[("x-forwarded-for", "192.0.2.1")])
            ),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for_and_is_parsed_per_rfc_7239() {
        let c = config(&["10.0.0.0/8"]);
        let h = headers(&[
            ("x-forwarded-for", "9.9.9.9"),
            (
                "forwarded",
                "for=6.6.6.6;proto=https, For=\"[2001:db8::17]:4711\";by=10.0.0.1",
            ),
        ]);
        assert_eq!(client_ip(&c, ip("10.0.0.1"), &h), ip("2001:db8::17"));
        let h = headers(&[
            ("forwarded", "for=\"192.0.2.60:8080\""),
            ("forwarded", "for=10.0.0.3"),
        ]);
        assert_eq!(client_ip(&c, ip("10.0.0.1"), &h), ip("192.0.2.60"));
    }

    #[test]
    fn an_unparsable_hop_stops_the_walk() {
        let c = config(&["10.0.0.0/8"]);
        let h = headers(&[("forwarded", "for=6.6.6.6, for=unknown, for=10.0.0.9")]);
        // 10.0.0.9 is trusted, `unknown` says nothing: the last address believed is 10.0.0.9.
        assert_eq!(client_ip(&c, ip("10.0.0.1"), &h), ip("10.0.0.9"));
        let h = headers(&[("x-forwarded-for", "garbage")]);
        assert_eq!(client_ip(&c, ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }
}
