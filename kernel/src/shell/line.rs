//! The shell's line editor: turns bytes typed on a VT100/xterm serial
//! terminal into lines, with cursor editing, history and command completion.
//!
//! The editor is a pure state machine: [`LineEditor::feed`] takes one byte and
//! appends whatever the terminal must show to a `String`, so it knows no
//! hardware and runs as a host unit test. Decoding (bytes to `Key`s, escape
//! sequences included) is kept apart from editing, so every way a terminal
//! spells a key ends in the same code path.
//!
//! Keys: printable ASCII inserts at the cursor; Enter (CR, LF, or a CR LF /
//! LF CR pair) ends the line; Backspace (BS, DEL) and Delete; Left/Right,
//! Home/End in their CSI and SS3 spellings and Ctrl-B/F/A/E; Up/Down and
//! Ctrl-P/N walk the history, keeping the line being typed; Ctrl-U/K kill
//! before/after the cursor, Ctrl-W the word before it; Ctrl-L clears the
//! screen and redraws prompt and line; Ctrl-C drops the line; Tab completes
//! the command name. The prompt is printed by the caller, who also tells it
//! to the editor ([`LineEditor::set_prompt`]) for the redraws it does itself.
//!
//! Rules the editor keeps, and why:
//! - The line holds printable ASCII only, so one byte is one column and the
//!   cursor needs no width table. Other bytes (controls it does not use,
//!   UTF-8) are dropped.
//! - Cursor output is relative (`ESC [ n D`, `ESC [ n C`, `ESC [ K`), so the
//!   editor needs neither the prompt's width nor the terminal's. The price:
//!   prompt and line are assumed to fit on one terminal row; a longer line
//!   wraps and relative moves cannot cross the wrap.
//! - Every escape sequence is consumed whole, known or not, so a key the
//!   editor does not handle (F1, Ctrl-arrows, Insert, paste markers) never
//!   leaves stray text like `[1;5C` in the line.
//! - A line is at most [`MAX_LINE`] bytes; input beyond that is refused with
//!   a bell, so a stuck key or a paste cannot grow kernel memory.
//! - The bell also answers a Tab that cannot complete. Moving past either
//!   end of the line or of the history is silent.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

/// The longest line the editor accepts, in bytes (= columns).
pub const MAX_LINE: usize = 256;

const BELL: char = '\x07';
const ESC: u8 = 0x1b;
/// Erase from the cursor to the end of the row.
const ERASE_TO_END: &str = "\x1b[K";
/// Cursor to the top left, then erase the whole screen.
const CLEAR_SCREEN: &str = "\x1b[H\x1b[2J";

/// The byte a terminal sends for Ctrl and `letter`.
const fn ctrl(letter: u8) -> u8 {
    letter & 0x1f
}

const CTRL_A: u8 = ctrl(b'A');
const CTRL_B: u8 = ctrl(b'B');
const CTRL_C: u8 = ctrl(b'C');
const CTRL_E: u8 = ctrl(b'E');
const CTRL_F: u8 = ctrl(b'F');
const CTRL_K: u8 = ctrl(b'K');
const CTRL_L: u8 = ctrl(b'L');
const CTRL_N: u8 = ctrl(b'N');
const CTRL_P: u8 = ctrl(b'P');
const CTRL_U: u8 = ctrl(b'U');
const CTRL_W: u8 = ctrl(b'W');

/// What a fed byte produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Nothing for the caller: the byte was an edit, or part of a sequence.
    None,
    /// Enter was pressed: the line as typed (not trimmed). `"\r\n"` has been
    /// written; the caller runs the line and prints a fresh prompt.
    Line(String),
    /// Ctrl-C: the line was dropped and `"^C\r\n"` written; the caller
    /// prints a fresh prompt.
    Cancel,
}

/// An editing command, whichever bytes the terminal used to send it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Char(u8),
    Enter,
    Backspace,
    Delete,
    Left,
    Right,
    Home,
    End,
    Up,
    Down,
    KillToStart,
    KillToEnd,
    KillWord,
    Redraw,
    Cancel,
    Complete,
}

/// Where the decoder is inside an escape sequence.
#[derive(Clone, Copy, Debug)]
enum State {
    Ground,
    /// After ESC.
    Escape,
    /// After `ESC [` (CSI).
    Csi(Params),
    /// After `ESC O` (SS3).
    Ss3(Params),
}

/// The parameter and intermediate bytes of a sequence, reduced to what the
/// keys we know use: nothing, or one number.
#[derive(Clone, Copy, Debug, Default)]
struct Params {
    number: Option<u16>,
    /// Anything else was seen (`;`, a second number, `?`, an intermediate).
    other: bool,
}

