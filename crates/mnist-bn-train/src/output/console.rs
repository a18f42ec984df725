//! Where the training's lines go, so that models trained side by side still print in order.
//!
//! Trained one after another, every model prints straight to stdout. Trained side by side, each
//! model gets a slot of a [`Console`]: the first unfinished slot prints as it goes, the others
//! hold their lines back until every slot before them has finished; so the output reads as if
//! the models had run one after another, and the lesson's `Epoch: N` lines stay together.

use std::sync::{Arc, Mutex, PoisonError};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget};

/// A model's line sink: stdout, or one slot of an ordered console.
#[derive(Debug, Clone, Default)]
pub(crate) struct Console {
    slot: Option<(Arc<Ordered>, usize)>,
}

impl Console {
    /// `n` slots printing in order, the first one live.
    pub(crate) fn ordered(n: usize) -> Vec<Console> {
        let ordered = Arc::new(Ordered {
            state: Mutex::new(State {
                live: 0,
                held: vec![Vec::new(); n],
                finished: vec![false; n],
            }),
            bars: MultiProgress::new(),
        });
        (0..n)
            .map(|i| Console {
                slot: Some((ordered.clone(), i)),
            })
            .collect()
    }

    /// Prints `line` now, or once the slots before this one have finished.
    pub(crate) fn println(&self, line: impl Into<String>) {
        let line = line.into();
        match &self.slot {
            None => println!("{line}"),
            Some((ordered, i)) => ordered.println(*i, line),
        }
    }

    /// Marks this slot as done: the next slot's held lines are printed and it goes live.
    pub(crate) fn finish(&self) {
        if let Some((ordered, i)) = &self.slot {
            ordered.finish(*i);
        }
    }

    /// Draws `bar` on stderr, below the other slots' bars if there are slots.
    pub(crate) fn add_bar(&self, bar: ProgressBar) -> ProgressBar {
        match &self.slot {
            None => {
                bar.set_draw_target(ProgressDrawTarget::stderr());
                bar
            }
            Some((ordered, _)) => ordered.bars.add(bar),
        }
    }

    /// Takes a finished bar off the terminal.
    pub(crate) fn remove_bar(&self, bar: &ProgressBar) {
        if let Some((ordered, _)) = &self.slot {
            ordered.bars.remove(bar);
        }
    }
}

#[derive(Debug)]
struct Ordered {
    state: Mutex<State>,
    bars: MultiProgress,
}

#[derive(Debug)]
struct State {
    /// The slot that prints as it goes.
    live: usize,
    /// Lines of the slots after the live one, not printed yet.
    held: Vec<Vec<String>>,
    finished: Vec<bool>,
}

impl Ordered {
    fn println(&self, slot: usize, line: String) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if slot == state.live {
            self.print(&line);
        } else {
            state.held[slot].push(line);
        }
    }

    fn finish(&self, slot: usize) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.finished[slot] = true;
        while state.live < state.finished.len() && state.finished[state.live] {
            state.live += 1;
            let live = state.live;
            if let Some(held) = state.held.get_mut(live) {
                for line in std::mem::take(held) {
                    self.print(&line);
                }
            }
        }
    }

    /// Prints to stdout, with the progress bars (if any are drawn) cleared meanwhile and
    /// redrawn below.
    fn print(&self, line: &str) {
        self.bars.suspend(|| println!("{line}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(console: &Console) -> Vec<Vec<String>> {
        let (ordered, _) = console.slot.as_ref().unwrap();
        ordered.state.lock().unwrap().held.clone()
    }

    #[test]
    fn later_slots_wait_for_the_earlier_ones() {
        let slots = Console::ordered(3);
        slots[1].println("b1");
        slots[2].println("c1");
        slots[0].println("a1");
        assert_eq!(held(&slots[0]), [vec![], vec!["b1"], vec!["c1"]]);
        // The third finishes first: its lines stay held until the second has printed.
        slots[2].finish();
        assert_eq!(held(&slots[0])[2], ["c1"]);
        slots[0].finish();
        assert_eq!(held(&slots[0]), [vec![], vec![], vec!["c1"]]);
        slots[1].println("b2");
        slots[1].finish();
        assert_eq!(held(&slots[0]), [Vec::<String>::new(), vec![], vec![]]);
    }
}
