//! Numbers over seeds. Every network of an experiment trains from several seeds; a number a
//! table shows is the mean over them with their range ([`Spread`]), a divergence says in how
//! many seeds it happened ([`Diverged`]), a figure draws the mean with a band from the lowest to
//! the highest seed ([`band`]), and a claim says in how many seeds it holds ([`in_seeds`]).

use plotters::style::RGBColor;

use crate::plot::figure::{Mark, Series};

/// One number measured once per seed: the mean over the seeds and the range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Spread {
    /// The mean over the seeds (summed in seed order); not a number if any seed's is not.
    pub mean: f64,
    /// The lowest seed's.
    pub min: f64,
    /// The highest seed's.
    pub max: f64,
    /// How many seeds.
    pub seeds: usize,
}

impl Spread {
    /// The spread of `value` over `seeds` (one item per seed).
    pub fn over<S>(seeds: &[S], value: impl Fn(&S) -> f64) -> Spread {
        Self::of(seeds.iter().map(value))
    }

    /// The spread of one value per seed.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Spread {
        let (mut sum, mut min, mut max, mut seeds) = (0.0, f64::INFINITY, f64::NEG_INFINITY, 0);
        for v in values {
            sum += v;
            min = if v < min || v.is_nan() { v } else { min };
            max = if v > max || v.is_nan() { v } else { max };
            seeds += 1;
        }
        Spread {
            mean: sum / seeds as f64,
            min,
            max,
            seeds,
        }
    }

    /// As a percentage with two decimals: `96.75%`, and over several seeds with the range,
    /// `96.75% (96.60–96.90)`.
    pub fn pct(&self) -> String {
        let p = |v: f64| format!("{:.2}", 100.0 * v);
        match self.seeds {
            1 => format!("{}%", p(self.mean)),
            _ => format!("{}% ({}–{})", p(self.mean), p(self.min), p(self.max)),
        }
    }

    /// A difference of accuracies in points, signed, two decimals: `+1.23`, and over several
    /// seeds `+1.23 (-0.50 to +2.00)`.
    pub fn points(&self) -> String {
        let p = |v: f64| format!("{:+.2}", 100.0 * v);
        match self.seeds {
            1 => p(self.mean),
            _ => format!("{} ({} to {})", p(self.mean), p(self.min), p(self.max)),
        }
    }

    /// With `decimals` decimals: `0.1234`, and over several seeds `0.1234 (0.1200–0.1300)`;
    /// a number of 10,000 or more in scientific notation, `2.93e12` (a blown-up loss).
    pub fn fixed(&self, decimals: usize) -> String {
        let f = |v: f64| {
            if v.abs() >= 1e4 {
                format!("{v:.2e}")
            } else {
                format!("{v:.decimals$}")
            }
        };
        match self.seeds {
            1 => f(self.mean),
            _ => format!("{} ({}–{})", f(self.mean), f(self.min), f(self.max)),
        }
    }
}

/// In how many seeds a network diverged, and the earliest step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Diverged {
    /// Seeds in which it diverged.
    pub count: usize,
    /// Seeds in all.
    pub seeds: usize,
    /// The earliest step at which it diverged, over the seeds.
    pub first: Option<usize>,
}

impl Diverged {
    /// Where `at` (the step of divergence of one seed's network) diverged over `seeds`.
    pub fn over<S>(seeds: &[S], at: impl Fn(&S) -> Option<usize>) -> Diverged {
        let steps: Vec<usize> = seeds.iter().filter_map(at).collect();
        Diverged {
            count: steps.len(),
            seeds: seeds.len(),
            first: steps.iter().copied().min(),
        }
    }

    /// `diverged at step 12` (one seed), `diverged in 2 of 3 seeds, first at step 12`; `None`
    /// when it did not diverge.
    pub fn describe(&self) -> Option<String> {
        let first = self.first?;
        Some(match self.seeds {
            1 => format!("diverged at step {first}"),
            n => format!(
                "diverged in {} of {n} seeds, first at step {first}",
                self.count
            ),
        })
    }
}

/// Test accuracy over the seeds, with the divergences when there were any.
pub(super) fn score(accuracy: Spread, diverged: Diverged) -> String {
    match diverged.describe() {
        Some(d) => format!("{}, {d}", accuracy.pct()),
        None => accuracy.pct(),
    }
}

/// A training loss over the seeds (four decimals), or the divergences when there were any.
pub(super) fn loss(value: Spread, diverged: Diverged) -> String {
    diverged.describe().unwrap_or_else(|| value.fixed(4))
}

/// `in 2 of 3 seeds`, `in all 3 seeds`, `in this run` (one seed of one), `in no seed`.
pub(super) fn in_seeds(count: usize, seeds: usize) -> String {
    match (count, seeds) {
        (0, _) => "in no seed".to_string(),
        (1, 1) => "in this run".to_string(),
        (c, n) if c == n => format!("in all {n} seeds"),
        (c, n) => format!("in {c} of {n} seeds"),
    }
}

/// Row by row, each seed's row: `rows` gives a seed's rows (every seed has the same rows, in the
/// same order).
pub(super) fn transpose<'a, S, R>(
    seeds: &'a [S],
    rows: impl Fn(&'a S) -> &'a [R],
) -> Vec<Vec<&'a R>> {
    let per_seed: Vec<&[R]> = seeds.iter().map(rows).collect();
    let n = per_seed.iter().map(|r| r.len()).min().unwrap_or(0);
    (0..n)
        .map(|i| per_seed.iter().map(|r| &r[i]).collect())
        .collect()
}

