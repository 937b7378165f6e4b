//! The shell's commands. Each returns the text it prints, so the same code
//! serves the serial line and the tests (`execute`).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::Ordering;
use core::time::Duration;

use super::table::Table;
use crate::arch::{CoreId, cpu};
use crate::drivers::keyboard;
use crate::ipc::{channel, probe};
use crate::measure::Summary;
use crate::reactor::{self, priority, spawn_on};
use crate::time::{self, Clock};

/// Command names, for completion.
pub const NAMES: &[&str] = &[
    "help",
    "cores",
    "tasks",
    "timers",
    "spawn-demo",
    "bench",
    "ping",
    "poll",
    "pci",
    "disk",
    "net",
    "serve",
    "get",
    "log",
    "sched",
    "halt",
    "poweroff",
    "reboot",
    "keymap",
    "run",
    "ps",
    "kill",
];

const HELP: &str = "\
commands:
  help        this list
  cores       per-core load, tasks, ring depths, message and doorbell counters
  tasks       per-core discipline and task counts (live, ready, spawned, completed,
              migrated, deadline misses)
  tasks CORE  core CORE's tasks: state, priority, weight, deadline/period, runtime, misses
  timers      per-core timers armed and timer interrupts taken
  spawn-demo  spawn 100 tasks over all cores that sleep and report back
  bench       cross-core round trip through a channel (1000 messages)
  ping        bus round trip (Ping/Pong, answered by the reactor) to every other core
  poll N on|off  poll mode for core N: never halt (lowest latency, burns the core)
  pci         PCI functions: address, ids, class, BARs, MSI-X vectors and the
              core each enabled vector goes to (entry>core/vector)
  disk        the virtio block device: capacity, block size, read-only, queues (owner
              core, MSI-X target read back), per-core completions, in flight, errors
  net         the virtio network device: MAC, link, queue pairs and RSS, per pair its
              owner core and MSI-X target (read back), frames/bytes in and out,
              backpressure waits, rejected sends, received frames dropped by reason;
              the stack: address, gateway, per-core frames/bytes in and out,
              steered frames, drops by reason, open sockets
  serve echo|http  start a sample server on every core (echo: TCP and UDP 7;
              http: TCP 80 with /, /stats, 404)
  get URL     HTTP GET http://A.B.C.D[:PORT]/PATH from this core: status, length,
              FNV-1a 64 of the body (checked against an X-Fnv1a64 header)
  log         the disk log on the whole disk (opened, or made when blank, on first use):
              what recovery found, counters; `log append TEXT`, `log flush`,
              `log tail [N]`, `log from SEQ [N]`
  sched CORE rr|fair|edf  switch core CORE's discipline (its tasks move over)
  halt        stop every core (the others over the bus), then power off
  poweroff    the same as halt (ACPI soft-off)
  reboot      stop every core, then reset the machine
  keymap NAME keyboard layout: us uk de fr no fi-se jp dvorak dvp colemak
  run PROGRAM [CORE] [ARGS]  start a user program (in the background)
  ps          processes: pid, name, core, state, handles, CPU time, syscalls, ring ops
  kill PID    end a process
keys: left/right, home/end, up/down (history), tab (complete), ctrl-u/k/w, ctrl-c";

/// Runs one command and returns what it prints.
pub async fn execute(command: &str) -> String {
    let mut out = String::new();
    let mut words = command.split_whitespace();
    match words.next() {
        None => {}
        Some("help") => out.push_str(HELP),
        Some("cores") => cores(&mut out),
        Some("tasks") => match words.next() {
            None => tasks(&mut out),
            Some(core) => tasks_of(core, &mut out).await,
        },
        Some("timers") => timers(&mut out),
        Some("spawn-demo") => spawn_demo(&mut out).await,
        Some("bench") => bench(&mut out).await,
        Some("ping") => ping(&mut out).await,
        Some("poll") => poll_mode(words.collect(), &mut out),
        Some("pci") => pci(&mut out),
        Some("disk") => disk(&mut out),
        Some("net") => {
            net(&mut out);
            super::netstack::stack(&mut out);
        }
        Some("serve") => super::netstack::serve(words.next(), &mut out).await,
        Some("get") => super::netstack::get(words.next(), &mut out).await,
        Some("log") => super::disklog::run(&words.collect::<Vec<_>>(), &mut out).await,
        Some("sched") => sched(words.collect(), &mut out).await,
        Some("halt") | Some("poweroff") => halt().await,
        Some("reboot") => reboot().await,
        Some("keymap") => keymap(words.next(), &mut out),
        Some("run") => super::procs::run(&words.collect::<Vec<_>>(), &mut out),
        Some("ps") => super::procs::ps(&mut out),
        Some("kill") => super::procs::kill(words.next(), &mut out),
        Some(other) => {
            let _ = write!(out, "unknown command `{other}`; try `help`");
        }
    }
    out
}

