//! Tests of PCI enumeration on QEMU's q35 machine: the chipset's functions
//! are found at their fixed addresses through ECAM (ACPI's MCFG), ECAM and
//! port I/O agree on what they read, and BARs are decoded and sized.

use alloc::format;
use alloc::string::String;

use pci_types::{ConfigRegionAccess, PciAddress};
use percore_kernel::Kernel;
use percore_kernel::arch::pci::{self as arch_pci, ConfigSpace, Mechanism, PortConfigSpace};
use percore_kernel::drivers::pci::{self, Bdf, Region};

use crate::harness::{Kind, Test};

/// This file's tests.
pub const TESTS: &[Test] = &[
    Test::new("pci_q35_chipset_found", Kind::Normal, q35_chipset_found),
    Test::new(
        "pci_ecam_agrees_with_port_io",
        Kind::Normal,
        ecam_agrees_with_port_io,
    ),
];

const fn bdf(bus: u8, device: u8, function: u8) -> Bdf {
    Bdf {
        bus,
        device,
        function,
    }
}

/// The q35 host bridge (8086:29c0) at 00:00.0, the ICH9 LPC bridge
/// (8086:2918) at 00:1f.0 and the ICH9 AHCI controller (8086:2922) at
/// 00:1f.2 with its memory BAR 5 (ABAR) sized, all through ECAM; the shell
/// lists them.
pub fn q35_chipset_found(_: &Kernel) -> Result<(), String> {
    if arch_pci::mechanism() != Mechanism::Ecam {
        return Err(String::from(
            "q35 has an MCFG table, but ECAM is not in use",
        ));
    }
    let find = |at: Bdf| pci::functions().iter().find(|f| f.bdf == at);
    for (at, vendor, device, class) in [
        (bdf(0, 0, 0), 0x8086, 0x29c0, 0x06),
        (bdf(0, 0x1f, 0), 0x8086, 0x2918, 0x06),
        (bdf(0, 0x1f, 2), 0x8086, 0x2922, 0x01),
    ] {
        match find(at) {
            Some(f) if (f.vendor, f.device, f.class) == (vendor, device, class) => {}
            other => {
                return Err(format!(
                    "{at}: expected {vendor:04x}:{device:04x} class {class:02x}, found {other:?}"
                ));
            }
        }
    }
    let ahci = find(bdf(0, 0x1f, 2)).ok_or("no AHCI")?;
    match ahci.bars.iter().find(|(slot, _)| *slot == 5) {
        Some((_, Region::Memory { address, size, .. })) if *address != 0 && *size >= 0x1000 => {}
        other => return Err(format!("AHCI BAR 5: {other:?}")),
    }
    let listing =
        percore_kernel::reactor::block_on(percore_kernel::shell::commands::execute("pci"));
    if !listing.lines().any(|l| l.contains("8086:29c0")) {
        return Err(format!("`pci` printed:\n{listing}"));
    }
    percore_kernel::println!("{listing}");
    Ok(())
}

/// For every function found, the first 64 bytes of its configuration space
/// read the same through ECAM and through port I/O; an absent function
/// reads all ones through both.
pub fn ecam_agrees_with_port_io(_: &Kernel) -> Result<(), String> {
    let functions = pci::functions();
    if functions.is_empty() {
        return Err(String::from("no PCI functions found"));
    }
    for f in functions {
        let at = PciAddress::new(0, f.bdf.bus, f.bdf.device, f.bdf.function);
        for offset in (0..64).step_by(4) {
            // SAFETY: reading the standard header of a present function.
            let (ecam, port) = unsafe {
                (
                    ConfigSpace.read(at, offset),
                    PortConfigSpace.read(at, offset),
                )
            };
            // The command/status word can change between the reads (status
            // bits); compare the ids, class and BARs.
            if offset != 4 && ecam != port {
                return Err(format!(
                    "{}: offset {offset:#x} reads {ecam:#x} by ECAM, {port:#x} by port I/O",
                    f.bdf
                ));
            }
        }
    }
    let absent = PciAddress::new(0, 0, 0x1e, 7);
    // SAFETY: reading the vendor id of a function q35 does not have.
    let ids = unsafe { (ConfigSpace.read(absent, 0), PortConfigSpace.read(absent, 0)) };
    if ids != (u32::MAX, u32::MAX) {
        return Err(format!("absent 00:1e.7 reads {ids:x?}"));
    }
    Ok(())
}
