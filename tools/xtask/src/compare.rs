//! `cargo xtask bench compare [reactor | disk | user | net | all] [--smp N[,N...]] [--runs R] [--row-ms MS] [--cache MODE] [--seconds S] [--backend tap|slirp]`:
//! percore's in-kernel benchmarks and the Linux reference guest on the same
//! QEMU machine, booted in turn (percore, Linux, percore, Linux, ...), R
//! times each (default 3), then one table of medians with the ratio (above
//! 1: percore is better) and the min..max of both, and, per row both have,
//! `bench ROW OURS linux LINUX UNIT`. `--smp` is one core count (default 4)
//! for every suite but `net`, which runs at each count of the list
//! (default 1, 2 and 4: the scaling; rows are named `..._smpN`).
//!
//! Suites: `reactor` (percore's `bench_reactor` against the guest's `all`
//! figures, on a machine without devices) and `disk` (percore's
//! `bench_disk` against the guest's `disk` figure, on the same machine
//! with the same virtio-blk disk, see `disk_bench.rs`), `user`
//! (percore's `bench_user`, ring-3 programs, against the guest's
//! `null-syscall` and `user` figures: getpid, a pipe round trip between two
//! processes on two vCPUs, fork+exec to first instruction) and `net` (the
//! host-driven network figures of `net_bench.rs` against percore's and the
//! guest's `serve`, same machine, same backend: the tap one, one queue pair
//! per core, where it can be made, else the user network; `--backend`
//! picks); `all`, the default, runs all four, each in boots of its own.
//! `compare net` with its defaults (3 runs at 1, 2 and 4 cores, 5 s wrk
//! runs: 18 boots) takes about 8 minutes here under TCG.

use std::collections::BTreeMap;

use crate::args::Args;
use crate::build::{self, KernelKind};
use crate::disk_bench::{BenchDisk, DEFAULT_CACHE, DEFAULT_ROW_MS, boot_timeout};
use crate::error::Error;
use crate::linux;
use crate::net_bench;
use crate::netload::{Backend, Target};
use crate::qemu::{self, Captured, Exit, Firmware, Machine};
use crate::test::{FW_CFG_NAME, timeout};
use crate::tools;

/// Every value seen for a row, and its unit.
#[derive(Default)]
struct Rows {
    /// Row names in the order first seen.
    order: Vec<String>,
    values: BTreeMap<String, (Vec<u64>, String)>,
}

impl Rows {
    fn add(&mut self, name: &str, value: u64, unit: &str) {
        let entry = self.values.entry(name.to_string()).or_insert_with(|| {
            self.order.push(name.to_string());
            (Vec::new(), unit.to_string())
        });
        entry.0.push(value);
    }

    /// Takes every `bench NAME VALUE UNIT` line, and percore's
    /// `percore ready: ... boot_us=T` as `boot_us`.
    fn parse(&mut self, lines: &[String]) {
        for line in lines {
            let words: Vec<&str> = line.split_whitespace().collect();
            if let ["bench", name, value, unit] = words[..] {
                if let Ok(value) = value.parse() {
                    self.add(name, value, unit);
                }
            } else if let Some(boot_us) = line
                .strip_prefix("percore ready:")
                .and_then(|rest| {
                    rest.split_whitespace()
                        .find_map(|w| w.strip_prefix("boot_us="))
                })
                .and_then(|v| v.parse().ok())
            {
                self.add("boot_us", boot_us, "us");
            }
        }
    }

    /// The smallest and largest value of a row, `min..max`.
    fn range(&self, name: &str) -> String {
        let values = self.values.get(name).map(|(v, _)| &v[..]).unwrap_or(&[]);
        match (values.iter().min(), values.iter().max()) {
            (Some(min), Some(max)) => format!("{min}..{max}"),
            _ => "-".into(),
        }
    }

