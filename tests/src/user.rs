//! Ring-3 programs: they run and exit with their code, a spinning one is
//! preempted (its core's kernel work goes on) and killed, every bad
//! syscall argument gets its error, no kernel register leaks, a program
//! that touches what it may not is killed while a canary is unaffected,
//! and processes come and go on every core without leaking frames or
//! handles. The programs are the boot archive's (`userspace/programs`).

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

use futures_util::future::{Either, select};
use percore_kernel::Kernel;
use percore_kernel::arch::{CoreId, user};
use percore_kernel::process::{self, Exit, SpawnError, elf::ElfError};
use percore_kernel::reactor::{JoinHandle, block_on, sleep, spawn_with};
use percore_kernel::{shell, syscall};

use crate::harness::{Kind, Test};
use crate::reactor::{cores, pinned, start_reactors};

/// This file's tests.
pub const TESTS: &[Test] = &[
    Test::new("user_hello_exits_with_its_code", Kind::Normal, hello),
    Test::new("user_bad_images_refused", Kind::Normal, bad_images),
    Test::new("user_badptr_every_bad_argument_errs", Kind::Normal, badptr),
    Test::new("user_regs_no_kernel_value_leaks", Kind::Normal, regs),
    Test::new("user_spin_preempted_then_killed", Kind::Normal, spin),
    Test::new(
        "user_syscall_loop_preempted_then_killed",
        Kind::Normal,
        syscall_loop,
    ),
    Test::new(
        "user_slow_syscall_loop_lets_messages_through",
        Kind::Normal,
        slow_syscall_loop,
    ),
    Test::new(
        "user_cpu_time_leaves_out_blocked_time",
        Kind::Normal,
        cpu_time,
    ),
    Test::new("user_sse_registers_are_per_thread", Kind::Normal, sse),
    Test::new("user_copy_faults_are_errors", Kind::Normal, copy_faults),
    Test::new("user_faults_kill_only_the_offender", Kind::Normal, faults),
    Test::new("user_shell_run_ps_kill", Kind::Normal, shell_commands),
    Test::new("user_processes_leak_nothing", Kind::Normal, no_leaks),
    Test::new(
        "user_thousand_idle_processes_fit",
        Kind::Normal,
        thousand_idle,
    ),
];

/// How long any one program may take here (generous: TCG on a busy host).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Waits for a process to end, at most [`PATIENCE`].
pub async fn ended(pid: u32, handle: JoinHandle<Exit>) -> Result<Exit, String> {
    match select(handle, core::pin::pin!(sleep(PATIENCE))).await {
        Either::Left((exit, _)) => Ok(exit),
        Either::Right(_) => Err(format!("process {pid} still running after {PATIENCE:?}")),
    }
}

/// Kills process `pid` (`what` in messages) and waits for it to end
/// killed.
pub fn kill_and_join(pid: u32, handle: JoinHandle<Exit>, what: &str) -> Result<(), String> {
    if !process::kill(pid) {
        return Err(format!("kill {what} {pid}: no such process"));
    }
    match block_on(ended(pid, handle))? {
        Exit::Killed => Ok(()),
        other => Err(format!("{what} {pid} ended {other:?}, expected killed")),
    }
}

/// Runs `name` with `args` on `core` to its end.
pub fn run(name: &str, core: CoreId, args: &str) -> Result<Exit, String> {
    let (pid, handle) =
        syscall::spawn(name, core, args).map_err(|e| format!("spawn {name}: {e:?}"))?;
    block_on(ended(pid, handle))
}

pub fn expect_code(name: &str, exit: Exit, code: i64) -> Result<(), String> {
    match exit {
        Exit::Code(c) if c == code => Ok(()),
        other => Err(format!(
            "{name}: ended {other:?}, expected exit code {code}"
        )),
    }
}

/// `hello` exits with the code it is given, on every core.
fn hello(_: &Kernel) -> Result<(), String> {
    start_reactors();
    for core in 0..cores() {
        let code = 40 + i64::from(core);
        let exit = run("hello", CoreId(core), &format!("{code}"))?;
        expect_code("hello", exit, code)?;
    }
    if process::count() != 0 {
        return Err(format!("{} processes left", process::count()));
    }
    Ok(())
}

