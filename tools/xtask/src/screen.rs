//! The screen, keyboard and power tests: the kernel users run, booted like
//! an ordinary PC (standard VGA, no debug-exit device, resets reboot) on
//! BIOS and UEFI, driven from the host through the QEMU monitor.
//!
//! One boot per firmware, in steps (a failed step fails the ones after it):
//! - `screen_ready_and_prompt`: a `screendump` shows the `percore ready`
//!   line and the prompt, compared pixel for pixel with the same text drawn
//!   here with the kernel's font (`noto-sans-mono-bitmap`);
//! - `keyboard_help`: `help` typed with `sendkey` (the PS/2 path) answers on
//!   the serial line and on the screen;
//! - `reboot`: `reboot` typed on the serial line boots the machine again
//!   (a second `percore ready` line);
//! - `poweroff`: `poweroff` makes QEMU exit by ACPI power-off (status 0).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use noto_sans_mono_bitmap::{FontWeight, RasterHeight, get_raster, get_raster_width};

use crate::build::{self, KernelKind};
use crate::error::{self, Error};
use crate::qemu::{self, Firmware, Machine};
use crate::tools;

/// The steps, in the order they run.
pub const STEPS: &[&str] = &[
    "screen_ready_and_prompt",
    "keyboard_help",
    "reboot",
    "poweroff",
];
const PROMPT: &str = "percore> ";
const READY: &str = "percore ready:";
/// How long a step may wait for what it expects on the serial line (a boot
/// under TCG on a busy machine).
const SERIAL_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the screen may lag the serial line.
const SCREEN_TIMEOUT: Duration = Duration::from_secs(20);

/// The font as the kernel draws it (`kernel/src/drivers/screen/pixels.rs`:
/// same crate, weight and size; one glyph per cell from the top left).
const WEIGHT: FontWeight = FontWeight::Regular;
const HEIGHT: RasterHeight = RasterHeight::Size16;

/// What one step found.
pub struct Outcome {
    pub name: String,
    pub result: Result<(), String>,
}

/// Runs the steps whose names contain `filter` (all without one) on BIOS
/// and UEFI. Returns each step's outcome and prints timings.
pub fn run(filter: Option<&str>) -> Result<Vec<Outcome>, Error> {
    let selected = STEPS
        .iter()
        .any(|step| filter.is_none_or(|f| format!("screen::{step}").contains(f)));
    if !selected {
        return Ok(Vec::new());
    }
    let ovmf = tools::ensure(tools::Need::AnyQemu)?;
    let built = build::kernel(KernelKind::Kernel, false)?;
    let mut outcomes = Vec::new();
    for (label, firmware) in [("bios-vga", Firmware::Bios), ("uefi-vga", Firmware::Uefi)] {
        let mut machine = Machine::new(firmware, 2);
        machine.pc_like = true;
        machine.extra.extend(["-vga", "std"].map(String::from));
        let vars = qemu::vars_copy(&ovmf, "screen")?;
        let command = machine.command(&built.images, &ovmf, &vars);
        let results = steps(label, command);
        let _ = std::fs::remove_file(&vars);
        for (step, result) in STEPS.iter().zip(results) {
            let name = format!("qemu/{label}/screen::{step}");
            match &result {
                Ok(()) => println!("test {name} ... ok"),
                Err(why) => println!("test {name} ... FAILED: {why}"),
            }
            outcomes.push(Outcome { name, result });
        }
    }
    Ok(outcomes)
}

