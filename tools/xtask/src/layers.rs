//! The kernel's layering rule, checked by `cargo xtask lint`: a module of
//! `kernel/src` (a folder, or a top-level file) may use only modules of a
//! lower layer (or itself), and nothing outside `kernel/src/arch` names the
//! `x86_64` crate (`kernel/` and `tests/` alike: code above arch uses arch's
//! interface).

use std::path::{Path, PathBuf};

use crate::error::Error;

/// The layers, bottom up: a module may import from modules of a strictly
/// lower rank (modules of one rank are independent of each other).
const LAYERS: &[(&str, u8)] = &[
    ("mem", 0),
    ("measure", 0),
    ("arch", 1),
    ("time", 2),
    ("console", 3),
    ("fatal", 4),
    ("reactor", 5),
    ("ipc", 6),
    ("drivers", 6),
    ("process", 7),
    ("storage", 7),
    ("net", 7),
    ("syscall", 8),
    ("shell", 9),
    ("boot", 10),
];

/// Files that compose the layers rather than being one (the crate root
/// and the binary).
const ROOTS: &[&str] = &["lib.rs", "main.rs"];

fn rank(layer: &str) -> Option<u8> {
    LAYERS
        .iter()
        .find(|(name, _)| *name == layer)
        .map(|&(_, r)| r)
}

/// One broken rule.
#[derive(Debug, PartialEq, Eq)]
pub struct Violation {
    pub file: PathBuf,
    pub line: usize,
    pub what: String,
}

/// The `crate::NAME` paths a line of Rust names (comments skipped).
fn crate_paths(line: &str) -> Vec<&str> {
    let code = line.split("//").next().unwrap_or("");
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        let after = &rest[at + "crate::".len()..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        // `$crate::` (in a macro) and `percore_crate::` are not this crate's paths.
        if !matches!(before, Some(c) if c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            found.push(&after[..name_len]);
        }
        rest = &after[name_len..];
    }
    found
}

/// Whether a line of Rust names the `x86_64` crate (`x86_64::…`) or the
/// kernel's private `arch::x86_64` module (comments skipped; `core::arch::`
/// intrinsics are not the crate).
fn names_x86_64_crate(line: &str) -> bool {
    let code = line.split("//").next().unwrap_or("");
    code.match_indices("x86_64::").any(|(at, _)| {
        let prefix = &code[..at];
        match prefix.chars().next_back() {
            Some(c) if c.is_ascii_alphanumeric() || c == '_' => false,
            Some(':') => {
                prefix.ends_with("arch::")
                    && !prefix.ends_with("core::arch::")
                    && !prefix.ends_with("std::arch::")
            }
            _ => true,
        }
    })
}

/// Checks the layering of one file of layer `layer` (`None`: a root file).
fn check_file(layer: Option<&str>, file: &Path, text: &str, out: &mut Vec<Violation>) {
    for (n, line) in text.lines().enumerate() {
        if let Some(layer) = layer {
            let own = rank(layer);
            for target in crate_paths(line) {
                if target == layer || rank(target).is_none() {
                    continue;
                }
                if own.is_none_or(|own| rank(target).is_some_and(|t| t >= own)) {
                    out.push(Violation {
                        file: file.to_path_buf(),
                        line: n + 1,
                        what: format!(
                            "layer `{layer}` uses `crate::{target}`, which is not below it"
                        ),
                    });
                }
            }
        }
        if layer != Some("arch") && names_x86_64_crate(line) {
            out.push(Violation {
                file: file.to_path_buf(),
                line: n + 1,
                what: String::from("names the `x86_64` crate outside `arch`"),
            });
        }
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// Checks `kernel/src` and `tests/src` under `root`.
pub fn check(root: &Path) -> Result<Vec<Violation>, Error> {
    let mut violations = Vec::new();
    let kernel = root.join("kernel/src");
    let mut files = Vec::new();
    rust_files(&kernel, &mut files)?;
    for file in &files {
        let relative = file.strip_prefix(&kernel).unwrap_or(file);
        let top = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or("");
        let layer = if ROOTS.contains(&top) {
            None
        } else {
            let name = top.trim_end_matches(".rs");
            if rank(name).is_none() {
                violations.push(Violation {
                    file: file.clone(),
                    line: 0,
                    what: format!(
                        "module `{name}` has no layer: add it to LAYERS in {}",
                        file!()
                    ),
                });
                continue;
            }
            Some(name)
        };
        check_file(
            layer,
            file,
            &std::fs::read_to_string(file)?,
            &mut violations,
        );
    }
    let mut tests = Vec::new();
    rust_files(&root.join("tests/src"), &mut tests)?;
    for file in &tests {
        // The test kernel sits above every layer: only the crate rule
        // applies (`None`: no layer of its own).
        check_file(None, file, &std::fs::read_to_string(file)?, &mut violations);
    }
    Ok(violations)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn violations(layer: &str, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        check_file(Some(layer), Path::new("f.rs"), text, &mut out);
        out.into_iter().map(|v| v.what).collect()
    }

    #[test]
    fn downward_imports_pass() {
        assert!(violations("reactor", "use crate::arch::{cpu, CoreId};").is_empty());
        assert!(violations("shell", "use crate::ipc::probe; crate::println!();").is_empty());
        assert!(violations("console", "$crate::console::write_fmt(x)").is_empty());
        assert!(violations("reactor", "use super::x86_64_like;").is_empty());
    }

    #[test]
    fn upward_and_sideways_imports_fail() {
        assert_eq!(violations("arch", "crate::fatal::stop(x)").len(), 1);
        assert_eq!(violations("reactor", "use crate::ipc::port;").len(), 1);
        assert_eq!(violations("ipc", "use crate::drivers::uart;").len(), 1);
        assert_eq!(
            violations("console", "use crate::reactor::readiness; // x").len(),
            1
        );
    }

    #[test]
    fn the_x86_64_crate_only_in_arch() {
        assert_eq!(
            violations("reactor", "x86_64::instructions::hlt();").len(),
            1
        );
        assert_eq!(violations("reactor", "use x86_64::VirtAddr;").len(), 1);
        assert!(violations("reactor", "// x86_64::instructions::hlt();").is_empty());
        assert!(violations("arch", "use x86_64::VirtAddr;").is_empty());
        assert_eq!(
            violations("shell", "use crate::arch::x86_64::lapic;").len(),
            1
        );
    }

    #[test]
    fn the_kernel_keeps_its_layers() {
        let root = crate::build::workspace_root();
        let found = check(&root).expect("readable tree");
        assert!(found.is_empty(), "{found:#?}");
    }
}