    fn median(&self, name: &str) -> Option<u64> {
        let (values, _) = self.values.get(name)?;
        let mut sorted = values.clone();
        sorted.sort_unstable();
        sorted.get(sorted.len() / 2).copied()
    }
}

/// How much better percore is: above 1 when it is. Units ending in `/s`
/// are higher-is-better; `ns`, `us`, `cycles` and counts lower-is-better.
fn ratio(ours: u64, linux: u64, unit: &str) -> String {
    let (better, worse) = if unit.ends_with("/s") {
        (ours, linux)
    } else {
        (linux, ours)
    };
    match (better, worse) {
        (0, 0) => "1.00".into(),
        (_, 0) => "inf".into(),
        (b, w) => format!("{:.2}", b as f64 / w as f64),
    }
}

/// Which benchmarks run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Suite {
    Reactor,
    Disk,
    User,
    Net,
    All,
}

impl Suite {
    fn parse(name: Option<&str>) -> Result<Suite, Error> {
        match name {
            None | Some("all") => Ok(Suite::All),
            Some("reactor") => Ok(Suite::Reactor),
            Some("disk") => Ok(Suite::Disk),
            Some("user") => Ok(Suite::User),
            Some("net") => Ok(Suite::Net),
            Some(other) => Err(Error::Usage(format!(
                "unknown comparison `{other}` (try `reactor`, `disk`, `user`, `net` or `all`)"
            ))),
        }
    }

    fn reactor(self) -> bool {
        matches!(self, Suite::Reactor | Suite::All)
    }

    fn disk(self) -> bool {
        matches!(self, Suite::Disk | Suite::All)
    }

    fn user(self) -> bool {
        matches!(self, Suite::User | Suite::All)
    }

    fn net(self) -> bool {
        matches!(self, Suite::Net | Suite::All)
    }
}