fn cores(out: &mut String) {
    let mut table = Table::new(&[
        "core",
        "apic",
        "tasks",
        "ready",
        "polls",
        "msgs_in",
        "msgs_out",
        "ring",
        "ring_max",
        "overflow",
        "doorbells",
        "ipis_rx",
        "timer_irqs",
        "sleeps",
    ]);
    for r in reactor::reactors() {
        let core = r.core();
        let (Some(apic), Some(arch)) = (cpu::apic_id(core), cpu::stats(core)) else {
            continue;
        };
        let s = &r.stats;
        table.row(&[
            &core,
            &apic,
            &s.tasks.load(Ordering::Relaxed),
            &s.ready.load(Ordering::Relaxed),
            &s.polls.load(Ordering::Relaxed),
            &s.messages_in.load(Ordering::Relaxed),
            &s.messages_out.load(Ordering::Relaxed),
            &s.ring_depth.load(Ordering::Relaxed),
            &s.ring_depth_max.load(Ordering::Relaxed),
            &s.overflow_pending.load(Ordering::Relaxed),
            &arch.doorbells.load(Ordering::Relaxed),
            &arch.ipis_received.load(Ordering::Relaxed),
            &arch.timer_interrupts.load(Ordering::Relaxed),
            &s.sleeps.load(Ordering::Relaxed),
        ]);
    }
    table.render(out);
}

fn tasks(out: &mut String) {
    let mut table = Table::new(&[
        "core",
        "sched",
        "tasks",
        "ready",
        "spawned",
        "completed",
        "migrated_in",
        "migrated_out",
        "misses",
    ]);
    for r in reactor::reactors() {
        let s = &r.stats;
        table.row(&[
            &r.core(),
            &reactor::flavour_name(r.flavour()),
            &s.tasks.load(Ordering::Relaxed),
            &s.ready.load(Ordering::Relaxed),
            &s.spawned.load(Ordering::Relaxed),
            &s.completed.load(Ordering::Relaxed),
            &s.migrated_in.load(Ordering::Relaxed),
            &s.migrated_out.load(Ordering::Relaxed),
            &s.deadline_misses.load(Ordering::Relaxed),
        ]);
    }
    table.render(out);
}

/// One core's tasks, as its tree holds them (the listing task included).
async fn tasks_of(core: &str, out: &mut String) {
    let Ok(core) = core.parse::<u16>() else {
        out.push_str("usage: tasks [CORE]");
        return;
    };
    let Some(r) = reactor::reactor(CoreId(core)) else {
        let _ = write!(out, "tasks: no core {core}");
        return;
    };
    let list = match reactor::task_list(CoreId(core)).await {
        Ok(list) => list,
        Err(error) => {
            let _ = write!(out, "tasks: core {core}: {error:?}");
            return;
        }
    };
    let mut table = Table::new(&[
        "id",
        "state",
        "prio",
        "weight",
        "deadline",
        "period",
        "runtime_us",
        "misses",
        "pinned",
    ]);
    table.caption(alloc::format!(
        "core {core}: {} ({} tasks)",
        reactor::flavour_name(r.flavour()),
        list.len()
    ));
    let ms = |ns: u64| match ns {
        0 => String::from("-"),
        ns => alloc::format!("{}.{:03}ms", ns / 1_000_000, ns / 1_000 % 1_000),
    };
    let unit = percore_sched::Priority::DEFAULT_WEIGHT;
    for t in list {
        let o = &t.options;
        table.row(&[
            &t.id,
            &alloc::format!("{:?}", t.state),
            &o.priority.get(),
            &alloc::format!(
                "{}.{:02}",
                t.tree_weight / unit,
                t.tree_weight * 100 / unit % 100
            ),
            &ms(o.deadline_ns),
            &ms(o.period_ns),
            &(t.runtime_ns / 1_000),
            &t.misses,
            &o.pinned,
        ]);
    }
    table.render(out);
}

