//! The boot sequence of the bootstrap core, shared by the kernel and the
//! in-QEMU test kernel: the composition root that wires the layers together
//! in order (clock origin, per-core data, console, the machine, the fatal
//! path).

use bootloader_api::BootInfo;
use bootloader_api::config::{BootloaderConfig, Mapping};
use bootloader_api::info::{FrameBuffer, PixelFormat};

use crate::arch::{self, cpu};
use crate::drivers::fw_cfg;
use crate::reactor::SchedConfig;
use crate::{console, drivers, fatal, process, time};

/// The boot configuration file that chooses each core's scheduling
/// discipline: `rr,fair,edf,...`, one per core (see [`SchedConfig`]);
/// `cargo xtask run --sched LIST` sets it.
pub const SCHED_FILE: &str = "opt/percore/sched";

/// Where the kernel image is loaded: the top 2 GiB, as for any x86_64 kernel.
/// Fixed (not chosen by the bootloader) so that a debugger finds the symbols
/// at their link-time addresses plus this constant.
pub const KERNEL_BASE: u64 = 0xFFFF_FFFF_8000_0000;
/// Size of the bootstrap core's kernel stack (the bootloader maps it, with a
/// guard page below).
pub const BOOT_STACK_SIZE: u64 = 128 * 1024;

/// How the bootloader must load percore.
pub const BOOTLOADER_CONFIG: BootloaderConfig = {
    let mut config = BootloaderConfig::new_default();
    config.mappings.physical_memory = Some(Mapping::Dynamic);
    config.mappings.kernel_base = Mapping::FixedAddress(KERNEL_BASE);
    // Keep every bootloader mapping in the higher half: the lower half is for
    // user space.
    config.mappings.dynamic_range_start = Some(0xFFFF_8000_0000_0000);
    config.kernel_stack_size = BOOT_STACK_SIZE;
    config
};

/// The booted kernel, as seen by `main` (or the test kernel).
pub struct Kernel {
    pub boot_info: &'static BootInfo,
    /// What the machine's bring-up found and did.
    pub machine: arch::boot::Machine,
}

impl Kernel {
    /// Prints the line that marks the end of boot:
    /// `percore ready: cores=N mem=M MiB boot_us=T`.
    pub fn announce_ready(&self) {
        crate::println!(
            "percore ready: cores={} mem={} MiB boot_us={}",
            cpu::online_cores(),
            self.machine.usable_mib,
            time::uptime_us()
        );
    }

    /// Each core's discipline, from the boot configuration ([`SCHED_FILE`]);
    /// round robin everywhere when there is none (or it does not parse,
    /// which is logged).
    pub fn sched_config(&self) -> SchedConfig {
        let mut buffer = [0u8; 256];
        let Ok(text) = fw_cfg::read_text(SCHED_FILE, &mut buffer) else {
            return SchedConfig::default();
        };
        SchedConfig::parse(text).unwrap_or_else(|error| {
            log::warn!("boot: {SCHED_FILE} = `{text}`: {error:?}; round robin on every core");
            SchedConfig::default()
        })
    }
}

/// Brings the machine from the bootloader's hand-off to a working kernel on
/// every core. Interrupts are enabled on return. Panics (with a report) only
/// if memory cannot be set up.
pub fn init(boot_info: &'static mut BootInfo) -> Kernel {
    time::mark_boot();
    arch::boot::early();
    console::init(log::LevelFilter::Info);
    arch::trap::set_fatal_handler(fatal::on_exception);
    let framebuffer = boot_info.framebuffer.take();
    let boot_info: &'static BootInfo = boot_info;
    let machine = arch::boot::init(boot_info);
    programs(boot_info);
    drivers::pci::init();
    match framebuffer.map(screen).map(drivers::screen::init) {
        Some(Ok((cols, rows))) => log::info!("screen console: {cols}x{rows} characters"),
        Some(Err(error)) => log::error!("screen console unavailable: {error:?}"),
        None => log::info!("no framebuffer: console on COM1 only"),
    }
    if let Err(error) = drivers::uart::init() {
        log::error!("console input unavailable: {error:?}");
    }
    if let Err(error) = drivers::keyboard::init() {
        log::warn!("keyboard unavailable: {error:?}");
    }
    cpu::enable_interrupts();
    Kernel { boot_info, machine }
}

/// Registers the user programs of the ramdisk (a cpio archive `cargo
/// xtask` packs), and says what protects the kernel from them.
fn programs(boot_info: &'static BootInfo) {
    let protection = arch::user::protection();
    log::info!(
        "ring 3: SMEP {}, SMAP {}",
        if protection.smep { "on" } else { "not offered" },
        if protection.smap { "on" } else { "not offered" }
    );
    let Some(addr) = boot_info.ramdisk_addr.into_option() else {
        log::info!("programs: no boot archive");
        return;
    };
    // SAFETY: the bootloader mapped the ramdisk at `addr` for
    // `ramdisk_len` bytes, and nothing writes or unmaps it.
    let archive =
        unsafe { core::slice::from_raw_parts(addr as *const u8, boot_info.ramdisk_len as usize) };
    process::image::init(archive);
}

/// The bootloader's framebuffer as the screen driver describes it.
fn screen(fb: FrameBuffer) -> drivers::screen::Framebuffer {
    use drivers::screen::PixelFormat as Format;
    let info = fb.info();
    let format = match info.pixel_format {
        PixelFormat::Rgb => Format::Rgb,
        PixelFormat::Bgr => Format::Bgr,
        PixelFormat::U8 => Format::Grey,
        PixelFormat::Unknown {
            red_position,
            green_position,
            blue_position,
        } => Format::Masks {
            red: red_position,
            green: green_position,
            blue: blue_position,
        },
        // A format added to the bootloader later: assume the common one.
        _ => Format::Bgr,
    };
    drivers::screen::Framebuffer {
        buffer: fb.into_buffer(),
        width: info.width,
        height: info.height,
        stride: info.stride,
        bytes_per_pixel: info.bytes_per_pixel,
        format,
    }
}