impl Params {
    /// Takes a parameter or intermediate byte (0x20..=0x3f).
    fn push(&mut self, byte: u8) {
        if byte.is_ascii_digit() && !self.other {
            let digit = u16::from(byte - b'0');
            let number = self.number.unwrap_or(0);
            self.number = Some(number.saturating_mul(10).saturating_add(digit));
        } else {
            self.other = true;
        }
    }

    fn is_empty(&self) -> bool {
        self.number.is_none() && !self.other
    }
}

/// Turns terminal bytes into [`Key`]s.
#[derive(Debug)]
struct Decoder {
    state: State,
    /// The previous byte was an Enter sent as this byte (CR or LF).
    last_enter: Option<u8>,
}

impl Decoder {
    const fn new() -> Self {
        Self {
            state: State::Ground,
            last_enter: None,
        }
    }

    /// Takes one byte; returns the key it completes, if any.
    ///
    /// A byte outside 0x20..=0x7e aborts a pending escape sequence and is then
    /// read on its own (so Ctrl-C or Enter always work, and an ESC starts a
    /// new sequence): terminals never put such bytes inside a key's sequence.
    fn decode(&mut self, byte: u8) -> Option<Key> {
        let last_enter = self.last_enter.take();
        let state = core::mem::replace(&mut self.state, State::Ground);
        if !(0x20..=0x7e).contains(&byte) {
            return self.ground(byte, last_enter);
        }
        match state {
            State::Ground => self.ground(byte, last_enter),
            State::Escape => {
                // Any other byte after ESC is an Alt-key pair: dropped whole.
                match byte {
                    b'[' => self.state = State::Csi(Params::default()),
                    b'O' => self.state = State::Ss3(Params::default()),
                    _ => {}
                }
                None
            }
            // Parameter and intermediate bytes (0x20..=0x3f), then a final byte.
            State::Csi(mut params) if byte < 0x40 => {
                params.push(byte);
                self.state = State::Csi(params);
                None
            }
            State::Ss3(mut params) if byte < 0x40 => {
                params.push(byte);
                self.state = State::Ss3(params);
                None
            }
            State::Csi(params) => csi_key(byte, params),
            State::Ss3(params) => params.is_empty().then(|| letter_key(byte)).flatten(),
        }
    }

    /// Reads a byte outside any escape sequence.
    fn ground(&mut self, byte: u8, last_enter: Option<u8>) -> Option<Key> {
        match byte {
            b'\r' | b'\n' => {
                // CR LF and LF CR are one Enter; CR CR and LF LF are two.
                if last_enter.is_some_and(|previous| previous != byte) {
                    return None;
                }
                self.last_enter = Some(byte);
                Some(Key::Enter)
            }
            ESC => {
                self.state = State::Escape;
                None
            }
            0x20..=0x7e => Some(Key::Char(byte)),
            0x08 | 0x7f => Some(Key::Backspace),
            b'\t' => Some(Key::Complete),
            CTRL_A => Some(Key::Home),
            CTRL_E => Some(Key::End),
            CTRL_B => Some(Key::Left),
            CTRL_F => Some(Key::Right),
            CTRL_P => Some(Key::Up),
            CTRL_N => Some(Key::Down),
            CTRL_U => Some(Key::KillToStart),
            CTRL_K => Some(Key::KillToEnd),
            CTRL_W => Some(Key::KillWord),
            CTRL_L => Some(Key::Redraw),
            CTRL_C => Some(Key::Cancel),
            _ => None,
        }
    }
}

/// The key of a CSI sequence ending in `last`. Keys with modifiers
/// (`ESC [ 1 ; 5 C`) or unknown numbers (`ESC [ 2 0 0 ~`) map to none.
fn csi_key(last: u8, params: Params) -> Option<Key> {
    if params.other {
        return None;
    }
    match (last, params.number) {
        (b'~', Some(1 | 7)) => Some(Key::Home),
        (b'~', Some(4 | 8)) => Some(Key::End),
        (b'~', Some(3)) => Some(Key::Delete),
        (_, None) => letter_key(last),
        _ => None,
    }
}

/// The key of a parameterless `ESC [ x` or `ESC O x`.
fn letter_key(last: u8) -> Option<Key> {
    match last {
        b'A' => Some(Key::Up),
        b'B' => Some(Key::Down),
        b'C' => Some(Key::Right),
        b'D' => Some(Key::Left),
        b'H' => Some(Key::Home),
        b'F' => Some(Key::End),
        _ => None,
    }
}

/// Moves the terminal cursor `columns` to the left.
fn left(out: &mut String, columns: usize) {
    if columns > 0 {
        // Writing to a String cannot fail.
        let _ = write!(out, "\x1b[{columns}D");
    }
}

