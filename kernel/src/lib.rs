//! The percore kernel: a bare-metal, per-core reactor microkernel for x86_64 SMP.
//!
//! This crate is a library so that two binaries share one boot path: the kernel
//! itself (`src/main.rs`) and the in-QEMU test kernel (`tests/`). Hardware code
//! lives in [`arch`]; everything else is written against the interfaces it exports.
#![no_std]

extern crate alloc;

pub mod arch;
pub mod boot;
pub mod console;
pub mod drivers;
pub mod fatal;
pub mod mem;
pub mod reactor;
pub mod tele;
pub mod time;

pub use boot::{BOOTLOADER_CONFIG, Kernel, init};
