//! Progress within an epoch: a bar on a terminal, a few plain lines otherwise.

use std::io::IsTerminal;
use web_time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::console::Console;

/// How progress within an epoch is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// A progress bar (batches done, loss, images/s) when stdout is a terminal, plain lines
    /// otherwise.
    Auto,
    /// Plain lines, three per epoch (at a quarter, half and three quarters), without control
    /// characters.
    Lines,
    /// Nothing but the per-epoch lines.
    Quiet,
}

/// Progress of one epoch.
#[derive(Debug)]
pub(crate) struct EpochProgress {
    bar: Option<ProgressBar>,
    lines: bool,
    total: usize,
    started: Instant,
    label: String,
    console: Console,
}

impl EpochProgress {
    pub(crate) fn new(mode: ProgressMode, label: String, total: usize, console: &Console) -> Self {
        let terminal = std::io::stdout().is_terminal();
        let bar = (mode == ProgressMode::Auto && terminal).then(|| {
            // Hidden until the console places it: drawn before, it would leave a stale line.
            let bar = console.add_bar(ProgressBar::with_draw_target(
                Some(total as u64),
                ProgressDrawTarget::hidden(),
            ));
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} batches, {msg} ({elapsed}<{eta})",
                )
                .expect("the template is valid")
                .progress_chars("=> "),
            );
            bar.set_prefix(label.clone());
            bar
        });
        let lines = match mode {
            ProgressMode::Auto => !terminal,
            ProgressMode::Lines => true,
            ProgressMode::Quiet => false,
        };
        Self {
            bar,
            lines,
            total,
            started: Instant::now(),
            label,
            console: console.clone(),
        }
    }

    /// Records that `done` batches (of `images` images in all) are through, the last with
    /// `loss`.
    pub(crate) fn update(&self, done: usize, images: usize, loss: f64) {
        let rate = images as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
            bar.set_message(format!("loss {loss:.4}, {rate:.0} img/s"));
        } else if self.lines
            && done < self.total
            && done.is_multiple_of(self.total.div_ceil(4).max(1))
        {
            self.console.println(format!(
                "  {} {done}/{} batches, loss {loss:.4}, {rate:.0} img/s",
                self.label, self.total
            ));
        }
    }

    pub(crate) fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
            self.console.remove_bar(&bar);
        }
    }
}
