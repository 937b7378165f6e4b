//! The text side of the screen: a grid of character cells fed with the
//! console's bytes, understanding just what the kernel and the shell's line
//! editor write (CR, LF, BS, TAB, BEL, and the VT100 sequences
//! `ESC [ n C`, `ESC [ n D`, `ESC [ K`, `ESC [ H`, `ESC [ 2 J`; any other
//! escape sequence is consumed whole and ignored).
//!
//! A pure state machine (no pixels, no hardware), so it runs as a host unit
//! test. It records which rows changed; the pixel side draws only those.
//! Scrolling moves the cells, not pixels, so a burst of log lines costs one
//! redraw of the screen, not one framebuffer copy per line.

use alloc::vec;
use alloc::vec::Vec;

const ESC: u8 = 0x1b;
/// Columns a tab advances to (the next multiple of this).
const TAB: usize = 8;

/// Where the parser is in an escape sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Escape {
    None,
    /// After ESC.
    Start,
    /// After `ESC [`, with the first numeric parameter so far.
    Csi(u16),
    /// In a CSI sequence after its first parameter (later ones are unused).
    CsiRest(u16),
}

/// A grid of cells with a cursor.
pub struct Terminal {
    cols: usize,
    rows: usize,
    /// Row-major, one byte (a printable ASCII character or a space) per cell.
    cells: Vec<u8>,
    dirty: Vec<bool>,
    col: usize,
    row: usize,
    escape: Escape,
}

impl Terminal {
    /// An empty grid of `cols` x `rows` (each at least 1), cursor top left.
    pub fn new(cols: usize, rows: usize) -> Terminal {
        let (cols, rows) = (cols.max(1), rows.max(1));
        Terminal {
            cols,
            rows,
            cells: vec![b' '; cols * rows],
            dirty: vec![true; rows],
            col: 0,
            row: 0,
            escape: Escape::None,
        }
    }

    /// (columns, rows).
    pub fn size(&self) -> (usize, usize) {
        (self.cols, self.rows)
    }

    /// The cursor, as (column, row).
    pub fn cursor(&self) -> (usize, usize) {
        (self.col, self.row)
    }

    /// The cells of row `row`.
    pub fn row(&self, row: usize) -> &[u8] {
        &self.cells[row * self.cols..(row + 1) * self.cols]
    }

    /// Marks row `row` to be drawn again (the cursor moved over it).
    pub fn touch(&mut self, row: usize) {
        if let Some(dirty) = self.dirty.get_mut(row) {
            *dirty = true;
        }
    }

