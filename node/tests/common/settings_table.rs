//! A table-driven check that every flag of a binary is also a configuration-file key and an
//! environment variable, with precedence flag > environment > file > default, read back
//! through the binary's own `--print-config`. `node/tests/settings.rs` runs it on
//! `muttr-seed`, `pod/tests/settings.rs` (through `#[path]`) on `muttr-pod`.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// One option: its key, and a different value from each source with what `--print-config`
/// then shows (TOML literals).
#[derive(Clone, Copy)]
pub struct Row {
    /// The file key (`seed_listen`); the flag is `--seed-listen`, the variable
    /// `PREFIX_SEED_LISTEN`.
    pub key: &'static str,
    /// In the file: a TOML literal, and the value printed.
    pub file: (&'static str, &'static str),
    /// In the environment: the variable's text, and the value printed.
    pub env: (&'static str, &'static str),
    /// On the command line: the arguments after the flag's name (empty for a switch), and
    /// the value printed.
    pub flag: (&'static [&'static str], &'static str),
}

/// What `--print-config` printed, parsed; or the exit status and stderr when it failed.
pub fn print_config(
    bin: &Path,
    args: &[String],
    env: &[(String, String)],
    file: Option<&str>,
) -> Result<toml::Table, (Option<i32>, String)> {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(bin);
    cmd.env_clear().arg("--print-config").args(args);
    if let Some(text) = file {
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        cmd.arg("--config").arg(path);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the binary runs");
    if !out.status.success() {
        return Err((
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    Ok(text
        .parse::<toml::Table>()
        .unwrap_or_else(|e| panic!("--print-config prints TOML: {e}\n{text}")))
}

fn literal(text: &str) -> toml::Value {
    format!("v = {text}").parse::<toml::Table>().unwrap()["v"].clone()
}

fn flag_args(row: &Row) -> Vec<String> {
    let mut args = vec![format!("--{}", row.key.replace('_', "-"))];
    args.extend(row.flag.0.iter().map(|s| s.to_string()));
    // A repeatable flag is written once per item: `--bootstrap A --bootstrap B`.
    if row.flag.0.len() > 1 {
        let name = args[0].clone();
        args = row
            .flag
            .0
            .iter()
            .flat_map(|v| [name.clone(), v.to_string()])
            .collect();
    }
    args
}

/// Runs every row: each source alone, then env over file, then the flag over both. `base`
/// are arguments every run needs (e.g. `--public-host` with a wildcard listen).
pub fn check(bin: &Path, prefix: &str, base: &[&str], rows: &[Row]) {
    let base: Vec<String> = base.iter().map(|s| s.to_string()).collect();
    for row in rows {
        let file_text = format!("{} = {}\n", row.key, row.file.0);
        let env = vec![(
            format!("{prefix}{}", row.key.to_uppercase()),
            row.env.0.to_string(),
        )];
        let flag = [base.clone(), flag_args(row)].concat();
        let value = |t: Result<toml::Table, (Option<i32>, String)>, how: &str| {
            let t = t.unwrap_or_else(|e| panic!("{} from {how}: {e:?}", row.key));
            t.get(row.key)
                .cloned()
                .unwrap_or_else(|| panic!("{} from {how}: not printed", row.key))
        };
        let from_file = value(print_config(bin, &base, &[], Some(&file_text)), "the file");
        assert_eq!(from_file, literal(row.file.1), "{} from the file", row.key);
        let from_env = value(print_config(bin, &base, &env, None), "the environment");
        assert_eq!(from_env, literal(row.env.1), "{} from {env:?}", row.key);
        let from_flag = value(print_config(bin, &flag, &[], None), "the flag");
        assert_eq!(from_flag, literal(row.flag.1), "{} from {flag:?}", row.key);
        let env_over_file = value(
            print_config(bin, &base, &env, Some(&file_text)),
            "env and file",
        );
        assert_eq!(env_over_file, literal(row.env.1), "{}: env > file", row.key);
        let flag_over_all = value(
            print_config(bin, &flag, &env, Some(&file_text)),
            "all three",
        );
        assert_eq!(
            flag_over_all,
            literal(row.flag.1),
            "{}: flag > env",
            row.key
        );
    }
}

/// The long options `--help` lists, without `--help`, `--version`, `--config` and
/// `--print-config` (which are not settings).
pub fn options(bin: &Path) -> Vec<String> {
    let out = Command::new(bin).arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    let mut found: Vec<String> = help
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let l = l
                .strip_prefix("-")
                .and_then(|l| l.split_once(", "))
                .map_or(l, |(_, r)| r);
            l.strip_prefix("--")
                .map(|r| r.split([' ', '=', '<']).next().unwrap().to_string())
        })
        .filter(|o| !["help", "version", "config", "print-config"].contains(&o.as_str()))
        .collect();
    found.sort();
    found.dedup();
    found
}

/// Every option `--help` lists has a row.
pub fn check_complete(bin: &Path, rows: &[Row]) {
    let options = options(bin);
    assert!(options.len() >= 5, "{options:?}");
    for o in &options {
        assert!(
            rows.iter().any(|r| r.key == o.replace('-', "_")),
            "--{o} has no row in the table"
        );
    }
}

/// A configuration the binary must refuse: the file's text, the environment, and what the
/// message must contain (the source and the key).
pub struct Refused {
    /// The configuration file's text, if any.
    pub file: Option<&'static str>,
    /// Environment variables.
    pub env: &'static [(&'static str, &'static str)],
    /// Strings the error message contains.
    pub says: &'static [&'static str],
}

/// Each case stops the binary with exit code 2 and a message containing its `says`.
pub fn check_refused(bin: &Path, cases: &[Refused]) {
    for case in cases {
        let env: Vec<(String, String)> = case
            .env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (code, err) =
            print_config(bin, &[], &env, case.file).expect_err("the configuration is refused");
        assert_eq!(code, Some(2), "{:?} {env:?}: {err}", case.file);
        for n in case.says {
            assert!(
                err.contains(n),
                "{:?} {env:?}: {n:?} not in {err}",
                case.file
            );
        }
    }
}

/// The options both `muttr-seed` and `muttr-pod` have, with the same meaning.
pub const SHARED: &[Row] = &[
    Row {
        key: "bootstrap",
        file: ("[\"10.0.0.1:4000\"]", "[\"10.0.0.1:4000\"]"),
        env: (
            "10.0.0.2:4000, 10.0.0.3:4000",
            "[\"10.0.0.2:4000\", \"10.0.0.3:4000\"]",
        ),
        flag: (
            &["10.0.0.4:4000", "10.0.0.5:4000"],
            "[\"10.0.0.4:4000\", \"10.0.0.5:4000\"]",
        ),
    },
    Row {
        key: "data_dir",
        file: ("\"/srv/a\"", "\"/srv/a\""),
        env: ("/srv/b", "\"/srv/b\""),
        flag: (&["/srv/c"], "\"/srv/c\""),
    },
    Row {
        key: "log",
        file: ("\"warn\"", "\"warn\""),
        env: ("debug", "\"debug\""),
        flag: (&["info,muttr_node=trace"], "\"info,muttr_node=trace\""),
    },
    Row {
        key: "log_format",
        file: ("\"json\"", "\"json\""),
        env: ("text", "\"text\""),
        flag: (&["json"], "\"json\""),
    },
    Row {
        key: "rng_seed",
        file: ("1", "1"),
        env: ("2", "2"),
        flag: (&["3"], "3"),
    },
    Row {
        key: "metrics_listen",
        file: ("\"127.0.0.1:9101\"", "\"127.0.0.1:9101\""),
        env: ("127.0.0.1:9102", "\"127.0.0.1:9102\""),
        flag: (&["127.0.0.1:9103"], "\"127.0.0.1:9103\""),
    },
];

/// [`check_complete`] and [`check`] over `own` rows and [`SHARED`].
pub fn check_all(bin: &Path, prefix: &str, own: &[Row]) {
    let rows: Vec<Row> = own.iter().chain(SHARED).copied().collect();
    check_complete(bin, &rows);
    check(bin, prefix, &[], &rows);
}
