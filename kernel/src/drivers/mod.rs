//! Device drivers: each device is an event source in the readiness queue
//! of the core its interrupt goes to.

pub mod fw_cfg;
pub mod input;
pub mod keyboard;
pub mod pci;
pub mod screen;
pub mod uart;
pub mod virtio;
