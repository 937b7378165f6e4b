//! PCI configuration space: PCI Express ECAM (memory-mapped, from the
//! ACPI MCFG table) where the firmware describes it, the legacy port I/O
//! mechanism (`0xCF8`/`0xCFC`, the first 256 bytes of segment 0) otherwise.
//!
//! ECAM windows are mapped uncached one bus (1 MiB) at a time, the first
//! time a bus is touched: enumeration follows bridges, so only buses that
//! exist get mapped.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use pci_types::{ConfigRegionAccess, PciAddress};

use super::acpi::{EcamRegion, Platform};
use super::paging;

const CONFIG_ADDRESS: u16 = 0xCF8;
const CONFIG_DATA: u16 = 0xCFC;
/// Bytes of configuration space per bus in ECAM.
const BUS_WINDOW: u64 = 1 << 20;

/// How configuration space is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// PCI Express ECAM (memory-mapped; 4 KiB per function).
    Ecam,
    /// Port I/O mechanism #1 (256 bytes per function, segment 0 only).
    PortIo,
}

struct Ecam {
    region: EcamRegion,
    /// Virtual address of each bus's window once mapped (0: not yet).
    windows: Vec<AtomicU64>,
}

static ECAM: spin::Once<Vec<Ecam>> = spin::Once::new();
/// Serialises window mapping and port I/O (whose address/data pair must
/// not be split by another core).
static LOCK: spin::Mutex<()> = spin::Mutex::new(());

/// Records the ECAM regions ACPI described. Called once at boot.
pub fn init(platform: Option<&Platform>) {
    ECAM.call_once(|| {
        platform
            .map(|p| {
                p.ecam
                    .iter()
                    .map(|&region| Ecam {
                        region,
                        windows: (region.bus_start..=region.bus_end)
                            .map(|_| AtomicU64::new(0))
                            .collect(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    });
}

/// The mechanism in use for segment 0.
pub fn mechanism() -> Mechanism {
    match ECAM
        .get()
        .is_some_and(|e| e.iter().any(|e| e.region.segment == 0))
    {
        true => Mechanism::Ecam,
        false => Mechanism::PortIo,
    }
}

/// Configuration space of every PCI function, through the best mechanism.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConfigSpace;

/// Configuration space through port I/O only (to cross-check ECAM).
#[derive(Clone, Copy, Debug, Default)]
pub struct PortConfigSpace;

/// The ECAM address of `offset` in function `address`, mapping its bus's
/// window on first use; `None` where ECAM does not cover it (or mapping failed).
fn ecam_address(address: PciAddress, offset: u16) -> Option<u64> {
    let ecam = ECAM.get()?.iter().find(|e| {
        e.region.segment == address.segment()
            && (e.region.bus_start..=e.region.bus_end).contains(&address.bus())
    })?;
    let bus = usize::from(address.bus() - ecam.region.bus_start);
    let slot = &ecam.windows[bus];
    let mut window = slot.load(Ordering::Acquire);
    if window == 0 {
        let _guard = LOCK.lock();
        window = slot.load(Ordering::Acquire);
        if window == 0 {
            let phys = ecam.region.base + bus as u64 * BUS_WINDOW;
            window = paging::map_mmio(phys, BUS_WINDOW).ok()?.base;
            slot.store(window, Ordering::Release);
        }
    }
    let function = (u64::from(address.device()) << 15) | (u64::from(address.function()) << 12);
    Some(window + function + u64::from(offset & 0xFFC))
}

fn port_address(address: PciAddress, offset: u16) -> Option<u32> {
    (address.segment() == 0 && offset < 256).then(|| {
        0x8000_0000
            | (u32::from(address.bus()) << 16)
            | (u32::from(address.device()) << 11)
            | (u32::from(address.function()) << 8)
            | u32::from(offset & 0xFC)
    })
}

fn port_read(address: PciAddress, offset: u16) -> u32 {
    let Some(selector) = port_address(address, offset) else {
        return u32::MAX;
    };
    super::cpu::without_interrupts(|| {
        let _guard = LOCK.lock();
        // SAFETY: the PCI configuration ports are owned by this module
        // (under LOCK); a read of an absent function returns all ones.
        unsafe {
            super::io::write_u32(CONFIG_ADDRESS, selector);
            super::io::read_u32(CONFIG_DATA)
        }
    })
}

fn port_write(address: PciAddress, offset: u16, value: u32) {
    let Some(selector) = port_address(address, offset) else {
        return;
    };
    super::cpu::without_interrupts(|| {
        let _guard = LOCK.lock();
        // SAFETY: as in `port_read`; the caller of `ConfigRegionAccess::write`
        // vouches for the register.
        unsafe {
            super::io::write_u32(CONFIG_ADDRESS, selector);
            super::io::write_u32(CONFIG_DATA, value);
        }
    })
}

impl ConfigRegionAccess for ConfigSpace {
    unsafe fn read(&self, address: PciAddress, offset: u16) -> u32 {
        match ecam_address(address, offset) {
            // SAFETY: an aligned dword inside a mapped, uncached ECAM window.
            Some(at) => unsafe { (at as *const u32).read_volatile() },
            None => port_read(address, offset),
        }
    }

    unsafe fn write(&self, address: PciAddress, offset: u16, value: u32) {
        match ecam_address(address, offset) {
            // SAFETY: as in `read`; the caller vouches for the register.
            Some(at) => unsafe { (at as *mut u32).write_volatile(value) },
            None => port_write(address, offset, value),
        }
    }
}

impl ConfigRegionAccess for PortConfigSpace {
    unsafe fn read(&self, address: PciAddress, offset: u16) -> u32 {
        port_read(address, offset)
    }

    unsafe fn write(&self, address: PciAddress, offset: u16, value: u32) {
        port_write(address, offset, value)
    }
}
