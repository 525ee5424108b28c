//! `muttr-pod`'s one configuration: every flag is a file key and a `MUTTR_POD_*` variable
//! (flag > environment > file > default); the file's `[pod]` table holds the pod's limits and
//! its `[seed]` table the embedded seed's protocol constants, with durations such as `"10s"`;
//! a bad file, key or value stops the pod with exit code 2 and a message naming the source
//! and the key.

#[path = "../../node/tests/common/settings_table.rs"]
mod settings_table;

use std::path::Path;

use settings_table::{Refused, Row, check_all, check_refused, print_config};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_muttr-pod"))
}

const ROWS: &[Row] = &[
    Row {
        key: "listen",
        file: ("\"127.0.0.1:8101\"", "\"127.0.0.1:8101\""),
        env: ("127.0.0.1:8102", "\"127.0.0.1:8102\""),
        flag: (&["127.0.0.1:8103"], "\"127.0.0.1:8103\""),
    },
    Row {
        key: "public_host",
        file: ("\"a.example\"", "\"a.example\""),
        env: ("b.example:8443", "\"b.example:8443\""),
        flag: (&["c.example"], "\"c.example\""),
    },
    Row {
        key: "database",
        file: ("\"postgres://a@db/pod\"", "\"postgres://a@db/pod\""),
        env: ("postgres://b@db/pod", "\"postgres://b@db/pod\""),
        flag: (&["postgres://c@db/pod"], "\"postgres://c@db/pod\""),
    },
    Row {
        key: "seed_listen",
        file: ("\"127.0.0.1:4101\"", "\"127.0.0.1:4101\""),
        env: ("127.0.0.1:4102", "\"127.0.0.1:4102\""),
        flag: (&["127.0.0.1:4103"], "\"127.0.0.1:4103\""),
    },
    Row {
        key: "seed_advertise",
        file: ("\"10.0.0.1:4000\"", "\"10.0.0.1:4000\""),
        env: ("10.0.0.2:4000", "\"10.0.0.2:4000\""),
        flag: (&["10.0.0.3:4000"], "\"10.0.0.3:4000\""),
    },
    Row {
        key: "tls_cert",
        file: ("\"/etc/a.pem\"", "\"/etc/a.pem\""),
        env: ("/etc/b.pem", "\"/etc/b.pem\""),
        flag: (&["/etc/c.pem"], "\"/etc/c.pem\""),
    },
    Row {
        key: "tls_key",
        file: ("\"/etc/a.key\"", "\"/etc/a.key\""),
        env: ("/etc/b.key", "\"/etc/b.key\""),
        flag: (&["/etc/c.key"], "\"/etc/c.key\""),
    },
    Row {
        key: "insecure_federation",
        file: ("true", "true"),
        env: ("true", "true"),
        flag: (&[], "true"),
    },
    Row {
        key: "ca_file",
        file: ("[\"/etc/ca-a.pem\"]", "[\"/etc/ca-a.pem\"]"),
        env: (
            "/etc/ca-b.pem,/etc/ca-c.pem",
            "[\"/etc/ca-b.pem\", \"/etc/ca-c.pem\"]",
        ),
        flag: (
            &["/etc/ca-d.pem", "/etc/ca-e.pem"],
            "[\"/etc/ca-d.pem\", \"/etc/ca-e.pem\"]",
        ),
    },
];

#[test]
fn every_flag_is_a_file_key_and_an_environment_variable_flag_over_env_over_file() {
    check_all(bin(), "MUTTR_POD_", ROWS);
}

