//! Debian's package tools: installing packages as root (or through
//! password-less `sudo`), and enabling Debian 12's `bookworm-backports` suite,
//! where QEMU 8.1 and later come from.

use std::path::Path;
use std::process::Command;

use crate::error::{self, Error};

/// The suite that carries a QEMU new enough for x2APIC under TCG on Debian 12.
pub const BACKPORTS: &str = "bookworm-backports";
/// Where xtask writes the backports entry when the machine has none.
const BACKPORTS_FILE: &str = "/etc/apt/sources.list.d/bookworm-backports.sources";
/// Debian's archive and keyring, used when no existing entry names them.
const DEFAULT_URI: &str = "http://deb.debian.org/debian";
const DEFAULT_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn passwordless_sudo() -> bool {
    on_path("sudo")
        && Command::new("sudo")
            .args(["-n", "true"])
            .status()
            .is_ok_and(|s| s.success())
}

/// How packages can be installed here, if at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Installer {
    /// Running as root.
    Root,
    /// Through `sudo` without a password.
    Sudo,
}

impl Installer {
    /// The installer available on this machine: apt-get, run as root or
    /// through password-less sudo.
    pub fn find() -> Option<Installer> {
        if !on_path("apt-get") {
            None
        } else if is_root() {
            Some(Installer::Root)
        } else if passwordless_sudo() {
            Some(Installer::Sudo)
        } else {
            None
        }
    }

    /// `program` with root rights.
    fn command(self, program: &str) -> Command {
        match self {
            Installer::Root => Command::new(program),
            Installer::Sudo => {
                let mut command = Command::new("sudo");
                command.arg(program);
                command
            }
        }
    }

    fn apt_get(self, args: &[&str]) -> Command {
        let mut command = self.command("apt-get");
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        command
    }

    pub fn update(self) -> Result<(), Error> {
        error::run("apt-get update", &mut self.apt_get(&["update", "-q"]))
    }

    /// `apt-get install` of `packages`, from `suite` when given (`-t SUITE`).
    pub fn install(self, packages: &[&str], suite: Option<&str>) -> Result<(), Error> {
        let mut args = vec!["install", "-y", "-q"];
        if let Some(suite) = suite {
            args.extend(["-t", suite]);
        }
        args.extend(packages);
        error::run(
            &format!("installing {}", packages.join(" ")),
            &mut self.apt_get(&args),
        )
    }

    /// Adds a `bookworm-backports` sources entry unless one exists already.
    pub fn enable_backports(self) -> Result<(), Error> {
        let sources = Sources::read();
        if sources.has_suite(BACKPORTS) {
            return Ok(());
        }
        let entry = sources.backports_entry();
        eprintln!("xtask: enabling {BACKPORTS} in {BACKPORTS_FILE}");
        let mut tee = self.command("tee");
        tee.arg(BACKPORTS_FILE)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null());
        let shown = error::display(&tee);
        let mut child = tee.spawn().map_err(|error| Error::Spawn {
            command: shown.clone(),
            error,
        })?;
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("stdin was piped");
            stdin.write_all(entry.as_bytes())?;
        }
        let status = child.wait()?;
        if !status.success() {
            return Err(Error::CommandFailed {
                what: format!("writing {BACKPORTS_FILE}"),
                command: shown,
                status: status.to_string(),
            });
        }
        Ok(())
    }
}

/// The Debian packages the host-side network tests and benchmark drive
/// (`netload.rs`; `ip` makes the tap tests' network namespaces), each
/// with the program that shows it is installed.
pub const NET_TOOLS: [(&str, &str); 4] = [
    ("wrk", "wrk"),
    ("curl", "curl"),
    ("nc.openbsd", "netcat-openbsd"),
    ("ip", "iproute2"),
];

/// Installs the [`NET_TOOLS`] packages whose program is missing (as root
/// or through sudo); without a way to install, says how in a warning (only
/// the network tests need them).
pub fn ensure_net_tools() -> Result<(), Error> {
    let missing: Vec<&str> = NET_TOOLS
        .iter()
        .filter(|(program, _)| !on_path(program))
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    match Installer::find() {
        Some(installer) => {
            eprintln!("xtask: installing {} with apt-get", missing.join(" "));
            installer.update()?;
            installer.install(&missing, None)
        }
        None => {
            eprintln!(
                "xtask: warning: the network tests need {0}; install with: sudo apt-get install -y {0}",
                missing.join(" ")
            );
            Ok(())
        }
    }
}

/// `/etc/os-release`: whether this is Debian 12 (bookworm).
pub fn is_debian_bookworm() -> bool {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.trim_matches('"').to_string())
    };
    value("ID").as_deref() == Some("debian")
        && value("VERSION_CODENAME").as_deref() == Some("bookworm")
}

/// The shell commands that enable `bookworm-backports` (as this machine's
/// `bookworm` entry would have it) and install `package` from it, on one line.
pub fn backports_commands(package: &str) -> String {
    let sources = Sources::read();
    let enable = if sources.has_suite(BACKPORTS) {
        String::new()
    } else {
        format!(
            "printf '{}' | sudo tee {BACKPORTS_FILE} && ",
            sources.backports_entry().replace('\n', "\\n")
        )
    };
    format!("{enable}sudo apt-get update && sudo apt-get install -y -t {BACKPORTS} {package}")
}

