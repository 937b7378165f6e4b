#![no_std]
#![no_main]
use percore_kernel as _;
#[panic_handler]
fn p(_: &core::panic::PanicInfo) -> ! { loop {} }
