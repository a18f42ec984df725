//! Progress of an experiment: a bar over all its runs' steps on a terminal, a line per
//! finished run otherwise, or nothing.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use crate::output::progress::ProgressMode;

/// Progress of one experiment's runs, shared by the threads that train them.
#[derive(Debug)]
pub(crate) struct LabProgress {
    bar: Option<ProgressBar>,
    lines: bool,
    label: String,
}

impl LabProgress {
    pub(crate) fn new(mode: ProgressMode, label: &str, total_steps: usize) -> Self {
        let terminal = std::io::stdout().is_terminal();
        let bar = (mode == ProgressMode::Auto && terminal).then(|| {
            let bar = ProgressBar::new(total_steps as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} steps ({elapsed}<{eta})",
                )
                .expect("the template is valid")
                .progress_chars("=> "),
            );
            bar.set_prefix(label.to_string());
            bar
        });
        Self {
            lines: mode != ProgressMode::Quiet,
            bar,
            label: label.to_string(),
        }
    }

    /// Counts `steps` more steps done.
    pub(crate) fn advance(&self, steps: usize) {
        if let Some(bar) = &self.bar {
            bar.inc(steps as u64);
        }
    }

    /// Reports a finished run: `line` says what it gave (its name first).
    pub(crate) fn finished(&self, line: &str) {
        if !self.lines {
            return;
        }
        let line = format!("  {} {line}", self.label);
        match &self.bar {
            Some(bar) => bar.println(line),
            None => println!("{line}"),
        }
    }

    /// Removes the bar.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
