//! `rustmap --generate man|bash|zsh|fish`: the man page and the shell completion scripts, made
//! from the same clap definitions as `--help` ([`crate::flags::command`]), so they cannot drift
//! from it. Also `-V`'s text: version, features, built-in data versions, capabilities. Packagers run it once per release (`packaging/build-deb.sh`); it is hidden from
//! `--help` because users never need it.

use std::io::Write;
use std::process::ExitCode;

/// `-V` and `--generate`, which print and exit before any configuration is read (so a broken
/// config file never hides the version).
pub fn early_exit(f: &crate::flags::Flags) -> Option<ExitCode> {
    if f.version {
        // `rustmap -V | head -1` closes the pipe early: that is no failure, and no panic.
        use std::io::Write;
        let _ = writeln!(std::io::stdout().lock(), "{}", long_version());
        return Some(ExitCode::SUCCESS);
    }
    let what = f.generate.as_deref()?;
    Some(match generate(what, &mut std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rustmap: --generate {what}: {e}");
            ExitCode::from(1)
        }
    })
}

/// Cargo features compiled into this binary (`-V` lists them).
pub const FEATURES: &[&str] = &[
    #[cfg(feature = "tui")]
    "tui",
];

/// The text of `-V`: the version, then the features and the built-in data's versions.
pub fn long_version() -> String {
    let mut v = format!("rustmap {}\nfeatures: ", env!("CARGO_PKG_VERSION"));
    v.push_str(if FEATURES.is_empty() { "(none)" } else { "" });
    v.push_str(&FEATURES.join(", "));
    for (name, version) in rustmap::data_versions() {
        v.push_str(&format!("\n{name}: {version}"));
    }
    // What this process may do, so that `rustmap -V` confirms a setcap (docs/install.md).
    let caps = rustmap::privilege::capabilities();
    let held: Vec<&str> = [(caps.net_raw, "cap_net_raw"), (caps.net_admin, "cap_net_admin")]
        .into_iter()
        .filter_map(|(has, name)| has.then_some(name))
        .collect();
    v.push_str(&format!(
        "\ncapabilities: {} (raw scans: {})",
        if held.is_empty() { "none".to_string() } else { held.join(", ") },
        if caps.net_raw { "yes" } else { "no, connect scans only" }
    ));
    v
}

/// Write `what` (`man`, `bash`, `zsh` or `fish`) to `out`.
pub fn generate(what: &str, out: &mut dyn Write) -> std::io::Result<()> {
    let mut cmd = crate::flags::command();
    let shell = match what {
        "man" => return man(cmd, out),
        "bash" => clap_complete::Shell::Bash,
        "zsh" => clap_complete::Shell::Zsh,
        "fish" => clap_complete::Shell::Fish,
        other => {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("cannot generate {other:?}")))
        }
    };
    clap_complete::generate(shell, &mut cmd, "rustmap", out);
    Ok(())
}

/// The man page: clap's sections, with the ones a man page reader expects and clap cannot know
/// (files, environment, privileges, exit status) before VERSION.
fn man(cmd: clap::Command, out: &mut dyn Write) -> std::io::Result<()> {
    // clap_mangen would title the after-help text "EXTRA": it goes under NOTES instead.
    let notes = cmd.get_after_help().map(|h| h.to_string()).unwrap_or_default();
    let page = clap_mangen::Man::new(cmd).manual("RustMap Manual").source(format!("RustMap {}", rustmap::VERSION));
    page.render_title(out)?;
    page.render_name_section(out)?;
    page.render_synopsis_section(out)?;
    page.render_description_section(out)?;
    page.render_options_section(out)?;
    writeln!(out, ".SH NOTES")?;
    for line in notes.lines() {
        writeln!(out, "{}\n.br", roff_text(line))?;
    }
    out.write_all(EXTRA_SECTIONS.as_bytes())?;
    page.render_version_section(out)
}

