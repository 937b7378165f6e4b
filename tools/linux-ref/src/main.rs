//! `linux-ref`: the reference programs of percore's Linux guest. Each figure
//! (subcommand) measures on Linux what one of percore's in-kernel benchmarks
//! measures and prints `bench NAME VALUE UNIT` with percore's name and unit;
//! `cargo xtask bench compare` boots both on the same QEMU machine. One is
//! not a figure but a server: `serve` (`serve.rs`) runs the echo and HTTP
//! services that the host-side network tests and benchmark drive, until the
//! machine is stopped.
//!
//! ```text
//! linux-ref [--exit-qemu] FIGURE[,FIGURE...]...   FIGURE: all, or one of `linux-ref --help`
//! ```
//!
//! With `--exit-qemu` (as the guest's init runs it) it ends the machine
//! through QEMU's isa-debug-exit device: success if every figure ran.

mod disk;
mod figures;
mod ring;
mod serve;
mod sys;
mod user;

use std::process::ExitCode;

fn usage() -> String {
    let names: Vec<&str> = figures::FIGURES.iter().map(|(n, _)| *n).collect();
    format!(
        "usage: linux-ref [--exit-qemu] FIGURE...\nfigures: all {}",
        names.join(" ")
    )
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let exit_qemu = args.iter().any(|a| a == "--exit-qemu");
    args.retain(|a| a != "--exit-qemu");
    if args.is_empty() || args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{}", usage());
        return ExitCode::SUCCESS;
    }
    let ok = match run(&args) {
        Ok(()) => true,
        Err(error) => {
            println!("linux-ref: error: {error}");
            false
        }
    };
    if exit_qemu {
        // 0x10 and 0x11: QEMU exits 33 or 35, as for percore's test kernel.
        if let Err(error) = sys::exit_qemu(if ok { 0x10 } else { 0x11 }) {
            println!("linux-ref: error: {error}");
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs the figures named in `args` (each a name or a comma-separated list).
fn run(args: &[String]) -> Result<(), String> {
    for arg in args.iter().flat_map(|a| a.split(',')) {
        if arg == "all" {
            for (_, figure) in figures::FIGURES
                .iter()
                .filter(|(n, _)| !figures::NOT_IN_ALL.contains(n))
            {
                figure()?;
            }
            continue;
        }
        let (_, figure) = figures::FIGURES
            .iter()
            .find(|(name, _)| *name == arg)
            .ok_or_else(|| format!("unknown figure `{arg}`\n{}", usage()))?;
        figure()?;
    }
    Ok(())
}