/// Moves the terminal cursor `columns` to the right.
fn right(out: &mut String, columns: usize) {
    if columns > 0 {
        // Writing to a String cannot fail.
        let _ = write!(out, "\x1b[{columns}C");
    }
}

/// Whether `name` can be completed into a line: non-empty, printable ASCII,
/// no spaces (the line's one-byte-per-column rule).
fn is_command_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|byte| byte.is_ascii_graphic())
}

/// The longest prefix all `names` share.
fn common_prefix<'a>(names: &[&'a str]) -> &'a str {
    let Some((first, rest)) = names.split_first() else {
        return "";
    };
    let len = rest.iter().fold(first.len(), |len, name| {
        first
            .bytes()
            .zip(name.bytes())
            .take(len)
            .take_while(|(a, b)| a == b)
            .count()
    });
    &first[..len]
}

/// A line editor for one terminal.
///
/// The terminal cursor is always at `prompt + cursor`, on the row where the
/// caller printed the prompt; every method below keeps it there.
#[derive(Debug)]
pub struct LineEditor {
    decoder: Decoder,
    line: String,
    /// Byte index into `line`, which is also the column after the prompt.
    cursor: usize,
    prompt: String,
    history: VecDeque<String>,
    history_capacity: usize,
    /// The history entry shown, or `None` while editing a new line.
    browsing: Option<usize>,
    /// The new line, put aside while the history is shown.
    draft: String,
    /// The previous byte was a Tab with several matches: a Tab now lists them.
    ambiguous_tab: bool,
}

impl LineEditor {
    /// Creates an editor keeping the last `history_capacity` lines (0: none).
    pub fn new(history_capacity: usize) -> Self {
        Self {
            decoder: Decoder::new(),
            line: String::new(),
            cursor: 0,
            prompt: String::new(),
            history: VecDeque::new(),
            history_capacity,
            browsing: None,
            draft: String::new(),
            ambiguous_tab: false,
        }
    }

    /// Sets the prompt the caller prints, for the redraws the editor does on
    /// its own: after listing completions and after Ctrl-L. Empty by default.
    pub fn set_prompt(&mut self, prompt: &str) {
        self.prompt.clear();
        self.prompt.push_str(prompt);
    }

    /// Feeds one byte typed on the terminal. Whatever must be echoed or redrawn
    /// (characters, cursor movement escape sequences, erase) is appended to `out`.
    /// `commands` is the list of command names for tab completion.
    pub fn feed(&mut self, byte: u8, commands: &[&str], out: &mut String) -> Event {
        let after_ambiguous_tab = core::mem::take(&mut self.ambiguous_tab);
        let Some(key) = self.decoder.decode(byte) else {
            return Event::None;
        };
        match key {
            Key::Char(byte) => {
                self.insert(char::from(byte).encode_utf8(&mut [0; 4]), out);
            }
            Key::Enter => return self.enter(out),
            Key::Cancel => return self.cancel(out),
            Key::Backspace if self.cursor > 0 => self.remove(self.cursor - 1, self.cursor, out),
            Key::Backspace => {}
            Key::Delete if self.cursor < self.line.len() => {
                self.remove(self.cursor, self.cursor + 1, out);
            }
            Key::Delete => {}
            Key::Left => self.move_to(self.cursor.saturating_sub(1), out),
            Key::Right => self.move_to((self.cursor + 1).min(self.line.len()), out),
            Key::Home => self.move_to(0, out),
            Key::End => self.move_to(self.line.len(), out),
            Key::Up => self.history_up(out),
            Key::Down => self.history_down(out),
            Key::KillToStart => self.remove(0, self.cursor, out),
            Key::KillToEnd => self.remove(self.cursor, self.line.len(), out),
            Key::KillWord => self.remove(self.word_start(), self.cursor, out),
            Key::Redraw => {
                out.push_str(CLEAR_SCREEN);
                self.redraw(out);
            }
            Key::Complete => self.complete(commands, after_ambiguous_tab, out),
        }
        Event::None
    }

    /// The lines entered, oldest first.
    pub fn history(&self) -> impl Iterator<Item = &str> {
        self.history.iter().map(String::as_str)
    }

    /// Moves the cursor to `column` of the line.
    fn move_to(&mut self, column: usize, out: &mut String) {
        if column < self.cursor {
            left(out, self.cursor - column);
        } else {
            right(out, column - self.cursor);
        }
        self.cursor = column;
    }

    /// Inserts `text` at the cursor and redraws the tail; refuses it with a
    /// bell if the line would grow past [`MAX_LINE`].
    fn insert(&mut self, text: &str, out: &mut String) -> bool {
        if self.line.len() + text.len() > MAX_LINE {
            out.push(BELL);
            return false;
        }
        let at = self.cursor;
        self.line.insert_str(at, text);
        self.cursor += text.len();
        out.push_str(&self.line[at..]);
        left(out, self.line.len() - self.cursor);
        true
    }