/// Images that are not programs are refused with their reason, and
/// nothing is left behind.
fn bad_images(_: &Kernel) -> Result<(), String> {
    start_reactors();
    let frames = user::frames_in_use();
    let hello = process::image::find("hello").ok_or("no hello in the boot archive")?;
    // The first program header's file size, far past the end of the file.
    let mut outside = Vec::from(hello.bytes);
    outside[64 + 32..64 + 40].copy_from_slice(&0x1000_0000u64.to_le_bytes());
    let cases: [(&str, &[u8], ElfError); 3] = [
        (
            "garbage",
            b"this is not an ELF file, not even close".as_slice(),
            ElfError::Malformed,
        ),
        (
            "cut in its headers",
            &hello.bytes[..100],
            ElfError::Malformed,
        ),
        (
            "segment outside the file",
            &outside,
            ElfError::SegmentOutsideFile,
        ),
    ];
    for (what, bytes, error) in cases {
        match syscall::spawn_image(what, bytes, CoreId(0), "") {
            Err(SpawnError::Image(e)) if e == error => {}
            Err(other) => return Err(format!("{what}: {other:?}, expected {error:?}")),
            Ok(_) => return Err(format!("{what}: started")),
        }
    }
    match syscall::spawn("no-such-program", CoreId(0), "") {
        Err(SpawnError::NotFound) => {}
        other => return Err(format!("unknown program: {:?}", other.map(|(pid, _)| pid))),
    }
    if user::frames_in_use() != frames {
        return Err(format!("frames {} -> {}", frames, user::frames_in_use()));
    }
    Ok(())
}

/// Every bad pointer, length, count, handle and number gets its error
/// (`badptr` checks each and exits with the number of wrong answers).
fn badptr(_: &Kernel) -> Result<(), String> {
    start_reactors();
    let core = CoreId(cores() - 1);
    expect_code("badptr", run("badptr", core, "")?, 0)
}

/// No kernel register value reaches user mode (`regs` checks its
/// registers at start, after a syscall and after being preempted).
fn regs(_: &Kernel) -> Result<(), String> {
    start_reactors();
    for core in [0, cores() - 1] {
        expect_code("regs", run("regs", CoreId(core), "")?, 0)?;
    }
    Ok(())
}

/// `spin` never makes a syscall; on its core a kernel task sleeping 1 ms
/// at a time still makes 50 rounds (the timer preempts `spin`), `spin`
/// gets CPU time, then `kill` ends it.
fn spin(_: &Kernel) -> Result<(), String> {
    spin_with("")
}

/// A thread that makes nothing but quick syscalls (answered without a
/// return to the reactor) is preempted at the end of its slice all the
/// same.
fn syscall_loop(_: &Kernel) -> Result<(), String> {
    spin_with("syscalls")
}

/// A process that sleeps 1 ms at a time for 300 ms: its CPU time (what
/// `ps` shows) counts the polls of its calls, not the sleeps. It used to
/// count each call from its start to its return, sleep included: about
/// the whole 300 ms. Each of its ~300 wake-ups costs tens of µs under
/// TCG, so a quarter of the wall time is a wide margin.
fn cpu_time(_: &Kernel) -> Result<(), String> {
    start_reactors();
    let core = CoreId(cores() - 1);
    let (pid, handle) = syscall::spawn("spin", core, "sleep").map_err(|e| format!("{e:?}"))?;
    let wall = Duration::from_millis(300);
    block_on(sleep(wall));
    let cpu_ns = process::list()
        .iter()
        .find(|p| p.pid == pid)
        .map(|p| p.cpu_ns.load(core::sync::atomic::Ordering::Relaxed));
    kill_and_join(pid, handle, "spin sleep")?;
    let cpu_ns = cpu_ns.ok_or(format!("process {pid} not listed"))?;
    let limit = wall.as_nanos() as u64 / 4;
    if cpu_ns == 0 || cpu_ns > limit {
        return Err(format!(
            "`spin sleep` over {wall:?}: cpu time {cpu_ns} ns, want more than 0 and at most {limit} ns"
        ));
    }
    Ok(())
}

