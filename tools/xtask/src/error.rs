//! xtask errors: one clear line, plus the command that failed.

use std::fmt;
use std::process::Command;

#[derive(Debug)]
pub enum Error {
    /// Bad command line.
    Usage(String),
    /// A command ran and failed.
    CommandFailed {
        what: String,
        command: String,
        status: String,
    },
    /// A command could not be started.
    Spawn {
        command: String,
        error: std::io::Error,
    },
    /// A required tool is missing and could not be installed.
    MissingTool(String),
    /// Anything else, already phrased for the user.
    Other(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(message) | Error::MissingTool(message) | Error::Other(message) => {
                f.write_str(message)
            }
            Error::CommandFailed {
                what,
                command,
                status,
            } => {
                write!(f, "{what} failed ({status})\n  command: {command}")
            }
            Error::Spawn { command, error } => {
                write!(f, "cannot start `{command}`: {error}")
            }
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Self {
        Error::Other(error.to_string())
    }
}

/// `program arg arg ...`, for messages.
pub fn display(command: &Command) -> String {
    let mut out = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        let arg = arg.to_string_lossy();
        if arg.contains(' ') {
            out.push_str(&format!(" '{arg}'"));
        } else {
            out.push(' ');
            out.push_str(&arg);
        }
    }
    out
}

/// Runs `command` with inherited stdio; an error names `what` and the command.
pub fn run(what: &str, command: &mut Command) -> Result<(), Error> {
    let status = command.status().map_err(|error| Error::Spawn {
        command: display(command),
        error,
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::CommandFailed {
            what: what.to_string(),
            command: display(command),
            status: status.to_string(),
        })
    }
}