/// `sched CORE rr|fair|edf`: switches a core's discipline.
async fn sched(args: Vec<&str>, out: &mut String) {
    let core = args.first().and_then(|w| w.parse::<u16>().ok());
    let flavour = args.get(1).map(|w| reactor::parse_flavour(w));
    let (Some(core), Some(Ok(flavour)), 2) = (core, flavour, args.len()) else {
        out.push_str("usage: sched CORE rr|fair|edf");
        return;
    };
    match reactor::set_flavour(CoreId(core), flavour).await {
        Ok(old) => {
            let _ = write!(
                out,
                "sched: core {core} {} -> {}",
                reactor::flavour_name(old),
                reactor::flavour_name(flavour)
            );
        }
        Err(error) => {
            let _ = write!(out, "sched: core {core}: {error:?}");
        }
    }
}

fn timers(out: &mut String) {
    let mut table = Table::new(&["core", "armed", "timer_irqs", "early_rearms"]);
    for r in reactor::reactors() {
        let arch = cpu::stats(r.core());
        let count = |f: fn(&crate::arch::CoreStats) -> u64| arch.map_or(0, f);
        table.row(&[
            &r.core(),
            &r.stats.timers.load(Ordering::Relaxed),
            &count(|s| s.timer_interrupts.load(Ordering::Relaxed)),
            &count(|s| s.timer_early_rearms.load(Ordering::Relaxed)),
        ]);
    }
    table.render(out);
}

async fn spawn_demo(out: &mut String) {
    let cores = cpu::online_cores();
    let start = Clock::now();
    let handles: Vec<_> = (0..100u64)
        .map(|i| {
            spawn_on(
                CoreId((i % cores as u64) as u16),
                priority(32),
                async move {
                    reactor::sleep(Duration::from_millis(1 + i % 20)).await;
                    cpu::core_id()
                },
            )
        })
        .collect();
    let mut per_core = alloc::vec![0u32; cores];
    for handle in handles {
        if let Some(count) = per_core.get_mut(handle.await.index()) {
            *count += 1;
        }
    }
    let _ = write!(
        out,
        "spawn-demo: 100 tasks slept 1-20 ms and finished in {} us; per core {per_core:?}",
        (Clock::now().0 - start.0) / 1000
    );
}

async fn bench(out: &mut String) {
    let far = CoreId((cpu::online_cores() - 1) as u16);
    let mut samples = channel::round_trips(far, 1000).await;
    let cycles = Summary::of(&mut samples);
    let _ = write!(
        out,
        "bench: core {} <-> core {far} channel round trip over 1000 messages: p50 {} ns, p99 {} ns",
        cpu::core_id(),
        time::cycles_to_ns(cycles.p50),
        time::cycles_to_ns(cycles.p99)
    );
}

async fn ping(out: &mut String) {
    let me = cpu::core_id();
    let mut table = Table::new(&["core", "probes", "p50_ns", "max_ns"]);
    table.caption(alloc::format!("(100 Ping/Pong round trips from core {me})"));
    for core in (0..cpu::online_cores() as u16)
        .map(CoreId)
        .filter(|&c| c != me)
    {
        match probe::round_trips(core, 100).await {
            Ok(mut samples) => {
                let s = Summary::of(&mut samples);
                let ns = time::cycles_to_ns;
                table.row(&[&core, &samples.len(), &ns(s.p50), &ns(s.max)]);
            }
            Err(error) => table.row(&[&core, &alloc::format!("{error:?}")]),
        }
    }
    table.render(out);
}

fn poll_mode(args: Vec<&str>, out: &mut String) {
    let core = args.first().and_then(|w| w.parse::<u16>().ok());
    let on = match args.get(1) {
        Some(&"on") => Some(true),
        Some(&"off") => Some(false),
        _ => None,
    };
    match (core, on, args.len()) {
        (Some(core), Some(on), 2) => {
            if reactor::set_busy_poll(CoreId(core), on) {
                let mode = if on {
                    "polls (never halts)"
                } else {
                    "halts when idle"
                };
                let _ = write!(out, "poll: core {core} now {mode}");
            } else {
                let _ = write!(out, "poll: no core {core}");
            }
        }
        _ => out.push_str("usage: poll CORE on|off"),
    }
}

