//! The percore kernel: a bare-metal, per-core reactor microkernel for x86_64 SMP.
//!
//! This crate is a library so that two binaries share one boot path: the kernel
//! itself (`src/main.rs`) and the in-QEMU test kernel (`tests/`). Its modules
//! are layers that only point down (`cargo xtask lint` checks it):
//!
//! ```text
//! libs -> mem -> arch -> time -> console -> fatal -> reactor -> ipc, drivers
//!      -> process, storage, net -> syscall -> shell -> boot
//! ```
//!
//! [`arch`] is the only module that knows the CPU; on the host it is a
//! simulation, so the layers above it run as host unit tests
//! (`cargo test -p percore-kernel --target x86_64-unknown-linux-gnu`).
#![no_std]

extern crate alloc;

pub mod arch;
#[cfg(target_os = "none")]
pub mod boot;
pub mod console;
pub mod drivers;
pub mod fatal;
pub mod ipc;
pub mod measure;
pub mod mem;
pub mod net;
pub mod process;
pub mod reactor;
pub mod shell;
pub mod storage;
pub mod syscall;
pub mod time;

#[cfg(target_os = "none")]
pub use boot::{BOOTLOADER_CONFIG, Kernel, init};