/// One apt source: its archive URI, suites, components and keyring.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Source {
    uri: String,
    suites: Vec<String>,
    components: Vec<String>,
    signed_by: Option<String>,
}

/// The machine's apt sources, from `/etc/apt/sources.list` (one-line
/// format) and `/etc/apt/sources.list.d/*.{list,sources}`.
struct Sources(Vec<Source>);

impl Sources {
    fn read() -> Sources {
        let mut sources = Vec::new();
        let mut read = |path: &Path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            match path.extension().and_then(|e| e.to_str()) {
                Some("sources") => sources.extend(parse_deb822(&text)),
                Some("list") => sources.extend(parse_one_line(&text)),
                _ => {}
            }
        };
        read(Path::new("/etc/apt/sources.list"));
        if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
            let mut paths: Vec<_> = dir.filter_map(|e| Some(e.ok()?.path())).collect();
            paths.sort();
            paths.iter().for_each(|p| read(p));
        }
        Sources(sources)
    }

    fn has_suite(&self, suite: &str) -> bool {
        self.0.iter().any(|s| s.suites.iter().any(|x| x == suite))
    }

    /// A deb822 entry for `bookworm-backports` with the archive, components
    /// and keyring of the machine's `bookworm` entry.
    fn backports_entry(&self) -> String {
        let base = self
            .0
            .iter()
            .find(|s| s.suites.iter().any(|x| x == "bookworm"));
        backports_entry(base)
    }
}

fn backports_entry(base: Option<&Source>) -> String {
    let uri = base.map_or(DEFAULT_URI, |s| s.uri.as_str());
    let components = base
        .filter(|s| !s.components.is_empty())
        .map_or_else(|| "main".to_string(), |s| s.components.join(" "));
    let keyring = base
        .and_then(|s| s.signed_by.as_deref())
        .unwrap_or(DEFAULT_KEYRING);
    format!(
        "Types: deb\nURIs: {uri}\nSuites: {BACKPORTS}\nComponents: {components}\nSigned-By: {keyring}\n"
    )
}

/// The `deb` stanzas of a deb822 `.sources` file.
fn parse_deb822(text: &str) -> Vec<Source> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza.lines().find_map(|l| {
                let (key, value) = l.split_once(':')?;
                key.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_string())
            })
        };
        let words = |name: &str| -> Vec<String> {
            field(name)
                .unwrap_or_default()
                .split_whitespace()
                .map(String::from)
                .collect()
        };
        if !words("Types").iter().any(|t| t == "deb") {
            continue;
        }
        if field("Enabled").is_some_and(|v| v.eq_ignore_ascii_case("no")) {
            continue;
        }
        let Some(uri) = words("URIs").into_iter().next() else {
            continue;
        };
        out.push(Source {
            uri,
            suites: words("Suites"),
            components: words("Components"),
            signed_by: field("Signed-By").filter(|v| !v.is_empty()),
        });
    }
    out
}

/// The `deb` lines of a one-line-format `.list` file:
/// `deb [signed-by=KEYRING ...] URI SUITE COMPONENT...`.
fn parse_one_line(text: &str) -> Vec<Source> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("deb ") else {
            continue;
        };
        let mut signed_by = None;
        let rest = match rest.trim_start().strip_prefix('[') {
            Some(options) => {
                let Some((options, rest)) = options.split_once(']') else {
                    continue;
                };
                signed_by = options
                    .split_whitespace()
                    .find_map(|o| o.strip_prefix("signed-by="))
                    .map(String::from);
                rest
            }
            None => rest,
        };
        let mut words = rest.split_whitespace();
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        out.push(Source {
            uri: uri.to_string(),
            suites: vec![suite.to_string()],
            components: words.map(String::from).collect(),
            signed_by,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backports_entry_copies_the_bookworm_entry() {
        let text = "Types: deb\n# a snapshot\nURIs: http://mirror.example/debian\n\
                    Suites: bookworm bookworm-updates\nComponents: main contrib\n\
                    Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
                    Types: deb\nURIs: http://deb.debian.org/debian-security\n\
                    Suites: bookworm-security\nComponents: main\n";
        let sources = Sources(parse_deb822(text));
        assert!(!sources.has_suite(BACKPORTS));
        assert_eq!(
            sources.backports_entry(),
            "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm-backports\n\
             Components: main contrib\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        );
    }

    #[test]
    fn one_line_entries_with_options() {
        let text = "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://a/debian bookworm main\n\
                    deb http://a/debian bookworm-backports main\n";
        let sources = Sources(parse_one_line(text));
        assert!(sources.has_suite(BACKPORTS));
        assert_eq!(sources.0[0].signed_by.as_deref(), Some("/k.gpg"));
        assert_eq!(sources.0[0].components, ["main"]);
    }

    #[test]
    fn disabled_and_source_only_stanzas_are_ignored() {
        let text = "Types: deb-src\nURIs: http://a/debian\nSuites: bookworm\n\n\
                    Types: deb\nEnabled: no\nURIs: http://b/debian\nSuites: bookworm\n";
        assert!(parse_deb822(text).is_empty());
        assert_eq!(
            backports_entry(None),
            format!(
                "Types: deb\nURIs: {DEFAULT_URI}\nSuites: {BACKPORTS}\nComponents: main\n\
                 Signed-By: {DEFAULT_KEYRING}\n"
            )
        );
    }
}