    /// Deletes columns `start..end` and leaves the cursor at `start`.
    fn remove(&mut self, start: usize, end: usize, out: &mut String) {
        if start == end {
            return;
        }
        self.move_to(start, out);
        self.line.replace_range(start..end, "");
        out.push_str(&self.line[start..]);
        out.push_str(ERASE_TO_END);
        left(out, self.line.len() - start);
    }

    /// Replaces the whole line, with the cursor at its end.
    fn show(&mut self, line: String, out: &mut String) {
        self.move_to(0, out);
        self.line = line;
        self.cursor = self.line.len();
        out.push_str(&self.line);
        out.push_str(ERASE_TO_END);
    }

    /// Prints prompt and line on a fresh row and puts the cursor back.
    fn redraw(&self, out: &mut String) {
        out.push_str(&self.prompt);
        out.push_str(&self.line);
        left(out, self.line.len() - self.cursor);
    }

    /// Where Ctrl-W's kill starts: back over spaces, then over the word.
    fn word_start(&self) -> usize {
        let before = &self.line.as_bytes()[..self.cursor];
        let word_end = before.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
        before[..word_end]
            .iter()
            .rposition(|&b| b == b' ')
            .map_or(0, |i| i + 1)
    }

    fn enter(&mut self, out: &mut String) -> Event {
        out.push_str("\r\n");
        let line = core::mem::take(&mut self.line);
        self.reset();
        self.remember(&line);
        Event::Line(line)
    }

    fn cancel(&mut self, out: &mut String) -> Event {
        // `^C` goes after the whole line, not over its tail.
        self.move_to(self.line.len(), out);
        out.push_str("^C\r\n");
        self.line.clear();
        self.reset();
        Event::Cancel
    }

    /// Starts a new, empty line.
    fn reset(&mut self) {
        self.cursor = 0;
        self.browsing = None;
        self.draft.clear();
    }

    /// Adds an entered line to the history, unless it is blank or repeats the
    /// newest entry.
    fn remember(&mut self, line: &str) {
        if self.history_capacity == 0
            || line.trim().is_empty()
            || self.history.back().is_some_and(|newest| newest == line)
        {
            return;
        }
        if self.history.len() == self.history_capacity {
            self.history.pop_front();
        }
        self.history.push_back(String::from(line));
    }

    fn history_up(&mut self, out: &mut String) {
        let older = match self.browsing {
            None => self.history.len().checked_sub(1),
            Some(index) => index.checked_sub(1),
        };
        let Some(index) = older else {
            return;
        };
        if self.browsing.is_none() {
            self.draft = core::mem::take(&mut self.line);
        }
        self.browsing = Some(index);
        let entry = self.history[index].clone();
        self.show(entry, out);
    }

    fn history_down(&mut self, out: &mut String) {
        let Some(index) = self.browsing else {
            return;
        };
        let line = if index + 1 < self.history.len() {
            self.browsing = Some(index + 1);
            self.history[index + 1].clone()
        } else {
            // Past the newest entry: the line that was being typed.
            self.browsing = None;
            core::mem::take(&mut self.draft)
        };
        self.show(line, out);
    }

