//! The interactive shell on the serial console and on the screen and
//! keyboard, itself a task (on any core).
//!
//! The UART's and the keyboard's interrupts only queue bytes and raise
//! their readiness in core 0's readiness queue; core 0's reactor wakes this
//! task from there (wakers never run in interrupt context), through the bus
//! if the task lives on another core. The shell reads whichever input has a
//! byte: both work at any time, and its output goes to both (the console
//! writes to COM1 and the screen). Lines are edited with [`line::LineEditor`]
//! (cursor keys, history, completion); commands are in [`commands`].

pub mod commands;
pub mod disklog;
pub mod line;
pub mod netstack;
pub mod procs;
pub mod table;

use alloc::string::String;

use crate::drivers::input::{self, Reader};
use crate::drivers::{keyboard, uart};
use crate::{print, println};
use line::{Event, LineEditor};

/// The prompt.
const PROMPT: &str = "percore> ";
/// Lines kept in the history.
const HISTORY: usize = 64;

/// The shell task: reads lines and runs commands, forever.
pub async fn run() {
    println!("shell: type `help` for commands");
    let mut serial = match uart::reader() {
        Ok(input) => input,
        Err(error) => {
            log::error!("shell: cannot read the console: {error:?}");
            return;
        }
    };
    // No keyboard (no i8042, or its interrupt not routed): serial only.
    let mut keys = keyboard::reader().ok();
    let mut editor = LineEditor::new(HISTORY);
    editor.set_prompt(PROMPT);
    print!("{PROMPT}");
    let mut echo = String::new();
    loop {
        let byte = next_byte(&mut serial, keys.as_mut()).await;
        let event = editor.feed(byte, commands::NAMES, &mut echo);
        if !echo.is_empty() {
            print!("{echo}");
            echo.clear();
        }
        match event {
            Event::None => {}
            Event::Cancel => print!("{PROMPT}"),
            Event::Line(line) => {
                let output = commands::execute(line.trim()).await;
                if !output.is_empty() {
                    println!("{output}");
                }
                print!("{PROMPT}");
            }
        }
    }
}

/// The next byte typed on the serial line or the keyboard.
async fn next_byte(serial: &mut Reader, keys: Option<&mut Reader>) -> u8 {
    match keys {
        Some(keys) => input::next_of_two(serial, keys).await,
        None => serial.next_byte().await,
    }
}
