//! The interactive shell on the serial console, itself a task (on any core).
//!
//! The UART's receive interrupt only queues bytes and raises its readiness
//! in core 0's readiness queue; core 0's reactor wakes this task from there
//! (wakers never run in interrupt context), through the bus if the task
//! lives on another core. Lines are edited with [`line::LineEditor`]
//! (cursor keys, history, completion); commands are in [`commands`].

pub mod commands;
pub mod line;
pub mod table;

use alloc::string::String;

use crate::drivers::uart;
use crate::{print, println};
use line::{Event, LineEditor};

/// The prompt.
const PROMPT: &str = "percore> ";
/// Lines kept in the history.
const HISTORY: usize = 64;

/// The shell task: reads lines and runs commands, forever.
pub async fn run() {
    println!("shell: type `help` for commands");
    let mut input = match uart::Reader::new() {
        Ok(input) => input,
        Err(error) => {
            log::error!("shell: cannot read the console: {error:?}");
            return;
        }
    };
    let mut editor = LineEditor::new(HISTORY);
    editor.set_prompt(PROMPT);
    print!("{PROMPT}");
    let mut echo = String::new();
    loop {
        let byte = input.next_byte().await;
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
