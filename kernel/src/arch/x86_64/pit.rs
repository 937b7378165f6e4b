//! The 8254 PIT, used only as a known-frequency reference to calibrate the TSC
//! at boot (channel 2, gated through port 0x61, polled; no interrupt).

use x86_64::instructions::port::Port;

/// The PIT input clock: 1.193182 MHz.
pub const PIT_HZ: u64 = 1_193_182;

/// Busy-waits `ticks` PIT ticks (at most 0xFFFF) on channel 2, calling
/// `start` right after the count is loaded and returning `start`'s result
/// together with whatever `end` returns the moment the count reaches zero.
pub fn measure<T>(ticks: u16, start: impl FnOnce() -> T, end: impl FnOnce() -> T) -> (T, T) {
    let mut gate = Port::<u8>::new(0x61);
    let mut mode = Port::<u8>::new(0x43);
    let mut ch2 = Port::<u8>::new(0x42);
    // SAFETY: programs PIT channel 2 (the speaker channel, unused by percore)
    // in mode 0; port 0x61 bit 0 gates it, bit 1 keeps the speaker off, and
    // bit 5 reads back its output, which goes high when the count hits zero.
    unsafe {
        let g = gate.read();
        gate.write((g & !0x02) | 0x01);
        mode.write(0b1011_0000); // channel 2, lobyte/hibyte, mode 0, binary
        ch2.write(ticks as u8);
        ch2.write((ticks >> 8) as u8);
        let t0 = start();
        while gate.read() & 0x20 == 0 {
            core::hint::spin_loop();
        }
        let t1 = end();
        gate.write(g & !0x03);
        (t0, t1)
    }
}
