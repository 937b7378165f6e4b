//! The screen console: the kernel's log and the shell drawn as text on the
//! framebuffer the firmware set up (BIOS VESA or UEFI GOP), besides COM1.
//!
//! Who draws, and when: console writes never touch pixels. The console
//! copies its text into a ring and calls [`wake`], which only raises this
//! source's readiness in core 0's queue. The screen task ([`run`], on
//! core 0) takes the new text from the ring ([`console::read_text`], a
//! short copy under the ring's lock), feeds the [`terminal`] grid and draws
//! the rows that changed. So a core that logs pays for a memcpy and a
//! signal, never for drawing; a burst of lines is drawn once. The price:
//! the screen lags the serial line by a turn of core 0, and shows nothing
//! new while core 0 is busy (the fatal path draws synchronously instead,
//! through [`console::Sink::flush`]).
//!
//! The framebuffer is used through the bootloader's mapping: it is only
//! ever written, in whole text rows, so the firmware's memory type for it
//! (write-combining or uncached, from the MTRRs) costs little and no page
//! attributes of our own are needed.

mod pixels;
pub mod terminal;

use percore_poll::{Interest, Ready};

pub use pixels::{CELL_HEIGHT, CELL_WIDTH, Framebuffer, PixelFormat};

use crate::arch::CoreId;
use crate::console;
use crate::reactor::readiness::{self, Readiness, ReadinessError, SourceId};
use pixels::Surface;
use terminal::Terminal;

/// The core that draws (and owns the screen's readiness source).
const SCREEN_CORE: CoreId = CoreId(0);
/// Bytes taken from the console ring per copy.
const CHUNK: usize = 512;

struct Screen {
    surface: Surface,
    terminal: Terminal,
    /// How far into the console's text this screen has drawn.
    cursor: u64,
    /// The row the cursor bar was last drawn on.
    cursor_row: usize,
}

static SCREEN: spin::Mutex<Option<Screen>> = spin::Mutex::new(None);
static SOURCE: spin::Once<SourceId> = spin::Once::new();

/// Why the screen console is not running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScreenError {
    /// The bootloader handed over no framebuffer.
    NoFramebuffer,
    /// The framebuffer is too small for one character, or its pixels are
    /// larger than 4 bytes.
    Unusable,
    /// [`init`] has not run.
    NotReady,
    Readiness(ReadinessError),
}

/// Takes over `fb` (clearing it), draws what the console has written so
/// far, and becomes the console's sink. The drawing after this is done by
/// the task [`run`].
pub fn init(fb: Framebuffer) -> Result<(usize, usize), ScreenError> {
    if fb.bytes_per_pixel == 0
        || fb.bytes_per_pixel > 4
        || fb.width < CELL_WIDTH
        || fb.height < CELL_HEIGHT
        || fb.buffer.len() < fb.stride * fb.height * fb.bytes_per_pixel
    {
        return Err(ScreenError::Unusable);
    }
    let source = readiness::define_source(SCREEN_CORE).map_err(ScreenError::Readiness)?;
    SOURCE.call_once(|| source);
    let surface = Surface::new(fb);
    let (cols, rows) = surface.grid();
    *SCREEN.lock() = Some(Screen {
        surface,
        terminal: Terminal::new(cols, rows),
        cursor: 0,
        cursor_row: 0,
    });
    console::set_sink(console::Sink { wake, flush });
    flush();
    Ok((cols, rows))
}

/// The console has new text: signal the screen task (any core, any context).
fn wake() {
    if let Some(&source) = SOURCE.get() {
        readiness::raise(source, Ready::READABLE);
    }
}

/// Draws what the console has written, here and now. Skips the work if the
/// screen is being drawn already (by the task, or by a core that stopped
/// while drawing). Interrupts stay enabled: no interrupt handler draws (a
/// console write in a handler only signals), so the lock cannot be wanted
/// by a handler interrupting its holder, and drawing a whole screen (a few
/// milliseconds under emulation) does not delay this core's interrupts.
fn flush() {
    if let Some(screen) = SCREEN.try_lock().as_mut().and_then(|s| s.as_mut()) {
        screen.draw_new_text();
    }
}

impl Screen {
    fn draw_new_text(&mut self) {
        let mut chunk = [0u8; CHUNK];
        loop {
            let read = console::read_text(&mut self.cursor, &mut chunk);
            if read.lost > 0 {
                self.terminal.write(b"\r\n[screen: text lost]\r\n");
            }
            self.terminal.write(&chunk[..read.len]);
            if read.len < CHUNK {
                break;
            }
        }
        let (col, row) = self.terminal.cursor();
        if row != self.cursor_row {
            self.terminal.touch(self.cursor_row);
            self.cursor_row = row;
        }
        self.terminal.touch(row);
        let rows: alloc::vec::Vec<usize> = self.terminal.take_dirty().collect();
        for index in rows {
            let cursor = (index == row).then_some(col);
            self.surface
                .draw_row(index, self.terminal.row(index), cursor);
        }
    }
}

/// The screen task: draws whenever the console has written (core 0).
pub async fn run() -> Result<(), ScreenError> {
    let source = *SOURCE.get().ok_or(ScreenError::NotReady)?;
    let mut ready =
        Readiness::register(source, Interest::READABLE).map_err(ScreenError::Readiness)?;
    loop {
        flush();
        ready.ready().await;
    }
}
