//! The Debian package: built by `packaging/build-deb.sh` from this test's own (debug) binary, so
//! that CI pays for no release build; installed with `dpkg --root` into an empty directory (never
//! onto this machine); its man page rendered with `man -l`; each completion script loaded by its
//! shell; then purged, leaving nothing behind.
//!
//! Needs cargo-deb, dpkg, man, zsh and fish (tests/run-all.sh installs them). Without them the
//! test skips with a reason — except under `CI=true`, where it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn have(program: &str, arg: &[&str]) -> bool {
    Command::new(program).args(arg).output().is_ok_and(|o| o.status.success())
}

fn tools_present() -> bool {
    let missing: Vec<&str> = [
        ("cargo", &["deb", "--version"][..]),
        ("dpkg", &["--version"][..]),
        ("man", &["--version"][..]),
        ("zsh", &["--version"][..]),
        ("fish", &["--version"][..]),
    ]
    .iter()
    .filter(|(p, a)| !have(p, a))
    .map(|(p, _)| if *p == "cargo" { "cargo-deb" } else { *p })
    .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("missing {missing:?}: tests/run-all.sh installs them (CI=true: not skipping)");
    }
    eprintln!("SKIP: missing {missing:?} (cargo install --locked cargo-deb; apt-get install zsh fish man-db)");
    false
}

fn ok(o: Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn dpkg(root: &Path, args: &[&str]) -> Output {
    // Scripts run outside a chroot (the root has no shell in it); ours only prints. Dependencies
    // (libc6) are not in the empty root, which is why they are forced.
    Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(["--force-script-chrootless", "--force-depends", "--log=/dev/null"])
        .args(args)
        .output()
        .expect("dpkg")
}

/// Every file and directory under `root` outside dpkg's own database.
fn left_over(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if ["var", "var/lib", "var/lib/dpkg"].iter().any(|k| rel == Path::new(k)) {
                stack.push(p);
            } else if !rel.starts_with("var/lib/dpkg") {
                out.push(rel);
            }
        }
    }
    out
}

#[test]
fn deb_installs_man_page_and_completions_and_purges_clean() {
    if !tools_present() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let built = Command::new("bash")
        .arg(repo().join("packaging/build-deb.sh"))
        .env("OUT", &out)
        .env("RUSTMAP_BIN", env!("CARGO_BIN_EXE_rustmap"))
        .env("HOME", work.path())
        .output()
        .unwrap();
    ok(built, "build-deb.sh");
    let deb = std::fs::read_dir(&out).unwrap().flatten().map(|e| e.path()).find(|p| {
        p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("rustmap_") && n.ends_with(".deb"))
    });
    let deb = deb.expect("a rustmap_*.deb");
    let control = ok(Command::new("dpkg-deb").arg("-f").arg(&deb).output().unwrap(), "dpkg-deb -f");
    assert!(control.contains("Package: rustmap\n") && control.contains("Depends: libc6"), "{control}");

    let root = work.path().join("root");
    for d in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    let installed = ok(dpkg(&root, &["-i", deb.to_str().unwrap()]), "dpkg -i");
    assert!(installed.contains("setcap cap_net_raw,cap_net_admin+eip /usr/bin/rustmap"), "postinst note: {installed}");

    let bin = root.join("usr/bin/rustmap");
    let v = ok(Command::new(&bin).arg("-V").env("HOME", work.path()).output().unwrap(), "rustmap -V");
    assert!(v.starts_with("rustmap ") && v.contains("probe database: "), "{v}");

    let man = root.join("usr/share/man/man1/rustmap.1.gz");
    let page = ok(
        Command::new("man").arg("-l").arg(&man).env("MANWIDTH", "100").env("MAN_KEEP_FORMATTING", "").output().unwrap(),
        "man -l",
    );
    for section in ["NAME", "SYNOPSIS", "RAW SCANS WITHOUT ROOT", "CONFIGURATION FILES", "EXIT STATUS"] {
        assert!(page.lines().any(|l| l.trim() == section), "{section} missing from the man page");
    }
    assert!(page.contains("--top-ports") && page.contains("--unprivileged"), "options rendered");

    // Each shell loads its script and then knows rustmap's options.
    let bash = root.join("usr/share/bash-completion/completions/rustmap");
    ok(Command::new("bash").arg("-n").arg(&bash).output().unwrap(), "bash -n");
    let b = ok(
        Command::new("bash")
            .arg("-c")
            .arg(format!("source '{}' && complete -p rustmap", bash.display()))
            .output()
            .unwrap(),
        "bash source",
    );
    assert!(b.contains("rustmap"), "{b}");
    let zsh = root.join("usr/share/zsh/vendor-completions/_rustmap");
    ok(Command::new("zsh").arg("-n").arg(&zsh).output().unwrap(), "zsh -n");
    let z = ok(
        Command::new("zsh")
            .args(["-f", "-c"])
            .arg(format!(
                "fpath=('{}' $fpath); autoload -Uz compinit && compinit -u -d '{}/zcompdump' && print -r -- $_comps[rustmap]",
                zsh.parent().unwrap().display(),
                work.path().display()
            ))
            .output()
            .unwrap(),
        "zsh compinit",
    );
    assert_eq!(z.trim(), "_rustmap", "zsh maps rustmap to _rustmap");
    let fish = root.join("usr/share/fish/vendor_completions.d/rustmap.fish");
    ok(Command::new("fish").arg("-n").arg(&fish).output().unwrap(), "fish -n");
    let f = ok(
        Command::new("fish")
            .args(["--no-config", "-c"])
            .arg(format!("source '{}'; complete -C 'rustmap --unpriv'", fish.display()))
            .env("HOME", work.path())
            .output()
            .unwrap(),
        "fish source",
    );
    assert!(f.contains("--unprivileged"), "fish completes --unpriv: {f}");

    ok(dpkg(&root, &["-P", "rustmap"]), "dpkg -P");
    assert_eq!(left_over(&root), Vec::<PathBuf>::new(), "purge leaves nothing behind");
}
