//! The virtio 1.x PCI transport ("modern" devices, virtio 1.2 section 4.1):
//! the register blocks the vendor capabilities point at (common
//! configuration, notifications, ISR status, device configuration), the
//! status handshake, 64-bit feature negotiation, per-queue set-up with an
//! MSI-X vector each (read back: a device that answers `NO_VECTOR` could
//! not take it), and reset.
//!
//! The order of initialisation (3.1.1): reset, ACKNOWLEDGE, DRIVER, read
//! and write the features, FEATURES_OK, re-read the status to see that the
//! device kept FEATURES_OK, set up the queues, DRIVER_OK. A driver that
//! fails at any step calls [`Transport::reset`] (the device stops using
//! every queue and forgets its features) and reports the error; the kernel
//! goes on without the device.
//!
//! Register layouts and constants come from the `virtio-spec` crate
//! (`CommonCfg` through `volatile` pointers, `CapData` for capabilities).

use core::ptr::NonNull;

use pci_types::capability::PciCapabilityAddress;
use virtio_spec::pci::CommonCfgVolatileWideFieldAccess;
use virtio_spec::pci::{CapCfgType, CapData, CommonCfg, CommonCfgVolatileFieldAccess};
use virtio_spec::{DeviceStatus, le16, le32, le64};
use volatile::VolatilePtr;

use percore_virtqueue::{DeviceError, Notify};

use crate::arch::mmio;
use crate::arch::pci::ConfigSpace;
use crate::drivers::pci::{Function, MsixError, MsixTable, Region};
use crate::mem::MemoryError;

/// PCI vendor id of virtio devices.
pub const VIRTIO_VENDOR: u16 = 0x1AF4;
/// Modern device ids are 0x1040 + the virtio device id.
pub const MODERN_DEVICE_BASE: u16 = 0x1040;
/// The value of an MSI-X vector field meaning "no vector".
pub const NO_VECTOR: u16 = 0xFFFF;
/// Reads of the status register after a reset before giving up on a
/// device that never shows 0.
const RESET_POLLS: u32 = 1_000_000;
/// Bytes of the common configuration this driver touches (up to the end
/// of `queue_device`; the fields after it belong to features it does not
/// negotiate). The mapping covers whole pages, so the `CommonCfg` pointer
/// never reaches unmapped memory.
const COMMON_CFG_USED: u64 = 56;
/// Attempts at a consistent read of the device configuration.
const GENERATION_RETRIES: u32 = 16;
/// The most of a register block we map (4.1.4: a driver may limit the
/// mapping to 4 KiB; the notify block holds one slot per queue).
const MAX_BLOCK: u64 = 64 * 1024;

/// Why a virtio device could not be driven. The device has been reset
/// when a driver returns one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportError {
    /// A required capability (common, notify, ISR or device configuration) is missing.
    MissingCapability(&'static str),
    /// A capability names a BAR that is not a memory BAR, or a block outside it.
    BadBar(u8),
    /// Mapping a register block failed.
    Map(MemoryError),
    /// The function has no usable MSI-X table.
    Msix(MsixError),
    /// The device did not show status 0 after a reset.
    ResetTimeout,
    /// The device lacks features the driver needs (the missing bits).
    MissingFeatures(u64),
    /// The device cleared FEATURES_OK: it rejects the feature subset.
    FeaturesRejected,
    /// The queue does not exist (size 0) or is already enabled.
    QueueUnavailable(u16),
    /// The device refused the MSI-X vector of this queue (read back `NO_VECTOR`).
    VectorRejected { queue: u16, vector: u16 },
    /// The queue's notification address lies outside the notify block.
    BadNotifyOffset(u16),
    /// The device configuration kept changing while it was read.
    ConfigUnstable,
    /// The device reports DEVICE_NEEDS_RESET or FAILED.
    DeviceFailed,
}

/// One mapped register block: virtual base and length.
#[derive(Clone, Copy, Debug)]
struct Block {
    base: u64,
    len: u64,
}

/// A virtio PCI device's register blocks, mapped uncached.
pub struct Transport {
    function: &'static Function,
    common: Block,
    notify: Block,
    notify_multiplier: u32,
    isr: Block,
    device: Block,
    msix: MsixTable,
    /// Held while `queue_select` picks the queue the next accesses mean.
    select: spin::Mutex<()>,
}

/// The doorbell of one queue: a 16-bit write of the queue's index to its
/// slot of the notify block (4.1.5.2, without NOTIFICATION_DATA).
#[derive(Clone, Copy, Debug)]
pub struct QueueNotify {
    address: u64,
    queue: u16,
}

impl Notify for QueueNotify {
    fn notify(&mut self) {
        // SAFETY: `address` is inside the mapped, uncached notify block
        // (checked in `setup_queue`), 2-aligned by the multiplier's rules.
        unsafe { (self.address as *mut u16).write_volatile(self.queue) };
    }
}

/// What [`Transport::setup_queue`] needs for one queue.
#[derive(Clone, Copy, Debug)]
pub struct QueueConfig {
    pub index: u16,
    pub size: u16,
    /// Device addresses of the descriptor table, driver area, device area.
    pub addresses: [u64; 3],
    /// The MSI-X table entry whose message the queue raises.
    pub msix_entry: u16,
}

