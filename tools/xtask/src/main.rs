//! `cargo xtask`: build, boot, test, package and debug percore.
//!
//! ```text
//! cargo xtask run   [--uefi] [--smp N] [--mem M] [--release] [--kvm] [--sched LIST] [-- QEMU ARGS]
//! cargo xtask test  [--host | --qemu] [FILTER]
//! cargo xtask image [--out DIR] [--debug]
//! cargo xtask gdb   [--uefi] [--smp N]
//! cargo xtask bench
//! cargo xtask lint
//! ```

mod args;
mod build;
mod error;
mod layers;
mod qemu;
mod test;
mod tools;

use std::process::ExitCode;

use args::Args;
use error::Error;

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  run    build the kernel and boot it in QEMU (serial console on this terminal;
         Ctrl-A X quits QEMU)
           --uefi       boot through UEFI (OVMF) instead of BIOS
           --smp N      number of cores (default 4)
           --mem M      memory in MiB (default 512)
           --release    optimised kernel
           --sched LIST each core's scheduling discipline, e.g. rr,fair,edf (cores past
                        the list take its last entry; default rr), passed by fw_cfg
           --kvm        use KVM (default: only when the CPU shows vmx/svm and /dev/kvm works)
           -- ARGS      extra arguments for QEMU
  test   run host unit tests, loom models, and every in-QEMU integration test
           --host       host tests only
           --qemu       in-QEMU tests only
           FILTER       only in-QEMU tests whose name contains FILTER
  image  write BIOS and UEFI disk images (release kernel) and show how to put
         one on a USB stick
           --out DIR    where to write them (default target/images)
           --debug      use the debug kernel
  gdb    boot QEMU paused with a gdb stub and print the gdb command that attaches
           --uefi, --smp N as for run
  bench  run the host benchmarks of every library crate;
         `bench smp [--smp N]` and `bench reactor [--smp N]` run the in-kernel ones;
         `bench cases [--smp N]` the four workload cases (medians of 3 boots)
  lint   cargo fmt --check and clippy -D warnings over every crate (the bare-metal
         crates are checked in their own cargo run: cargo unifies dependency
         features across targets within one run, which would give the kernel
         host-only `std` features)
";

fn main() -> ExitCode {
    let mut args = Args::from_env();
    let command = args.next_positional();
    let result = match command.as_deref() {
        Some("run") => qemu::run(&mut args),
        Some("test") => test::run(&mut args),
        Some("image") => build::image(&mut args),
        Some("gdb") => qemu::gdb(&mut args),
        Some("bench") => build::bench(&mut args),
        Some("lint") => build::lint(&mut args),
        Some("help") | Some("--help") | Some("-h") | None => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(Error::Usage(format!("unknown command `{other}`"))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::Usage(message)) => {
            eprintln!("error: {message}\n\n{USAGE}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