fn pci(out: &mut String) {
    use crate::drivers::pci::{self, Region};
    let mut table = Table::new(&[
        "bdf",
        "vendor:device",
        "class",
        "msix",
        "bars",
        "msix routes",
    ]);
    table.align_left(4);
    table.align_left(5);
    table.caption(alloc::format!(
        "(config space through {:?})",
        crate::arch::pci::mechanism()
    ));
    for f in pci::functions() {
        let mut bars = String::new();
        for (slot, region) in &f.bars {
            let _ = match region {
                Region::Memory { address, size, .. } => {
                    write!(bars, " {slot}:mem {address:#x}+{size:#x}")
                }
                Region::Io { port } => write!(bars, " {slot}:io {port:#x}"),
            };
        }
        table.row(&[
            &f.bdf,
            &alloc::format!("{:04x}:{:04x}", f.vendor, f.device),
            &alloc::format!("{:02x}.{:02x}.{:02x}", f.class, f.subclass, f.interface),
            &f.msix.map_or(0, |m| m.vectors),
            &bars.trim_start(),
            &msix_routes(f.bdf),
        ]);
    }
    table.render(out);
}

fn disk(out: &mut String) {
    use crate::drivers::virtio::blk;
    let Some(disk) = blk::device() else {
        out.push_str("no block device (boot with `cargo xtask run --disk FILE`)");
        return;
    };
    let _ = writeln!(
        out,
        "virtio-blk {}: {} blocks of {} bytes ({} MiB){}{}, {} queues, features {:#x}",
        disk.bdf(),
        disk.blocks(),
        disk.block_size(),
        disk.blocks() * u64::from(disk.block_size()) / (1024 * 1024),
        if disk.read_only() { ", read-only" } else { "" },
        if disk.has_flush() {
            ", write cache (flush)"
        } else {
            ""
        },
        disk.queues().len(),
        disk.features()
    );
    if let Some(error) = disk.failure() {
        let _ = writeln!(out, "OUT OF SERVICE: {error}");
    }
    let mut table = Table::new(&[
        "queue",
        "core",
        "msix",
        "size",
        "submitted",
        "completed",
        "in flight",
        "errors",
        "irqs",
        "dma KiB",
    ]);
    table.align_left(2);
    for (index, queue) in disk.queues().iter().enumerate() {
        let Some(info) = disk.queue_info(index) else {
            continue;
        };
        let stats = &queue.stats;
        let target = match info.target {
            Some((core, vector)) => alloc::format!("{}>c{core}/{vector:#x}", info.msix_entry),
            None => alloc::format!("{} (masked)", info.msix_entry),
        };
        let load = |c: &core::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        table.row(&[
            &info.index,
            &info.owner,
            &target,
            &info.size,
            &load(&stats.submitted),
            &load(&stats.completed),
            &load(&stats.in_flight),
            &load(&stats.errors),
            &load(&stats.interrupts),
            &(info.dma_bytes / 1024),
        ]);
    }
    table.render(out);
    let mut per_core = String::from("\ncompletions handled per core:");
    for core in 0..cpu::online_cores() {
        let core = CoreId(core as u16);
        let _ = write!(
            per_core,
            " c{core}={} (queue {})",
            disk.completions_on(core),
            disk.queue_of(core)
        );
    }
    out.push_str(&per_core);
    if let Ok((pages, taken)) = crate::mem::with(|m| m.dma.usage()) {
        let _ = write!(out, "\nDMA pool: {} of {} KiB in use", taken * 4, pages * 4);
    }
}

