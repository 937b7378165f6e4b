//! The one formatter of the shell's tables: columns aligned to the widest
//! cell, headers included; numbers to the right, text columns chosen by the
//! caller to the left.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::{Display, Write};

/// A table being built row by row.
pub struct Table {
    header: Vec<&'static str>,
    caption: Option<String>,
    /// Columns aligned to the left (text), by index.
    left: Vec<usize>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(header: &[&'static str]) -> Table {
        Table {
            header: header.to_vec(),
            caption: None,
            left: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// Aligns column `index` to the left (a text column).
    pub fn align_left(&mut self, index: usize) {
        self.left.push(index);
    }

    /// Text printed after the header, on its line.
    pub fn caption(&mut self, caption: String) {
        self.caption = Some(caption);
    }

    /// Adds a row (cells beyond the header's count are ignored; missing
    /// ones are blank).
    pub fn row(&mut self, cells: &[&dyn Display]) {
        self.rows.push(
            cells
                .iter()
                .take(self.header.len())
                .map(|c| c.to_string())
                .collect(),
        );
    }

    /// Writes the table to `out`, one line per row, without a final newline.
    pub fn render(&self, out: &mut String) {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|i| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(String::len)
                    .chain(core::iter::once(self.header[i].len()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let header = self
            .header
            .iter()
            .map(|h| h.to_string())
            .collect::<Vec<_>>();
        for (n, row) in core::iter::once(&header).chain(&self.rows).enumerate() {
            if n > 0 {
                out.push('\n');
            }
            let mut line = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = row.get(i).map_or("", String::as_str);
                let sep = if i == 0 { "" } else { "  " };
                let _ = if self.left.contains(&i) {
                    write!(line, "{sep}{cell:<width$}")
                } else {
                    write!(line, "{sep}{cell:>width$}")
                };
            }
            if let (0, Some(caption)) = (n, &self.caption) {
                let _ = write!(line, "  {caption}");
            }
            out.push_str(line.trim_end());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_to_the_widest_cell() {
        let mut t = Table::new(&["core", "tasks"]);
        t.row(&[&0, &12345]);
        t.row(&[&10, &7]);
        let mut out = String::new();
        t.render(&mut out);
        assert_eq!(out, "core  tasks\n   0  12345\n  10      7");
    }

    #[test]
    fn text_columns_align_left() {
        let mut t = Table::new(&["n", "name"]);
        t.align_left(1);
        t.row(&[&1, &"ab"]);
        t.row(&[&22, &"abcdef"]);
        let mut out = String::new();
        t.render(&mut out);
        assert_eq!(out, " n  name\n 1  ab\n22  abcdef");
    }
}
