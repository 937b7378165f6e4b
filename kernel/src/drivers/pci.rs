//! PCI enumeration: every function on every bus reachable from bus 0
//! (following PCI-to-PCI bridges), with its ids, class, BARs and
//! capabilities (MSI-X table size and location), read once at boot through
//! `arch::pci` (ECAM or port I/O). Config-space layouts come from the
//! `pci_types` crate.
//!
//! BARs are sized the standard way (write all ones, read back, restore)
//! with the function's memory and I/O decoding switched off meanwhile, so
//! the device never decodes a half-written address.
//!
//! MSI-X ([`MsixTable`]): a driver maps a function's vector table (in one
//! of its memory BARs) uncached, programs entries with the messages
//! `arch::irq` makes for a target core, unmasks them, and enables MSI-X in
//! the capability's message control register. Tables a driver mapped are
//! remembered, so the `pci` shell command can read every entry back.
//! There is no INTx fallback (IOAPIC-routed PCI lines): every device
//! percore drives (QEMU's virtio devices) has MSI-X, and a driver refuses
//! a device without it.

use alloc::vec::Vec;
use core::fmt;

use pci_types::capability::PciCapability;
use pci_types::{
    Bar, CommandRegister, ConfigRegionAccess, EndpointHeader, HeaderType, PciAddress, PciHeader,
    PciPciBridgeHeader,
};

