//! Multi-core tests: cores online, IPIs, APIC timers, clock skew, interrupt
//! routing, and a panic on an application core.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};

use percore_kernel::Kernel;
use percore_kernel::arch::{CoreId, clock, cpu};
use percore_kernel::arch::{apic, calibration, call as arch_call, doorbell, timer};
use percore_kernel::drivers::{fw_cfg, uart};
use percore_kernel::time;

use crate::harness::{Kind, Test};

/// This file's tests.
pub const TESTS: &[Test] = &[
    Test::new("cores_online", Kind::Normal, cores_online),
    Test::new(
        "apic_mode_matches_machine",
        Kind::Normal,
        apic_mode_matches_machine,
    ),
    Test::new("ipi_matrix", Kind::Normal, ipi_matrix),
    Test::new("apic_timer_every_core", Kind::Normal, apic_timer_every_core),
    Test::new("tsc_skew_across_cores", Kind::Normal, tsc_skew_across_cores),
    Test::new(
        "tsc_calibration_vs_reference",
        Kind::Normal,
        tsc_calibration_vs_reference,
    ),
    Test::new("com1_interrupt_routed", Kind::Normal, com1_interrupt_routed),
    Test::new(
        "panic_on_application_core",
        Kind::Panic {
            message: "deliberate panic on an application core",
        },
        panic_on_application_core,
    ),
];

const CALL_TIMEOUT_MS: u64 = 20_000;

/// A value the host passes for this machine, e.g. `opt/percore/expect-cores`.
pub fn expectation(name: &str) -> Option<String> {
    let mut buffer = [0u8; 64];
    let len = fw_cfg::read_file(name, &mut buffer).ok()?;
    core::str::from_utf8(&buffer[..len])
        .ok()
        .map(|s| String::from(s.trim()))
}

fn online() -> Vec<CoreId> {
    (0..cpu::core_count() as u16)
        .map(CoreId)
        .filter(|&c| cpu::is_online(c))
        .collect()
}

fn call(core: CoreId, func: fn(usize) -> u64, arg: usize) -> Result<u64, String> {
    arch_call::run_on(core, func, arg, CALL_TIMEOUT_MS)
        .map_err(|e| format!("call on core {core}: {e:?}"))
}

/// Every core the machine has is online, with dense ids and distinct APIC ids.
pub fn cores_online(kernel: &Kernel) -> Result<(), String> {
    let expected: Option<usize> =
        expectation("opt/percore/expect-cores").and_then(|s| s.parse().ok());
    let slots = cpu::core_count();
    let online = online();
    if let Some(expected) = expected
        && (slots != expected || online.len() != expected)
    {
        return Err(format!(
            "expected {expected} cores, MADT gave {slots} and {} are online",
            online.len()
        ));
    }
    let smp = &kernel.machine.smp;
    if cpu::online_cores() != online.len() || !smp.failed.is_empty() {
        return Err(format!(
            "online count mismatch; failed to start: {:?}",
            smp.failed
        ));
    }
    let madt_ids: Vec<u32> = (0..slots as u16)
        .filter_map(|c| cpu::apic_id(CoreId(c)))
        .collect();
    let mut apic_ids = madt_ids.clone();
    apic_ids.sort_unstable();
    apic_ids.dedup();
    if apic_ids.len() != slots {
        return Err(String::from("two cores share an APIC id"));
    }
    for (index, &madt_id) in madt_ids.iter().enumerate() {
        let core = CoreId(index as u16);
        let answer = call(core, |_| u64::from(cpu::core_id().0), 0)?;
        if answer != index as u64 {
            return Err(format!("core {index} says it is core {answer}"));
        }
        let recorded = call(core, |_| u64::from(apic::own_id()), 0)?;
        // The register itself, read without the per-core block (what the
        // stop NMI goes by).
        let register = call(core, |_| apic::register_id().map_or(u64::MAX, u64::from), 0)?;
        if recorded != u64::from(madt_id) || register != u64::from(madt_id) {
            return Err(format!(
                "core {index}: APIC id {recorded} recorded, {register} in the register, {madt_id} in the MADT"
            ));
        }
    }
    percore_kernel::println!("cores: {} online, APIC ids {:?}", online.len(), apic_ids);
    Ok(())
}

