//! User IDs: `alias@host[:port]`, parsed once, the same way by clients and pods.
//!
//! The alias follows P-A8 (`[a-z0-9][a-z0-9._-]{0,63}`); the host is a DNS name, an IPv4
//! address or a bracketed IPv6 address, with an optional port 1–65535, and must parse as a URL
//! authority and nothing more (no userinfo, path, query or fragment can ride along into the URL
//! a pod or client builds from it). Hosts compare case-insensitively, so they are kept
//! lowercase.

use tokio_tungstenite::tungstenite::http::uri::Authority;

use super::ClientError;

/// P-A8: `[a-z0-9][a-z0-9._-]{0,63}`.
pub fn valid_alias(alias: &str) -> bool {
    let b = alias.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b[1..].iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
        })
}

/// A user ID split: `alias@host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserId {
    /// The alias (P-A8).
    pub alias: String,
    /// The pod's host, lowercase, with `:port` when not the default.
    pub host: String,
}

impl UserId {
    /// Parses `alias@host[:port]` strictly (see the module docs).
    pub fn parse(text: &str) -> Result<UserId, ClientError> {
        let bad = || ClientError::BadUrl(format!("not a user ID (alias@pod): {text}"));
        let (alias, host) = text.split_once('@').ok_or_else(bad)?;
        if !valid_alias(alias) || host.is_empty() || host.len() > 255 {
            return Err(bad());
        }
        let ok_host = host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        if !ok_host {
            return Err(bad());
        }
        let authority: Authority = host.parse().map_err(|_| bad())?;
        if authority.as_str() != host || authority.host().is_empty() {
            return Err(bad());
        }
        // A port, when given, must be a number 1–65535 (`Authority` does not check it).
        let after_host = &host[host.rfind(']').map_or(0, |i| i + 1)..];
        if let Some((_, port)) = after_host.rsplit_once(':')
            && !matches!(port.parse::<u16>(), Ok(p) if p > 0)
        {
            return Err(bad());
        }
        Ok(UserId {
            alias: alias.to_string(),
            host: host.to_ascii_lowercase(),
        })
    }

    /// The URL of this user's key: `https://host/aliases/alias` (`http://` when insecure).
    pub fn key_url(&self, insecure: bool) -> String {
        let scheme = if insecure { "http" } else { "https" };
        format!("{scheme}://{}/aliases/{}", self.host, self.alias)
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.alias, self.host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_parse_into_key_urls() {
        let u = UserId::parse("alice@muttr.me").unwrap();
        assert_eq!(u.key_url(false), "https://muttr.me/aliases/alice");
        assert_eq!(u.to_string(), "alice@muttr.me");
        let u = UserId::parse("bob@127.0.0.1:8080").unwrap();
        assert_eq!(u.key_url(true), "http://127.0.0.1:8080/aliases/bob");
        let u = UserId::parse("c.d_e-f@[::1]:9000").unwrap();
        assert_eq!(u.host, "[::1]:9000");
        assert_eq!(UserId::parse("x@Pod.Example").unwrap().host, "pod.example");
    }

    #[test]
    fn malformed_user_ids_are_refused() {
        for bad in [
            "alice",
            "@host",
            "alice@",
            "Alice@host",
            "alice@host/path",
            "alice@host?x=1",
            "alice@host#frag",
            "alice@user@host",
            "alice@host:notaport",
            "al ice@host",
            "alice@ho st",
            "alice@host:0",
            "alice@host:70000",
            "alice@:80",
            "-alice@host",
        ] {
            assert!(
                matches!(UserId::parse(bad), Err(ClientError::BadUrl(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn aliases_follow_p_a8() {
        for ok in ["a", "alice", "0x", "a.b_c-d", &"a".repeat(64)] {
            assert!(valid_alias(ok), "{ok}");
        }
        for bad in ["", "A", ".a", "_a", "a b", "é", &"a".repeat(65)] {
            assert!(!valid_alias(bad), "{bad}");
        }
    }
}
