//! The PS/2 keyboard (through the i8042 controller) as console input.
//!
//! Most PCs emulate a PS/2 keyboard for a USB one in firmware, so this is
//! the keyboard of an ordinary PC booted from the stick. IRQ 1 is routed
//! through the IOAPIC to core 0; its handler reads the scancodes waiting in
//! the controller, decodes them with `pc-keyboard` (scancode set 1, which
//! the controller translates to; the layout is chosen with
//! [`set_layout`]) and queues the bytes a serial terminal would send for
//! those keys: ASCII, control characters, and VT100 sequences for the
//! cursor keys. So the shell's line editor reads the keyboard and the
//! serial line alike.

use alloc::string::String;

use pc_keyboard::layouts::{self, AnyLayout};
use pc_keyboard::{DecodedKey, HandleControl, KeyCode, PS2Keyboard, ScancodeSet1};

use super::input::{Input, InputError, Reader};
use crate::arch::{CoreId, cpu, io, irq};

/// Bytes the input ring holds.
const INPUT_CAPACITY: usize = 256;
/// ISA IRQ of the keyboard.
const KEYBOARD_IRQ: u8 = 1;
/// The core the keyboard's interrupt goes to.
const INPUT_CORE: CoreId = CoreId(0);
/// The controller's data port (scancodes, command arguments).
const DATA_PORT: u16 = 0x60;
/// The controller's status (read) and command (write) port.
const STATUS_PORT: u16 = 0x64;
/// Status: a byte waits in the output buffer.
const OUTPUT_FULL: u8 = 1 << 0;
/// Status: the waiting byte is from the mouse port.
const FROM_MOUSE: u8 = 1 << 5;
/// Status: the controller has not yet taken the last byte written.
const INPUT_FULL: u8 = 1 << 1;
/// Most bytes drained from the controller at start-up (stale keys).
const MAX_STALE: usize = 64;
/// Status polls before giving up on the controller (each a port read,
/// about a microsecond).
const MAX_POLLS: usize = 100_000;
/// Controller commands: read and write the configuration byte.
const READ_CONFIG: u8 = 0x20;
const WRITE_CONFIG: u8 = 0x60;
/// Configuration: keyboard interrupt enabled; keyboard clock disabled.
const CONFIG_IRQ1: u8 = 1 << 0;
const CONFIG_NO_CLOCK: u8 = 1 << 4;
/// Configuration bits that are always zero.
const CONFIG_MUST_BE_ZERO: u8 = (1 << 7) | (1 << 3);

/// The layouts [`set_layout`] knows, by name.
pub const LAYOUTS: &[&str] = &[
    "us", "uk", "de", "fr", "no", "fi-se", "jp", "dvorak", "dvp", "colemak",
];

type Decoder = PS2Keyboard<AnyLayout, ScancodeSet1>;

static INPUT: spin::Once<Input> = spin::Once::new();
static DECODER: spin::Mutex<Option<Decoder>> = spin::Mutex::new(None);

/// Why the keyboard is not available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyboardError {
    /// No i8042 controller answers (its status port reads all ones).
    NoController,
    Input(InputError),
    Route(irq::RouteError),
}

/// Why a layout could not be chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutError {
    /// Not one of [`LAYOUTS`].
    Unknown(String),
}

fn layout(name: &str) -> Option<AnyLayout> {
    Some(match name {
        "us" => AnyLayout::Us104Key(layouts::Us104Key),
        "uk" => AnyLayout::Uk105Key(layouts::Uk105Key),
        "de" => AnyLayout::De105Key(layouts::De105Key),
        "fr" => AnyLayout::Azerty(layouts::Azerty),
        "no" => AnyLayout::No105Key(layouts::No105Key),
        "fi-se" => AnyLayout::FiSe105Key(layouts::FiSe105Key),
        "jp" => AnyLayout::Jis109Key(layouts::Jis109Key),
        "dvorak" => AnyLayout::Dvorak104Key(layouts::Dvorak104Key),
        "dvp" => AnyLayout::DVP104Key(layouts::DVP104Key),
        "colemak" => AnyLayout::Colemak(layouts::Colemak),
        _ => return None,
    })
}