impl Transport {
    /// Finds and maps `function`'s register blocks and its MSI-X table. The
    /// device is left as it was (call [`begin`](Self::begin)).
    pub fn new(function: &'static Function) -> Result<Transport, TransportError> {
        let mut found: [Option<(CapData, Block)>; 4] = [None; 4];
        for &offset in &function.vendor_capabilities {
            let at = PciCapabilityAddress {
                address: function.bdf.address(),
                offset,
            };
            let Some(cap) = CapData::read(at, ConfigSpace) else {
                continue;
            };
            let slot = match cap.cfg_type {
                CapCfgType::Common => 0,
                CapCfgType::Notify => 1,
                CapCfgType::Isr => 2,
                CapCfgType::Device => 3,
                _ => continue,
            };
            // 4.1.4: use the first capability of each type.
            if found[slot].is_none() {
                found[slot] = Some((cap, map_block(function, &cap)?));
            }
        }
        let take = |slot: usize, name| found[slot].ok_or(TransportError::MissingCapability(name));
        let (_, common) = take(0, "common configuration")?;
        if common.len < COMMON_CFG_USED {
            return Err(TransportError::MissingCapability(
                "common configuration (too short)",
            ));
        }
        let (notify_cap, notify) = take(1, "notifications")?;
        let (_, isr) = take(2, "ISR status")?;
        let (_, device) = take(3, "device configuration")?;
        let msix = function.msix_table().map_err(TransportError::Msix)?;
        function.enable_bus_master();
        Ok(Transport {
            function,
            common,
            notify,
            notify_multiplier: notify_cap.notify_off_multiplier.map_or(0, |m| m.to_ne()),
            isr,
            device,
            msix,
            select: spin::Mutex::new(()),
        })
    }

