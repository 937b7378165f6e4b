//! Device drivers.

pub mod fw_cfg;
pub mod qemu_exit;
pub mod uart;