/// The APIC mode and timer mode the kernel reports are what the CPU offers
/// and what the host says this machine has (`opt/percore/expect-apic`:
/// `xapic` or `x2apic`; `opt/percore/expect-timer`: `one-shot` or
/// `tsc-deadline`).
pub fn apic_mode_matches_machine(_: &Kernel) -> Result<(), String> {
    let features = core::arch::x86_64::__cpuid(1);
    let apic_base = apic::base_msr();
    let mode = match apic::mode() {
        apic::Mode::XApic => "xapic",
        apic::Mode::X2Apic => "x2apic",
    };
    let timer = match apic::timer_kind() {
        apic::TimerKind::OneShot => "one-shot",
        apic::TimerKind::TscDeadline => "tsc-deadline",
    };
    let x2apic_on = apic_base & (1 << 10) != 0;
    if x2apic_on != (mode == "x2apic") || (x2apic_on && features.ecx & (1 << 21) == 0) {
        return Err(format!(
            "reports {mode} mode, but x2APIC is {} in IA32_APIC_BASE ({apic_base:#x})",
            if x2apic_on { "on" } else { "off" }
        ));
    }
    if timer == "tsc-deadline" && features.ecx & (1 << 24) == 0 {
        return Err(String::from(
            "reports a TSC-deadline timer the CPU does not offer",
        ));
    }
    for (what, reported) in [("apic", mode), ("timer", timer)] {
        match expectation(&format!("opt/percore/expect-{what}")) {
            Some(expected) if expected != reported => {
                return Err(format!("{what} mode is {reported}, expected {expected}"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Sends one IPI to every other core, one at a time, and returns how many
/// destinations did not see exactly one (packed: count of failures).
fn send_to_each_other(_: usize) -> u64 {
    let me = cpu::core_id();
    let mut failures = 0;
    for target in online() {
        let Some(stats) = cpu::stats(target).filter(|_| target != me) else {
            continue;
        };
        let before = stats.ipis_received.load(Ordering::Acquire);
        doorbell::ring(target);
        let deadline = clock::cycles() + clock::hz();
        while stats.ipis_received.load(Ordering::Acquire) == before && clock::cycles() < deadline {
            core::hint::spin_loop();
        }
        // Give a duplicate delivery time to show up.
        let settle = clock::cycles() + clock::hz() / 1000;
        while clock::cycles() < settle {
            core::hint::spin_loop();
        }
        if stats.ipis_received.load(Ordering::Acquire) != before + 1 {
            failures += 1;
        }
    }
    failures
}

/// IPIs from every core to every other core arrive exactly once, and an
/// all-but-self IPI reaches each other core exactly once.
pub fn ipi_matrix(_: &Kernel) -> Result<(), String> {
    let cores = online();
    for &source in &cores {
        let failures = call(source, send_to_each_other, 0)?;
        if failures != 0 {
            return Err(format!(
                "core {source}: {failures} destinations did not get exactly one IPI"
            ));
        }
    }
    for &source in &cores {
        let counts = |cores: &[CoreId]| -> Vec<u64> {
            cores
                .iter()
                .map(|&c| cpu::stats(c).map_or(0, |s| s.ipis_received.load(Ordering::Acquire)))
                .collect()
        };
        let before = counts(&cores);
        call(
            source,
            |_| {
                apic::ring_all_others();
                0
            },
            0,
        )?;
        let deadline = clock::cycles() + clock::hz();
        let expected = |before: &[u64], after: &[u64]| {
            cores
                .iter()
                .zip(before.iter().zip(after))
                .all(|(c, (b, a))| {
                    // The call itself rings `source` once; the broadcast skips it.
                    let extra =
                        u64::from(*c != source) + u64::from(*c == source && *c != CoreId(0));
                    *a == *b + extra
                })
        };
        let mut after = counts(&cores);
        while !expected(&before, &after) && clock::cycles() < deadline {
            after = counts(&cores);
        }
        if !expected(&before, &after) {
            return Err(format!(
                "broadcast from core {source}: counts {before:?} -> {after:?}"
            ));
        }
    }
    percore_kernel::println!(
        "ipi: {}x{} matrix delivered exactly once; broadcasts exact",
        cores.len(),
        cores.len()
    );
    Ok(())
}

/// Arms this core's APIC timer `arg` microseconds ahead and waits for it;
/// returns the lateness in ns, or u64::MAX if it came early or never.
fn one_shot_lateness(arg: usize) -> u64 {
    let Some(stats) = cpu::stats(cpu::core_id()) else {
        return u64::MAX;
    };
    let fired_before = stats.timer_interrupts.load(Ordering::Acquire);
    let deadline = clock::cycles() + clock::hz() / 1_000_000 * arg as u64;
    cpu::disable_interrupts();
    timer::arm(deadline);
    let give_up = deadline + clock::hz() * 5;
    while stats.timer_interrupts.load(Ordering::Acquire) == fired_before
        && clock::cycles() < give_up
    {
        cpu::wait_for_interrupt();
    }
    if stats.timer_interrupts.load(Ordering::Acquire) == fired_before {
        timer::cancel();
        return u64::MAX;
    }
    let fired = apic::last_timer_fired();
    if fired < deadline {
        return u64::MAX;
    }
    time::cycles_to_ns(fired - deadline)
}

/// Every core's APIC timer fires 1 ms and 10 ms ahead, never early.
pub fn apic_timer_every_core(_: &Kernel) -> Result<(), String> {
    for core in online() {
        for us in [1_000usize, 10_000] {
            let lateness = call(core, one_shot_lateness, us)?;
            if lateness == u64::MAX {
                return Err(format!(
                    "core {core}: {us} us timer fired early or not at all"
                ));
            }
            percore_kernel::println!(
                "timer: core {core} {us} us one-shot late by {} us",
                lateness / 1000
            );
        }
    }
    Ok(())
}

static PING: AtomicU64 = AtomicU64::new(0);
static PONG: AtomicU64 = AtomicU64::new(0);
static PONG_TSC: AtomicU64 = AtomicU64::new(0);
const SKEW_ROUNDS: u64 = 2_000;

fn pong(_: usize) -> u64 {
    for round in 1..=SKEW_ROUNDS {
        while PING.load(Ordering::Acquire) != round {
            core::hint::spin_loop();
        }
        PONG_TSC.store(clock::cycles(), Ordering::Relaxed);
        PONG.store(round, Ordering::Release);
    }
    0
}

/// TSCs agree across cores: the offset of each core's TSC from core 0's,
/// estimated from the tightest of 2000 round trips, lies within that round
/// trip. Reports the skew in ns.
pub fn tsc_skew_across_cores(_: &Kernel) -> Result<(), String> {
    for core in online().into_iter().filter(|c| c.0 != 0) {
        PING.store(0, Ordering::SeqCst);
        PONG.store(0, Ordering::SeqCst);
        let pending =
            arch_call::post(core, pong, 0, CALL_TIMEOUT_MS).map_err(|e| format!("{e:?}"))?;
        let (mut best_rtt, mut best_offset) = (u64::MAX, 0i64);
        for round in 1..=SKEW_ROUNDS {
            let t0 = clock::cycles();
            PING.store(round, Ordering::Release);
            while PONG.load(Ordering::Acquire) != round {
                core::hint::spin_loop();
            }
            let t2 = clock::cycles();
            let remote = PONG_TSC.load(Ordering::Relaxed);
            if t2 - t0 < best_rtt {
                best_rtt = t2 - t0;
                best_offset = remote as i64 - (t0 + (t2 - t0) / 2) as i64;
            }
        }
        pending
            .wait(CALL_TIMEOUT_MS)
            .map_err(|e| format!("{e:?}"))?;
        let rtt_ns = time::cycles_to_ns(best_rtt);
        let skew_ns = time::cycles_to_ns(best_offset.unsigned_abs());
        percore_kernel::println!(
            "clock: core {core} skew {}{skew_ns} ns (best round trip {rtt_ns} ns)",
            if best_offset < 0 { "-" } else { "" }
        );
        if best_offset.unsigned_abs() > best_rtt {
            return Err(format!(
                "core {core}: TSC offset {best_offset} cycles exceeds the round trip {best_rtt}"
            ));
        }
    }
    Ok(())
}

/// Measures the TSC against the reference clock over 100 ms and reports the
/// difference from the boot-time calibration.
pub fn tsc_calibration_vs_reference(_: &Kernel) -> Result<(), String> {
    let Some(measured) = calibration::recalibrate(100_000_000) else {
        return Ok(()); // PIT only: nothing to read as a counter
    };
    let (hz, boot) = (measured.hz, measured.boot_hz);
    let ppm = (hz as i128 - boot as i128) * 1_000_000 / boot as i128;
    percore_kernel::println!(
        "clock: tsc {hz} Hz over 100 ms of {} ({} ticks); boot calibration {boot} Hz; error {ppm} ppm",
        measured.reference,
        measured.ticks
    );
    // 5%: far outside emulation noise, yet catches a wrong unit or factor.
    if ppm.abs() > 50_000 {
        return Err(format!("boot calibration off by {ppm} ppm"));
    }
    Ok(())
}

/// COM1's IRQ 4 is routed unmasked to core 0, and a byte sent in UART
/// loopback mode arrives through the interrupt handler.
pub fn com1_interrupt_routed(_: &Kernel) -> Result<(), String> {
    let (vector, masked, dest) = apic::isa_entry(4).ok_or("no IOAPIC entry for IRQ 4")?;
    let bsp_apic = cpu::apic_id(CoreId(0)).unwrap_or(u32::MAX);
    if vector != apic::IRQ_BASE_VECTOR + 4 || masked || u32::from(dest) != bsp_apic {
        return Err(format!(
            "IRQ 4 entry: vector {vector:#x} masked {masked} dest {dest}"
        ));
    }
    let (received_before, _) = uart::input_stats();
    percore_kernel::console::with_uart(|port| {
        // Loopback: the UART receives the byte it sends.
        port.set_loopback(true);
        let _ = port.write_str("Z");
    });
    let deadline = clock::cycles() + clock::hz() * 2;
    cpu::disable_interrupts();
    while uart::input_stats().0 == received_before && clock::cycles() < deadline {
        cpu::wait_for_interrupt();
    }
    cpu::enable_interrupts();
    percore_kernel::console::with_uart(|port| port.set_loopback(false));
    match uart::read_byte() {
        Some(b'Z') => Ok(()),
        other => Err(format!(
            "loopback byte not received through IRQ 4 (got {other:?})"
        )),
    }
}

/// Panics on the last core; the harness checks the report names that core
/// and that every other core stopped.
pub fn panic_on_application_core(_: &Kernel) -> Result<(), String> {
    let Some(&last) = online().last().filter(|c| c.0 != 0) else {
        return Err(String::from("needs at least two cores"));
    };
    call(
        last,
        |_| panic!("deliberate panic on an application core"),
        0,
    )?;
    Err(String::from("the application core did not panic"))
}
