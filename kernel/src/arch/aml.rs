//! Reading a few facts out of ACPI's AML byte code without an interpreter
//! (portable: it only looks at bytes, so it runs as a host unit test).

/// AML opcodes of the `\_S5` definition.
const NAME_OP: u8 = 0x08;
const ROOT_PREFIX: u8 = b'\\';
const PACKAGE_OP: u8 = 0x12;
const ZERO_OP: u8 = 0x00;
const ONE_OP: u8 = 0x01;
const BYTE_PREFIX: u8 = 0x0A;

/// Finds `Name (\_S5, Package () { SLP_TYPa, SLP_TYPb, ... })` in AML
/// without interpreting it: `NameOp ['\\'] "_S5_" PackageOp PkgLength
/// NumElements` and then two integers (Zero, One, or a byte). The way
/// firmware writes it in practice; a `\_S5` computed by a method is not
/// found.
pub fn find_s5(aml: &[u8]) -> Option<(u8, u8)> {
    aml.windows(4)
        .enumerate()
        .filter(|(_, name)| *name == b"_S5_")
        .find_map(|(at, _)| {
            let named = matches!(aml.get(at.wrapping_sub(1)), Some(&NAME_OP))
                || (aml.get(at.wrapping_sub(1)) == Some(&ROOT_PREFIX)
                    && aml.get(at.wrapping_sub(2)) == Some(&NAME_OP));
            let rest = aml.get(at + 4..).filter(|_| named)?;
            if *rest.first()? != PACKAGE_OP {
                return None;
            }
            // PkgLength: bits 7-6 of its first byte count the bytes that follow.
            let length_bytes = usize::from(rest.get(1)? >> 6) + 1;
            // Skip PackageOp, PkgLength and NumElements.
            let rest = rest.get(1 + length_bytes + 1..)?;
            let (a, rest) = aml_byte(rest)?;
            let (b, _) = aml_byte(rest)?;
            Some((a, b))
        })
}

/// A small AML integer constant, and what follows it.
fn aml_byte(aml: &[u8]) -> Option<(u8, &[u8])> {
    match *aml.first()? {
        ZERO_OP => Some((0, &aml[1..])),
        ONE_OP => Some((1, &aml[1..])),
        BYTE_PREFIX => Some((*aml.get(1)?, aml.get(2..)?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_s5_with_zero_ops() {
        // QEMU's DSDT: Name (_S5, Package (0x04) { Zero, Zero, Zero, Zero }).
        let aml = [
            0x10, 0x08, 0x08, b'_', b'S', b'5', b'_', 0x12, 0x06, 0x04, 0, 0, 0, 0,
        ];
        assert_eq!(find_s5(&aml), Some((0, 0)));
    }

    #[test]
    fn rooted_name_byte_constants_and_long_pkg_length() {
        // Name (\_S5, Package () { 0x07, One }) with a 2-byte PkgLength.
        let aml = [
            0x08, b'\\', b'_', b'S', b'5', b'_', 0x12, 0x40, 0x00, 0x02, 0x0A, 0x07, 0x01,
        ];
        assert_eq!(find_s5(&aml), Some((7, 1)));
    }

    #[test]
    fn other_uses_of_the_name_are_skipped() {
        // `_S5_` named in a method call first (no NameOp), then defined.
        let aml = [
            b'X', b'_', b'S', b'5', b'_', 0x12, 0x01, 0x08, b'_', b'S', b'5', b'_', 0x12, 0x05,
            0x02, 0x0A, 0x05, 0x0A, 0x05,
        ];
        assert_eq!(find_s5(&aml), Some((5, 5)));
        assert_eq!(find_s5(&aml[..12]), None);
        assert_eq!(find_s5(b""), None);
    }
}