    /// The rows changed since the last call, clearing the marks.
    pub fn take_dirty(&mut self) -> impl Iterator<Item = usize> + '_ {
        self.dirty
            .iter_mut()
            .enumerate()
            .filter_map(|(row, dirty)| core::mem::take(dirty).then_some(row))
    }

    /// Feeds console bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.feed(byte);
        }
    }

    fn feed(&mut self, byte: u8) {
        match self.escape {
            Escape::None => self.plain(byte),
            Escape::Start => {
                self.escape = if byte == b'[' {
                    Escape::Csi(0)
                } else {
                    Escape::None
                };
            }
            Escape::Csi(n) => match byte {
                b'0'..=b'9' => {
                    let n = n.saturating_mul(10).saturating_add(u16::from(byte - b'0'));
                    self.escape = Escape::Csi(n);
                }
                b';' => self.escape = Escape::CsiRest(n),
                byte => self.csi_byte(byte, n),
            },
            Escape::CsiRest(n) => self.csi_byte(byte, n),
        }
    }

    fn plain(&mut self, byte: u8) {
        match byte {
            // The kernel writes bare LFs (a serial terminal adds the CR).
            b'\n' => {
                self.col = 0;
                self.line_feed();
            }
            b'\r' => self.col = 0,
            0x08 => self.col = self.col.saturating_sub(1),
            b'\t' => {
                for _ in 0..TAB - self.col % TAB {
                    self.put(b' ');
                }
            }
            ESC => self.escape = Escape::Start,
            // UTF-8: one placeholder per character (its lead byte).
            0xC0..=0xFF => self.put(b'?'),
            b' '..=b'~' => self.put(byte),
            // Other controls (BEL) and UTF-8 continuation bytes: nothing to draw.
            _ => {}
        }
    }

    /// A byte of a CSI sequence that is not its first parameter: parameter
    /// and intermediate bytes are skipped, a final byte ends the sequence.
    fn csi_byte(&mut self, byte: u8, n: u16) {
        if !(b'0'..=b'?').contains(&byte) && !(b' '..=b'/').contains(&byte) {
            self.escape = Escape::None;
            self.csi(byte, usize::from(n));
        }
    }

    fn csi(&mut self, final_byte: u8, n: usize) {
        let count = n.max(1);
        match final_byte {
            b'C' => self.col = (self.col + count).min(self.cols - 1),
            b'D' => self.col = self.col.saturating_sub(count),
            b'K' => {
                let (col, row) = (self.col, self.row);
                self.clear(row, col);
            }
            b'H' => {
                self.touch(self.row);
                (self.col, self.row) = (0, 0);
            }
            b'J' if n == 2 => (0..self.rows).for_each(|row| self.clear(row, 0)),
            _ => {}
        }
    }

    /// Blanks row `row` from column `from` to its end.
    fn clear(&mut self, row: usize, from: usize) {
        let start = row * self.cols;
        self.cells[start + from.min(self.cols)..start + self.cols].fill(b' ');
        self.dirty[row] = true;
    }

    /// Writes a character at the cursor and advances it (wrapping at the
    /// end of the row).
    fn put(&mut self, byte: u8) {
        if self.col >= self.cols {
            self.col = 0;
            self.line_feed();
        }
        self.cells[self.row * self.cols + self.col] = byte;
        self.dirty[self.row] = true;
        self.col += 1;
        if self.col == self.cols {
            self.col = 0;
            self.line_feed();
        }
    }

    /// Moves the cursor down a row, scrolling the grid up at the bottom.
    fn line_feed(&mut self) {
        self.touch(self.row);
        if self.row + 1 < self.rows {
            self.row += 1;
        } else {
            self.cells.copy_within(self.cols.., 0);
            let last = (self.rows - 1) * self.cols;
            self.cells[last..].fill(b' ');
            self.dirty.fill(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(term: &Terminal, row: usize) -> &str {
        core::str::from_utf8(term.row(row)).unwrap().trim_end()
    }

    #[test]
    fn lines_and_carriage_returns() {
        let mut term = Terminal::new(10, 3);
        term.write(b"ab\r\ncd\nef");
        assert_eq!(text(&term, 0), "ab");
        assert_eq!(text(&term, 1), "cd");
        // A bare LF is a new line, as a terminal shows the kernel's log.
        assert_eq!(text(&term, 2), "ef");
        assert_eq!(term.cursor(), (2, 2));
    }

    #[test]
    fn scrolls_at_the_bottom_and_marks_every_row() {
        let mut term = Terminal::new(4, 2);
        term.write(b"1\r\n2\r\n3");
        assert_eq!(text(&term, 0), "2");
        assert_eq!(text(&term, 1), "3");
        let _ = term.take_dirty().count();
        term.write(b"\r\n");
        assert_eq!(term.take_dirty().count(), 2);
        assert_eq!(text(&term, 0), "3");
        assert_eq!(text(&term, 1), "");
    }

    #[test]
    fn wraps_long_lines() {
        let mut term = Terminal::new(3, 3);
        term.write(b"abcdefg");
        assert_eq!(
            [text(&term, 0), text(&term, 1), text(&term, 2)],
            ["abc", "def", "g"]
        );
    }

    #[test]
    fn line_editor_sequences() {
        let mut term = Terminal::new(20, 2);
        // What the editor writes for "helo", Left, Left, 'l' inserted, redraw.
        term.write(b"> helo\x1b[2Dllo\x1b[2D");
        assert_eq!(text(&term, 0), "> hello");
        assert_eq!(term.cursor(), (5, 0));
        term.write(b"\x1b[K");
        assert_eq!(text(&term, 0), "> hel");
        term.write(b"\x1b[3C\x08\x08x");
        assert_eq!(text(&term, 0), "> hel x");
        term.write(b"\x1b[H\x1b[2J");
        assert_eq!((text(&term, 0), term.cursor()), ("", (0, 0)));
    }

    #[test]
    fn unknown_sequences_and_controls_draw_nothing() {
        let mut term = Terminal::new(20, 1);
        term.write(b"a\x1b[1;5Cb\x07\x1b[200~c\x1b7d");
        // The first parameter counts (one column right); the rest are skipped.
        assert_eq!(text(&term, 0), "a bcd");
    }

    #[test]
    fn utf8_is_one_placeholder_per_character() {
        let mut term = Terminal::new(10, 1);
        term.write("5 µs".as_bytes());
        assert_eq!(text(&term, 0), "5 ?s");
    }

    #[test]
    fn dirty_rows_are_reported_once() {
        let mut term = Terminal::new(5, 3);
        let _ = term.take_dirty().count();
        term.write(b"x");
        assert_eq!(term.take_dirty().collect::<Vec<_>>(), [0]);
        assert_eq!(term.take_dirty().count(), 0);
    }
}
