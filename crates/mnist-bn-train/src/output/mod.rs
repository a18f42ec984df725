//! What a run shows and leaves behind: the console its lines go to (`console.rs`), the progress
//! within an epoch (`progress.rs`), and the report (`report.rs`: `report.json`, `report.md`).

pub(crate) mod console;
pub(crate) mod progress;
pub(crate) mod report;