    /// The PCI function.
    pub fn function(&self) -> &'static Function {
        self.function
    }

    /// The function's MSI-X table.
    pub fn msix(&self) -> &MsixTable {
        &self.msix
    }

    fn common(&self) -> VolatilePtr<'_, CommonCfg> {
        let ptr = NonNull::new(self.common.base as *mut CommonCfg).expect("mapped block");
        // SAFETY: the common configuration block is mapped uncached at
        // `base` for as long as the transport lives, in whole pages, and
        // the device's block holds every field used here (COMMON_CFG_USED).
        unsafe { VolatilePtr::new(ptr) }
    }

    fn status(&self) -> DeviceStatus {
        self.common().device_status().read()
    }

    fn set_status(&self, status: DeviceStatus) {
        self.common().device_status().write(status);
    }

    /// Resets the device (status 0) and waits until it reads back 0: the
    /// device then uses no queue and no buffer any more (2.4.1).
    pub fn reset(&self) -> Result<(), TransportError> {
        self.set_status(DeviceStatus::empty());
        for _ in 0..RESET_POLLS {
            if self.status().is_empty() {
                return Ok(());
            }
            core::hint::spin_loop();
        }
        Err(TransportError::ResetTimeout)
    }

    /// A driver's device misbehaved: records `error` as its failure (the
    /// first one only) and resets the device, so it uses no queue any
    /// more. `false` if a failure was already recorded (nothing done; the
    /// driver has already failed its queues).
    pub fn take_out_of_service(
        &self,
        failure: &spin::Once<DeviceError>,
        error: DeviceError,
        driver: &str,
    ) -> bool {
        let mut first = false;
        failure.call_once(|| {
            first = true;
            error
        });
        if !first {
            return false;
        }
        let bdf = self.function().bdf;
        log::error!("{driver} {bdf}: device error: {error}; resetting it, out of service");
        if let Err(reset) = self.reset() {
            log::error!("{driver} {bdf}: reset failed: {reset:?}");
        }
        true
    }

    /// Resets the device, then ACKNOWLEDGE and DRIVER (3.1.1 steps 1-3).
    /// Configuration changes raise no interrupt (`config_msix_vector` is
    /// `NO_VECTOR`): the drivers read the configuration once.
    pub fn begin(&self) -> Result<(), TransportError> {
        self.reset()?;
        self.set_status(DeviceStatus::ACKNOWLEDGE);
        self.set_status(DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER);
        self.common()
            .config_msix_vector()
            .write(le16::from_ne(NO_VECTOR));
        Ok(())
    }

    /// The device's 64 feature bits.
    pub fn device_features(&self) -> u64 {
        let common = self.common();
        let mut features = 0u64;
        for select in 0..2u32 {
            common.device_feature_select().write(le32::from_ne(select));
            features |= u64::from(common.device_feature().read().to_ne()) << (32 * select);
        }
        features
    }

    /// Accepts the offered subset of `wanted`, which must include every bit
    /// of `required`; sets FEATURES_OK and checks that the device kept it
    /// (3.1.1 steps 4-6). Returns the negotiated features.
    pub fn negotiate(&self, wanted: u64, required: u64) -> Result<u64, TransportError> {
        let offered = self.device_features();
        let missing = required & !offered;
        if missing != 0 {
            return Err(TransportError::MissingFeatures(missing));
        }
        let accepted = offered & (wanted | required);
        let common = self.common();
        for select in 0..2u32 {
            common.driver_feature_select().write(le32::from_ne(select));
            common
                .driver_feature()
                .write(le32::from_ne((accepted >> (32 * select)) as u32));
        }
        self.set_status(self.status() | DeviceStatus::FEATURES_OK);
        if !self.status().contains(DeviceStatus::FEATURES_OK) {
            return Err(TransportError::FeaturesRejected);
        }
        Ok(accepted)
    }

    /// Queues the device offers.
    pub fn num_queues(&self) -> u16 {
        self.common().num_queues().read().to_ne()
    }

    /// The largest size queue `index` takes (0: no such queue).
    pub fn max_queue_size(&self, index: u16) -> u16 {
        let _select = self.select.lock();
        let common = self.common();
        common.queue_select().write(le16::from_ne(index));
        common.queue_size().read().to_ne()
    }

    /// Sets queue `config.index` up: size, ring addresses, MSI-X vector
    /// (read back), then enables it. Returns its doorbell.
    pub fn setup_queue(&self, config: &QueueConfig) -> Result<QueueNotify, TransportError> {
        let _select = self.select.lock();
        let common = self.common();
        let index = config.index;
        common.queue_select().write(le16::from_ne(index));
        let max = common.queue_size().read().to_ne();
        if max == 0 || config.size > max || common.queue_enable().read().to_ne() != 0 {
            return Err(TransportError::QueueUnavailable(index));
        }
        common.queue_size().write(le16::from_ne(config.size));
        let [desc, driver, device] = config.addresses.map(le64::from_ne);
        common.queue_desc().write(desc);
        common.queue_driver().write(driver);
        common.queue_device().write(device);
        common
            .queue_msix_vector()
            .write(le16::from_ne(config.msix_entry));
        let vector = common.queue_msix_vector().read().to_ne();
        if vector != config.msix_entry {
            return Err(TransportError::VectorRejected {
                queue: index,
                vector,
            });
        }
        let offset =
            u64::from(common.queue_notify_off().read().to_ne()) * u64::from(self.notify_multiplier);
        if offset + 2 > self.notify.len {
            return Err(TransportError::BadNotifyOffset(index));
        }
        common.queue_enable().write(le16::from_ne(1));
        Ok(QueueNotify {
            address: self.notify.base + offset,
            queue: index,
        })
    }

    /// The MSI-X entry queue `index` raises, read back from the device.
    pub fn queue_vector(&self, index: u16) -> u16 {
        let _select = self.select.lock();
        let common = self.common();
        common.queue_select().write(le16::from_ne(index));
        common.queue_msix_vector().read().to_ne()
    }

    /// DRIVER_OK: the device may use the queues (3.1.1 step 8). Fails if
    /// the device reports an error instead.
    pub fn driver_ok(&self) -> Result<(), TransportError> {
        self.set_status(self.status() | DeviceStatus::DRIVER_OK);
        self.check()
    }

    /// An error if the device reports DEVICE_NEEDS_RESET or FAILED.
    pub fn check(&self) -> Result<(), TransportError> {
        let status = self.status();
        if status.intersects(DeviceStatus::DEVICE_NEEDS_RESET | DeviceStatus::FAILED) {
            return Err(TransportError::DeviceFailed);
        }
        Ok(())
    }

    /// Reads the device configuration with `read` (given the block's
    /// virtual base and length) until the configuration generation is the
    /// same before and after (2.5.1), a bounded number of times.
    pub fn read_config<T>(&self, read: impl Fn(u64, u64) -> T) -> Result<T, TransportError> {
        let generation = || self.common().config_generation().read();
        for _ in 0..GENERATION_RETRIES {
            let before = generation();
            let value = read(self.device.base, self.device.len);
            if generation() == before {
                return Ok(value);
            }
        }
        Err(TransportError::ConfigUnstable)
    }

    /// Reads and clears the ISR status (only meaningful without MSI-X).
    pub fn isr(&self) -> u8 {
        // SAFETY: the ISR block is mapped uncached and at least one byte long.
        unsafe { (self.isr.base as *const u8).read_volatile() }
    }
}

/// Maps the register block `cap` describes (at most [`MAX_BLOCK`] bytes).
fn map_block(function: &Function, cap: &CapData) -> Result<Block, TransportError> {
    let offset = cap.offset.to_ne();
    let len = cap.length.to_ne().min(MAX_BLOCK);
    let region = function
        .bars
        .iter()
        .find(|(slot, _)| *slot == cap.bar)
        .map(|(_, region)| *region);
    match region {
        Some(Region::Memory { address, size, .. })
            if address != 0 && len > 0 && offset.checked_add(len).is_some_and(|e| e <= size) =>
        {
            let mapped = mmio::map(address + offset, len).map_err(TransportError::Map)?;
            Ok(Block {
                base: mapped.base,
                len,
            })
        }
        _ => Err(TransportError::BadBar(cap.bar)),
    }
}
