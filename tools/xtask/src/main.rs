//! `cargo xtask`: build, boot, test, package and debug percore.
//!
//! ```text
//! cargo xtask run   [--uefi] [--smp N] [--mem M] [--release] [--kvm] [--x2apic | --cpu MODEL] [--sched LIST] [--disk FILE] [--net [tap] [--hostfwd PORTS]] [-- QEMU ARGS]
//! cargo xtask test  [--host | --qemu] [--linux-net] [FILTER]
//! cargo xtask image [--out DIR] [--debug]
//! cargo xtask gdb   [--uefi] [--smp N] [--x2apic | --cpu MODEL]
//! cargo xtask bench [smp | reactor | user | cases | disk | net | compare [reactor | disk | user | net | all]] [--smp N] [--runs R] [--backend tap|slirp] [-- QEMU ARGS]
//! cargo xtask lint
//! cargo xtask disklog FILE [--offset BYTES] [--from SEQ] [--payload] [--check]
//! cargo xtask disklog --create FILE [--size 64M] [--block-size 512] [--max-payload BYTES] [--offset BYTES]
//! cargo xtask setup
//! ```

mod apt;
mod args;
mod build;
mod compare;
mod cpio;
mod disk;
mod disk_bench;
mod disklog;
mod durable;
mod error;
mod layers;
mod linux;
mod net;
mod net_bench;
mod net_host;
mod net_tap;
mod netload;
mod netload_tests;
mod netmq;
mod netns;
mod qemu;
mod qmp;
mod screen;
mod test;
mod tools;
mod udlog;
mod user_net;

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
           --disk FILE  attach FILE as a virtio-blk disk (raw; created with 64 MiB of
                        zeros if missing); the shell's `disk` command shows it
           --net        a virtio-net device on QEMU's user network with restrict=on
                        (no frame leaves QEMU; guest 10.0.2.15 by DHCP, gateway
                        10.0.2.2); the guest starts its echo and http samples and
                        the host's 127.0.0.1:8080 reaches http (80), 127.0.0.1:7007
                        echo (7, TCP and UDP); the curl and nc commands are printed;
                        the shell's `net` command shows the device and the stack
           --hostfwd PORTS  with --net: instead, forward only these TCP ports
                        (comma-separated) from 127.0.0.1 to the same guest ports
           --net tap    instead: a multi-queue tap (one queue pair per core, RSS)
                        in a network namespace of its own, percore-<pid>-<n>
                        (host side 10.9.0.1/24, guest 10.9.0.2; needs root),
                        deleted when QEMU ends; the samples start at boot
           --sched LIST each core's scheduling discipline, e.g. rr,fair,edf (cores past
                        the list take its last entry; default rr), passed by fw_cfg
           --kvm        use KVM (default: only when the CPU shows vmx/svm and /dev/kvm works)
           --x2apic     an x2APIC machine (`-cpu max,+x2apic` under TCG, needs QEMU 8.1
                        or later; `-cpu host` under KVM)
           --cpu MODEL  QEMU CPU model (default: max under TCG, host under KVM)
           -- ARGS      extra arguments for QEMU
  test   run host unit tests, loom models, and every in-QEMU integration test
           --host       host tests only
           --qemu       in-QEMU tests only
           --linux-net  the network load tests (qemu/netload-*) against the Linux
                        reference guest instead of percore (checks the harness)
           FILTER       only in-QEMU tests whose name contains FILTER
  image  write BIOS and UEFI disk images (release kernel) and show how to put
         one on a USB stick
           --out DIR    where to write them (default target/images)
           --debug      use the debug kernel
  gdb    boot QEMU paused with a gdb stub and print the gdb command that attaches
           --uefi, --smp N, --x2apic, --cpu MODEL as for run
  bench  run the host benchmarks of every library crate;
         `bench smp [--smp N]` and `bench reactor [--smp N]` run the in-kernel ones;
         `bench user [--smp N]` ring-3 programs: null syscall, the same operation
         through the submission ring at batch 1, 8, 64, a message round trip
         between two processes on two cores, spawn to first instruction, and
         an idle process's memory in KiB;
         `bench disk [--smp N[,N...]] [--runs R] [--row-ms MS] [--cache MODE]`
         4 KiB random reads and writes on a virtio-blk disk (a 256 MiB image under
         target/, cache=writeback by default), QD1 and QD32, one core and every
         core: IOPS and latency p50/p99, once per core count (`--smp 1,2,4`);
         `bench net [--smp N[,N...]] [--guest percore|linux] [--runs R] [--seconds S]
         [--backend tap|slirp]` the network benchmark from the host against the
         guest's echo and http servers, on a tap in a namespace of its own (one queue
         pair per core; as root) or else QEMU's user network: wrk requests/s (64
         keep-alive connections; one request per connection), echo round trip
         p50/p99, 64 MiB bulk Mbit/s, heap before/after 1000 idle connections, at
         -smp 1, 2 and 4, 3 runs each (medians, min..max) by default;
         `bench compare [reactor | disk | user | net | all] [--smp N[,N...]] [--runs R]
         [--row-ms MS] [--cache MODE] [--seconds S] [--backend tap|slirp]` (several
         core counts for net only; net defaults to 1,2,4) boots percore's reactor, disk,
         user or network benchmark (default: reactor, disk and net) and the Linux
         reference guest (Debian's cloud kernel, busybox, tools/linux-ref) on the
         same QEMU machine, R times each in turn (default 3), and prints their
         medians side by side;
         `bench cases [--smp N]` the four workload cases (medians of 3 boots);
         `-- QEMU ARGS` after smp, reactor, cases or disk are added to QEMU's
         command line as they are (a monitor, tracing, ...)
  lint   cargo fmt --check, the kernel's layering rule (a module of kernel/src
         uses only layers below it; only arch names the x86_64 crate), and clippy
         -D warnings over every crate (the bare-metal crates are checked in their
         own cargo run: cargo unifies dependency features across targets within
         one run, which would give the kernel host-only `std` features; the
         kernel is also checked as built for the host, on the simulated arch)
  disklog read the disk log in an image file on the host (percore-disklog's recovery
         and reader, the kernel's own code): one line per record (seq, length, CRC-32C,
         first bytes), per corrupt range, and a summary (records, next sequence number,
         corrupt records, torn tail bytes)
           FILE             the image
           --offset BYTES   where the log's region starts in FILE (default 0)
           --from SEQ       records from this sequence number on
           --payload        the whole payload in hex instead of its first 16 bytes
           --check          fail if records in the middle are corrupt
           --create FILE    make a new, empty log instead (--size, default 64M;
                            --block-size, default 512; --max-payload; --offset)
  setup  install QEMU 8.1 or later (on Debian 12 from bookworm-backports) and OVMF
         when missing or too old (as root or with password-less sudo), and say
         which QEMU is used and whether KVM is available
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
        Some("disklog") => disklog::run(&mut args),
        Some("setup") => tools::setup(&mut args),
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