/// A line of plain text as roff: backslashes and hyphens escaped, no line read as a request.
fn roff_text(line: &str) -> String {
    let escaped = line.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// Hand-written roff: what the flags' help cannot say. Kept short; docs/ has the details.
const EXTRA_SECTIONS: &str = r#".SH RAW SCANS WITHOUT ROOT
Raw scans (\fB\-sS\fR, \fB\-sU\fR, \fB\-sA\fR, ...) and raw host discovery need the CAP_NET_RAW
capability, not root itself. RustMap reads its effective capabilities: with CAP_NET_RAW the default
scan is a SYN scan, without it a connect scan (\fB\-sT\fR). To let every user of this machine run raw
scans without sudo, give the binary the capabilities once:
.PP
.RS
sudo setcap cap_net_raw,cap_net_admin+eip /usr/bin/rustmap
.RE
.PP
and take them away with \fBsudo setcap \-r /usr/bin/rustmap\fR. Anyone who can run the binary can
then send raw packets: on a shared machine, restrict who may execute it (for instance with a group
and mode 0750). \fB\-\-privileged\fR and \fB\-\-unprivileged\fR override the detection, as in nmap.
.SH FILES
.TP
\fI/etc/rustmap/config.toml\fR
System\-wide defaults (see CONFIGURATION FILES).
.TP
\fI~/.rustmap/config.toml\fR
The user's defaults, over the system's.
.TP
\fI~/.rustmap/profiles/NAME.toml\fR
Profiles saved with \fB\-\-save\-profile\fR.
.TP
\fI~/.rustmap/rustmap.db\fR
The scan history (SQLite), unless \fB\-\-db\fR, \fB\-\-no\-db\fR or the configuration file's
[history] db says otherwise.
.SH CONFIGURATION FILES
TOML files with a [scan] table (any setting of a scan profile, e.g. [scan.timing] template = 4)
and a [history] table (db = PATH). Precedence, lowest first: built\-in defaults, the system file,
the user file, the file named by \fBRUSTMAP_CONFIG\fR, \fB\-\-profile\fR, the command line's flags.
An error names the file, line and column. See /usr/share/doc/rustmap/config.md.
.SH ENVIRONMENT
.TP
\fBRUSTMAP_CONFIG\fR
A configuration file read after the system and user files; it must exist.
.TP
\fBHOME\fR
Where ~/.rustmap is.
.SH EXIT STATUS
0: the scan completed (or was interrupted with Ctrl\-C, its results written). 1: a runtime
failure, or \fB\-\-diff\fR found differences. 2: bad usage (a bad value, an unsupported flag, a
malformed configuration file); nothing was scanned.
.SH SEE ALSO
\fBnmap\fR(1), \fBsetcap\fR(8), \fBcapabilities\fR(7)
"#;

#[cfg(test)]
mod tests {
    use super::generate;

    fn text(what: &str) -> String {
        let mut out = Vec::new();
        generate(what, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn man_page_and_completions_carry_every_visible_flag() {
        let man = text("man");
        assert!(man.starts_with(".ie") || man.contains(".TH rustmap 1"), "{}", &man[..200]);
        assert!(man.contains(".SH RAW SCANS WITHOUT ROOT") && man.contains(".SH VERSION"));
        assert!(man.contains(".SH NOTES\nSpellings: nmap's (\\-sT"), "the after-help text, escaped");
        for flag in ["top\\-ports", "unprivileged", "profile", "oX"] {
            assert!(man.contains(flag), "{flag} not in the man page");
        }
        assert!(!man.contains("generate"), "hidden flags stay out of the man page");
        for shell in ["bash", "zsh", "fish"] {
            let s = text(shell);
            for flag in ["top-ports", "unprivileged", "privileged", "oX"] {
                assert!(s.contains(flag), "{flag} not in the {shell} completions");
            }
        }
        assert!(generate("tcsh", &mut Vec::new()).is_err());
    }
}
