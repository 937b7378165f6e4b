//! Declares the `loom` cfg so `cargo check` and clippy accept `#[cfg(loom)]`
//! (the workspace lints are inherited, so the cfg cannot be declared in
//! `[lints.rust]` here).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(loom)");
}