/// Boots `command` and runs every step; one result per step.
fn steps(label: &str, command: Command) -> Vec<Result<(), String>> {
    let dir = build::target_dir().join(format!("screen-{label}-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let mut results = Vec::new();
    let outcome = match Guest::boot(command, &dir) {
        Ok(mut guest) => {
            let outcome = guest.steps(label, &dir, &mut results);
            if outcome.is_err() {
                guest.print_tail();
            }
            guest.kill();
            outcome
        }
        Err(why) => Err(why),
    };
    if let Err(why) = outcome {
        results.push(Err(why));
    }
    while results.len() < STEPS.len() {
        results.push(Err(String::from("not run: an earlier step failed")));
    }
    let _ = std::fs::remove_dir_all(&dir);
    results
}

/// A running QEMU: its serial output so far, its serial input, its monitor.
struct Guest {
    child: Child,
    serial_in: ChildStdin,
    serial: Arc<Mutex<String>>,
    monitor: UnixStream,
    started: Instant,
}

impl Guest {
    fn boot(mut command: Command, dir: &Path) -> Result<Guest, String> {
        let socket = dir.join("monitor.sock");
        command.arg("-serial").arg("stdio");
        command
            .arg("-monitor")
            .arg(format!("unix:{},server,nowait", socket.display()));
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let started = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|e| format!("{}: {e}", error::display(&command)))?;
        let serial_in = child.stdin.take().expect("stdin was piped");
        let mut stdout = child.stdout.take().expect("stdout was piped");
        let serial = Arc::new(Mutex::new(String::new()));
        let sink = serial.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]);
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(&text);
            }
        });
        let monitor = (0..200)
            .find_map(|_| {
                UnixStream::connect(&socket).ok().or_else(|| {
                    std::thread::sleep(Duration::from_millis(50));
                    None
                })
            })
            .ok_or_else(|| format!("no QEMU monitor at {}", socket.display()))?;
        monitor
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        let mut guest = Guest {
            child,
            serial_in,
            serial,
            monitor,
            started,
        };
        guest.monitor_reply()?;
        Ok(guest)
    }

    fn steps(
        &mut self,
        label: &str,
        dir: &Path,
        results: &mut Vec<Result<(), String>>,
    ) -> Result<(), String> {
        // 1. The ready line and the prompt, on the screen.
        self.wait_serial("the prompt", |s| s.contains(PROMPT) && s.contains(READY))?;
        let prompt_at = self.started.elapsed();
        let ready = self
            .serial_text()
            .lines()
            .find(|l| l.starts_with(READY))
            .map(|l| l.trim_end().to_string())
            .unwrap_or_default();
        let dump = dir.join("screen.ppm");
        let shown = self.wait_screen(&dump, &[&ready, PROMPT])?;
        println!(
            "   ({label}: prompt on serial {:.1} s after QEMU started ({}); on screen after {:.1} s, {}x{} pixels)",
            prompt_at.as_secs_f64(),
            ready.split_whitespace().last().unwrap_or(""),
            shown.at.as_secs_f64(),
            shown.width,
            shown.height
        );
        results.push(Ok(()));

        // 2. `help` typed on the keyboard.
        for key in ["h", "e", "l", "p", "ret"] {
            self.monitor_command(&format!("sendkey {key}"))?;
        }
        self.wait_serial("the answer to `help`", |s| {
            s.lines().any(|l| l.trim_end() == "commands:")
        })?;
        self.wait_screen(&dump, &["commands:", "  poweroff    the same as halt"])?;
        // Kept for a person to look at.
        let _ = std::fs::copy(
            &dump,
            build::target_dir().join(format!("screen-{label}.ppm")),
        );
        results.push(Ok(()));

        // 3. `reboot` typed on the serial line.
        self.type_serial("reboot\r")?;
        self.wait_serial("a second boot", |s| {
            s.matches(READY).count() >= 2
                && s.rsplit(READY).next().is_some_and(|t| t.contains(PROMPT))
        })?;
        results.push(Ok(()));

        // 4. `poweroff`: QEMU exits by itself (ACPI S5; there is no debug-exit device).
        self.type_serial("poweroff\r")?;
        let deadline = Instant::now() + SERIAL_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.code() == Some(0) => break,
                Ok(Some(status)) => return Err(format!("QEMU ended with {status}")),
                Ok(None) if Instant::now() > deadline => {
                    return Err(String::from("QEMU still runs after `poweroff`"));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => return Err(e.to_string()),
            }
        }
        if self.serial_text().matches(READY).count() != 2 {
            return Err(String::from(
                "the machine booted again instead of powering off",
            ));
        }
        results.push(Ok(()));
        Ok(())
    }

    fn serial_text(&self) -> String {
        self.serial
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn wait_serial(&self, what: &str, done: impl Fn(&str) -> bool) -> Result<(), String> {
        let deadline = Instant::now() + SERIAL_TIMEOUT;
        while !done(&self.serial_text()) {
            if Instant::now() > deadline {
                return Err(format!(
                    "no {what} on the serial line within {SERIAL_TIMEOUT:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    fn type_serial(&mut self, text: &str) -> Result<(), String> {
        self.serial_in
            .write_all(text.as_bytes())
            .and_then(|()| self.serial_in.flush())
            .map_err(|e| format!("typing on the serial line: {e}"))
    }

    /// Takes screenshots until every one of `lines` is drawn at the start
    /// of some text row (the screen lags the serial line a little).
    fn wait_screen(&mut self, dump: &Path, lines: &[&str]) -> Result<Shown, String> {
        let deadline = Instant::now() + SCREEN_TIMEOUT;
        loop {
            let _ = std::fs::remove_file(dump);
            self.monitor_command(&format!("screendump {}", dump.display()))?;
            let image = std::fs::read(dump)
                .map_err(|e| format!("reading {}: {e}", dump.display()))
                .and_then(|bytes| Image::parse_ppm(&bytes))?;
            let missing: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|line| image.find_row(line).is_none())
                .collect();
            if missing.is_empty() {
                return Ok(Shown {
                    at: self.started.elapsed(),
                    width: image.width,
                    height: image.height,
                });
            }
            if Instant::now() > deadline {
                let kept = keep_failed_screenshot(dump);
                return Err(format!(
                    "not on the screen within {SCREEN_TIMEOUT:?}: {missing:?} (screenshot: {})",
                    kept.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn monitor_command(&mut self, command: &str) -> Result<String, String> {
        writeln!(self.monitor, "{command}").map_err(|e| format!("QEMU monitor: {e}"))?;
        self.monitor_reply()
    }

    /// Reads the monitor's output up to its next prompt.
    fn monitor_reply(&mut self) -> Result<String, String> {
        let mut reply = Vec::new();
        let mut byte = [0u8; 1];
        while !reply.ends_with(b"(qemu) ") {
            match self.monitor.read(&mut byte) {
                Ok(1) => reply.push(byte[0]),
                Ok(_) => return Err(String::from("the QEMU monitor closed")),
                Err(e) => return Err(format!("QEMU monitor: {e}")),
            }
        }
        Ok(String::from_utf8_lossy(&reply).into_owned())
    }

    fn print_tail(&self) {
        let text = self.serial_text();
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(30);
        println!("   --- last {} serial lines ---", lines.len() - start);
        for line in &lines[start..] {
            println!("   | {line}");
        }
        println!("   ---");
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// When and how the expected text was seen on the screen.
struct Shown {
    at: Duration,
    width: usize,
    height: usize,
}

/// Copies a screenshot that failed a check next to the build output.
fn keep_failed_screenshot(dump: &Path) -> PathBuf {
    let kept = build::target_dir().join("screen-failed.ppm");
    let _ = std::fs::copy(dump, &kept);
    kept
}

/// An RGB screenshot.
struct Image {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Image {
    /// A binary PPM (`P6`, 8 bits per channel), as QEMU's `screendump` writes.
    fn parse_ppm(bytes: &[u8]) -> Result<Image, String> {
        let mut fields = Vec::new();
        let mut at = 0;
        while fields.len() < 4 {
            while at < bytes.len() && bytes[at].is_ascii_whitespace() {
                at += 1;
            }
            let start = at;
            while at < bytes.len() && !bytes[at].is_ascii_whitespace() {
                at += 1;
            }
            if start == at {
                return Err(String::from("screenshot: truncated PPM header"));
            }
            fields.push(String::from_utf8_lossy(&bytes[start..at]).into_owned());
        }
        let number = |i: usize| {
            fields[i]
                .parse::<usize>()
                .map_err(|_| format!("screenshot: bad PPM header {fields:?}"))
        };
        if fields[0] != "P6" || number(3)? != 255 {
            return Err(format!("screenshot: not an 8-bit P6 PPM ({fields:?})"));
        }
        let (width, height) = (number(1)?, number(2)?);
        let rgb = bytes
            .get(at + 1..at + 1 + width * height * 3)
            .ok_or("screenshot: truncated pixels")?
            .to_vec();
        Ok(Image { width, height, rgb })
    }

    /// The first text row that starts with `text`, drawn as the kernel
    /// draws it: glyph intensity `i` as the grey `(i, i, i)`.
    fn find_row(&self, text: &str) -> Option<usize> {
        let cell_width = get_raster_width(WEIGHT, HEIGHT);
        let cell_height = HEIGHT.val();
        if text.chars().count() * cell_width > self.width {
            return None;
        }
        (0..self.height / cell_height).find(|&row| {
            text.chars().enumerate().all(|(col, c)| {
                let Some(glyph) = get_raster(c, WEIGHT, HEIGHT) else {
                    return false;
                };
                glyph.rows().enumerate().all(|(y, pixels)| {
                    pixels.iter().enumerate().all(|(x, &level)| {
                        let px = col * cell_width + x;
                        let py = row * cell_height + y;
                        let at = (py * self.width + px) * 3;
                        self.rgb[at..at + 3] == [level; 3]
                    })
                })
            })
        })
    }
}