fn decoder(layout: AnyLayout) -> Decoder {
    PS2Keyboard::new(
        ScancodeSet1::new(),
        layout,
        HandleControl::MapLettersToUnicode,
    )
}

/// Chooses the keyboard layout (one of [`LAYOUTS`]; `us` at boot).
pub fn set_layout(name: &str) -> Result<(), LayoutError> {
    let chosen = layout(name).ok_or_else(|| LayoutError::Unknown(name.into()))?;
    cpu::without_interrupts(|| *DECODER.lock() = Some(decoder(chosen)));
    Ok(())
}

/// Makes the keyboard a readiness source owned by core 0 and routes IRQ 1
/// there. Called once, at boot.
pub fn init() -> Result<(), KeyboardError> {
    // SAFETY: the i8042's status port; reading it has no side effect.
    if unsafe { io::read_u8(STATUS_PORT) } == 0xFF {
        return Err(KeyboardError::NoController);
    }
    let input = Input::new(INPUT_CORE, INPUT_CAPACITY).map_err(KeyboardError::Input)?;
    INPUT.call_once(|| input);
    cpu::without_interrupts(|| {
        *DECODER.lock() = Some(decoder(AnyLayout::Us104Key(layouts::Us104Key)));
    });
    // Keys pressed during boot would leave the output buffer full, and an
    // edge-triggered IRQ 1 would then never come.
    for _ in 0..MAX_STALE {
        if read_waiting().is_none() {
            break;
        }
    }
    if !enable_interrupt() {
        log::warn!("keyboard: the i8042 did not take its configuration; keys may not arrive");
    }
    irq::route_isa(KEYBOARD_IRQ, INPUT_CORE, on_interrupt).map_err(KeyboardError::Route)
}

/// Makes sure the controller raises IRQ 1 for keys and the keyboard's
/// clock runs (firmware that used the keyboard by polling may have left
/// either off). False if the controller did not answer in time.
fn enable_interrupt() -> bool {
    let status = || {
        // SAFETY: reading the i8042's status port has no side effect.
        unsafe { io::read_u8(STATUS_PORT) }
    };
    let can_write = || (0..MAX_POLLS).any(|_| status() & INPUT_FULL == 0);
    let can_read = || (0..MAX_POLLS).any(|_| status() & OUTPUT_FULL != 0);
    if !can_write() {
        return false;
    }
    // SAFETY: the i8042's command port: "read the configuration byte".
    unsafe { io::write_u8(STATUS_PORT, READ_CONFIG) };
    if !can_read() {
        return false;
    }
    // SAFETY: the data port holds the configuration byte just asked for.
    let config = unsafe { io::read_u8(DATA_PORT) };
    if config & CONFIG_MUST_BE_ZERO != 0 {
        // Not a configuration byte (a key that came in between): leave it.
        return false;
    }
    let wanted = (config | CONFIG_IRQ1) & !CONFIG_NO_CLOCK;
    if wanted == config {
        return true;
    }
    if !can_write() {
        return false;
    }
    // SAFETY: "write the configuration byte", then the byte: the firmware's
    // configuration with IRQ 1 and the keyboard clock on.
    unsafe { io::write_u8(STATUS_PORT, WRITE_CONFIG) };
    if !can_write() {
        return false;
    }
    // SAFETY: as above, the command's argument.
    unsafe { io::write_u8(DATA_PORT, wanted) };
    true
}

/// The byte waiting in the controller, with whether it is the mouse's.
fn read_waiting() -> Option<(u8, bool)> {
    // SAFETY: the i8042's status and data ports, which this driver owns
    // (reading data takes the byte the status announced).
    unsafe {
        let status = io::read_u8(STATUS_PORT);
        if status & OUTPUT_FULL == 0 || status == 0xFF {
            return None;
        }
        Some((io::read_u8(DATA_PORT), status & FROM_MOUSE != 0))
    }
}