/// A thread that makes nothing but syscalls that go through its task and
/// return at once (`poll_wait` with a zero timeout) still lets its core's
/// reactor turn every slice: 20 round trips with a task pinned to that
/// core complete (each used to wait until some timer of the core was due,
/// since every such call started the slice again).
fn slow_syscall_loop(_: &Kernel) -> Result<(), String> {
    start_reactors();
    let core = CoreId(cores() - 1);
    let (pid, handle) = syscall::spawn("spin", core, "pollwait").map_err(|e| format!("{e:?}"))?;
    let (Ok((mut to_far, mut at_far)), Ok((mut back, mut at_home))) = (
        percore_kernel::ipc::channel::channel::<u64>(4),
        percore_kernel::ipc::channel::channel::<u64>(4),
    ) else {
        return Err(String::from("no channel"));
    };
    let echo = spawn_with(core, pinned(), async move {
        while let Some(v) = at_far.recv().await {
            back.send(v).await;
        }
    });
    let trips = block_on(async {
        let trips = async {
            for i in 0..20u64 {
                to_far.send(i).await;
                if at_home.recv().await != Some(i) {
                    return Err(format!("round trip {i}: wrong answer"));
                }
            }
            Ok(())
        };
        match select(
            core::pin::pin!(trips),
            core::pin::pin!(sleep(Duration::from_secs(10))),
        )
        .await
        {
            Either::Left((result, _)) => result,
            Either::Right(_) => Err(format!(
                "20 round trips with a task on core {core} did not complete in 10 s while `spin pollwait` ran there"
            )),
        }
    });
    let killed = kill_and_join(pid, handle, "spin pollwait");
    drop(to_far);
    block_on(echo);
    trips?;
    killed
}

/// Runs `spin ARGS` on the last core, checks that a kernel task there
/// keeps its 1 ms rounds, then kills it.
fn spin_with(args: &str) -> Result<(), String> {
    start_reactors();
    let core = CoreId(cores() - 1);
    let (pid, handle) = syscall::spawn("spin", core, args).map_err(|e| format!("{e:?}"))?;
    static ROUNDS: AtomicU64 = AtomicU64::new(0);
    ROUNDS.store(0, Ordering::Relaxed);
    let ticker = spawn_with(core, pinned(), async {
        for _ in 0..50 {
            sleep(Duration::from_millis(1)).await;
            ROUNDS.fetch_add(1, Ordering::Relaxed);
        }
    });
    block_on(async {
        match select(ticker, core::pin::pin!(sleep(PATIENCE))).await {
            Either::Left(_) => Ok(()),
            Either::Right(_) => Err(format!(
                "the kernel task on core {core} made {} of 50 rounds while spin ran",
                ROUNDS.load(Ordering::Relaxed)
            )),
        }
    })?;
    let cpu_ns = process::list()
        .iter()
        .find(|p| p.pid == pid)
        .map(|p| p.cpu_ns.load(Ordering::Relaxed))
        .ok_or("spin is gone before kill")?;
    if cpu_ns == 0 {
        return Err(String::from("spin got no CPU time"));
    }
    kill_and_join(pid, handle, "spin")
}

/// Two threads on one core fill their SSE registers with different values
/// and check them after each of 4000 syscalls (quick ones keep the state
/// in the registers, yields let the other thread run): each sees only its
/// own, and a third started afterwards sees zeros.
fn sse(_: &Kernel) -> Result<(), String> {
    start_reactors();
    let core = CoreId(cores() - 1);
    let mut running = Vec::new();
    for seed in ["1", "2"] {
        let spawned =
            syscall::spawn("fpu", core, seed).map_err(|e| format!("fpu {seed}: {e:?}"))?;
        running.push((seed, spawned));
    }
    for (seed, (pid, handle)) in running {
        expect_code(&format!("fpu {seed}"), block_on(ended(pid, handle))?, 0)?;
    }
    expect_code("fpu 3", run("fpu", core, "3")?, 0)
}