    /// Tab: completes the command name when the cursor is in the first word.
    /// One match completes it and adds a space; several complete their
    /// common prefix, and the next Tab lists them.
    fn complete(&mut self, commands: &[&str], after_ambiguous_tab: bool, out: &mut String) {
        let word = self.line[..self.cursor].trim_start_matches(' ');
        if word.contains(' ') {
            out.push(BELL);
            return;
        }
        let typed = word.len();
        let mut matches: Vec<&str> = commands
            .iter()
            .copied()
            .filter(|name| name.starts_with(word) && is_command_name(name))
            .collect();
        matches.sort_unstable();
        matches.dedup();
        match matches.as_slice() {
            [] => out.push(BELL),
            [name] => {
                let mut completion = String::from(&name[typed..]);
                let space_follows = self.line.as_bytes().get(self.cursor) == Some(&b' ');
                if !space_follows {
                    completion.push(' ');
                }
                if self.insert(&completion, out) && space_follows {
                    self.move_to(self.cursor + 1, out);
                }
            }
            several => {
                self.ambiguous_tab = true;
                let common = common_prefix(several);
                if common.len() > typed {
                    self.insert(&common[typed..], out);
                } else if after_ambiguous_tab {
                    out.push_str("\r\n");
                    for (i, name) in several.iter().enumerate() {
                        if i > 0 {
                            out.push_str("  ");
                        }
                        out.push_str(name);
                    }
                    out.push_str("\r\n");
                    self.redraw(out);
                } else {
                    out.push(BELL);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::ToString;
    use alloc::vec;

    const COMMANDS: &[&str] = &["help", "history", "halt", "mem", "reboot", "uptime"];
    const PROMPT: &str = "> ";

    /// A tiny VT100: the bytes the editor may emit, applied to rows of text.
    /// Anything else it panics on, so the editor cannot emit it unnoticed.
    #[derive(Default)]
    struct Screen {
        rows: Vec<Vec<u8>>,
        row: usize,
        column: usize,
    }

    impl Screen {
        fn apply(&mut self, output: &str) {
            let mut bytes = output.bytes();
            while let Some(byte) = bytes.next() {
                match byte {
                    b'\r' => self.column = 0,
                    b'\n' => self.row += 1,
                    0x08 => self.column = self.column.saturating_sub(1),
                    0x07 => {}
                    0x1b => {
                        assert_eq!(bytes.next(), Some(b'['), "only CSI is emitted");
                        let mut number = String::new();
                        let last = loop {
                            match bytes.next().expect("unterminated CSI") {
                                digit @ b'0'..=b'9' => number.push(char::from(digit)),
                                last => break last,
                            }
                        };
                        let n: usize = number.parse().unwrap_or(1);
                        match (last, number.as_str()) {
                            (b'C', _) => self.column += n,
                            (b'D', _) => self.column = self.column.saturating_sub(n),
                            (b'K', "") => {
                                let column = self.column;
                                self.current().truncate(column);
                            }
                            (b'H', "") => (self.row, self.column) = (0, 0),
                            (b'J', "2") => self.rows.clear(),
                            _ => panic!("unexpected CSI {number}{}", char::from(last)),
                        }
                    }
                    0x20..=0x7e => {
                        let column = self.column;
                        let row = self.current();
                        if row.len() <= column {
                            row.resize(column + 1, b' ');
                        }
                        row[column] = byte;
                        self.column += 1;
                    }
                    _ => panic!("unexpected byte {byte:#x} in output"),
                }
            }
        }

        fn current(&mut self) -> &mut Vec<u8> {
            if self.rows.len() <= self.row {
                self.rows.resize(self.row + 1, Vec::new());
            }
            &mut self.rows[self.row]
        }

        fn row_text(&self, row: usize) -> &str {
            self.rows
                .get(row)
                .map_or("", |r| core::str::from_utf8(r).unwrap())
        }
    }

    /// An editor wired to a screen, playing the caller's part (prompts).
    struct Term {
        editor: LineEditor,
        screen: Screen,
        events: Vec<Event>,
    }

    impl Term {
        fn new() -> Self {
            let mut editor = LineEditor::new(4);
            editor.set_prompt(PROMPT);
            let mut screen = Screen::default();
            screen.apply(PROMPT);
            Self {
                editor,
                screen,
                events: Vec::new(),
            }
        }

        /// Feeds `bytes`, checking after each that the screen shows prompt +
        /// line with the cursor where the editor thinks it is.
        fn keys(&mut self, bytes: &[u8]) -> &mut Self {
            for &byte in bytes {
                let mut out = String::new();
                let event = self.editor.feed(byte, COMMANDS, &mut out);
                self.screen.apply(&out);
                if event != Event::None {
                    self.screen.apply(PROMPT);
                    self.events.push(event);
                }
                self.check();
            }
            self
        }

        fn check(&self) {
            let expected = format!("{PROMPT}{}", self.editor.line);
            assert_eq!(self.screen.row_text(self.screen.row), expected);
            assert_eq!(self.screen.column, PROMPT.len() + self.editor.cursor);
        }

        fn line(&self) -> &str {
            &self.editor.line
        }

        fn cursor(&self) -> usize {
            self.editor.cursor
        }

        fn history(&self) -> Vec<&str> {
            self.editor.history().collect()
        }
    }

    const UP: &[u8] = b"\x1b[A";
    const DOWN: &[u8] = b"\x1b[B";
    const LEFT: &[u8] = b"\x1b[D";
    const RIGHT: &[u8] = b"\x1b[C";

    /// Feeds `bytes` to a fresh editor; returns the events and the output.
    fn feed_all(editor: &mut LineEditor, bytes: &[u8]) -> (Vec<Event>, String) {
        let mut out = String::new();
        let events = bytes
            .iter()
            .map(|&byte| editor.feed(byte, COMMANDS, &mut out))
            .filter(|event| *event != Event::None)
            .collect();
        (events, out)
    }

    #[test]
    fn typing_echoes_and_enter_returns_the_line() {
        let mut editor = LineEditor::new(4);
        let (events, out) = feed_all(&mut editor, b"help me\r");
        assert_eq!(events, vec![Event::Line("help me".to_string())]);
        assert_eq!(out, "help me\r\n");
    }

    #[test]
    fn line_is_returned_as_typed() {
        let mut term = Term::new();
        term.keys(b"  mem  \n");
        assert_eq!(term.events, vec![Event::Line("  mem  ".to_string())]);
    }

    #[test]
    fn cr_lf_and_lf_cr_are_one_enter() {
        let mut term = Term::new();
        term.keys(b"a\r\nb\n\rc\r\rd\n\n");
        let lines = ["a", "b", "c", "", "d", ""].map(|l| Event::Line(l.to_string()));
        assert_eq!(term.events, lines);
    }

    #[test]
    fn lf_after_cr_is_only_skipped_right_after() {
        let mut term = Term::new();
        term.keys(b"a\rb\nc\r");
        let lines = ["a", "b", "c"].map(|l| Event::Line(l.to_string()));
        assert_eq!(term.events, lines);
    }

    #[test]
    fn arrow_keys_never_insert_text() {
        let mut term = Term::new();
        for key in [
            UP, DOWN, LEFT, RIGHT, b"\x1bOA", b"\x1bOB", b"\x1bOC", b"\x1bOD",
        ] {
            term.keys(key);
        }
        assert_eq!(term.line(), "");
        term.keys(b"ab")
            .keys(LEFT)
            .keys(b"\x1bOD")
            .keys(RIGHT)
            .keys(b"\x1bOC");
        assert_eq!((term.line(), term.cursor()), ("ab", 2));
        term.keys(RIGHT);
        assert_eq!(term.cursor(), 2);
    }

    #[test]
    fn inserts_in_the_middle() {
        let mut term = Term::new();
        term.keys(b"hlp").keys(LEFT).keys(LEFT).keys(b"e");
        assert_eq!((term.line(), term.cursor()), ("help", 2));
        term.keys(b"\x01>").keys(b"\x05<");
        assert_eq!(term.line(), ">help<");
        term.keys(b"\r");
        assert_eq!(term.events, vec![Event::Line(">help<".to_string())]);
    }

    #[test]
    fn insert_redraws_the_tail_and_moves_back() {
        let mut editor = LineEditor::new(0);
        feed_all(&mut editor, b"ac\x02");
        let (_, out) = feed_all(&mut editor, b"b");
        assert_eq!(out, "bc\x1b[1D");
    }

    #[test]
    fn backspace_and_delete() {
        let mut term = Term::new();
        term.keys(b"abcd\x08\x7f");
        assert_eq!(term.line(), "ab");
        term.keys(b"cd\x01\x7f");
        assert_eq!(term.line(), "abcd");
        term.keys(RIGHT).keys(b"\x1b[3~");
        assert_eq!((term.line(), term.cursor()), ("acd", 1));
        term.keys(b"\x08\x08\x05\x1b[3~");
        assert_eq!((term.line(), term.cursor()), ("cd", 2));
    }

    #[test]
    fn home_end_in_every_spelling() {
        let homes: [&[u8]; 6] = [
            b"\x1b[H", b"\x1bOH", b"\x1b[1~", b"\x1b[7~", b"\x01", b"\x1b[H",
        ];
        let ends: [&[u8]; 6] = [
            b"\x1b[F", b"\x1bOF", b"\x1b[4~", b"\x1b[8~", b"\x05", b"\x1b[F",
        ];
        let mut term = Term::new();
        term.keys(b"hello");
        for (home, end) in homes.iter().zip(ends) {
            term.keys(home);
            assert_eq!(term.cursor(), 0);
            term.keys(end);
            assert_eq!(term.cursor(), 5);
        }
        assert_eq!(term.line(), "hello");
    }

    #[test]
    fn ctrl_b_and_ctrl_f_move() {
        let mut term = Term::new();
        term.keys(b"abc\x02\x02");
        assert_eq!(term.cursor(), 1);
        term.keys(b"\x06");
        assert_eq!(term.cursor(), 2);
    }

    #[test]
    fn unknown_sequences_are_ignored() {
        let mut term = Term::new();
        let unknown: [&[u8]; 10] = [
            b"\x1b[1;5C", // Ctrl-Right
            b"\x1b[200~", // bracketed paste start
            b"\x1bOP",    // F1
            b"\x1b[15~",  // F5
            b"\x1b[2~",   // Insert
            b"\x1b[3;5~", // Ctrl-Delete
            b"\x1b[?25h", // private marker
            b"\x1bx",     // Alt-x
            b"\x1b[1;5A", // Ctrl-Up
            b"\x1b[ @",   // intermediate byte
        ];
        term.keys(b"ab").keys(LEFT);
        for sequence in unknown {
            term.keys(sequence);
            assert_eq!((term.line(), term.cursor()), ("ab", 1), "{sequence:?}");
        }
        assert!(term.events.is_empty());
    }

    #[test]
    fn controls_abort_a_sequence() {
        let mut term = Term::new();
        term.keys(b"ab\x1b[1\x03");
        assert_eq!(term.events, vec![Event::Cancel]);
        term.keys(b"x\x1b[\x1b[D\x1b\ry");
        assert_eq!(term.events[1], Event::Line("x".to_string()));
        assert_eq!(term.line(), "y");
    }

    #[test]
    fn other_bytes_are_ignored() {
        let mut term = Term::new();
        term.keys(&[0x00, 0x04, 0x0f, 0x1c, 0x80, 0xc3, 0xa9, 0xff]);
        assert_eq!(term.line(), "");
        assert!(term.events.is_empty());
    }

    #[test]
    fn line_length_is_bounded() {
        let mut editor = LineEditor::new(1);
        let (_, out) = feed_all(&mut editor, &[b'x'; MAX_LINE]);
        assert!(!out.contains(BELL));
        let (_, out) = feed_all(&mut editor, b"yz\x01w");
        assert_eq!(out.matches(BELL).count(), 3);
        assert_eq!(editor.line.len(), MAX_LINE);
        let (events, _) = feed_all(&mut editor, b"\x05\x7f\x01v\r");
        let line = format!("v{}", "x".repeat(MAX_LINE - 1));
        assert_eq!(events, vec![Event::Line(line)]);
    }

    #[test]
    fn history_walks_and_restores_the_draft() {
        let mut term = Term::new();
        term.keys(b"one\rtwo\rthr");
        term.keys(UP);
        assert_eq!(term.line(), "two");
        term.keys(b"\x10");
        assert_eq!(term.line(), "one");
        term.keys(UP);
        assert_eq!(term.line(), "one", "stays at the oldest");
        term.keys(DOWN);
        assert_eq!(term.line(), "two");
        term.keys(b"\x0e");
        assert_eq!((term.line(), term.cursor()), ("thr", 3));
        term.keys(DOWN);
        assert_eq!(term.line(), "thr", "stays at the draft");
        term.keys(b"\x1bOA\x1bOB");
        assert_eq!(term.line(), "thr");
    }

    #[test]
    fn recalled_line_can_be_edited_and_entered() {
        let mut term = Term::new();
        term.keys(b"mem 1\r").keys(UP).keys(b"\x7f2\r");
        assert_eq!(term.events[1], Event::Line("mem 2".to_string()));
        assert_eq!(term.history(), ["mem 1", "mem 2"]);
        term.keys(UP);
        assert_eq!(
            term.line(),
            "mem 2",
            "a new line starts at the newest entry"
        );
    }

    #[test]
    fn history_skips_blanks_and_repeats_and_is_bounded() {
        let mut term = Term::new();
        term.keys(b"a\ra\r\r   \rb\ra\rc\rd\re\r");
        assert_eq!(term.history(), ["a", "c", "d", "e"]);
        let mut editor = LineEditor::new(0);
        feed_all(&mut editor, b"a\r");
        assert_eq!(editor.history().count(), 0);
    }

    #[test]
    fn ctrl_w_kills_the_word_before_the_cursor() {
        let mut term = Term::new();
        term.keys(b"mem  dump  ").keys(b"\x17");
        assert_eq!(term.line(), "mem  ");
        term.keys(b"dump 12").keys(LEFT).keys(b"\x17");
        assert_eq!((term.line(), term.cursor()), ("mem  dump 2", 10));
        term.keys(b"\x01\x17");
        assert_eq!(term.line(), "mem  dump 2");
        term.keys(b"\x05\x17\x17\x17");
        assert_eq!(term.line(), "");
    }

    #[test]
    fn ctrl_u_and_ctrl_k_kill_around_the_cursor() {
        let mut term = Term::new();
        term.keys(b"hello world")
            .keys(&LEFT.repeat(5))
            .keys(b"\x0b");
        assert_eq!((term.line(), term.cursor()), ("hello ", 6));
        term.keys(b"there").keys(LEFT).keys(b"\x15");
        assert_eq!((term.line(), term.cursor()), ("e", 0));
    }

    #[test]
    fn ctrl_c_cancels() {
        let mut editor = LineEditor::new(4);
        let (events, out) = feed_all(&mut editor, b"abc\x02\x02\x03");
        assert_eq!(events, vec![Event::Cancel]);
        assert!(out.ends_with("\x1b[2C^C\r\n"), "{out:?}");
        assert_eq!(editor.history().count(), 0);
        let mut term = Term::new();
        term.keys(b"x\rab").keys(UP).keys(b"\x03").keys(DOWN);
        assert_eq!(term.line(), "", "the draft went with the cancel");
    }

    #[test]
    fn ctrl_l_clears_the_screen_and_redraws() {
        let mut term = Term::new();
        term.keys(b"one\rtwo").keys(LEFT).keys(b"\x0c");
        assert_eq!(term.screen.rows.len(), 1);
        assert_eq!((term.line(), term.cursor()), ("two", 2));
    }

    #[test]
    fn tab_completes_a_unique_command() {
        let mut term = Term::new();
        term.keys(b"re\t");
        assert_eq!((term.line(), term.cursor()), ("reboot ", 7));
        term.keys(b"\x15  u\t");
        assert_eq!(term.line(), "  uptime ");
    }

    #[test]
    fn tab_steps_over_a_following_space() {
        let mut term = Term::new();
        term.keys(b"m 1").keys(LEFT).keys(LEFT).keys(b"\t");
        assert_eq!((term.line(), term.cursor()), ("mem 1", 4));
    }

    #[test]
    fn tab_completes_the_common_prefix_then_lists() {
        let mut term = Term::new();
        term.keys(b"hi\x01\x0bh\t");
        assert_eq!(term.line(), "h");
        let listed = term.screen.row;
        term.keys(b"\t");
        assert_eq!(term.screen.row_text(listed + 1), "halt  help  history");
        assert_eq!(term.line(), "h");
        term.keys(b"e\t");
        assert_eq!(term.line(), "help ");
        term.keys(b"\x15hi\t");
        assert_eq!(term.line(), "history ");
    }

    #[test]
    fn tab_extends_the_common_prefix_first() {
        let mut editor = LineEditor::new(0);
        let commands = ["mount", "mountall", "ls"];
        let mut out = String::new();
        for &byte in b"mo\t" {
            editor.feed(byte, &commands, &mut out);
        }
        assert_eq!(editor.line, "mount");
        assert_eq!(out, "mount");
        out.clear();
        editor.feed(b'\t', &commands, &mut out);
        assert_eq!(out, "\r\nmount  mountall\r\nmount");
    }

    #[test]
    fn tab_lists_only_after_a_consecutive_tab() {
        let mut editor = LineEditor::new(0);
        let (_, out) = feed_all(&mut editor, b"h\tx\x7f\t");
        assert_eq!(out.matches(BELL).count(), 2);
        assert!(!out.contains("help"));
    }

    #[test]
    fn tab_outside_the_first_word_or_without_match_rings() {
        let mut editor = LineEditor::new(0);
        let (_, out) = feed_all(&mut editor, b"mem h\t");
        assert_eq!(
            (editor.line.as_str(), out.matches(BELL).count()),
            ("mem h", 1)
        );
        let (_, out) = feed_all(&mut editor, b"\x15zz\t");
        assert_eq!((editor.line.as_str(), out.matches(BELL).count()), ("zz", 1));
    }

    #[test]
    fn tab_with_an_empty_line_lists_every_command() {
        let mut term = Term::new();
        term.keys(b"\t\t");
        let listed = term.screen.row - 1;
        assert_eq!(
            term.screen.row_text(listed),
            "halt  help  history  mem  reboot  uptime"
        );
    }

    #[test]
    fn completion_respects_the_line_bound() {
        let mut editor = LineEditor::new(0);
        feed_all(&mut editor, &[b' '; MAX_LINE - 2]);
        let (_, out) = feed_all(&mut editor, b"u\t");
        assert_eq!(out, "u\x07");
    }

    /// A long pseudo-random session through the screen model: whatever the
    /// keys, the screen shows prompt + line with the cursor in place.
    #[test]
    fn screen_follows_the_editor_under_random_keys() {
        let keys: [&[u8]; 27] = [
            b"a",
            b"m",
            b"e",
            b"h",
            b" ",
            b"\x08",
            b"\x7f",
            b"\x1b[3~",
            UP,
            DOWN,
            LEFT,
            RIGHT,
            b"\x1b[H",
            b"\x1b[F",
            b"\x01",
            b"\x05",
            b"\x0b",
            b"\x15",
            b"\x17",
            b"\x0c",
            b"\t",
            b"\t",
            b"\r",
            b"\x03",
            b"\x1b[1;5C",
            b"\x1bOP",
            b"hist",
        ];
        let mut term = Term::new();
        let mut state: u32 = 0x2545_f491;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            term.keys(keys[state as usize % keys.len()]);
        }
        assert!(term.history().len() <= 4);
    }
}
