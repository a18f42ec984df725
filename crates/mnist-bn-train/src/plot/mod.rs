//! Charts: the lesson's loss curves and confusion heat maps, and the lab's small multiples.
//!
//! - `chart.rs`: the bundled font, and any chart drawn into PNG and SVG, written atomically.
//! - `lesson.rs`: [`loss_chart`] and [`confusion_chart`], for a run's report.
//! - `figure.rs`: a grid of panels with shared axes, for the lab's experiments.

mod chart;
pub(crate) mod figure;
mod lesson;

pub use lesson::{Curve, confusion_chart, loss_chart};