/// `mean ` over several seeds, nothing over one: "the best mean test accuracy".
pub(super) fn mean_word(seeds: usize) -> &'static str {
    if seeds > 1 { "mean " } else { "" }
}

/// A band from the lowest to the highest seed at each x, in a light `color`: `None` for one
/// seed (nothing to draw) or no finite point.
pub(super) fn band(
    color: RGBColor,
    points: impl IntoIterator<Item = (f64, Spread)>,
) -> Option<Series> {
    let points: Vec<(f64, Spread)> = points
        .into_iter()
        .filter(|(x, s)| x.is_finite() && s.min.is_finite() && s.max.is_finite())
        .collect();
    if points.iter().all(|(_, s)| s.seeds < 2) {
        return None;
    }
    let lower = points.iter().map(|(x, s)| (*x, s.min));
    let upper = points.iter().rev().map(|(x, s)| (*x, s.max));
    Some(Series {
        label: String::new(),
        color,
        mark: Mark::Band,
        points: lower.chain(upper).collect(),
    })
}

/// The mean and spread over seeds at each step of per-seed curves `(step, value)`: at each
/// step, the seeds whose curve reaches it (a curve stops where its network diverged).
pub(super) fn curve_spread(curves: &[Vec<(f64, f64)>]) -> Vec<(f64, Spread)> {
    let longest = curves
        .iter()
        .max_by_key(|c| c.len())
        .cloned()
        .unwrap_or_default();
    longest
        .iter()
        .map(|&(x, _)| {
            let at = curves
                .iter()
                .filter_map(|c| c.iter().find(|p| p.0 == x).map(|p| p.1));
            (x, Spread::of(at))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_seed_reads_as_before_and_several_show_their_range() {
        let one = Spread::of([0.98765]);
        assert_eq!((one.pct(), one.fixed(2)), ("98.77%".into(), "0.99".into()));
        let three = Spread::of([0.9, 0.8, 1.0]);
        assert_eq!(three.mean, (0.9 + 0.8 + 1.0) / 3.0);
        assert_eq!((three.min, three.max), (0.8, 1.0));
        assert_eq!(three.pct(), "90.00% (80.00–100.00)");
        assert_eq!(three.fixed(1), "0.9 (0.8–1.0)");
        assert_eq!(
            Spread::of([2.9e12, 1.0]).fixed(4),
            "1.45e12 (1.0000–2.90e12)"
        );
        assert_eq!(Spread::of([0.0123]).points(), "+1.23");
        assert_eq!(
            Spread::of([-0.005, 0.02]).points(),
            "+0.75 (-0.50 to +2.00)"
        );
        let nan = Spread::of([0.5, f64::NAN, 0.7]);
        assert!(nan.mean.is_nan() && nan.min.is_nan() && nan.max.is_nan());
    }

    #[test]
    fn divergence_names_its_seeds_and_first_step() {
        let seeds = [Some(40), None, Some(12)];
        let d = Diverged::over(&seeds, |s| *s);
        assert_eq!((d.count, d.seeds, d.first), (2, 3, Some(12)));
        assert_eq!(
            d.describe().unwrap(),
            "diverged in 2 of 3 seeds, first at step 12"
        );
        let one = Diverged::over(&[Some(7)], |s| *s);
        assert_eq!(one.describe().unwrap(), "diverged at step 7");
        assert_eq!(
            Diverged::over(&[None, None], |s: &Option<usize>| *s).describe(),
            None
        );
        let acc = Spread::of([0.1]);
        assert_eq!(score(acc, one), "10.00%, diverged at step 7");
        assert_eq!(loss(Spread::of([f64::NAN]), one), "diverged at step 7");
        assert_eq!(
            loss(
                Spread::of([0.123456]),
                Diverged::over(&[None], |s: &Option<usize>| *s)
            ),
            "0.1235"
        );
    }

    #[test]
    fn claims_count_their_seeds() {
        assert_eq!(in_seeds(1, 1), "in this run");
        assert_eq!(in_seeds(3, 3), "in all 3 seeds");
        assert_eq!(in_seeds(2, 3), "in 2 of 3 seeds");
        assert_eq!(in_seeds(0, 1), "in no seed");
    }

    #[test]
    fn transposed_rows_hold_each_seeds_row() {
        let seeds = [vec![1, 2], vec![3, 4], vec![5, 6]];
        let rows = transpose(&seeds, |s| s.as_slice());
        assert_eq!(rows, [vec![&1, &3, &5], vec![&2, &4, &6]]);
    }

    #[test]
    fn bands_run_along_the_lows_and_back_along_the_highs() {
        let points = [(1.0, Spread::of([0.1, 0.3])), (2.0, Spread::of([0.2, 0.6]))];
        let band = band(RGBColor(0, 0, 0), points).unwrap();
        assert_eq!(
            band.points,
            [(1.0, 0.1), (2.0, 0.2), (2.0, 0.6), (1.0, 0.3)]
        );
        assert!(super::band(RGBColor(0, 0, 0), [(1.0, Spread::of([0.5]))]).is_none());
    }

    #[test]
    fn curves_of_diverged_seeds_stop_and_the_others_go_on() {
        let curves = vec![vec![(0.0, 0.1), (50.0, 0.5)], vec![(0.0, 0.3)]];
        let spread = curve_spread(&curves);
        assert_eq!(spread.len(), 2);
        assert_eq!(spread[0].1, Spread::of([0.1, 0.3]));
        assert_eq!(spread[1].1, Spread::of([0.5]));
    }
}
