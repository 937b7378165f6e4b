//! The pixel side of the screen: text rows drawn into the firmware's
//! framebuffer with the Noto Sans Mono bitmap font (16 pixels high,
//! anti-aliased: each glyph pixel is an intensity, drawn as that grey).
//!
//! A text row is drawn into a row buffer in RAM and then copied to the
//! framebuffer in one sequential pass: video memory is slow to read and
//! best written in long runs. Any resolution, stride and pixel size; byte
//! orders RGB, BGR, one-byte grey, and masks at other bit positions.

use alloc::vec;
use alloc::vec::Vec;

use noto_sans_mono_bitmap::{FontWeight, RasterHeight, get_raster, get_raster_width};

const WEIGHT: FontWeight = FontWeight::Regular;
const HEIGHT: RasterHeight = RasterHeight::Size16;
/// Pixels of one character cell, across.
pub const CELL_WIDTH: usize = get_raster_width(WEIGHT, HEIGHT);
/// Pixels of one character cell, down.
pub const CELL_HEIGHT: usize = HEIGHT.val();
/// Rows of the cursor bar, at the bottom of its cell.
const CURSOR_ROWS: usize = 2;

/// How a pixel's colour is laid out in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelFormat {
    /// Red, green, blue in the first three bytes.
    Rgb,
    /// Blue, green, red in the first three bytes.
    Bgr,
    /// One grey byte.
    Grey,
    /// 8-bit channels at these bit positions of a little-endian pixel.
    Masks { red: u8, green: u8, blue: u8 },
}

/// The framebuffer the firmware set up, as the bootloader describes it.
pub struct Framebuffer {
    pub buffer: &'static mut [u8],
    /// Visible pixels across and down.
    pub width: usize,
    pub height: usize,
    /// Pixels from the start of one line to the start of the next.
    pub stride: usize,
    pub bytes_per_pixel: usize,
    pub format: PixelFormat,
}

impl Framebuffer {
    /// The bytes of one pixel of grey level `level` (0 black, 255 white).
    fn grey(&self, level: u8) -> [u8; 4] {
        match self.format {
            PixelFormat::Rgb | PixelFormat::Bgr | PixelFormat::Grey => [level; 4],
            PixelFormat::Masks { red, green, blue } => {
                let shift = |at: u8| u32::from(level).checked_shl(u32::from(at)).unwrap_or(0);
                (shift(red) | shift(green) | shift(blue)).to_le_bytes()
            }
        }
    }
}

/// Draws text rows into a framebuffer.
pub struct Surface {
    fb: Framebuffer,
    /// One text row of pixels (`CELL_HEIGHT` framebuffer lines).
    row: Vec<u8>,
    /// The pixel bytes of each grey level, so drawing is a copy.
    levels: [[u8; 4]; 256],
}

impl Surface {
    /// Takes over `fb` and clears it.
    pub fn new(fb: Framebuffer) -> Surface {
        fb.buffer.fill(0);
        let mut levels = [[0; 4]; 256];
        for (level, bytes) in levels.iter_mut().enumerate() {
            *bytes = fb.grey(level as u8);
        }
        let line = fb.stride * fb.bytes_per_pixel;
        Surface {
            row: vec![0; line * CELL_HEIGHT],
            levels,
            fb,
        }
    }

    /// Text columns and rows that fit.
    pub fn grid(&self) -> (usize, usize) {
        (self.fb.width / CELL_WIDTH, self.fb.height / CELL_HEIGHT)
    }

    /// Draws text row `index` from `cells`, with the cursor bar under
    /// column `cursor` if given.
    pub fn draw_row(&mut self, index: usize, cells: &[u8], cursor: Option<usize>) {
        let bpp = self.fb.bytes_per_pixel.min(4);
        let line = self.fb.stride * self.fb.bytes_per_pixel;
        self.row.fill(0);
        // A space is blank: the row buffer is already cleared.
        for (col, &byte) in cells.iter().enumerate().filter(|&(_, &b)| b != b' ') {
            let glyph = get_raster(char::from(byte), WEIGHT, HEIGHT)
                .or_else(|| get_raster('?', WEIGHT, HEIGHT));
            let Some(glyph) = glyph else { continue };
            let x0 = col * CELL_WIDTH * self.fb.bytes_per_pixel;
            for (y, pixels) in glyph.rows().enumerate() {
                let start = y * line + x0;
                for (x, &level) in pixels.iter().enumerate() {
                    let at = start + x * self.fb.bytes_per_pixel;
                    self.row[at..at + bpp].copy_from_slice(&self.levels[usize::from(level)][..bpp]);
                }
            }
        }
        if let Some(col) = cursor.filter(|&c| c < cells.len()) {
            let white = self.levels[255];
            for y in CELL_HEIGHT - CURSOR_ROWS..CELL_HEIGHT {
                for x in 0..CELL_WIDTH {
                    let at = y * line + (col * CELL_WIDTH + x) * self.fb.bytes_per_pixel;
                    self.row[at..at + bpp].copy_from_slice(&white[..bpp]);
                }
            }
        }
        let start = index * CELL_HEIGHT * line;
        if let Some(target) = self.fb.buffer.get_mut(start..start + self.row.len()) {
            target.copy_from_slice(&self.row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn surface(format: PixelFormat, bytes_per_pixel: usize) -> Surface {
        let (width, height, stride) = (CELL_WIDTH * 3, CELL_HEIGHT * 2, CELL_WIDTH * 3 + 5);
        let buffer = alloc::vec![0xAAu8; stride * height * bytes_per_pixel].leak();
        Surface::new(Framebuffer {
            buffer,
            width,
            height,
            stride,
            bytes_per_pixel,
            format,
        })
    }

    /// The grey level of pixel (x, y), from its first byte.
    fn level(s: &Surface, x: usize, y: usize) -> u8 {
        s.fb.buffer[(y * s.fb.stride + x) * s.fb.bytes_per_pixel]
    }

    #[test]
    fn draws_the_font_s_intensities() {
        let mut s = surface(PixelFormat::Bgr, 4);
        assert_eq!(s.grid(), (3, 2));
        s.draw_row(1, b" A ", None);
        let glyph = get_raster('A', WEIGHT, HEIGHT).unwrap();
        for y in 0..CELL_HEIGHT {
            for x in 0..CELL_WIDTH {
                let want = glyph.pixel(x, y).unwrap();
                assert_eq!(level(&s, CELL_WIDTH + x, CELL_HEIGHT + y), want);
                assert_eq!(level(&s, x, CELL_HEIGHT + y), 0);
            }
        }
        // Row 0 untouched (cleared at start).
        assert!((0..CELL_HEIGHT).all(|y| level(&s, CELL_WIDTH + 2, y) == 0));
    }

    #[test]
    fn cursor_bar_and_formats() {
        let mut s = surface(PixelFormat::Grey, 1);
        s.draw_row(0, b"   ", Some(2));
        assert_eq!(level(&s, 2 * CELL_WIDTH, CELL_HEIGHT - 1), 255);
        assert_eq!(level(&s, 2 * CELL_WIDTH, 0), 0);
        let masks = surface(
            PixelFormat::Masks {
                red: 16,
                green: 8,
                blue: 0,
            },
            4,
        );
        assert_eq!(masks.levels[0x80], [0x80, 0x80, 0x80, 0]);
    }
}
