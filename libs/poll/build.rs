//! Declares the `loom` cfg used by the model-checking test build.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(loom)");
}