/// The copy routine itself (below `umem`'s checks, which would refuse
/// these ranges first): a copy that runs into an unmapped page stops
/// there and says how much it left, in both directions, for lengths that
/// end in the 32-byte loop and in the byte tail; the kernel goes on.
fn copy_faults(_: &Kernel) -> Result<(), String> {
    use percore_kernel::arch::user::Access;
    use percore_kernel::process::vm::AddressSpace;
    const BASE: u64 = 0x40_0000;
    let mut space = AddressSpace::new().map_err(|e| format!("{e:?}"))?;
    space
        .map_zeroed(BASE, 4096, Access::ReadWrite)
        .map_err(|e| format!("{e:?}"))?;
    space.activate();
    let pattern: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
    // SAFETY: the page is mapped writable in the active table.
    let left = unsafe { user::copy_to_user(BASE, &pattern) };
    if left != 0 {
        return Err(format!("a copy into a mapped page left {left} bytes"));
    }
    // Starting `before` bytes below the unmapped page, `len` bytes long.
    for (before, len) in [
        (40usize, 100usize),
        (64, 64 + 5),
        (3, 10),
        (0, 1),
        (4096, 8192),
    ] {
        let at = BASE + 4096 - before as u64;
        let mut back = vec![0u8; len];
        // SAFETY: user addresses of the active table; the fault is fixed up.
        let left = unsafe { user::copy_from_user(&mut back, at) };
        let copied = len - left;
        if left < len - before || copied > before || before - copied >= 32 {
            return Err(format!(
                "reading {len} bytes {before} below an unmapped page: {left} left"
            ));
        }
        if back[..copied] != pattern[4096 - before..4096 - before + copied] {
            return Err(format!(
                "reading {len} bytes {before} below the end: wrong bytes"
            ));
        }
        // The mapped part gets the bytes it holds, so the page stays as it was.
        let mut src = pattern[4096 - before..].to_vec();
        src.resize(len, 0xEE);
        // SAFETY: as above.
        let left = unsafe { user::copy_to_user(at, &src) };
        if left < len - before || len - left > before {
            return Err(format!(
                "writing {len} bytes {before} below an unmapped page: {left} left"
            ));
        }
    }
    // SAFETY: nothing mapped there at all.
    let left = unsafe { user::copy_from_user(&mut [0u8; 16], BASE + 0x10_0000) };
    if left != 16 {
        return Err(format!("a copy from an unmapped page left {left} of 16"));
    }
    Ok(())
}

/// Each forbidden access kills its process with the right exception,
/// on every core, while a canary (on the last core) keeps its memory.
fn faults(_: &Kernel) -> Result<(), String> {
    start_reactors();
    let n = cores();
    let (canary, canary_end) =
        syscall::spawn("canary", CoreId(n - 1), "40").map_err(|e| format!("canary: {e:?}"))?;
    const PF: u8 = 14;
    let cases: [(&str, u8); 10] = [
        ("read-kernel", PF),
        ("write-kernel", PF),
        ("exec-kernel", PF),
        ("exec-data", PF),
        ("exec-stack", PF),
        ("write-text", PF),
        ("null", PF),
        ("ud", 6),
        ("divide", 0),
        ("privileged", 13),
    ];
    for (i, (case, vector)) in cases.iter().enumerate() {
        let core = CoreId(i as u16 % n);
        match run("badmem", core, case)? {
            Exit::Fault(fault) if fault.vector == *vector => {}
            other => {
                return Err(format!(
                    "badmem {case}: ended {other:?}, expected vector {vector}"
                ));
            }
        }
    }
    expect_code("canary", block_on(ended(canary, canary_end))?, 0)
}

/// The shell's `run`, `ps` and `kill`.
fn shell_commands(_: &Kernel) -> Result<(), String> {
    start_reactors();
    let core = cores() - 1;
    let started = block_on(shell::commands::execute(&format!("run spin {core}")));
    let pid: u32 = started
        .split_whitespace()
        .skip_while(|w| *w != "pid")
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("`run spin` said: {started}"))?;
    block_on(sleep(Duration::from_millis(20)));
    let ps = block_on(shell::commands::execute("ps"));
    let row = ps
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&format!("{pid}")))
        .ok_or_else(|| format!("ps shows no pid {pid}:\n{ps}"))?;
    if !row.contains("spin") || !row.contains("running") {
        return Err(format!("ps row for spin: {row}"));
    }
    let killed = block_on(shell::commands::execute(&format!("kill {pid}")));
    if !killed.contains("killing") {
        return Err(format!("kill said: {killed}"));
    }
    block_on(async {
        for _ in 0..1000 {
            if process::list().iter().all(|p| p.pid != pid) {
                return Ok(());
            }
            sleep(Duration::from_millis(5)).await;
        }
        Err(format!("process {pid} still listed after kill"))
    })
}

/// Rounds of processes on every core at once (each opens handles and
/// leaves some open), all ending: afterwards no frame, process or heap
/// byte more than before.
fn no_leaks(_: &Kernel) -> Result<(), String> {
    start_reactors();
    // Two rounds of the same shape warm up what grows once and is kept
    // (task slots of each core's tree, timer wheel levels, queues).
    round_of_processes(0)?;
    round_of_processes(0)?;
    leak_rounds("user_processes_leak_nothing", 5, round_of_processes)
}

