//! The shell's process commands: `run PROGRAM [CORE] [ARGS...]` (start a
//! program of the boot archive; it runs in the background and its exit is
//! logged), `ps` (pid, core, state, handles, CPU time, syscalls, ring
//! submissions), `kill PID`.

use alloc::string::String;
use core::fmt::Write;
use core::sync::atomic::Ordering;

use super::table::Table;
use crate::arch::{CoreId, cpu};
use crate::process::{self, State, image};
use crate::syscall;

/// `run PROGRAM [CORE] [ARGS...]`.
pub fn run(words: &[&str], out: &mut String) {
    let Some(&name) = words.first() else {
        let names: alloc::vec::Vec<&str> = image::all().iter().map(|p| p.name).collect();
        let _ = write!(
            out,
            "usage: run PROGRAM [CORE] [ARGS...]; programs: {}",
            names.join(" ")
        );
        return;
    };
    let (core, args) = match words.get(1).map(|w| w.parse::<u16>()) {
        Some(Ok(core)) => (CoreId(core), &words[2..]),
        _ => (cpu::core_id(), &words[1..]),
    };
    match syscall::spawn(name, core, &args.join(" ")) {
        Ok((pid, _)) => {
            let _ = write!(out, "started {name}: pid {pid} on core {core}");
        }
        Err(error) => {
            let _ = write!(out, "run {name}: {error:?}");
        }
    }
}

/// `ps`.
pub fn ps(out: &mut String) {
    let mut table = Table::new(&[
        "pid", "name", "core", "state", "handles", "cpu_us", "syscalls", "ring_ops",
    ]);
    table.align_left(1);
    table.align_left(3);
    for p in process::list() {
        let state = match p.state() {
            State::Running => "running",
            State::Blocked => "blocked",
        };
        table.row(&[
            &p.pid,
            &p.name,
            &p.core,
            &state,
            &p.handles.load(Ordering::Relaxed),
            &(p.cpu_ns.load(Ordering::Relaxed) / 1000),
            &p.syscalls.load(Ordering::Relaxed),
            &p.ring_ops.load(Ordering::Relaxed),
        ]);
    }
    table.render(out);
}

/// `kill PID`.
pub fn kill(pid: Option<&str>, out: &mut String) {
    match pid.and_then(|p| p.parse::<u32>().ok()) {
        Some(pid) if process::kill(pid) => {
            let _ = write!(out, "killing process {pid}");
        }
        Some(pid) => {
            let _ = write!(out, "no process {pid}");
        }
        None => out.push_str("usage: kill PID"),
    }
}
