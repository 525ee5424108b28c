//! One configuration per binary, from four layers: command-line flag > environment variable >
//! configuration file > default.
//!
//! Every flag of `muttr-seed` and `muttr-pod` is also a key of the same name in the TOML file
//! (`--seed-listen` is `seed_listen`) and an environment variable with the binary's prefix
//! (`MUTTR_POD_SEED_LISTEN`, `MUTTR_SEED_LISTEN`). The protocol constants of a seed are the
//! `[seed]` table of either file (`node::Config`), the pod's limits its `[pod]` table
//! (`pod::PodConfig`); nested keys are reached from the environment with a double underscore
//! (`MUTTR_POD_SEED__K=8`, `MUTTR_POD_POD__HEADER_TIMEOUT=30s`).
//!
//! The layering is [`figment`]'s; what this module adds is the error message an operator needs
//! ([`load`]: the source — file path or variable name —, the key, and the reason), and
//! [`duration`], the one way durations are written in every file: `"5s"`, `"250ms"`, `"24h"`,
//! `"1h 30m"` (humantime), or a plain number of seconds.
//!
//! Unknown keys are refused (the settings structs deny unknown fields): a typo in a file or in
//! a variable name under the binary's prefix stops the program at start, exit code 2, rather
//! than being silently ignored.

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Where the layers come from.
#[derive(Debug, Clone, Copy)]
pub struct Layers<'a> {
    /// The configuration file (`--config`), if any. A file named but missing is an error.
    pub file: Option<&'a Path>,
    /// The environment variables' prefix, e.g. `"MUTTR_POD_"`.
    pub env_prefix: &'a str,
    /// Variables under the prefix that are not keys (e.g. `MUTTR_POD_CONFIG`, read by the
    /// command line parser), lower-case without the prefix.
    pub env_ignore: &'a [&'a str],
}

/// Resolves the settings `T`: the defaults, overridden by the file, by the environment, and by
/// the flags given on the command line (`cli` serializes only the flags that were given).
///
/// The error lists every problem found, one per line, each naming its source and key:
/// `MUTTR_SEED_LISTEN (environment variable): key \`listen\`: invalid socket address syntax`.
pub fn load<T, C>(layers: Layers<'_>, cli: &C) -> Result<T, String>
where
    T: DeserializeOwned + Serialize + Default,
    C: Serialize,
{
    if let Some(path) = layers.file {
        // figment treats a missing file as empty; a file named on purpose must exist.
        std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    if let Some(path) = layers.file {
        figment = figment.merge(Toml::file_exact(path));
    }
    let ignore: Vec<&str> = layers.env_ignore.to_vec();
    figment = figment
        .merge(Env::prefixed(layers.env_prefix).ignore(&ignore).split("__"))
        .merge(Serialized::defaults(cli));
    figment
        .extract::<T>()
        .map_err(|e| describe(e, layers.env_prefix))
}

/// What a binary does with its resolved configuration (`resolved`: the settings and the log
/// filter, or the error) before it runs: an error exits with code 2, naming the program;
/// `--print-config` prints the settings as TOML and exits 0; otherwise logging starts at the
/// filter in the settings' `format`, and the settings are handed back.
pub fn begin<S: Serialize>(
    program: &str,
    resolved: Result<(S, String), String>,
    print_config: bool,
    format: impl FnOnce(&S) -> crate::process::LogFormat,
) -> Result<S, std::process::ExitCode> {
    use std::process::ExitCode;
    let (settings, filter) = resolved.map_err(|e| {
        eprintln!("{program}: {e}");
        ExitCode::from(2)
    })?;
    if print_config {
        return Err(match toml::to_string(&settings) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{program}: cannot print the configuration: {e}");
                ExitCode::FAILURE
            }
        });
    }
    crate::process::init_logging(&filter, format(&settings)).map_err(|e| {
        eprintln!("{program}: {e}");
        ExitCode::from(2)
    })?;
    Ok(settings)
}