/// IRQ 1: decodes every waiting scancode into the input ring.
fn on_interrupt() {
    let Some(input) = INPUT.get() else { return };
    let mut decoder = DECODER.lock();
    let Some(decoder) = decoder.as_mut() else {
        return;
    };
    // Bytes of the key being queued (a key can be a 3-byte sequence).
    let mut pending: [u8; 4] = [0; 4];
    let (mut at, mut len) = (0, 0);
    input.receive(|| {
        loop {
            if at < len {
                at += 1;
                return Some(pending[at - 1]);
            }
            let (byte, mouse) = read_waiting()?;
            if mouse {
                continue;
            }
            let Ok(Some(event)) = decoder.add_byte(byte) else {
                continue;
            };
            if let Some(key) = decoder.process_keyevent(event) {
                len = encode(key, &mut pending);
                at = 0;
            }
        }
    });
}

/// The bytes a VT100 terminal sends for `key`, into `out`; how many.
fn encode(key: DecodedKey, out: &mut [u8; 4]) -> usize {
    let sequence: &[u8] = match key {
        // Enter is CR on a terminal; the line editor takes either.
        DecodedKey::Unicode('\n') => b"\r",
        DecodedKey::Unicode(c) => {
            return c.encode_utf8(out).len();
        }
        DecodedKey::RawKey(KeyCode::ArrowUp) => b"\x1b[A",
        DecodedKey::RawKey(KeyCode::ArrowDown) => b"\x1b[B",
        DecodedKey::RawKey(KeyCode::ArrowRight) => b"\x1b[C",
        DecodedKey::RawKey(KeyCode::ArrowLeft) => b"\x1b[D",
        DecodedKey::RawKey(KeyCode::Home) => b"\x1b[H",
        DecodedKey::RawKey(KeyCode::End) => b"\x1b[F",
        DecodedKey::RawKey(_) => b"",
    };
    out[..sequence.len()].copy_from_slice(sequence);
    sequence.len()
}

/// A task's reader of the keyboard, on any core.
pub fn reader() -> Result<Reader, InputError> {
    INPUT.get().ok_or(InputError::NotReady)?.reader()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(layout_name: &str, scancodes: &[u8]) -> alloc::vec::Vec<u8> {
        let mut decoder = decoder(layout(layout_name).unwrap());
        let mut out = alloc::vec::Vec::new();
        for &byte in scancodes {
            if let Ok(Some(event)) = decoder.add_byte(byte)
                && let Some(key) = decoder.process_keyevent(event)
            {
                let mut bytes = [0; 4];
                let n = encode(key, &mut bytes);
                out.extend_from_slice(&bytes[..n]);
            }
        }
        out
    }

    #[test]
    fn us_letters_enter_and_arrows() {
        // h e (press, release) Enter, then Left (E0 4B) press.
        let typed = keys("us", &[0x23, 0xA3, 0x12, 0x92, 0x1C, 0x9C, 0xE0, 0x4B]);
        assert_eq!(typed, b"he\r\x1b[D");
    }

    #[test]
    fn layouts_differ_and_unknown_ones_are_refused() {
        // The key right of T: `y` on US, `z` on German keyboards.
        assert_eq!(keys("us", &[0x15]), b"y");
        assert_eq!(keys("de", &[0x15]), b"z");
        assert!(LAYOUTS.iter().all(|name| layout(name).is_some()));
        assert_eq!(
            set_layout("klingon"),
            Err(LayoutError::Unknown("klingon".into()))
        );
    }

    #[test]
    fn ctrl_c_is_the_terminal_s_byte() {
        // Left Ctrl (1D) held, C (2E).
        assert_eq!(keys("us", &[0x1D, 0x2E]), [0x03]);
    }
}
