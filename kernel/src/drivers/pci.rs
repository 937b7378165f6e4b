//! PCI enumeration: every function on every bus reachable from bus 0
//! (following PCI-to-PCI bridges), with its ids, class, BARs and
//! capabilities (MSI-X table size and location), read once at boot through
//! `arch::pci` (ECAM or port I/O). Config-space layouts come from the
//! `pci_types` crate.
//!
//! BARs are sized the standard way (write all ones, read back, restore)
//! with the function's memory and I/O decoding switched off meanwhile, so
//! the device never decodes a half-written address.

use alloc::vec::Vec;
use core::fmt;

use pci_types::capability::PciCapability;
use pci_types::{
    Bar, CommandRegister, ConfigRegionAccess, EndpointHeader, HeaderType, PciAddress, PciHeader,
    PciPciBridgeHeader,
};

use crate::arch::pci::{self, ConfigSpace};

/// A bus/device/function address (segment 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bdf {
    pub bus: u8,
    pub device: u8,
    pub function: u8,
}

impl fmt::Display for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus, self.device, self.function)
    }
}

impl Bdf {
    fn address(self) -> PciAddress {
        PciAddress::new(0, self.bus, self.device, self.function)
    }
}

/// One decoded base address register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Region {
    /// Memory space: physical address, size, prefetchable, 64-bit.
    Memory {
        address: u64,
        size: u64,
        prefetchable: bool,
        wide: bool,
    },
    /// I/O port space.
    Io { port: u32 },
}

/// Where a function's MSI-X table lives and how many vectors it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msix {
    pub vectors: u16,
    pub table_bar: u8,
    pub table_offset: u32,
}

/// One PCI function, as enumeration found it.
#[derive(Clone, Debug)]
pub struct Function {
    pub bdf: Bdf,
    pub vendor: u16,
    pub device: u16,
    pub class: u8,
    pub subclass: u8,
    pub interface: u8,
    pub revision: u8,
    /// Decoded BARs by slot (a 64-bit BAR takes two slots; the second is absent).
    pub bars: Vec<(u8, Region)>,
    /// Capability ids, in list order.
    pub capabilities: Vec<u8>,
    pub msix: Option<Msix>,
    /// A PCI-to-PCI bridge (its secondary bus was scanned too).
    pub bridge: bool,
}

static FUNCTIONS: spin::Once<Vec<Function>> = spin::Once::new();

/// Enumerates every function once (at boot) and logs one line per function.
pub fn init() {
    let functions = FUNCTIONS.call_once(|| {
        let mut found = Vec::new();
        scan_bus(0, &mut found, 0);
        found
    });
    log::info!(
        "pci: {} functions through {:?}",
        functions.len(),
        pci::mechanism()
    );
    for f in functions {
        log::info!(
            "pci {} {:04x}:{:04x} class {:02x}.{:02x}.{:02x}{}{}",
            f.bdf,
            f.vendor,
            f.device,
            f.class,
            f.subclass,
            f.interface,
            f.msix
                .map(|m| alloc::format!(" msix {}", m.vectors))
                .unwrap_or_default(),
            if f.bridge { " bridge" } else { "" }
        );
    }
}

/// The functions found at boot (empty before [`init`]).
pub fn functions() -> &'static [Function] {
    FUNCTIONS.get().map_or(&[], Vec::as_slice)
}

/// Bridges can nest; a loop in a broken topology must not recurse forever.
const MAX_BRIDGE_DEPTH: usize = 16;

fn scan_bus(bus: u8, found: &mut Vec<Function>, depth: usize) {
    for device in 0..32 {
        let first = Bdf {
            bus,
            device,
            function: 0,
        };
        let header = PciHeader::new(first.address());
        if header.id(ConfigSpace).0 == 0xFFFF {
            continue;
        }
        let functions = if header.has_multiple_functions(ConfigSpace) {
            0..8
        } else {
            0..1
        };
        for function in functions {
            let bdf = Bdf {
                bus,
                device,
                function,
            };
            if let Some(f) = read_function(bdf) {
                let secondary = f.bridge.then(|| {
                    PciPciBridgeHeader::from_header(PciHeader::new(bdf.address()), ConfigSpace)
                        .map(|b| b.secondary_bus_number(ConfigSpace))
                });
                found.push(f);
                if let Some(Some(secondary)) = secondary
                    && secondary > bus
                    && depth < MAX_BRIDGE_DEPTH
                {
                    scan_bus(secondary, found, depth + 1);
                }
            }
        }
    }
}

fn read_function(bdf: Bdf) -> Option<Function> {
    let header = PciHeader::new(bdf.address());
    let (vendor, device) = header.id(ConfigSpace);
    if vendor == 0xFFFF {
        return None;
    }
    let (revision, class, subclass, interface) = header.revision_and_class(ConfigSpace);
    let mut function = Function {
        bdf,
        vendor,
        device,
        class,
        subclass,
        interface,
        revision,
        bars: Vec::new(),
        capabilities: Vec::new(),
        msix: None,
        bridge: header.header_type(ConfigSpace) == HeaderType::PciPciBridge,
    };
    if let Some(endpoint) = EndpointHeader::from_header(header, ConfigSpace) {
        function.bars = read_bars(&endpoint);
        for capability in endpoint.capabilities(ConfigSpace) {
            function.capabilities.push(capability_id(&capability, bdf));
            if let PciCapability::MsiX(msix) = capability {
                function.msix = Some(Msix {
                    vectors: msix.table_size(),
                    table_bar: msix.table_bar(),
                    table_offset: msix.table_offset(),
                });
            }
        }
    }
    Some(function)
}

/// The capability's id byte, read from its header.
fn capability_id(capability: &PciCapability, bdf: Bdf) -> u8 {
    let offset = capability.address().offset;
    // SAFETY: `offset` is a capability header the capability list named.
    (unsafe { ConfigSpace.read(bdf.address(), offset) } & 0xFF) as u8
}

/// Sizes every BAR with decoding off, then restores the command register.
fn read_bars(endpoint: &EndpointHeader) -> Vec<(u8, Region)> {
    let mut endpoint_mut = EndpointHeader::from_header(endpoint.header(), ConfigSpace)
        .expect("the same header is still an endpoint");
    let command = endpoint.command(ConfigSpace);
    endpoint_mut.update_command(ConfigSpace, |c| {
        c - (CommandRegister::IO_ENABLE | CommandRegister::MEMORY_ENABLE)
    });
    let mut bars = Vec::new();
    let mut slot = 0;
    while slot < 6 {
        let region = match endpoint.bar(slot, ConfigSpace) {
            Some(Bar::Memory32 {
                address,
                size,
                prefetchable,
            }) => Some(Region::Memory {
                address: u64::from(address),
                size: u64::from(size),
                prefetchable,
                wide: false,
            }),
            Some(Bar::Memory64 {
                address,
                size,
                prefetchable,
            }) => Some(Region::Memory {
                address,
                size,
                prefetchable,
                wide: true,
            }),
            Some(Bar::Io { port }) => Some(Region::Io { port }),
            None => None,
        };
        let wide = matches!(region, Some(Region::Memory { wide: true, .. }));
        bars.extend(region.map(|region| (slot, region)));
        slot += if wide { 2 } else { 1 };
    }
    endpoint_mut.update_command(ConfigSpace, |_| command);
    bars
}