#[test]
fn one_file_holds_the_pod_and_its_seed_with_humantime_durations() {
    let file = "public_host = \"pod.example\"\n\
                [pod]\nheader_timeout = \"30s\"\nnonce_window = \"10m\"\nexempt_loopback = true\n\
                [seed]\nk = 8\nexpiry = \"48h\"\nrepublish_interval = \"47h\"\n";
    let t = print_config(bin(), &[], &[], Some(file)).unwrap();
    assert_eq!(t["public_host"].as_str(), Some("pod.example"));
    assert_eq!(t["pod"]["header_timeout"].as_str(), Some("30s"));
    assert_eq!(t["pod"]["nonce_window"].as_str(), Some("10m"));
    assert_eq!(t["pod"]["exempt_loopback"].as_bool(), Some(true));
    assert_eq!(t["pod"]["body_timeout"].as_str(), Some("30s"), "default");
    assert_eq!(t["seed"]["k"].as_integer(), Some(8));
    assert_eq!(t["seed"]["expiry"].as_str(), Some("2days"));
    let env = [
        (
            "MUTTR_POD_POD__HEADER_TIMEOUT".to_string(),
            "1m".to_string(),
        ),
        ("MUTTR_POD_SEED__K".to_string(), "16".to_string()),
        (
            "MUTTR_POD_POD__TRUSTED_PROXIES".to_string(),
            "10.0.0.0/8, 192.168.0.0/16".to_string(),
        ),
    ];
    let t = print_config(bin(), &[], &env, Some(file)).unwrap();
    assert_eq!(
        t["pod"]["header_timeout"].as_str(),
        Some("1m"),
        "env over file"
    );
    assert_eq!(t["seed"]["k"].as_integer(), Some(16));
    assert_eq!(t["pod"]["trusted_proxies"][0].as_str(), Some("10.0.0.0/8"));
    assert_eq!(
        t["pod"]["trusted_proxies"][1].as_str(),
        Some("192.168.0.0/16")
    );
    let printed = toml::to_string(&t).unwrap();
    assert_eq!(print_config(bin(), &[], &[], Some(&printed)).unwrap(), t);
}

#[test]
fn a_bad_file_key_or_value_exits_2_naming_the_source_and_the_key() {
    check_refused(
        bin(),
        &[
            Refused {
                file: Some("header_timeout = \"5s\"\n"),
                env: &[],
                says: &["config.toml", "header_timeout"],
            },
            Refused {
                file: Some("[pod]\nheader_timeout = \"soon\"\n"),
                env: &[],
                says: &["config.toml", "pod.header_timeout", "bad duration"],
            },
            Refused {
                file: Some("[pod]\nmax_connections = -1\n"),
                env: &[],
                says: &["config.toml", "pod.max_connections"],
            },
            Refused {
                file: Some("[pod]\nno_such_setting = 1\n"),
                env: &[],
                says: &["config.toml", "no_such_setting"],
            },
            Refused {
                file: Some("[seed]\nk = 0\n"),
                env: &[],
                says: &["seed", "k"],
            },
            Refused {
                file: None,
                env: &[("MUTTR_POD_SEED_LISTEN", "x:y")],
                says: &["MUTTR_POD_SEED_LISTEN", "seed_listen"],
            },
            Refused {
                file: None,
                env: &[("MUTTR_POD_POD__BODY_TIMEOUT", "-3")],
                says: &["MUTTR_POD_POD__BODY_TIMEOUT", "pod.body_timeout"],
            },
            Refused {
                file: None,
                env: &[("MUTTR_POD_LISTEN", "0.0.0.0:8080")],
                says: &["listen", "public_host"],
            },
            Refused {
                file: None,
                env: &[("MUTTR_POD_LOG", "[oops")],
                says: &["log", "invalid log filter"],
            },
        ],
    );
}

#[test]
fn systemd_state_directory_is_the_default_data_dir() {
    let t = print_config(bin(), &[], &[], None).unwrap();
    assert_eq!(t["data_dir"].as_str(), Some("muttr-pod-data"));
    let env = [(
        "STATE_DIRECTORY".to_string(),
        "/var/lib/muttr-pod".to_string(),
    )];
    let t = print_config(bin(), &[], &env, None).unwrap();
    assert_eq!(t["data_dir"].as_str(), Some("/var/lib/muttr-pod"));
    let file = "data_dir = \"/srv/pod\"\n";
    let t = print_config(bin(), &[], &env, Some(file)).unwrap();
    assert_eq!(
        t["data_dir"].as_str(),
        Some("/srv/pod"),
        "the file names it"
    );
}

/// The annotated example file in `deploy/` is what the pod reads, unchanged.
#[test]
fn the_committed_example_file_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/muttr-pod.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let t = print_config(bin(), &[], &[], Some(&text)).unwrap();
    assert!(t.contains_key("pod") && t.contains_key("seed"));
}