pub fn run(args: &mut Args) -> Result<(), Error> {
    let suite = Suite::parse(args.next_positional().as_deref())?;
    let smp_list: Option<String> = args.option("--smp")?;
    let runs: usize = args.option("--runs")?.unwrap_or(3);
    let row_ms: u64 = args.option("--row-ms")?.unwrap_or(DEFAULT_ROW_MS);
    let cache: String = args
        .option("--cache")?
        .unwrap_or_else(|| DEFAULT_CACHE.into());
    let seconds: u32 = args
        .option("--seconds")?
        .unwrap_or(net_bench::DEFAULT_SECONDS);
    let choice: Option<String> = args.option("--backend")?;
    std::mem::take(args).finish()?;
    if runs == 0 {
        return Err(Error::Usage("--runs must be at least 1".into()));
    }
    // The network figures at every count of `--smp` (default 1, 2 and 4:
    // the scaling); the other suites on one machine (default 4 cores).
    let net_smp = net_bench::core_counts(smp_list.as_deref().unwrap_or(net_bench::DEFAULT_SMP))?;
    let smp = match (smp_list.as_deref(), &net_smp[..]) {
        (None, _) => 4,
        (Some(_), [one]) => *one,
        (Some(_), _) if suite == Suite::Net => 4,
        (Some(list), _) => {
            return Err(Error::Usage(format!(
                "--smp {list}: several core counts are for `compare net` only"
            )));
        }
    };
    let backend = match suite.net() {
        true => Some(net_bench::backend(choice.as_deref())?),
        false => None,
    };
    let started = std::time::Instant::now();
    // The machine of `cargo xtask bench reactor`, for both guests.
    let mut machine = Machine::new(Firmware::Bios, smp);
    machine.kvm = tools::kvm_available();
    let ovmf = tools::ensure(machine.needs())?;
    let built = build::kernel(KernelKind::Tests, true)?;
    let guest = linux::prepare()?;
    println!("linux guest: {}", linux::describe(&guest));
    // The machine of `cargo xtask bench disk`: the same with the disk.
    let disk = match suite.disk() {
        true => Some(BenchDisk::new(&cache)?),
        false => None,
    };
    let mut disk_machine = machine.clone();
    if let Some(disk) = &disk {
        disk.attach(&mut disk_machine, row_ms);
    }

    let (mut ours, mut theirs) = (Rows::default(), Rows::default());
    let percore = |machine: &Machine, bench: &str, limit| -> Result<Captured, Error> {
        let mut percore = machine.clone();
        percore
            .fw_cfg
            .push((FW_CFG_NAME.into(), format!("run {bench}")));
        let vars = qemu::vars_copy(&ovmf, "compare")?;
        let captured =
            qemu::run_captured(percore.command(&built.images, &ovmf, &vars), limit, false);
        let _ = std::fs::remove_file(&vars);
        percore_ok(captured?, bench)
    };
    for run in 1..=runs {
        if suite.reactor() {
            println!("run {run}/{runs}: percore (bench_reactor, {smp} cores)");
            let captured = percore(&machine, "bench_reactor", timeout())?;
            ours.parse(&captured.lines);
            println!(
                "       {:.1} s; linux ({smp} vCPUs)",
                captured.elapsed.as_secs_f64()
            );
            let captured = linux::boot(&guest, &machine, "all", timeout())?;
            theirs.parse(&captured.lines);
            println!("       {:.1} s", captured.elapsed.as_secs_f64());
        }
        if suite.disk() {
            println!("run {run}/{runs}: percore (bench_disk, {smp} cores, cache={cache})");
            let captured = percore(&disk_machine, "bench_disk", boot_timeout(row_ms))?;
            ours.parse(&captured.lines);
            println!(
                "       {:.1} s; linux (disk, {smp} vCPUs)",
                captured.elapsed.as_secs_f64()
            );
            let settings = format!("linux_ref_disk_ms={row_ms}");
            let captured = linux::boot_with(
                &guest,
                &disk_machine,
                "disk",
                &settings,
                boot_timeout(row_ms),
            )?;
            theirs.parse(&captured.lines);
            println!("       {:.1} s", captured.elapsed.as_secs_f64());
        }
        if suite.user() {
            println!("run {run}/{runs}: percore (bench_user, {smp} cores)");
            let captured = percore(&machine, "bench_user", timeout())?;
            ours.parse(&captured.lines);
            println!(
                "       {:.1} s; linux (null-syscall,user, {smp} vCPUs)",
                captured.elapsed.as_secs_f64()
            );
            let captured = linux::boot(&guest, &machine, "null-syscall,user", timeout())?;
            theirs.parse(&captured.lines);
            println!("       {:.1} s", captured.elapsed.as_secs_f64());
        }
        if let Some(backend) = backend {
            for &cores in &net_smp {
                compare_net(run, runs, cores, backend, seconds, &mut ours, &mut theirs)?;
            }
        }
    }
    let net_cores = net_smp
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let what = match (suite, backend) {
        (Suite::Net, Some(backend)) => {
            format!("{net_cores} cores, network on {}", backend.name())
        }
        (_, Some(backend)) => format!(
            "{smp} cores (network: {net_cores} cores on {})",
            backend.name()
        ),
        _ => format!("{smp} cores"),
    };
    print_table(&ours, &theirs, &what, runs);
    println!(
        "(bench compare: {:.0} s in all)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One run of the network figures at `smp` cores, percore then Linux
/// (`net_bench.rs`), both on `backend`.
fn compare_net(
    run: usize,
    runs: usize,
    smp: u32,
    backend: Backend,
    seconds: u32,
    ours: &mut Rows,
    theirs: &mut Rows,
) -> Result<(), Error> {
    let machine = net_bench::machine(smp);
    let sizes = net_bench::Sizes::full(seconds);
    println!(
        "run {run}/{runs}: percore (serve echo,http, {smp} cores; {})",
        backend.describe()
    );
    for f in net_bench::figures(Target::Percore, &machine, backend, sizes)? {
        ours.add(&f.name, f.value, f.unit);
    }
    println!(
        "run {run}/{runs}: linux (linux-ref serve, {smp} vCPUs; {})",
        backend.name()
    );
    for f in net_bench::figures(Target::Linux, &machine, backend, sizes)? {
        theirs.add(&f.name, f.value, f.unit);
    }
    Ok(())
}

fn percore_ok(captured: Captured, bench: &str) -> Result<Captured, Error> {
    if captured.exit == Exit::Success {
        return Ok(captured);
    }
    Err(Error::Other(format!(
        "percore's {bench} did not finish ({:?}); its serial log:\n{}",
        captured.exit,
        captured.lines.join("\n")
    )))
}

/// One row per figure of the Linux guest (every row it has), medians.
fn print_table(ours: &Rows, theirs: &Rows, what: &str, runs: usize) {
    let mode = if tools::kvm_available() { "KVM" } else { "TCG" };
    println!("\n== percore vs Linux: q35, {what}, {mode}, medians of {runs} runs");
    println!(
        "{:<36} {:>12} {:>12} {:<7} {:>7}  min..max percore / linux",
        "row", "percore", "linux", "unit", "ratio"
    );
    let mut peer_lines = Vec::new();
    for name in &theirs.order {
        let unit = &theirs.values[name].1;
        let linux = theirs.median(name).unwrap_or(0);
        let (shown, ratio) = match ours.median(name) {
            Some(value) => {
                peer_lines.push(format!("bench {name} {value} linux {linux} {unit}"));
                (value.to_string(), ratio(value, linux, unit))
            }
            None => ("-".to_string(), "-".to_string()),
        };
        let ranges = format!("{} / {}", ours.range(name), theirs.range(name));
        println!("{name:<36} {shown:>12} {linux:>12} {unit:<7} {ratio:>7}  {ranges}");
    }
    println!("(ratio above 1: percore better; `-`: percore has no such figure yet)\n");
    for line in peer_lines {
        println!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_parse() {
        assert_eq!(Suite::parse(None).ok(), Some(Suite::All));
        assert_eq!(Suite::parse(Some("disk")).ok(), Some(Suite::Disk));
        let net = Suite::parse(Some("net")).ok();
        assert!(net.is_some_and(|s| s.net() && !s.disk() && !s.reactor()));
        assert!(Suite::All.net() && Suite::All.disk() && Suite::All.reactor());
        let reactor = Suite::parse(Some("reactor")).ok();
        assert!(reactor.is_some_and(|s| s.reactor() && !s.disk() && !s.user()));
        let user = Suite::parse(Some("user")).ok();
        assert!(user.is_some_and(|s| s.user() && !s.reactor() && !s.disk()));
        assert!(Suite::All.user() && Suite::All.disk() && Suite::All.reactor());
        assert!(Suite::parse(Some("disks")).is_err());
    }

    #[test]
    fn ratios_follow_the_unit() {
        assert_eq!(ratio(100, 300, "ns"), "3.00");
        assert_eq!(ratio(300, 100, "msgs/s"), "3.00");
        assert_eq!(ratio(0, 250, "count"), "inf");
        assert_eq!(ratio(0, 0, "count"), "1.00");
    }

    #[test]
    fn rows_parse_bench_lines_and_the_ready_line() {
        let mut rows = Rows::default();
        let lines = [
            "percore ready: cores=2 mem=504 MiB boot_us=35885",
            "bench task_switch_ns 80 ns",
            "bench task_switch_ns 60 ns",
            "bench task_switch_ns 70 ns",
            "bench row 1 peer 2 ns",
        ]
        .map(String::from);
        rows.parse(&lines);
        assert_eq!(rows.order, ["boot_us", "task_switch_ns"]);
        assert_eq!(rows.median("task_switch_ns"), Some(70));
        assert_eq!(rows.median("boot_us"), Some(35885));
        assert_eq!(rows.median("row"), None);
    }
}