fn net(out: &mut String) {
    use crate::drivers::virtio::net::{self, DropReason, Mac};
    let Some(nic) = net::device() else {
        out.push_str("no network device (boot with `cargo xtask run --net`)");
        return;
    };
    let _ = writeln!(
        out,
        "virtio-net {}: MAC {}, link {}, {} of {} queue pair(s), RSS {}, features {:#x}",
        nic.bdf(),
        Mac(nic.mac()),
        if nic.link_up() { "up" } else { "down" },
        nic.pairs().len(),
        nic.max_pairs(),
        nic.rss().map_or(String::from("off"), |r| alloc::format!(
            "on ({} entries)",
            r.table.len()
        )),
        nic.features()
    );
    if let Some(pair) = nic.pairs().first() {
        let on = |b: bool| if b { "on" } else { "off" };
        let load = |c: &core::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        let (valid, offloaded) = nic.pairs().iter().fold((0, 0), |(v, o), p| {
            (
                v + load(&p.stats.rx_csum_valid),
                o + load(&p.stats.tx_csum_offloaded),
            )
        });
        let _ = writeln!(
            out,
            "checksum offload: transmit {} ({offloaded} frames), receive {} ({valid} frames validated)",
            on(pair.offloads.tx_csum),
            on(pair.offloads.rx_csum),
        );
    }
    if let Some(why) = nic.fallback() {
        let _ = writeln!(out, "fallback: {why:?}");
    }
    if let Some(error) = nic.failure() {
        let _ = writeln!(out, "OUT OF SERVICE: {error}");
    }
    let mut header = alloc::vec![
        "pair", "core", "msix", "size", "rx", "rx bytes", "tx", "tx bytes", "tx waits", "rejected",
        "waiting", "irqs",
    ];
    header.extend(DropReason::ALL.map(|r| r.name()));
    let mut table = Table::new(&header);
    table.align_left(2);
    for (index, pair) in nic.pairs().iter().enumerate() {
        let Some(info) = nic.pair_info(index) else {
            continue;
        };
        let target = match info.target {
            Some((core, vector)) => alloc::format!("{}>c{core}/{vector:#x}", info.msix_entries.0),
            None => alloc::format!("{} (masked)", info.msix_entries.0),
        };
        let s = &pair.stats;
        let load = |c: &core::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        let drops = s.drops.each_ref().map(load);
        let mut row: alloc::vec::Vec<&dyn core::fmt::Display> =
            alloc::vec![&info.index, &info.owner, &target, &info.size,];
        let counters = [
            load(&s.rx_frames),
            load(&s.rx_bytes),
            load(&s.tx_frames),
            load(&s.tx_bytes),
            load(&s.tx_waits),
            load(&s.tx_rejected),
            pair.waiting() as u64,
            load(&s.interrupts),
        ];
        row.extend(counters.iter().map(|c| c as &dyn core::fmt::Display));
        row.extend(drops.iter().map(|c| c as &dyn core::fmt::Display));
        table.row(&row);
    }
    table.render(out);
    let (pairs, cores) = (nic.pairs().len(), crate::arch::cpu::online_cores());
    if pairs < cores {
        let shared = if cores - pairs == 1 {
            alloc::format!("core {pairs} shares a pair")
        } else {
            alloc::format!("cores {pairs}-{} share pairs", cores - 1)
        };
        let _ = write!(out, "\n{shared}: core c uses pair c mod {pairs}");
    }
}

/// `entry>core/vector` for each unmasked entry of a function's MSI-X table
/// (read back from the device), or `-` when no driver set MSI-X up.
fn msix_routes(bdf: crate::drivers::pci::Bdf) -> String {
    use crate::drivers::pci;
    let Some(table) = pci::msix_table(bdf) else {
        return String::from("-");
    };
    let mut routes = String::new();
    if !table.enabled() {
        routes.push_str("off");
    }
    for entry in 0..table.entries() {
        if let Some((core, vector)) = pci::msix_route(&table, entry) {
            let _ = write!(routes, " {entry}>c{core}/{vector:#x}");
        }
    }
    String::from(routes.trim_start())
}

/// Stops every other core over the bus, reports, then stops the machine
/// (QEMU exits; cores that did not answer get the stop NMI).
async fn halt() -> ! {
    let report = reactor::stop::stop_other_cores(Duration::from_secs(1)).await;
    crate::println!(
        "shell: halt: {} of {} other cores stopped ({} tasks abandoned); stopping core {}",
        report.stopped,
        report.asked,
        report.tasks_left,
        cpu::core_id()
    );
    crate::fatal::halt_machine()
}

/// Stops every other core over the bus, then resets the machine.
async fn reboot() -> ! {
    let report = reactor::stop::stop_other_cores(Duration::from_secs(1)).await;
    crate::println!(
        "shell: reboot: {} of {} other cores stopped; resetting",
        report.stopped,
        report.asked
    );
    crate::fatal::reboot_machine()
}

fn keymap(name: Option<&str>, out: &mut String) {
    match name.map(keyboard::set_layout) {
        Some(Ok(())) => {
            let _ = write!(out, "keymap: {}", name.unwrap_or_default());
        }
        _ => {
            let _ = write!(out, "usage: keymap {}", keyboard::LAYOUTS.join("|"));
        }
    }
}
