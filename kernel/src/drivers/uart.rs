//! Console input: the 16550 UART's receive line as an ordinary event source.
//!
//! COM1's receive interrupt (ISA IRQ 4) is routed to core 0. Its handler
//! moves every waiting byte into a work-distributing ring
//! (`percore_ring::spmc::work`: one producer, the handler; any number of
//! readers, each byte taken by exactly one) and raises the source's
//! readiness in core 0's readiness queue. Wakers never run in the handler:
//! core 0's reactor wakes the registered readers from its queue, through the
//! bus when a reader lives on another core. A byte that finds the ring full
//! is counted in [`input_stats`] rather than silently lost.
//!
//! A [`Reader`] is a `futures_core::Stream` of the bytes typed.

use core::future::poll_fn;
use core::pin::Pin;
use core::sync::atomic::{AtomicU64, Ordering};
use core::task::{Context, Poll};

use futures_core::Stream;

use percore_poll::{Interest, Ready};
use percore_ring::spmc::work;

use crate::arch::{CoreId, irq};
use crate::console;
use crate::reactor::readiness::{self, Readiness, ReadinessError, SourceId};

/// Bytes the input ring holds.
const INPUT_CAPACITY: usize = 256;
/// ISA IRQ of COM1.
const COM1_IRQ: u8 = 4;
/// The core COM1's interrupt goes to (and so the owner of its source).
const INPUT_CORE: CoreId = CoreId(0);

struct Input {
    ring: spin::Mutex<work::Producer<u8>>,
    readers: work::Consumer<u8>,
    source: SourceId,
}

static INPUT: spin::Once<Input> = spin::Once::new();
static RECEIVED: AtomicU64 = AtomicU64::new(0);
static OVERRUNS: AtomicU64 = AtomicU64::new(0);

/// Why console input is not available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputError {
    /// [`init`] has not run, or failed.
    NotReady,
    /// The readiness registration failed.
    Readiness(ReadinessError),
}

/// Makes COM1's receive line a readiness source owned by core 0 and routes
/// its interrupt there. Called once, at boot (readiness reaches tasks once
/// the reactors run; bytes typed before that wait in the ring).
pub fn init() -> Result<(), InputError> {
    let source = readiness::define_source(INPUT_CORE).map_err(InputError::Readiness)?;
    let (producer, consumer) = work::channel(INPUT_CAPACITY).map_err(|_| InputError::NotReady)?;
    INPUT.call_once(|| Input {
        ring: spin::Mutex::new(producer),
        readers: consumer,
        source,
    });
    if let Err(error) = irq::route_isa(COM1_IRQ, INPUT_CORE, on_receive_interrupt) {
        log::error!("console input interrupt not routed: {error:?}");
    }
    Ok(())
}

/// COM1's receive interrupt: moves every waiting byte into the ring.
fn on_receive_interrupt() {
    let Some(input) = INPUT.get() else { return };
    let mut ring = input.ring.lock();
    while let Some(byte) = console::with_uart(|uart| uart.try_receive()).flatten() {
        RECEIVED.fetch_add(1, Ordering::Relaxed);
        if ring.try_push(byte).is_err() {
            OVERRUNS.fetch_add(1, Ordering::Relaxed);
        }
    }
    drop(ring);
    readiness::raise(input.source, Ready::READABLE);
}

/// A task's reader of console input, on any core (its registration lives
/// in core 0's readiness queue).
pub struct Reader {
    readiness: Readiness,
    ring: work::Consumer<u8>,
}

impl Reader {
    /// Registers for console input.
    pub fn new() -> Result<Reader, InputError> {
        let input = INPUT.get().ok_or(InputError::NotReady)?;
        Ok(Reader {
            readiness: Readiness::register(input.source, Interest::READABLE)
                .map_err(InputError::Readiness)?,
            ring: input.readers.clone(),
        })
    }

    /// Waits for the next byte typed on the console.
    pub async fn next_byte(&mut self) -> u8 {
        poll_fn(|cx| self.poll_byte(cx)).await
    }

    /// [`next_byte`](Self::next_byte) as a poll: the stream's step.
    pub fn poll_byte(&mut self, cx: &mut Context<'_>) -> Poll<u8> {
        loop {
            // Edge-triggered: take what is there, then wait for the next edge.
            if let Ok(byte) = self.ring.try_pop() {
                return Poll::Ready(byte);
            }
            if self.readiness.poll_ready(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

/// The bytes typed on the console, each to one reader; endless.
impl Stream for Reader {
    type Item = u8;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u8>> {
        self.get_mut().poll_byte(cx).map(Some)
    }
}

/// The next byte typed on the console, if any, without registering.
pub fn read_byte() -> Option<u8> {
    INPUT.get()?.readers.clone().try_pop().ok()
}

/// (bytes received, bytes dropped because the input ring was full).
pub fn input_stats() -> (u64, u64) {
    (
        RECEIVED.load(Ordering::Relaxed),
        OVERRUNS.load(Ordering::Relaxed),
    )
}
