//! How the interface gets its address: DHCP (the default; QEMU's user
//! network serves 10.0.2.15/24 with gateway 10.0.2.2) or a static address,
//! chosen by the boot configuration file [`NET_FILE`]:
//!
//! - absent, or `dhcp`: ask DHCP;
//! - `ip=A.B.C.D/P gw=G.G.G.G`: that address and gateway, no DHCP;
//! - `dhcp ip=A.B.C.D/P gw=G.G.G.G`: ask DHCP, and use the static
//!   address if no lease came after [`FALLBACK_AFTER`] (a lease that
//!   comes later still replaces it).
//!
//! Once configured, the kernel prints `net: ip=A.B.C.D/P gw=G.G.G.G via
//! dhcp|static`.

use core::fmt;

/// The boot configuration file (fw_cfg) that chooses the address.
pub const NET_FILE: &str = "opt/percore/net";

/// How long DHCP may take before a fallback address is used.
pub const FALLBACK_AFTER: core::time::Duration = core::time::Duration::from_secs(10);

/// What the boot configuration asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Dhcp,
    Static(Address),
    /// DHCP, with this address if no lease comes.
    DhcpOr(Address),
}

/// An IPv4 address with its prefix and gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Address {
    pub ip: [u8; 4],
    pub prefix: u8,
    pub gateway: Option<[u8; 4]>,
}

/// Where the address came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Dhcp,
    Static,
}

/// Why [`parse`] refused a configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// A word that is neither `dhcp`, `ip=...` nor `gw=...`.
    UnknownWord,
    /// `ip=` is not `A.B.C.D/P` with P at most 32.
    BadAddress,
    /// `gw=` is not `A.B.C.D`.
    BadGateway,
    /// `gw=` without `ip=`.
    MissingAddress,
}

/// Parses the text of [`NET_FILE`] (surrounding blanks ignored; empty is DHCP).
pub fn parse(text: &str) -> Result<Mode, ConfigError> {
    let text = text.trim();
    if text.is_empty() || text == "dhcp" {
        return Ok(Mode::Dhcp);
    }
    let mut address = None;
    let mut gateway = None;
    let mut dhcp = false;
    for word in text.split_whitespace() {
        if word == "dhcp" {
            dhcp = true;
        } else if let Some(value) = word.strip_prefix("ip=") {
            let (ip, prefix) = value.split_once('/').ok_or(ConfigError::BadAddress)?;
            let prefix = prefix
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= 32)
                .ok_or(ConfigError::BadAddress)?;
            address = Some((ipv4(ip).ok_or(ConfigError::BadAddress)?, prefix));
        } else if let Some(value) = word.strip_prefix("gw=") {
            gateway = Some(ipv4(value).ok_or(ConfigError::BadGateway)?);
        } else {
            return Err(ConfigError::UnknownWord);
        }
    }
    let (ip, prefix) = address.ok_or(ConfigError::MissingAddress)?;
    let address = Address {
        ip,
        prefix,
        gateway,
    };
    Ok(if dhcp {
        Mode::DhcpOr(address)
    } else {
        Mode::Static(address)
    })
}

/// `A.B.C.D` as four bytes.
pub fn ipv4(text: &str) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut parts = text.split('.');
    for byte in &mut out {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *byte = part.parse().ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// Four bytes as `A.B.C.D`.
pub struct Ip(pub [u8; 4]);

impl fmt::Display for Ip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a}.{b}.{c}.{d}")
    }
}

impl fmt::Display for Address {
    /// `ip=A.B.C.D/P gw=G.G.G.G` (`gw=none` without a gateway).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ip={}/{} gw=", Ip(self.ip), self.prefix)?;
        match self.gateway {
            Some(g) => write!(f, "{}", Ip(g)),
            None => f.write_str("none"),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Dhcp => "dhcp",
            Source::Static => "static",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dhcp_is_the_default() {
        assert_eq!(parse(""), Ok(Mode::Dhcp));
        assert_eq!(parse(" dhcp\n"), Ok(Mode::Dhcp));
    }

    #[test]
    fn static_address_and_gateway() {
        let mode = parse("ip=10.9.0.2/24 gw=10.9.0.1").unwrap();
        let Mode::Static(address) = mode else {
            panic!("{mode:?}")
        };
        assert_eq!(address.ip, [10, 9, 0, 2]);
        assert_eq!(address.prefix, 24);
        assert_eq!(address.gateway, Some([10, 9, 0, 1]));
        assert_eq!(alloc::format!("{address}"), "ip=10.9.0.2/24 gw=10.9.0.1");
        let Ok(Mode::Static(bare)) = parse("ip=192.168.1.5/16") else {
            panic!()
        };
        assert_eq!(bare.gateway, None);
    }

    #[test]
    fn dhcp_with_a_fallback() {
        let Ok(Mode::DhcpOr(address)) = parse("dhcp ip=10.0.2.15/24 gw=10.0.2.2") else {
            panic!()
        };
        assert_eq!(address.ip, [10, 0, 2, 15]);
        assert_eq!(parse("dhcp gw=10.0.2.2"), Err(ConfigError::MissingAddress));
    }

    #[test]
    fn bad_configurations_are_errors() {
        assert_eq!(parse("ip=10.0.0.1"), Err(ConfigError::BadAddress));
        assert_eq!(parse("ip=10.0.0.1/33"), Err(ConfigError::BadAddress));
        assert_eq!(parse("ip=10.0.0.256/8"), Err(ConfigError::BadAddress));
        assert_eq!(parse("ip=10.0.0/8"), Err(ConfigError::BadAddress));
        assert_eq!(parse("ip=10.0.0.1/8 gw=x"), Err(ConfigError::BadGateway));
        assert_eq!(parse("gw=10.0.0.1"), Err(ConfigError::MissingAddress));
        assert_eq!(parse("static"), Err(ConfigError::UnknownWord));
        assert_eq!(ipv4("1.2.3.4.5"), None);
        assert_eq!(ipv4("+1.2.3.4"), None);
    }
}