/// Runs `round` for rounds 1 to `rounds` (after the caller's warm-up):
/// after each, no frame and no process more than before, and the heap
/// does not grow round after round. A leak grows with every round (a
/// per-process one by at least the processes of a round times a few
/// bytes); a kernel structure that grows once in a while (a queue
/// doubling) does not. The figures are logged under `name` either way.
pub fn leak_rounds(
    name: &str,
    rounds: u32,
    mut round: impl FnMut(u32) -> Result<(), String>,
) -> Result<(), String> {
    let frames = user::frames_in_use();
    let heap = percore_kernel::mem::heap::used_bytes();
    let mut growth = Vec::new();
    for r in 1..=rounds {
        round(r)?;
        growth.push(percore_kernel::mem::heap::used_bytes() as i64 - heap as i64);
        let frames_now = user::frames_in_use();
        if frames_now != frames || process::count() != 0 {
            return Err(format!(
                "round {r}: frames {frames} -> {frames_now}, {} processes left",
                process::count()
            ));
        }
    }
    log::info!("{name}: heap {heap} bytes, then {growth:?} more");
    if growth[0] > 0 && growth.windows(2).all(|w| w[1] > w[0]) {
        return Err(format!(
            "heap grows round after round: {heap} bytes, then {growth:?} more"
        ));
    }
    Ok(())
}

/// 1000 idle processes (`ubench idle`: a 64-entry ring, then asleep)
/// spread over the cores, all alive and blocked at once; killed, they give
/// back every frame. Prints what one costs (the bench's idle-process
/// figure, here measured over 1000).
fn thousand_idle(_: &Kernel) -> Result<(), String> {
    const COUNT: usize = 1000;
    start_reactors();
    let frames = user::frames_in_use();
    let heap = percore_kernel::mem::heap::used_bytes();
    let mut running = Vec::with_capacity(COUNT);
    for i in 0..COUNT {
        let core = CoreId((i % usize::from(cores())) as u16);
        match syscall::spawn("ubench", core, "idle") {
            Ok(spawned) => running.push(spawned),
            Err(e) => {
                for (pid, _) in &running {
                    process::kill(*pid);
                }
                return Err(format!("process {i} of {COUNT}: spawn: {e:?}"));
            }
        }
    }
    // Each is idle once it made its ring and sleeps.
    let settled = block_on(async {
        for _ in 0..2000 {
            let list = process::list();
            if list.len() == COUNT && list.iter().all(|p| p.state() == process::State::Blocked) {
                return true;
            }
            sleep(Duration::from_millis(10)).await;
        }
        false
    });
    let (frames_all, heap_all) = (
        user::frames_in_use(),
        percore_kernel::mem::heap::used_bytes(),
    );
    let blocked = process::list()
        .iter()
        .filter(|p| p.state() == process::State::Blocked)
        .count();
    for (pid, _) in &running {
        process::kill(*pid);
    }
    for (pid, handle) in running {
        if block_on(ended(pid, handle))? != Exit::Killed {
            return Err(format!("pid {pid} did not end killed"));
        }
    }
    if !settled {
        return Err(format!("{blocked} of {COUNT} processes idle after 20 s"));
    }
    let per_frames = (frames_all - frames) * 4 / COUNT as u64;
    let per_heap = heap_all.saturating_sub(heap) / 1024 / COUNT;
    percore_kernel::println!(
        "{COUNT} idle processes: {per_frames} KiB of frames and {per_heap} KiB of heap each"
    );
    let frames_now = user::frames_in_use();
    if frames_now != frames || process::count() != 0 {
        return Err(format!(
            "after the kills: frames {frames} -> {frames_now}, {} processes left",
            process::count()
        ));
    }
    Ok(())
}

/// Three processes on every core at once (`hello`, `badptr`, which leaves
/// a timer handle open, and `hello`), all run to a clean exit.
fn round_of_processes(round: u32) -> Result<(), String> {
    let mut running = Vec::new();
    for core in 0..cores() {
        for program in ["hello", "badptr", "hello"] {
            running.push(
                syscall::spawn(program, CoreId(core), "0")
                    .map_err(|e| format!("round {round}: spawn {program}: {e:?}"))?,
            );
        }
    }
    for (pid, handle) in running {
        match block_on(ended(pid, handle))? {
            Exit::Code(0) => {}
            other => return Err(format!("round {round}: pid {pid} ended {other:?}")),
        }
    }
    Ok(())
}