use crate::arch::CoreId;
use crate::arch::irq::{self, MsiMessage};
use crate::arch::mmio;
use crate::arch::pci::{self, ConfigSpace};
use crate::mem::MemoryError;

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
    /// The `pci_types` address of this function.
    pub fn address(self) -> PciAddress {
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
    /// Offset of the capability in configuration space.
    pub capability: u16,
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
    /// Configuration-space offsets of the vendor-specific capabilities
    /// (id 9; virtio describes its register blocks with them).
    pub vendor_capabilities: Vec<u16>,
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
        vendor_capabilities: Vec::new(),
        msix: None,
        bridge: header.header_type(ConfigSpace) == HeaderType::PciPciBridge,
    };
    if let Some(endpoint) = EndpointHeader::from_header(header, ConfigSpace) {
        function.bars = read_bars(&endpoint);
        for capability in endpoint.capabilities(ConfigSpace) {
            function.capabilities.push(capability_id(&capability, bdf));
            if let PciCapability::Vendor(address) = capability {
                function.vendor_capabilities.push(address.offset);
            }
            if let PciCapability::MsiX(msix) = capability {
                function.msix = Some(Msix {
                    vectors: msix.table_size(),
                    table_bar: msix.table_bar(),
                    table_offset: msix.table_offset(),
                    capability: capability.address().offset,
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

/// Why a function's MSI-X table cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsixError {
    /// The function has no MSI-X capability.
    NoMsix,
    /// The table's BAR is not a memory BAR, or the table does not fit in it.
    BadTableBar(u8),
    /// Mapping the table failed.
    Map(MemoryError),
    /// No such entry in the table.
    NoEntry(u16),
}

/// Bytes per MSI-X table entry: address low, address high, data, vector control.
const ENTRY_SIZE: u64 = 16;
/// Vector control bit 0: the entry is masked.
const ENTRY_MASKED: u32 = 1;
/// Message control (bits 16..32 of the capability's first dword): enable
/// and function mask.
const MSIX_ENABLE: u32 = 1 << 31;
const MSIX_FUNCTION_MASK: u32 = 1 << 30;

/// A function's MSI-X vector table, mapped uncached.
#[derive(Clone, Copy, Debug)]
pub struct MsixTable {
    bdf: Bdf,
    capability: u16,
    base: u64,
    entries: u16,
}

/// Tables drivers mapped, for the `pci` command.
static TABLES: spin::Mutex<Vec<MsixTable>> = spin::Mutex::new(Vec::new());

impl Function {
    /// Maps this function's MSI-X table (once; later calls return the same
    /// mapping), every entry still as the device reset it (masked).
    pub fn msix_table(&self) -> Result<MsixTable, MsixError> {
        let msix = self.msix.ok_or(MsixError::NoMsix)?;
        if let Some(table) = TABLES.lock().iter().find(|t| t.bdf == self.bdf) {
            return Ok(*table);
        }
        let bar = self
            .bars
            .iter()
            .find(|(slot, _)| *slot == msix.table_bar)
            .map(|(_, region)| *region);
        let bytes = u64::from(msix.vectors) * ENTRY_SIZE;
        let phys = match bar {
            Some(Region::Memory { address, size, .. })
                if u64::from(msix.table_offset) + bytes <= size && address != 0 =>
            {
                address + u64::from(msix.table_offset)
            }
            _ => return Err(MsixError::BadTableBar(msix.table_bar)),
        };
        let region = mmio::map(phys, bytes).map_err(MsixError::Map)?;
        let table = MsixTable {
            bdf: self.bdf,
            capability: msix.capability,
            base: region.base,
            entries: msix.vectors,
        };
        TABLES.lock().push(table);
        Ok(table)
    }

    /// Lets the function decode its memory BARs and master the bus (DMA,
    /// and MSI-X messages, which are memory writes).
    pub fn enable_bus_master(&self) {
        if let Some(mut endpoint) =
            EndpointHeader::from_header(PciHeader::new(self.bdf.address()), ConfigSpace)
        {
            endpoint.update_command(ConfigSpace, |c| {
                c | CommandRegister::MEMORY_ENABLE | CommandRegister::BUS_MASTER_ENABLE
            });
        }
    }
}

impl MsixTable {
    /// Entries in the table.
    pub fn entries(&self) -> u16 {
        self.entries
    }

    fn entry(&self, entry: u16) -> Result<*mut u32, MsixError> {
        if entry >= self.entries {
            return Err(MsixError::NoEntry(entry));
        }
        Ok((self.base + u64::from(entry) * ENTRY_SIZE) as *mut u32)
    }

    /// Programs `entry` with `message`, masked (unmask it with [`mask`](Self::mask)).
    pub fn program(&self, entry: u16, message: MsiMessage) -> Result<(), MsixError> {
        let at = self.entry(entry)?;
        // SAFETY: `at` is an entry of the mapped, uncached table (`entry`);
        // it is masked before its address and data change.
        unsafe {
            at.add(3).write_volatile(ENTRY_MASKED);
            at.write_volatile(message.address as u32);
            at.add(1).write_volatile((message.address >> 32) as u32);
            at.add(2).write_volatile(message.data);
        }
        Ok(())
    }

    /// Masks (`true`) or unmasks `entry`.
    pub fn mask(&self, entry: u16, masked: bool) -> Result<(), MsixError> {
        let at = self.entry(entry)?;
        // SAFETY: as in `program`.
        unsafe { at.add(3).write_volatile(u32::from(masked) * ENTRY_MASKED) };
        Ok(())
    }

    /// What `entry` holds: its message and whether it is masked.
    pub fn read(&self, entry: u16) -> Result<(MsiMessage, bool), MsixError> {
        let at = self.entry(entry)?;
        // SAFETY: as in `program`; reads have no side effects.
        let (low, high, data, control) = unsafe {
            (
                at.read_volatile(),
                at.add(1).read_volatile(),
                at.add(2).read_volatile(),
                at.add(3).read_volatile(),
            )
        };
        let address = u64::from(low) | (u64::from(high) << 32);
        Ok((MsiMessage { address, data }, control & ENTRY_MASKED != 0))
    }

    /// Switches MSI-X on (`true`, function mask off) or off for the function.
    pub fn set_enabled(&self, on: bool) {
        let address = self.bdf.address();
        // SAFETY: the capability's first dword (id, next, message control);
        // id and next are read-only, so writing them back changes nothing.
        unsafe {
            let dword = ConfigSpace.read(address, self.capability);
            let dword = match on {
                true => (dword | MSIX_ENABLE) & !MSIX_FUNCTION_MASK,
                false => dword & !MSIX_ENABLE,
            };
            ConfigSpace.write(address, self.capability, dword);
        }
    }

    /// Whether MSI-X is on for the function.
    pub fn enabled(&self) -> bool {
        // SAFETY: reading the capability's first dword.
        let dword = unsafe { ConfigSpace.read(self.bdf.address(), self.capability) };
        dword & MSIX_ENABLE != 0 && dword & MSIX_FUNCTION_MASK == 0
    }
}

/// The MSI-X table a driver mapped for `bdf`, if any.
pub fn msix_table(bdf: Bdf) -> Option<MsixTable> {
    TABLES.lock().iter().find(|t| t.bdf == bdf).copied()
}

/// Entry `entry` of `bdf`'s table as a target: the core its message goes
/// to (`None`: masked, or not a message `arch::irq` made) and the vector.
pub fn msix_route(table: &MsixTable, entry: u16) -> Option<(CoreId, u8)> {
    let (message, masked) = table.read(entry).ok()?;
    if masked {
        return None;
    }
    Some((irq::msi_target(message)?, message.data as u8))
}
