//! "tele": the interactive command line on the serial console, itself a
//! task (on any core).
//!
//! The COM1 receive interrupt only moves bytes into the console buffer and
//! raises the console's readiness in core 0's readiness queue; core 0's
//! reactor wakes this task from there (wakers never run in interrupt
//! context), through the bus if the task lives on another core. Commands: `help`,
//! `cores`, `tasks`, `timers`, `spawn-demo`, `bench`, `halt`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::Ordering;
use core::time::Duration;

use crate::arch::x86_64::cpu_local::{self, CoreId};
use crate::reactor::{self, channel, priority, spawn_on};
use crate::time::Clock;
use crate::{console, print, println};

const HELP: &str = "\
commands:
  help        this list
  cores       per-core load, tasks, ring depths, message and IPI counters
  tasks       per-core task counts (live, ready, spawned, completed, migrated)
  timers      per-core timers armed and timer interrupts taken
  spawn-demo  spawn 100 tasks over all cores that sleep and report back
  bench       cross-core round trip through a channel (1000 messages)
  ping        bus round trip (Ping/Pong, answered by the reactor) to every other core
  poll N on|off  poll mode for core N: never halt (lowest latency, burns the core)
  halt        stop every core (the others over the bus), then the machine";

/// The console task: reads lines and runs commands, forever.
pub async fn run() {
    println!("tele: type `help` for commands");
    let mut line = String::new();
    let mut input = match console::Reader::new() {
        Ok(input) => input,
        Err(error) => {
            log::error!("tele: cannot read the console: {error:?}");
            return;
        }
    };
    print!("percore> ");
    loop {
        let byte = input.next_byte().await;
        match byte {
            b'\r' | b'\n' => {
                println!();
                let command = core::mem::take(&mut line);
                let output = execute(command.trim()).await;
                if !output.is_empty() {
                    println!("{output}");
                }
                print!("percore> ");
            }
            0x08 | 0x7f => {
                if line.pop().is_some() {
                    print!("\x08 \x08");
                }
            }
            byte if byte.is_ascii_graphic() || byte == b' ' => {
                line.push(byte as char);
                print!("{}", byte as char);
            }
            _ => {}
        }
    }
}

/// Runs one command and returns what it prints.
pub async fn execute(command: &str) -> String {
    let mut out = String::new();
    match command {
        "" => {}
        "help" => out.push_str(HELP),
        "cores" => cores(&mut out),
        "tasks" => tasks(&mut out),
        "timers" => timers(&mut out),
        "spawn-demo" => spawn_demo(&mut out).await,
        "bench" => bench(&mut out).await,
        "ping" => ping(&mut out).await,
        "halt" => {
            let report = reactor::halt::halt_other_cores(Duration::from_secs(1)).await;
            println!(
                "tele: halt: {} of {} other cores stopped ({} tasks abandoned); stopping core {}",
                report.stopped,
                report.asked,
                report.tasks_left,
                cpu_local::core_id()
            );
            // Cores that did not answer are stopped by NMI; QEMU exits.
            crate::fatal::halt_machine();
        }
        other if other.starts_with("poll ") => poll_mode(other, &mut out),
        other => {
            let _ = write!(out, "unknown command `{other}`; try `help`");
        }
    }
    out
}

fn cores(out: &mut String) {
    let _ = writeln!(
        out,
        "core  apic  tasks  ready   polls  msgs_in msgs_out  ring  ring_max overflow doorbells ipis_rx timer_irqs  halts"
    );
    for (i, slot) in cpu_local::cores().iter().enumerate() {
        let Some(local) = slot.local() else { continue };
        let Some(r) = reactor::reactor(CoreId(i as u32)) else {
            continue;
        };
        let s = &r.stats;
        let _ = writeln!(
            out,
            "{i:>4} {:>5} {:>6} {:>6} {:>7} {:>8} {:>8} {:>5} {:>9} {:>8} {:>9} {:>7} {:>10} {:>6}",
            slot.apic_id,
            s.tasks.load(Ordering::Relaxed),
            s.ready.load(Ordering::Relaxed),
            s.polls.load(Ordering::Relaxed),
            s.messages_in.load(Ordering::Relaxed),
            s.messages_out.load(Ordering::Relaxed),
            s.ring_depth.load(Ordering::Relaxed),
            s.ring_depth_max.load(Ordering::Relaxed),
            s.overflow_pending.load(Ordering::Relaxed),
            s.doorbells.load(Ordering::Relaxed),
            local.stats.ipis_received.load(Ordering::Relaxed),
            local.stats.timer_interrupts.load(Ordering::Relaxed),
            s.halts.load(Ordering::Relaxed),
        );
    }
    out.pop();
}

