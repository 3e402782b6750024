//! A progress bar for long work, on standard error, only on a terminal and
//! never under `--json`: piped output and JSON stay clean.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::store::ProgressFn;

/// A progress bar that may be hidden.
#[derive(Clone, Debug)]
pub struct Bar {
    bar: ProgressBar,
    notes: bool,
}

impl Bar {
    /// A bar drawn on standard error when it is a terminal and `json` is off.
    pub fn on_terminal(json: bool) -> Bar {
        if json || !std::io::stderr().is_terminal() {
            // Piped: a line of notes instead of a bar, unless the output is JSON.
            return Bar { notes: !json, ..Bar::hidden() };
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} ({eta} left)")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        Bar { bar, notes: false }
    }

    /// A bar that draws nothing.
    pub fn hidden() -> Bar {
        Bar { bar: ProgressBar::hidden(), notes: false }
    }

    /// Whether to write a one-line note where a bar would be: on a pipe,
    /// without `--json`.
    pub fn notes(&self) -> bool {
        self.notes
    }

    /// Whether it draws.
    pub fn is_hidden(&self) -> bool {
        self.bar.is_hidden()
    }

    /// The callback for [`Options::progress`](crate::Options::progress).
    pub fn callback(&self) -> ProgressFn {
        let bar = self.bar.clone();
        ProgressFn::new(move |p| {
            if bar.length() != Some(p.total) {
                bar.set_length(p.total);
                bar.set_message(p.work.as_str());
            }
            bar.set_position(p.done);
        })
    }

    /// Sets the work and its size, for work the tool counts itself.
    pub fn start(&self, message: &'static str, total: u64) {
        self.bar.set_message(message);
        self.bar.set_length(total);
        self.bar.set_position(0);
    }

    /// `done` units are done.
    pub fn set(&self, done: u64) {
        self.bar.set_position(done);
    }

    /// Clears the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_output_never_draws_and_a_hidden_bar_takes_reports() {
        let json = Bar::on_terminal(true);
        assert!(json.is_hidden() && !json.notes(), "--json keeps standard error clean");
        let bar = Bar::hidden();
        let _callback = bar.callback();
        bar.start("building", 10);
        bar.set(5);
        bar.finish();
        assert!(bar.is_hidden());
    }
}
