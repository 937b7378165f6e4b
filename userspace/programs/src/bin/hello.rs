//! Says hello from ring 3 and exits with the code given as its argument
//! (default 0).
#![no_std]
#![no_main]

use percore_runtime::{println, sys};

percore_runtime::entry!(main);

fn main() -> i64 {
    let mut args = [0u8; 64];
    let len = sys::args(&mut args).unwrap_or(0).min(args.len());
    let text = core::str::from_utf8(&args[..len]).unwrap_or("");
    let code = text.trim().parse::<i64>().unwrap_or(0);
    println!("hello from ring 3: pid {} (args `{text}`)", sys::getpid());
    code
}
