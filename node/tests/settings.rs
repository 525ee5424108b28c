//! `muttr-seed`'s one configuration: every flag is a file key and a `MUTTR_SEED_*` variable
//! (flag > environment > file > default), the `[seed]` table holds the protocol constants
//! with durations such as `"24h"`, and a bad file, key or value stops the seed with exit code
//! 2 and a message naming the source and the key.

#[path = "common/settings_table.rs"]
mod settings_table;

use std::path::Path;

use settings_table::{Refused, Row, check_all, check_refused, print_config};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_muttr-seed"))
}

const ROWS: &[Row] = &[
    Row {
        key: "listen",
        file: ("\"127.0.0.1:4101\"", "\"127.0.0.1:4101\""),
        env: ("127.0.0.1:4102", "\"127.0.0.1:4102\""),
        flag: (&["127.0.0.1:4103"], "\"127.0.0.1:4103\""),
    },
    Row {
        key: "advertise",
        file: ("\"10.0.0.1:4000\"", "\"10.0.0.1:4000\""),
        env: ("10.0.0.2:4000", "\"10.0.0.2:4000\""),
        flag: (&["10.0.0.3:4000"], "\"10.0.0.3:4000\""),
    },
];

#[test]
fn every_flag_is_a_file_key_and_an_environment_variable_flag_over_env_over_file() {
    check_all(bin(), "MUTTR_SEED_", ROWS);
}

#[test]
fn the_seed_table_holds_the_protocol_constants_with_humantime_durations() {
    let file = "[seed]\nk = 8\nexpiry = \"48h\"\nrepublish_interval = \"47h\"\n";
    let t = print_config(bin(), &[], &[], Some(file)).unwrap();
    assert_eq!(t["seed"]["k"].as_integer(), Some(8));
    assert_eq!(t["seed"]["expiry"].as_str(), Some("2days"));
    assert_eq!(t["seed"]["alpha"].as_integer(), Some(3), "the rest default");
    let env = [
        ("MUTTR_SEED_SEED__K".to_string(), "12".to_string()),
        (
            "MUTTR_SEED_SEED__RESPONSE_TIMEOUT".to_string(),
            "250ms".to_string(),
        ),
    ];
    let t = print_config(bin(), &[], &env, Some(file)).unwrap();
    assert_eq!(t["seed"]["k"].as_integer(), Some(12), "env over file");
    assert_eq!(t["seed"]["response_timeout"].as_str(), Some("250ms"));
    assert_eq!(t["seed"]["expiry"].as_str(), Some("2days"), "file kept");
    // What --print-config prints is itself a valid file.
    let printed = toml::to_string(&t).unwrap();
    let again = print_config(bin(), &[], &[], Some(&printed)).unwrap();
    assert_eq!(again, t);
}

#[test]
fn a_bad_file_key_or_value_exits_2_naming_the_source_and_the_key() {
    check_refused(
        bin(),
        &[
            Refused {
                file: Some("listne = \"127.0.0.1:1\"\n"),
                env: &[],
                says: &["config.toml", "listne"],
            },
            Refused {
                file: Some("[seed]\nexpiry = \"a day\"\n"),
                env: &[],
                says: &["config.toml", "seed.expiry", "bad duration"],
            },
            Refused {
                file: Some("[seed]\nk = \"twenty\"\n"),
                env: &[],
                says: &["config.toml", "seed.k"],
            },
            Refused {
                file: Some("listen = \n"),
                env: &[],
                says: &["config.toml"],
            },
            Refused {
                file: Some("[seed]\nalpha = 30\n"),
                env: &[],
                says: &["seed", "alpha"],
            },
            Refused {
                file: None,
                env: &[("MUTTR_SEED_LISTEN", "nowhere")],
                says: &["MUTTR_SEED_LISTEN", "listen"],
            },
            Refused {
                file: None,
                env: &[("MUTTR_SEED_LISTN", "127.0.0.1:1")],
                says: &["MUTTR_SEED_LISTN", "listn"],
            },
            Refused {
                file: None,
                env: &[("MUTTR_SEED_LOG", "info,[bad")],
                says: &["log", "invalid log filter"],
            },
            Refused {
                file: None,
                env: &[("RUST_LOG", "debgu=[")],
                says: &["log", "invalid log filter"],
            },
        ],
    );
    // A file named but absent.
    let out = std::process::Command::new(bin())
        .args(["--config", "/nonexistent/muttr-seed.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/muttr-seed.toml"));
}

#[test]
fn systemd_state_directory_is_the_default_data_dir() {
    let env = [(
        "STATE_DIRECTORY".to_string(),
        "/var/lib/muttr-seed".to_string(),
    )];
    let t = print_config(bin(), &[], &env, None).unwrap();
    assert_eq!(t["data_dir"].as_str(), Some("/var/lib/muttr-seed"));
    let t = print_config(bin(), &["--data-dir".into(), "/srv/x".into()], &env, None).unwrap();
    assert_eq!(t["data_dir"].as_str(), Some("/srv/x"));
}

/// The annotated example file in `deploy/` is what the seed reads, unchanged.
#[test]
fn the_committed_example_file_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/muttr-seed.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let t = print_config(bin(), &[], &[], Some(&text)).unwrap();
    assert!(t.contains_key("seed"));
}
