//! Multi-core tests: cores online, IPIs, APIC timers, clock skew, interrupt
//! routing, and a panic on an application core.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use percore_kernel::Kernel;
use percore_kernel::arch::x86_64::cpu_local::{self, CoreId, this_core};
use percore_kernel::arch::x86_64::{ioapic, ipi, lapic, tsc};
use percore_kernel::drivers::fw_cfg;
use percore_kernel::time;

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
    cpu_local::cores()
        .iter()
        .enumerate()
        .filter(|(_, slot)| slot.is_online())
        .map(|(i, _)| CoreId(i as u32))
        .collect()
}

fn call(core: CoreId, func: fn(usize) -> u64, arg: usize) -> Result<u64, String> {
    ipi::run_on(core, func, arg, CALL_TIMEOUT_MS).map_err(|e| format!("call on core {core}: {e:?}"))
}

/// Every core the machine has is online, with dense ids and distinct APIC ids.
pub fn cores_online(kernel: &Kernel) -> Result<(), String> {
    let expected: Option<u32> =
        expectation("opt/percore/expect-cores").and_then(|s| s.parse().ok());
    let slots = cpu_local::cores();
    let online = online();
    if let Some(expected) = expected
        && (slots.len() as u32 != expected || online.len() as u32 != expected)
    {
        return Err(format!(
            "expected {expected} cores, MADT gave {} and {} are online",
            slots.len(),
            online.len()
        ));
    }
    if cpu_local::online_cores() as usize != online.len() || !kernel.smp.failed.is_empty() {
        return Err(format!(
            "online count mismatch; failed to start: {:?}",
            kernel.smp.failed
        ));
    }
    let mut apic_ids: Vec<u32> = slots.iter().map(|s| s.apic_id).collect();
    apic_ids.sort_unstable();
    apic_ids.dedup();
    if apic_ids.len() != slots.len() {
        return Err(String::from("two cores share an APIC id"));
    }
    for (index, slot) in slots.iter().enumerate() {
        let answer = call(
            CoreId(index as u32),
            |_| u64::from(cpu_local::core_id().0),
            0,
        )?;
        if answer != index as u64 {
            return Err(format!("core {index} says it is core {answer}"));
        }
        let local = slot
            .local()
            .ok_or_else(|| format!("core {index} has no local block"))?;
        if local.apic_id.load(Ordering::Relaxed) != slot.apic_id {
            return Err(format!(
                "core {index}: APIC id register disagrees with the MADT"
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
    const IA32_APIC_BASE: u32 = 0x1B;
    let features = core::arch::x86_64::__cpuid(1);
    // SAFETY: reading IA32_APIC_BASE has no side effects.
    let apic_base = unsafe { x86_64::registers::model_specific::Msr::new(IA32_APIC_BASE).read() };
    let mode = match lapic::mode() {
        lapic::Mode::XApic => "xapic",
        lapic::Mode::X2Apic => "x2apic",
    };
    let timer = match lapic::timer_kind() {
        lapic::TimerKind::OneShot => "one-shot",
        lapic::TimerKind::TscDeadline => "tsc-deadline",
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
    let me = cpu_local::core_id();
    let mut failures = 0;
    for (index, slot) in cpu_local::cores().iter().enumerate() {
        let target = CoreId(index as u32);
        let Some(local) = slot.local().filter(|_| target != me) else {
            continue;
        };
        let before = local.stats.ipis_received.load(Ordering::Acquire);
        lapic::send_ipi(target, lapic::IPI_VECTOR);
        let deadline = tsc::rdtsc() + tsc::hz();
        while local.stats.ipis_received.load(Ordering::Acquire) == before && tsc::rdtsc() < deadline
        {
            core::hint::spin_loop();
        }
        // Give a duplicate delivery time to show up.
        let settle = tsc::rdtsc() + tsc::hz() / 1000;
        while tsc::rdtsc() < settle {
            core::hint::spin_loop();
        }
        if local.stats.ipis_received.load(Ordering::Acquire) != before + 1 {
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
                .map(|c| {
                    cpu_local::core(*c)
                        .and_then(|s| s.local())
                        .map_or(0, |l| l.stats.ipis_received.load(Ordering::Acquire))
                })
                .collect()
        };
        let before = counts(&cores);
        call(
            source,
            |_| {
                lapic::send_ipi_all_others(lapic::IPI_VECTOR);
                0
            },
            0,
        )?;
        let deadline = tsc::rdtsc() + tsc::hz();
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
        while !expected(&before, &after) && tsc::rdtsc() < deadline {
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
    let core = this_core();
    let fired_before = core.stats.timer_interrupts.load(Ordering::Acquire);
    let deadline = tsc::rdtsc() + tsc::hz() / 1_000_000 * arg as u64;
    lapic::arm_timer(deadline);
    let give_up = deadline + tsc::hz() * 5;
    while core.stats.timer_interrupts.load(Ordering::Acquire) == fired_before
        && tsc::rdtsc() < give_up
    {
        x86_64::instructions::interrupts::enable_and_hlt();
    }
    x86_64::instructions::interrupts::disable();
    if core.stats.timer_interrupts.load(Ordering::Acquire) == fired_before {
        lapic::cancel_timer();
        return u64::MAX;
    }
    let fired = core.last_timer_tsc.load(Ordering::Acquire);
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
        PONG_TSC.store(tsc::rdtsc(), Ordering::Relaxed);
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
        let pending = ipi::post(core, pong, 0, CALL_TIMEOUT_MS).map_err(|e| format!("{e:?}"))?;
        let (mut best_rtt, mut best_offset) = (u64::MAX, 0i64);
        for round in 1..=SKEW_ROUNDS {
            let t0 = tsc::rdtsc();
            PING.store(round, Ordering::Release);
            while PONG.load(Ordering::Acquire) != round {
                core::hint::spin_loop();
            }
            let t2 = tsc::rdtsc();
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
pub fn tsc_calibration_vs_reference(kernel: &Kernel) -> Result<(), String> {
    let reference = &kernel.reference_clock;
    let ref_hz = reference.hz();
    if ref_hz == 0 {
        return Ok(()); // PIT only: nothing to read as a counter
    }
    let (hz, ticks) = tsc::measure(reference, ref_hz, 100_000_000);
    let boot = tsc::hz();
    let ppm = (hz as i128 - boot as i128) * 1_000_000 / boot as i128;
    percore_kernel::println!(
        "clock: tsc {hz} Hz over 100 ms of {} ({ticks} ticks); boot calibration {boot} Hz; error {ppm} ppm",
        reference.name()
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
    let (vector, masked, dest) = ioapic::isa_entry(4).ok_or("no IOAPIC entry for IRQ 4")?;
    let bsp_apic = cpu_local::core(CoreId(0))
        .map(|s| s.apic_id)
        .unwrap_or(u32::MAX);
    if vector != percore_kernel::boot::COM1_VECTOR || masked || u32::from(dest) != bsp_apic {
        return Err(format!(
            "IRQ 4 entry: vector {vector:#x} masked {masked} dest {dest}"
        ));
    }
    let (received_before, _) = percore_kernel::console::input_stats();
    const MCR: u16 = 0x3F8 + 4;
    percore_kernel::console::with_uart(|port| {
        // SAFETY: sets the UART's loopback bit (keeping DTR, RTS, OUT2), then
        // sends one byte, which the UART receives from itself.
        unsafe { x86_64::instructions::port::Port::<u8>::new(MCR).write(0x1B) };
        port.send_raw(b'Z');
    });
    let deadline = tsc::rdtsc() + tsc::hz() * 2;
    while percore_kernel::console::input_stats().0 == received_before && tsc::rdtsc() < deadline {
        x86_64::instructions::interrupts::enable_and_hlt();
    }
    percore_kernel::console::with_uart(|_| {
        // SAFETY: back to normal operation (DTR, RTS, OUT2).
        unsafe { x86_64::instructions::port::Port::<u8>::new(MCR).write(0x0B) };
    });
    match percore_kernel::console::read_byte() {
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
