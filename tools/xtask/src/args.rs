//! A tiny argument parser: flags, options with values, positionals, and
//! everything after `--` passed through.

use crate::error::Error;

#[derive(Default)]
pub struct Args {
    items: Vec<String>,
    passthrough: Vec<String>,
}

impl Args {
    pub fn from_env() -> Args {
        let mut items: Vec<String> = std::env::args().skip(1).collect();
        let passthrough = match items.iter().position(|a| a == "--") {
            Some(i) => {
                let rest = items.split_off(i);
                rest.into_iter().skip(1).collect()
            }
            None => Vec::new(),
        };
        Args { items, passthrough }
    }

    /// Removes and returns the first argument that is not an option.
    pub fn next_positional(&mut self) -> Option<String> {
        let i = self.items.iter().position(|a| !a.starts_with('-'))?;
        Some(self.items.remove(i))
    }

    /// Removes `--name` if present.
    pub fn flag(&mut self, name: &str) -> bool {
        match self.items.iter().position(|a| a == name) {
            Some(i) => {
                self.items.remove(i);
                true
            }
            None => false,
        }
    }

    /// Removes `--name VALUE` (or `--name=VALUE`) if VALUE is `value`.
    pub fn flag_with(&mut self, name: &str, value: &str) -> bool {
        let joined = format!("{name}={value}");
        if let Some(i) = self.items.iter().position(|a| *a == joined) {
            self.items.remove(i);
            return true;
        }
        match self.items.iter().position(|a| a == name) {
            Some(i) if self.items.get(i + 1).is_some_and(|v| v == value) => {
                self.items.drain(i..i + 2);
                true
            }
            _ => false,
        }
    }

    /// Removes `--name VALUE` (or `--name=VALUE`) and parses VALUE.
    pub fn option<T: std::str::FromStr>(&mut self, name: &str) -> Result<Option<T>, Error> {
        let prefix = format!("{name}=");
        let raw = if let Some(i) = self.items.iter().position(|a| a == name) {
            if i + 1 >= self.items.len() {
                return Err(Error::Usage(format!("{name} needs a value")));
            }
            self.items.remove(i);
            self.items.remove(i)
        } else if let Some(i) = self.items.iter().position(|a| a.starts_with(&prefix)) {
            self.items.remove(i)[prefix.len()..].to_string()
        } else {
            return Ok(None);
        };
        raw.parse()
            .map(Some)
            .map_err(|_| Error::Usage(format!("invalid value `{raw}` for {name}")))
    }

    /// Arguments after `--`.
    pub fn passthrough(&self) -> &[String] {
        &self.passthrough
    }

    /// Fails on anything not consumed.
    pub fn finish(self) -> Result<(), Error> {
        match self.items.first() {
            Some(extra) => Err(Error::Usage(format!("unexpected argument `{extra}`"))),
            None => Ok(()),
        }
    }
}
