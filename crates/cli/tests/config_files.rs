//! The configuration files end to end: `~/.rustmap/config.toml` and `RUSTMAP_CONFIG`, their
//! precedence with `--profile` and flags, `[history] db`, and errors naming file and line. Each
//! test has a HOME of its own; the scans are connect scans of closed loopback ports.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn rustmap(home: &Path, env_file: Option<&Path>, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rustmap"));
    c.args(args).env("HOME", home).env_remove("RUSTMAP_CONFIG").stdin(Stdio::null());
    if let Some(f) = env_file {
        c.env("RUSTMAP_CONFIG", f);
    }
    c.output().expect("run rustmap")
}

fn user_file(home: &Path, text: &str) {
    std::fs::create_dir_all(home.join(".rustmap")).unwrap();
    std::fs::write(home.join(".rustmap/config.toml"), text).unwrap();
}

/// The port expression the scan ran with, from its JSON output.
fn ports_scanned(home: &Path, env_file: Option<&Path>, args: &[&str]) -> String {
    let mut all = vec!["-sT", "-Pn", "-n", "--no-db", "--oJ", "-"];
    all.extend(args);
    all.push("127.0.0.1");
    let o = rustmap(home, env_file, &all);
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["scans"][0]["ports"].as_str().unwrap().to_string()
}

#[test]
fn user_file_then_env_file_then_profile_then_flags() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    assert!(ports_scanned(h, None, &[]).contains(','), "no file: the top 1000 ports");
    user_file(h, "[scan.ports]\nspec = \"1\"\n[scan.output]\nreason = true\n");
    assert_eq!(ports_scanned(h, None, &[]), "1", "the user file");
    let env = h.join("env.toml");
    std::fs::write(&env, "[scan.ports]\nspec = \"2\"\n").unwrap();
    assert_eq!(ports_scanned(h, Some(&env), &[]), "2", "RUSTMAP_CONFIG over the user file");
    let iot = "22-23,80,443,554,1883,5683,8080,8443,8883,9100,49152";
    assert_eq!(ports_scanned(h, Some(&env), &["--profile", "iot-scan"]), iot, "a profile over the files");
    assert_eq!(ports_scanned(h, Some(&env), &["--profile", "iot-scan", "-p", "3"]), "3", "flags over everything");
    // What a file sets and nothing above it changes is kept: --reason from the user file.
    let o = rustmap(h, Some(&env), &["-sT", "-Pn", "-n", "--no-db", "127.0.0.1"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("REASON"), "{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn history_db_from_the_file_unless_a_flag_says_otherwise() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    user_file(h, "[history]\ndb = \"~/scans/mine.db\"\n[scan.ports]\nspec = \"1\"\n");
    std::fs::create_dir_all(h.join("scans")).unwrap();
    let o = rustmap(h, None, &["-sT", "-Pn", "-n", "127.0.0.1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(h.join("scans/mine.db").exists(), "~/ expanded, the file's database used");
    assert!(!h.join(".rustmap/rustmap.db").exists(), "not the default one");
    let other = h.join("other.db");
    let o = rustmap(h, None, &["-sT", "-Pn", "-n", "--db", other.to_str().unwrap(), "127.0.0.1"]);
    assert!(o.status.success() && other.exists(), "--db wins");
}

#[test]
fn the_geoip_table_names_the_directory_geoip_reads() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::create_dir_all(h.join("geo")).unwrap();
    std::fs::write(h.join("geo/GeoLite2-City.mmdb"), b"not a database").unwrap();
    user_file(h, "[geoip]\ndir = \"~/geo\"\n");
    // Only a default: a scan without --geoip does not open it.
    let o = rustmap(h, None, &["-sT", "-Pn", "-n", "-p", "1", "--no-db", "127.0.0.1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = rustmap(h, None, &["--geoip", "-sT", "-Pn", "-n", "-p", "1", "--no-db", "127.0.0.1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(&h.join("geo/GeoLite2-City.mmdb").display().to_string()), "~/ expanded: {err}");
}

#[test]
fn a_bad_file_is_a_usage_error_naming_file_and_line() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    for (text, line, needle) in [
        ("[scan.timing]\ntemplate = 4\ntempo = 2\n", 3, "unknown field `tempo`"),
        ("# defaults\n[geoip]\ndirectory = \"/usr/share/GeoIP\"\n", 3, "unknown field `directory`"),
        ("[scan]\ntargets = [\"198.18.0.10\"]\n", 2, "belongs on the command line"),
    ] {
        user_file(h, text);
        let o = rustmap(h, None, &["-sT", "-p", "1", "127.0.0.1"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        let file = h.join(".rustmap/config.toml");
        assert!(err.contains(&format!("config file {}: line {line},", file.display())), "{err}");
        assert!(err.contains(needle) && o.stdout.is_empty(), "{err}");
    }
    std::fs::remove_file(h.join(".rustmap/config.toml")).unwrap();
    let o = rustmap(h, Some(&h.join("missing.toml")), &["-sT", "-p", "1", "127.0.0.1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.toml"), "RUSTMAP_CONFIG must exist");
}

#[test]
fn unprivileged_flag_and_config_key_pick_the_connect_scan() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let scan_type = |env: Option<&Path>, extra: &[&str]| {
        let mut args = vec!["-Pn", "-n", "--no-db", "-p", "1", "--oJ", "-"];
        args.extend(extra);
        args.push("127.0.0.1");
        let o = rustmap(h, env, &args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        v["scans"][0]["scan_type"].as_str().unwrap().to_string()
    };
    assert_eq!(scan_type(None, &["--unprivileged"]), "connect");
    let env = h.join("unpriv.toml");
    std::fs::write(&env, "[scan.origin]\nprivileged = false\n").unwrap();
    assert_eq!(scan_type(Some(&env), &[]), "connect", "the config file's key");
    let o = rustmap(h, None, &["--unprivileged", "-sS", "-p", "1", "127.0.0.1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--unprivileged rules out"));
    let o = rustmap(h, None, &["--unprivileged", "--privileged", "127.0.0.1"]);
    assert_eq!(o.status.code(), Some(2), "the two conflict");
}

#[test]
fn version_names_features_and_data_versions() {
    let home = tempfile::tempdir().unwrap();
    let o = rustmap(home.path(), None, &["-V"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    assert!(out.starts_with(&format!("rustmap {}\n", env!("CARGO_PKG_VERSION"))), "{out}");
    assert!(out.contains("\nfeatures: "), "{out}");
    assert!(out.contains("\nprobe database: 2 (") && out.contains(" rules; fnv "), "{out}");
    assert!(out.contains("\nport table: 1 (") && out.contains(" tcp, "), "{out}");
}
