//! Links every program as a static, non-PIE executable at the address the
//! runtime's linker script gives (`USER_IMAGE_BASE` of `percore-abi`).

fn main() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/link.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    println!("cargo:rustc-link-arg-bins=--no-pie");
    println!("cargo:rustc-link-arg-bins=-zmax-page-size=4096");
}