fn tasks(out: &mut String) {
    let _ = writeln!(
        out,
        "core  tasks  ready  spawned  completed  migrated_in  migrated_out"
    );
    for r in reactor::reactors() {
        let s = &r.stats;
        let _ = writeln!(
            out,
            "{:>4} {:>6} {:>6} {:>8} {:>10} {:>12} {:>13}",
            r.core(),
            s.tasks.load(Ordering::Relaxed),
            s.ready.load(Ordering::Relaxed),
            s.spawned.load(Ordering::Relaxed),
            s.completed.load(Ordering::Relaxed),
            s.migrated_in.load(Ordering::Relaxed),
            s.migrated_out.load(Ordering::Relaxed),
        );
    }
    out.pop();
}

fn timers(out: &mut String) {
    let _ = writeln!(out, "core  armed  timer_irqs  early_rearms");
    for r in reactor::reactors() {
        let local = cpu_local::core(r.core()).and_then(|s| s.local());
        let _ = writeln!(
            out,
            "{:>4} {:>6} {:>11} {:>13}",
            r.core(),
            r.stats.timers.load(Ordering::Relaxed),
            local.map_or(0, |l| l.stats.timer_interrupts.load(Ordering::Relaxed)),
            local.map_or(0, |l| l.stats.timer_early_rearms.load(Ordering::Relaxed)),
        );
    }
    out.pop();
}

async fn spawn_demo(out: &mut String) {
    let cores = cpu_local::online_cores();
    let start = Clock::now();
    let handles: Vec<_> = (0..100u64)
        .map(|i| {
            spawn_on(
                CoreId((i % u64::from(cores)) as u32),
                priority(32),
                async move {
                    reactor::sleep(Duration::from_millis(1 + i % 20)).await;
                    cpu_local::core_id().0
                },
            )
        })
        .collect();
    let mut per_core = alloc::vec![0u32; cores as usize];
    for handle in handles {
        let core = handle.await as usize;
        if let Some(count) = per_core.get_mut(core) {
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
    let far = CoreId(cpu_local::online_cores() - 1);
    let (Ok((mut to_far, mut at_far)), Ok((mut back, mut at_home))) =
        (channel::channel::<u64>(8), channel::channel::<u64>(8))
    else {
        out.push_str("bench: cannot create channels");
        return;
    };
    let echo = spawn_on(far, priority(40), async move {
        while let Some(v) = at_far.recv().await {
            back.send(v).await;
        }
    });
    let mut samples = Vec::with_capacity(1000);
    for i in 0..1000u64 {
        let t0 = Clock::now().0;
        to_far.send(i).await;
        let _ = at_home.recv().await;
        samples.push(Clock::now().0 - t0);
    }
    drop(to_far);
    echo.await;
    samples.sort_unstable();
    let _ = write!(
        out,
        "bench: core {} <-> core {far} channel round trip over 1000 messages: p50 {} ns, p99 {} ns",
        cpu_local::core_id(),
        samples[500],
        samples[990]
    );
}

async fn ping(out: &mut String) {
    let me = cpu_local::core_id();
    let hz = crate::arch::x86_64::tsc::hz().max(1);
    let _ = writeln!(
        out,
        "core  probes  p50_ns  max_ns  (100 Ping/Pong round trips from core {me})"
    );
    for core in (0..cpu_local::online_cores())
        .map(CoreId)
        .filter(|&c| c != me)
    {
        let mut samples = Vec::with_capacity(100);
        for _ in 0..100 {
            match reactor::ping::ping(core).await {
                Ok(cycles) => {
                    samples.push((u128::from(cycles) * 1_000_000_000 / u128::from(hz)) as u64)
                }
                Err(error) => {
                    let _ = writeln!(out, "{core:>4}  {error:?}");
                    break;
                }
            }
        }
        if samples.len() == 100 {
            samples.sort_unstable();
            let _ = writeln!(
                out,
                "{core:>4} {:>7} {:>7} {:>7}",
                samples.len(),
                samples[50],
                samples[99]
            );
        }
    }
    out.pop();
}

fn poll_mode(command: &str, out: &mut String) {
    let mut words = command.split_whitespace().skip(1);
    let core = words.next().and_then(|w| w.parse::<u32>().ok());
    let on = match words.next() {
        Some("on") => Some(true),
        Some("off") => Some(false),
        _ => None,
    };
    match (core, on, words.next()) {
        (Some(core), Some(on), None) => {
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
