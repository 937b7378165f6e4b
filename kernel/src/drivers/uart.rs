//! Console input: the 16550 UART's receive line as an ordinary event source.
//!
//! COM1's receive interrupt (ISA IRQ 4) is routed to core 0. Its handler
//! moves every waiting byte into the device's [`Input`] ring and raises
//! its readiness in core 0's readiness queue (see [`super::input`]).

use super::input::{Input, InputError, Reader};
use crate::arch::{CoreId, irq};
use crate::console;

/// Bytes the input ring holds.
const INPUT_CAPACITY: usize = 256;
/// ISA IRQ of COM1.
const COM1_IRQ: u8 = 4;
/// The core COM1's interrupt goes to (and so the owner of its source).
const INPUT_CORE: CoreId = CoreId(0);

static INPUT: spin::Once<Input> = spin::Once::new();

/// Makes COM1's receive line a readiness source owned by core 0 and routes
/// its interrupt there. Called once, at boot (readiness reaches tasks once
/// the reactors run; bytes typed before that wait in the ring).
pub fn init() -> Result<(), InputError> {
    let input = Input::new(INPUT_CORE, INPUT_CAPACITY)?;
    INPUT.call_once(|| input);
    if let Err(error) = irq::route_isa(COM1_IRQ, INPUT_CORE, on_receive_interrupt) {
        log::error!("console input interrupt not routed: {error:?}");
    }
    Ok(())
}

/// COM1's receive interrupt: moves every waiting byte into the ring.
fn on_receive_interrupt() {
    if let Some(input) = INPUT.get() {
        input.receive(|| console::with_uart(|uart| uart.try_receive()).flatten());
    }
}

/// A task's reader of console input, on any core (its registration lives
/// in core 0's readiness queue).
pub fn reader() -> Result<Reader, InputError> {
    INPUT.get().ok_or(InputError::NotReady)?.reader()
}

/// The next byte typed on the console, if any, without registering.
pub fn read_byte() -> Option<u8> {
    INPUT.get()?.try_read()
}

/// (bytes received, bytes dropped because the input ring was full).
pub fn input_stats() -> (u64, u64) {
    INPUT.get().map_or((0, 0), Input::stats)
}