/// One line per error: source, key, reason.
fn describe(errors: figment::Error, env_prefix: &str) -> String {
    errors
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let source = match &e.metadata {
                Some(md) => match &md.source {
                    Some(figment::Source::File(path)) => path.display().to_string(),
                    // An environment variable: its name, rebuilt from the key.
                    _ if md.name.contains("environment") && !e.path.is_empty() => {
                        format!(
                            "{env_prefix}{} (environment variable)",
                            e.path.join("__").to_uppercase()
                        )
                    }
                    _ => md.name.to_string(),
                },
                None => "configuration".to_string(),
            };
            if key.is_empty() {
                format!("{source}: {}", e.kind)
            } else {
                format!("{source}: key `{key}`: {}", e.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Serde for [`std::time::Duration`] in configuration files: written as a humantime string
/// (`"5s"`, `"1h 30m"`, `"250ms"`), read from such a string or from a number of seconds
/// (`0.5`, `3600`; what seed files held before).
pub mod duration {
    use std::time::Duration;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    /// Writes `"5s"`, `"24h"`, `"1h 30m"`.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    /// Reads `"5s"`-style strings or a number of seconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(DurationVisitor)
    }

    struct DurationVisitor;

    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a duration such as \"5s\", \"250ms\" or \"24h\", or a number of seconds")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            humantime::parse_duration(v.trim()).map_err(|e| {
                E::custom(format!(
                    "bad duration {v:?}: {e} (write e.g. \"5s\", \"24h\")"
                ))
            })
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
            Ok(Duration::from_secs(v))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
            u64::try_from(v)
                .map(Duration::from_secs)
                .map_err(|_| E::custom(format!("a duration cannot be negative ({v})")))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
            Duration::try_from_secs_f64(v).map_err(|e| E::custom(format!("bad duration {v}: {e}")))
        }
    }
}

/// Serde for lists given in a file as arrays and in an environment variable as one string,
/// comma-separated: `MUTTR_SEED_BOOTSTRAP=10.0.0.1:4000,10.0.0.2:4000`.
pub mod list {
    use std::str::FromStr;

    use serde::Deserialize;
    use serde::Deserializer;

    /// Reads an array, or a string of comma-separated items.
    pub fn deserialize<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: FromStr + Deserialize<'de>,
        T::Err: std::fmt::Display,
    {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany<T> {
            Many(Vec<T>),
            Text(String),
        }
        match OneOrMany::<T>::deserialize(d)? {
            OneOrMany::Many(v) => Ok(v),
            OneOrMany::Text(s) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|item| {
                    item.parse::<T>()
                        .map_err(|e| serde::de::Error::custom(format!("{item:?}: {e}")))
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct S {
        #[serde(with = "duration")]
        wait: Duration,
        #[serde(deserialize_with = "list::deserialize")]
        peers: Vec<SocketAddr>,
        n: u32,
    }

    fn parse(text: &str) -> Result<S, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn durations_read_humantime_or_seconds_and_write_humantime() {
        assert_eq!(parse("wait = \"5s\"").unwrap().wait, Duration::from_secs(5));
        assert_eq!(
            parse("wait = \"1h 30m\"").unwrap().wait,
            Duration::from_secs(5_400)
        );
        assert_eq!(
            parse("wait = \"250ms\"").unwrap().wait,
            Duration::from_millis(250)
        );
        assert_eq!(
            parse("wait = 0.5").unwrap().wait,
            Duration::from_millis(500)
        );
        assert_eq!(
            parse("wait = 86400").unwrap().wait,
            Duration::from_secs(86_400)
        );
        let err = parse("wait = \"5 parsecs\"").unwrap_err().to_string();
        assert!(
            err.contains("bad duration") && err.contains("wait"),
            "{err}"
        );
        assert!(parse("wait = -1").is_err());
        let s = S {
            wait: Duration::from_secs(86_400),
            ..S::default()
        };
        assert!(toml::to_string(&s).unwrap().contains("wait = \"1day\""));
    }

    #[test]
    fn lists_read_arrays_or_comma_separated_text() {
        let a = parse("peers = [\"127.0.0.1:1\", \"127.0.0.1:2\"]").unwrap();
        let b = parse("peers = \"127.0.0.1:1, 127.0.0.1:2\"").unwrap();
        assert_eq!(a.peers, b.peers);
        assert_eq!(a.peers.len(), 2);
        let err = parse("peers = \"127.0.0.1:1,nope\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope"), "{err}");
    }
}
