//! Every number and sentence of each experiment's section, recomputed from the per-network
//! outcomes in `lab.json` and compared with its summary, its table in `lab.md` and its
//! findings: a lab that prints the wrong numbers under the right headings fails here. Each
//! experiment's runs come seed by seed; each seed's summary is checked against that seed's
//! runs, and the tables and findings against the runs of every seed.

use serde_json::{Value, json};

use super::markdown::{
    MdSection, Spread, in_seeds, loss, mean_word, num, row, score, spread, step,
};

fn runs(section: &Value) -> &[Value] {
    section["runs"].as_array().unwrap()
}

/// Each seed's runs and summary rows, in seed order: the runs come seed by seed,
/// `per_seed` runs each, every one carrying its seed (`--seed`, `--seed` + 1, …).
fn seeds<'a>(
    section: &'a Value,
    report: &Value,
    per_seed: usize,
) -> Vec<(&'a [Value], &'a [Value])> {
    let n = report["seeds"].as_u64().unwrap() as usize;
    let first = report["seed"].as_u64().unwrap();
    let summaries = section["summary"].as_array().unwrap();
    assert_eq!(summaries.len(), n, "one summary per seed");
    assert_eq!(runs(section).len(), n * per_seed);
    runs(section)
        .chunks(per_seed)
        .zip(summaries)
        .enumerate()
        .map(|(k, (runs, summary))| {
            for run in runs {
                assert_eq!(run["seed"], json!(first + k as u64), "{}", name(run));
            }
            (runs, summary.as_array().unwrap().as_slice())
        })
        .collect()
}

/// Run `j` of every seed.
fn across<'a>(seeds: &[(&'a [Value], &'a [Value])], j: usize) -> Vec<&'a Value> {
    seeds.iter().map(|(runs, _)| &runs[j]).collect()
}

fn name(run: &Value) -> &str {
    run["name"].as_str().unwrap()
}

fn accuracy(run: &Value) -> f64 {
    num(&run["test_accuracy"])
}

fn accuracies(runs: &[&Value]) -> Spread {
    spread(runs.iter().map(|r| accuracy(r)))
}

fn divergences(runs: &[&Value]) -> Vec<Option<usize>> {
    runs.iter().map(|r| step(&r["diverged_at"])).collect()
}

/// A sweep's four cells for one value, as the report prints them: the pair's training loss
/// (`loss_key`: `mean_loss` or `final_loss`) with batch norm and without, then their test
/// accuracy, each over the seeds and naming its divergences.
fn pair_cells(bn: &[&Value], plain: &[&Value], loss_key: &str) -> [String; 4] {
    let losses = |runs: &[&Value]| spread(runs.iter().map(|r| num(&r[loss_key])));
    [
        loss(&losses(bn), &divergences(bn)),
        loss(&losses(plain), &divergences(plain)),
        score(&accuracies(bn), &divergences(bn)),
        score(&accuracies(plain), &divergences(plain)),
    ]
}

/// The setting a run of a pair belongs to: its name less `, bn` or `, plain`, checked against
/// the run's norm.
fn setting<'a>(bn: &'a Value, plain: &Value) -> &'a str {
    assert_eq!(bn["config"]["norm"], "Batch", "{}", name(bn));
    assert_eq!(plain["config"]["norm"], "None", "{}", name(plain));
    let setting = name(bn).strip_suffix(", bn").unwrap();
    assert_eq!(name(plain), format!("{setting}, plain"));
    setting
}

/// The findings paragraph is the same in `lab.md` and `lab.json`.
fn same_findings(section: &Value, md: &MdSection) {
    assert_eq!(section["findings"].as_str().unwrap(), md.findings);
}

/// The first index of the largest (`sign` 1) or smallest (`sign` -1) value, as the report
/// picks them.
fn first_extreme(values: &[f64], sign: f64) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if sign * v > sign * values[best] {
            best = i;
        }
    }
    best
}

pub fn grid(section: &Value, md: &MdSection, report: &Value) {
    let seeds = seeds(section, report, 24);
    let n = seeds.len();
    let (train, validation) = (&report["train_images"], &report["validation_images"]);
    let fit = train.as_u64().unwrap() - validation.as_u64().unwrap();
    let steps = &runs(section)[0]["steps"];
    assert!(
        md.setup.contains(&format!(
            "{steps} steps on the first {fit} training images; validation accuracy every 50 \
             steps on the last {validation}"
        )),
        "{}",
        md.setup
    );
    // Seed by seed: each summary row is its pair's outcomes.
    let mut labels = Vec::new();
    for (runs, rows) in &seeds {
        assert_eq!(rows.len(), 12);
        let mut order = Vec::new();
        labels.clear();
        for (summary, pair) in rows.iter().zip(runs.chunks(2)) {
            let (bn, plain) = (&pair[0], &pair[1]);
            let label = setting(bn, plain);
            for key in ["activation", "weight_init", "hidden"] {
                assert_eq!(bn["config"][key], plain["config"][key], "{label}: {key}");
            }
            assert_eq!(bn["lr"], plain["lr"], "{label}");
            let activation = match bn["config"]["activation"].as_str().unwrap() {
                "Relu" => "ReLU",
                "Sigmoid" => "sigmoid",
                other => panic!("{label}: {other}"),
            };
            let lr = num(&bn["lr"]);
            let std = num(&bn["config"]["weight_init"]["Normal"]["std"]);
            let init = if std < 1.0 { "reasonable" } else { "bad" };
            assert_eq!(label, format!("{activation}, lr {lr}, std {std} ({init})"));
            order.push((activation, std, lr));
            assert_eq!(summary["activation"], activation.to_lowercase(), "{label}");
            assert_eq!((num(&summary["lr"]), num(&summary["std"])), (lr, std));
            assert_eq!(summary["batch_norm"], bn["test_accuracy"], "{label}");
            assert_eq!(summary["plain"], plain["test_accuracy"], "{label}");
            assert_eq!(
                summary["batch_norm_diverged_at"], bn["diverged_at"],
                "{label}"
            );
            assert_eq!(
                summary["plain_diverged_at"], plain["diverged_at"],
                "{label}"
            );
            // The older TensorFlow lesson's figures, where it states them.
            let published = match (activation, lr, std) {
                ("ReLU", 1.0, 0.05) => Some((0.98, 0.10)),
                ("sigmoid", 0.01, 0.05) => Some((0.97, 0.83)),
                ("ReLU", 0.01, 5.0) => Some((0.80, 0.10)),
                _ => None,
            };
            let published_json = published.map(|(b, p)| json!({"batch_norm": b, "plain": p}));
            assert_eq!(
                summary["published_50000_steps"],
                published_json.unwrap_or(Value::Null),
                "{label}"
            );
            labels.push((label.to_string(), activation, lr, std, init, published));
        }
        // The figure's order: ReLU then sigmoid, reasonable then bad weights, learning rates
        // rising.
        let mut sorted = order.clone();
        sorted.sort_by(|a, b| {
            (a.0 != "ReLU", a.1, a.2)
                .partial_cmp(&(b.0 != "ReLU", b.1, b.2))
                .unwrap()
        });
        assert_eq!(order, sorted);
    }
    // Over the seeds: the table and the findings.
    let mut table = Vec::new();
    let (mut ahead, mut behind) = (0, 0);
    let (mut plain_failed, mut bn_failed) = (Vec::new(), Vec::new());
    let mut leads = Vec::new();
    for (i, (label, activation, lr, std, init, published)) in labels.iter().enumerate() {
        let (bn, plain) = (across(&seeds, 2 * i), across(&seeds, 2 * i + 1));
        let (a_bn, a_plain) = (accuracies(&bn), accuracies(&plain));
        table.push(row(&[
            activation.to_string(),
            lr.to_string(),
            format!("{std} ({init})"),
            score(&a_bn, &divergences(&bn)),
            score(&a_plain, &divergences(&plain)),
            published.map_or("–".to_string(), |(b, p)| {
                format!("≈{:.0}% / ≈{:.0}%", 100.0 * b, 100.0 * p)
            }),
        ]));
        let lead = a_bn.mean - a_plain.mean;
        ahead += usize::from(lead > 0.05);
        behind += usize::from(lead < -0.05);
        if a_plain.mean < 0.2 {
            plain_failed.push(label.clone());
        }
        if a_bn.mean < 0.2 {
            bn_failed.push(label.clone());
        }
        leads.push((lead, label, a_bn, a_plain));
    }
    assert_eq!(md.rows, table);

    same_findings(section, md);
    let list = |names: &[String]| match names {
        [] => String::new(),
        names => format!(": {}", names.join("; ")),
    };
    let diverged = |k: usize| {
        runs(section)
            .iter()
            .skip(k)
            .step_by(2)
            .filter(|r| !r["diverged_at"].is_null())
            .count()
    };
    let magnitudes: Vec<f64> = leads.iter().map(|l| l.0.abs()).collect();
    let (lead, label, a_bn, a_plain) = leads[first_extreme(&magnitudes, 1.0)];
    let expected = format!(
        "With batch norm the network ended more than 5 points ahead in {ahead} of 12 settings \
         and more than 5 points behind in {behind}{}. Without batch norm {} of 12 networks did \
         not learn ({}test accuracy under 20%{}); with it, {}{}. {} of {} plain and {} of {} \
         batch-norm networks diverged (a loss that was not a number). The largest gap ({:+.1} \
         points) is {label}: {} with batch norm against {} without.",
        if n > 1 { " (on the means)" } else { "" },
        plain_failed.len(),
        mean_word(n),
        list(&plain_failed),
        bn_failed.len(),
        list(&bn_failed),
        diverged(1),
        12 * n,
        diverged(0),
        12 * n,
        100.0 * lead,
        a_bn.pct(),
        a_plain.pct(),
    );
    let explanation = " Batch norm keeps every hidden layer's input to the activation";
    match md.findings.strip_prefix(&expected) {
        // The explanation closes the paragraph when, and only when, batch norm never failed
        // where a plain network did.
        Some("") => assert!(!bn_failed.is_empty() || plain_failed.is_empty()),
        Some(rest) => {
            assert!(rest.starts_with(explanation), "{rest}");
            assert!(bn_failed.is_empty() && !plain_failed.is_empty(), "{rest}");
            // Over several seeds: in how many it held seed by seed.
            let held = seeds
                .iter()
                .filter(|(runs, _)| {
                    let failed =
                        |k: usize| runs.iter().skip(k).step_by(2).any(|r| accuracy(r) < 0.2);
                    !failed(0) && failed(1)
                })
                .count();
            let seed_by_seed = format!(
                " Seed by seed, this held {} (batch norm learned in every setting and a plain \
                 network failed in at least one).",
                in_seeds(held, n)
            );
            assert_eq!(rest.ends_with(&seed_by_seed), n > 1, "{rest}");
        }
        None => panic!("findings:\n{}\nexpected:\n{expected}", md.findings),
    }
}

/// What `distributions` measured of one network in one seed.
struct Drift {
    at_early: f64,
    first: Vec<f64>,
    last: Vec<f64>,
    swing: f64,
}

pub fn distributions(section: &Value, md: &MdSection, report: &Value) {
    let seeds = seeds(section, report, 2);
    let n = seeds.len();
    let first_run = &runs(section)[0];
    let steps = first_run["steps"].as_u64().unwrap() as usize;
    let curve = |run: &Value| run["curve"].as_array().unwrap().clone();
    let every = &curve(first_run)[1]["step"];
    assert!(
        md.setup.contains(&format!(
            "{steps} steps over the {} training images",
            report["train_images"]
        )) && md.setup.contains(&format!(
            "Every {every} steps: test accuracy, and the 15th, 50th and 85th percentiles"
        )),
        "{}",
        md.setup
    );
    // The early measurement: the first at or after a tenth of the steps.
    let early = curve(first_run)
        .iter()
        .map(|p| p["step"].as_u64().unwrap() as usize)
        .find(|&s| s >= steps / 10)
        .unwrap_or(steps);
    assert!(
        md.header
            .contains(&format!("| test accuracy after {early} steps |")),
        "{}",
        md.header
    );
    // Seed by seed: each network's drift, checked against its summary row.
    let mut drifts: Vec<[Drift; 2]> = Vec::new();
    for (runs, rows) in &seeds {
        assert_eq!(rows.len(), 2);
        setting(&runs[0], &runs[1]);
        let drift = |run: &Value, summary: &Value| {
            let points = curve(run);
            let probes: Vec<Vec<f64>> = points
                .iter()
                .map(|p| p["probe"].as_array().unwrap().iter().map(num).collect())
                .collect();
            assert_eq!(probes.len(), points.len(), "every measurement probes");
            let (first, last) = (probes[0].clone(), probes[probes.len() - 1].clone());
            let medians: Vec<f64> = probes.iter().map(|q| q[1]).collect();
            let swing = medians.iter().cloned().fold(f64::MIN, f64::max)
                - medians.iter().cloned().fold(f64::MAX, f64::min);
            let at_early = points
                .iter()
                .find(|p| p["step"].as_u64().unwrap() as usize >= early)
                .map(|p| num(&p["accuracy"]))
                .unwrap();
            // Copied numbers read back the same; the differences are computed from
            // percentiles read back from their text, which serde_json (without
            // `float_roundtrip`) may read one bit off.
            let copied = json!({
                "accuracy_at_tenth": at_early,
                "median_end": last[1],
                "median_start": first[1],
                "network": run["name"],
                "test_accuracy": run["test_accuracy"],
            });
            for (key, value) in copied.as_object().unwrap() {
                assert_eq!(&summary[key], value, "{}: {key}", name(run));
            }
            for (key, value) in [
                ("median_swing", swing),
                ("spread_end", last[2] - last[0]),
                ("spread_start", first[2] - first[0]),
            ] {
                let got = num(&summary[key]);
                assert!(
                    (got - value).abs() <= 1e-12 * value.abs().max(1.0),
                    "{}: {key} {got} vs {value}",
                    name(run)
                );
            }
            assert_eq!(summary.as_object().unwrap().len(), 8, "{summary}");
            Drift {
                at_early,
                first,
                last,
                swing,
            }
        };
        drifts.push([drift(&runs[0], &rows[0]), drift(&runs[1], &rows[1])]);
    }
    // Over the seeds: the table and the findings.
    let mut table = Vec::new();
    let mut sentences = Vec::new();
    let mut swings = Vec::new();
    for k in 0..2 {
        let of = |f: &dyn Fn(&Drift) -> f64| spread(drifts.iter().map(|d| f(&d[k])));
        let runs = across(&seeds, k);
        let who = match runs[0]["config"]["norm"].as_str().unwrap() {
            "Batch" => "with batch norm",
            _ => "without batch norm",
        };
        let (start, end) = (of(&|d| d.first[1]), of(&|d| d.last[1]));
        let (wide_start, wide_end) = (
            of(&|d| d.first[2] - d.first[0]),
            of(&|d| d.last[2] - d.last[0]),
        );
        let (swing, at_early) = (of(&|d| d.swing), of(&|d| d.at_early));
        table.push(row(&[
            who.to_string(),
            at_early.pct(),
            score(&accuracies(&runs), &divergences(&runs)),
            format!("{} → {}", start.fixed(2), end.fixed(2)),
            format!("{} → {}", wide_start.fixed(2), wide_end.fixed(2)),
            swing.fixed(2),
        ]));
        sentences.push(format!(
            "{who} the median moved from {:.2} to {:.2} (spanning {:.2} between its lowest \
             and highest) and the 15–85 band went from {:.2} to {:.2} wide; test accuracy was {} \
             after {early} steps and {} at the end",
            start.mean,
            end.mean,
            swing.mean,
            wide_start.mean,
            wide_end.mean,
            at_early.pct(),
            accuracies(&runs).pct(),
        ));
        swings.push(swing.mean);
    }
    assert_eq!(md.rows, table);
    same_findings(section, md);
    let text = sentences.join("; ");
    let expected = match n {
        1 => format!("W{}.", &text[1..]),
        n => format!("On the mean over {n} seeds: {text}."),
    };
    let rest = md
        .findings
        .strip_prefix(&expected)
        .unwrap_or_else(|| panic!("findings:\n{}\nexpected:\n{expected}", md.findings));
    let held = drifts.iter().filter(|d| d[0].swing < d[1].swing).count();
    match (swings[0] < swings[1], n) {
        (true, 1) => assert!(
            rest.starts_with(" Without batch norm the sigmoid's input wanders")
                && rest.ends_with("where gamma and beta put it."),
            "{rest}"
        ),
        (true, n) => assert!(
            rest.starts_with(" Without batch norm the sigmoid's input wanders")
                && rest.ends_with(&format!(
                    "where gamma and beta put it (seed by seed: {}).",
                    in_seeds(held, n)
                )),
            "{rest}"
        ),
        (false, 1) => assert_eq!(
            rest,
            " In this run the median moved at least as much with batch norm as without."
        ),
        (false, n) => assert_eq!(
            rest,
            format!(
                " On the mean the median moved at least as much with batch norm as without; it \
                 moved less with batch norm {}.",
                in_seeds(held, n)
            )
        ),
    }
}

/// `inference`'s passes, table and findings, over the seeds when the lab trained the models it
/// tested (one summary and no run when it tested `--checkpoint`).
pub fn inference(section: &Value, md: &MdSection, report: &Value) {
    let summaries: Vec<&[Value]> = section["summary"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_array().unwrap().as_slice())
        .collect();
    let trained = !runs(section).is_empty();
    if trained {
        seeds(section, report, 1);
    } else {
        assert_eq!(summaries.len(), 1, "a checkpoint is tested once");
    }
    let n = summaries.len();
    let test = report["test_images"].as_u64().unwrap() as usize;
    let mut sizes: Vec<usize> = [1, 2, 4, 16, 64, 10_000]
        .map(|b: usize| b.min(test))
        .to_vec();
    sizes.dedup();
    let mut labels: Vec<String> = sizes.iter().map(|b| format!("train, {b}")).collect();
    labels.extend(["eval".to_string(), "eval after train pass".to_string()]);
    let mut texts: Vec<String> = sizes
        .iter()
        .map(|b| format!("train mode (batch statistics), batch {b}"))
        .collect();
    texts.push("eval mode (running statistics)".into());
    texts.push("eval mode after a train-mode pass in batches of 64 (the lesson's order)".into());
    let position = |label: &str| labels.iter().position(|l| l == label).unwrap();
    for (k, passes) in summaries.iter().enumerate() {
        let got = |key: &str| -> Vec<String> {
            passes
                .iter()
                .map(|p| p[key].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!((got("label"), got("pass")), (labels.clone(), texts.clone()));
        if let Some(run) = runs(section).get(k) {
            // The lesson's model, trained 10 epochs of batch 64: its own test accuracy (eval
            // mode, at the end of training) is the eval pass's.
            let train = report["train_images"].as_u64().unwrap();
            let steps = 10 * train.div_ceil(64);
            assert_eq!(
                (&run["steps"], &run["batch_size"]),
                (&json!(steps), &json!(64))
            );
            let seeds = match n {
                1 => String::new(),
                n => format!(", once from each of {n} seeds"),
            };
            assert!(
                md.setup.contains(&format!(
                    "({steps} steps: 10 epochs of batch 64 in file order, lr 0.01){seeds}."
                )),
                "{}",
                md.setup
            );
            assert_eq!(
                num(&run["test_accuracy"]),
                num(&passes[position("eval")]["accuracy"])
            );
        }
    }
    // Pass `i` over the seeds.
    let over = |i: usize, key: &str| spread(summaries.iter().map(|p| num(&p[i][key])));
    let digits = |i: usize| {
        let d = over(i, "digits_predicted");
        if d.min == d.max {
            format!("{}", d.min)
        } else {
            format!("{}–{}", d.min, d.max)
        }
    };
    let table: Vec<String> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            row(&[
                text.clone(),
                over(i, "accuracy").pct(),
                over(i, "loss").fixed(4),
                digits(i),
            ])
        })
        .collect();
    assert_eq!(md.rows, table);
    same_findings(section, md);
    let acc = |label: &str| over(position(label), "accuracy");
    let others: Vec<String> = sizes[1..]
        .iter()
        .map(|b| format!("{} with batches of {b}", acc(&format!("train, {b}")).pct()))
        .collect();
    let moved = 100.0 * (acc("eval after train pass").mean - acc("eval").mean);
    let expected = format!(
        "One image at a time with batch statistics, every image is normalized to the same \
         vector (beta), so the network gives every image the same answer: {} digit(s) ever \
         predicted, {} accuracy. With more images sharing the statistics: {}. With running \
         statistics (eval mode) each image is classified on its own, whatever the batch: {}. \
         After a train-mode pass in batches of 64 (the lesson tests in that order) the running \
         statistics have moved toward the test batches', and eval mode gives {} ({moved:+.2} \
         points{}){}.",
        digits(0),
        over(0, "accuracy").pct(),
        others.join(", "),
        acc("eval").pct(),
        acc("eval after train pass").pct(),
        if n > 1 { " on the mean" } else { "" },
        if moved.abs() < 0.005 {
            ": here the lesson's order did not change the eval-mode figure"
        } else {
            ": the lesson's eval-mode figure is not quite that of the trained model"
        },
    );
    assert_eq!(md.findings, expected);
}

pub fn batch_size(section: &Value, md: &MdSection, report: &Value) {
    let seeds = seeds(section, report, 12);
    let n = seeds.len();
    let train = report["train_images"].as_u64().unwrap() as usize;
    let mut batches = Vec::new();
    for (runs, rows) in &seeds {
        assert_eq!(rows.len(), 6);
        batches.clear();
        for (summary, pair) in rows.iter().zip(runs.chunks(2)) {
            let (bn, plain) = (&pair[0], &pair[1]);
            let label = setting(bn, plain);
            let batch = bn["batch_size"].as_u64().unwrap() as usize;
            assert_eq!(label, format!("batch {batch}"));
            // One epoch over every training image, from the same weights.
            let steps = train.div_ceil(batch);
            for run in pair {
                assert_eq!(run["batch_size"], json!(batch));
                assert_eq!(run["steps"], json!(steps), "{}", name(run));
                assert_eq!(run["config"]["weight_init"], bn["config"]["weight_init"]);
                // The mean training loss is the mean of every step's loss: one window here.
                let curve = run["curve"].as_array().unwrap();
                if run["diverged_at"].is_null() {
                    assert_eq!(curve.last().unwrap()["step"], json!(steps));
                    assert_eq!(curve.last().unwrap()["train_loss"], run["mean_loss"]);
                }
            }
            let network = |run: &Value| json!({"test_accuracy": run["test_accuracy"], "train_loss": run["mean_loss"]});
            assert_eq!(
                summary,
                &json!({
                    "batch_norm": network(bn),
                    "batch_size": batch,
                    "plain": network(plain),
                    "steps": steps,
                })
            );
            batches.push((batch, steps));
        }
    }
    assert_eq!(
        batches.iter().map(|b| b.0).collect::<Vec<_>>(),
        [2, 4, 8, 16, 64, 256]
    );
    let mut table = Vec::new();
    let mut leads = Vec::new();
    for (i, &(batch, steps)) in batches.iter().enumerate() {
        let (bn, plain) = (across(&seeds, 2 * i), across(&seeds, 2 * i + 1));
        let lead = spread(
            bn.iter()
                .zip(&plain)
                .map(|(b, p)| accuracy(b) - accuracy(p)),
        );
        let mut cells = vec![batch.to_string(), steps.to_string()];
        cells.extend(pair_cells(&bn, &plain, "mean_loss"));
        cells.push(lead.points());
        table.push(row(&cells));
        leads.push((batch, lead, accuracies(&plain)));
    }
    assert_eq!(md.rows, table);
    same_findings(section, md);
    let values: Vec<f64> = leads.iter().map(|l| l.1.mean).collect();
    let (best, worst) = (
        leads[first_extreme(&values, 1.0)].0,
        leads[first_extreme(&values, -1.0)].0,
    );
    let not_ahead: Vec<String> = leads
        .iter()
        .filter(|l| l.1.mean < 0.005)
        .map(|l| l.0.to_string())
        .collect();
    let (smallest, largest) = (&leads[0], &leads[5]);
    let word = mean_word(n);
    let expected = format!(
        "Batch norm's {word}lead in test accuracy, in points by batch size: {}. The lead is \
         largest at batch {best} and smallest at batch {worst}. {} Smaller batches take more \
         steps over the same images: the plain network's {word}test accuracy is {} at batch {} \
         and {} at batch {}.",
        leads
            .iter()
            .map(|(b, l, _)| format!("{} at {b}", l.points()))
            .collect::<Vec<_>>()
            .join(", "),
        if not_ahead.is_empty() {
            "It is half a point or more ahead at every batch size tried.".to_string()
        } else {
            format!(
                "It is not even half a point ahead at batch {}.",
                not_ahead.join(" and ")
            )
        },
        largest.2.pct(),
        largest.0,
        smallest.2.pct(),
        smallest.0,
    );
    assert!(
        md.findings.starts_with(&expected),
        "findings:\n{}\nexpected:\n{expected}",
        md.findings
    );
}

pub fn init_scale(section: &Value, md: &MdSection, report: &Value) {
    let seeds = seeds(section, report, 20);
    let n = seeds.len();
    let mut stds = Vec::new();
    for (runs, rows) in &seeds {
        assert_eq!(rows.len(), 10);
        stds.clear();
        for (i, (summary, pair)) in rows.iter().zip(runs.chunks(2)).enumerate() {
            let (bn, plain) = (&pair[0], &pair[1]);
            let label = setting(bn, plain);
            let std = num(&bn["config"]["weight_init"]["Normal"]["std"]);
            // Ten scales, evenly spaced in log10 from 1e-4 to 1.
            let scale = 10f64.powf(-4.0 + 4.0 * i as f64 / 9.0);
            assert!((std / scale - 1.0).abs() < 1e-12, "{std} vs {scale}");
            assert_eq!(label, format!("std {std:.1e}"));
            for run in pair {
                assert_eq!(run["config"]["weight_init"], bn["config"]["weight_init"]);
                assert_eq!(run["config"]["hidden"], json!(vec![100; 8]));
                // Final loss: the mean of the last 100 steps, one window at 100 steps or fewer.
                let steps = run["steps"].as_u64().unwrap();
                if steps <= 100 && run["diverged_at"].is_null() {
                    let last = run["curve"].as_array().unwrap().last().unwrap().clone();
                    assert_eq!(last["train_loss"], run["final_loss"], "{}", name(run));
                }
            }
            let network = |run: &Value| {
                json!({
                    "diverged_at": run["diverged_at"],
                    "final_loss": run["final_loss"],
                    "test_accuracy": run["test_accuracy"],
                })
            };
            assert_eq!(
                summary,
                &json!({"batch_norm": network(bn), "plain": network(plain), "std": std})
            );
            stds.push(std);
        }
    }
    let mut table = Vec::new();
    let mut scales = Vec::new();
    for (i, &std) in stds.iter().enumerate() {
        let (bn, plain) = (across(&seeds, 2 * i), across(&seeds, 2 * i + 1));
        let mut cells = vec![format!("{std:.1e}")];
        cells.extend(pair_cells(&bn, &plain, "final_loss"));
        table.push(row(&cells));
        scales.push((std, accuracies(&bn), accuracies(&plain)));
    }
    assert_eq!(md.rows, table);
    same_findings(section, md);
    let range = |learned: Vec<f64>| match learned.as_slice() {
        [] => "at none of the scales".to_string(),
        [a] => format!("only at std {a:.1e}"),
        [a, .., b] => format!(
            "for std from {a:.1e} to {b:.1e} ({} of 10 scales)",
            learned.len()
        ),
    };
    let learned = |k: fn(&(f64, Spread, Spread)) -> f64| -> Vec<f64> {
        scales.iter().filter(|s| k(s) > 0.9).map(|s| s.0).collect()
    };
    let expected = format!(
        "Without batch norm the 8-layer network learned ({}test accuracy above 90%) {}; with \
         batch norm {}.",
        mean_word(n),
        range(learned(|s| s.2.mean)),
        range(learned(|s| s.1.mean)),
    );
    assert!(
        md.findings.starts_with(&expected),
        "findings:\n{}\nexpected:\n{expected}",
        md.findings
    );
    // Why batch norm fails at the smallest scale, when it does: the first layer's outputs
    // start with a variance (std² times the images' mean ‖x‖²) under batch norm's ε.
    let (std, bn_accuracy, _) = scales[0];
    let fails = format!(
        " At std {std:.1e} batch norm fails too ({})",
        bn_accuracy.pct()
    );
    if bn_accuracy.mean < 0.5 {
        let images = report["train_images"].as_u64().unwrap() as usize;
        let variance = std * std * mean_squared_norm(images);
        let epsilon = num(&runs(section)[0]["config"]["bn_epsilon"]);
        let why = format!(
            "{fails}: the first hidden layer's outputs start with a variance of about \
             {variance:.1e} (std² times the images' mean ‖x‖²), below batch norm's ε = \
             {epsilon:.0e}"
        );
        if variance < epsilon {
            assert!(
                md.findings.contains(&why),
                "{}\nexpected: {why}",
                md.findings
            );
        } else {
            assert!(
                md.findings.ends_with(&format!("{fails}.")),
                "{}",
                md.findings
            );
        }
    } else {
        assert!(
            !md.findings.contains("batch norm fails too"),
            "{}",
            md.findings
        );
    }
}

/// The mean over the first `n` training images of ‖x‖², pixels scaled to [0, 1], read from
/// the IDX file here.
fn mean_squared_norm(n: usize) -> f64 {
    let path = crate::util::shipped_data().join("train-images.idx3-ubyte.gz");
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap()),
        &mut bytes,
    )
    .unwrap();
    let pixels = &bytes[16..16 + n * 784];
    let sum: f64 = pixels.iter().map(|&p| (f64::from(p) / 255.0).powi(2)).sum();
    sum / n as f64
}

pub fn learning_rate(section: &Value, md: &MdSection, report: &Value) {
    let seeds = seeds(section, report, 24);
    let n = seeds.len();
    let train = report["train_images"].as_u64().unwrap() as usize;
    let mut lrs = Vec::new();
    for (runs, rows) in &seeds {
        assert_eq!(rows.len(), 12);
        lrs.clear();
        for (i, (summary, pair)) in rows.iter().zip(runs.chunks(2)).enumerate() {
            let (bn, plain) = (&pair[0], &pair[1]);
            let label = setting(bn, plain);
            // Twelve rates, evenly spaced in log10 from 1e-3 to 10; one epoch of batch 64
            // each, from the same weights.
            let lr = num(&bn["lr"]);
            let expected = 10f64.powf(-3.0 + 4.0 * i as f64 / 11.0);
            assert!((lr / expected - 1.0).abs() < 1e-12, "{lr} vs {expected}");
            assert_eq!(label, format!("lr {lr:.1e}"));
            for run in pair {
                assert_eq!(run["lr"], bn["lr"]);
                assert_eq!(run["batch_size"], json!(64));
                assert_eq!(run["steps"], json!(train.div_ceil(64)), "{}", name(run));
                assert_eq!(run["config"]["weight_init"], bn["config"]["weight_init"]);
                assert_eq!(run["config"]["hidden"], json!([512, 256]));
                if run["diverged_at"].is_null() {
                    let last = run["curve"].as_array().unwrap().last().unwrap().clone();
                    assert_eq!(last["train_loss"], run["mean_loss"], "{}", name(run));
                }
            }
            let network = |run: &Value| {
                json!({
                    "diverged_at": run["diverged_at"],
                    "test_accuracy": run["test_accuracy"],
                    "train_loss": run["mean_loss"],
                })
            };
            assert_eq!(
                summary,
                &json!({"batch_norm": network(bn), "lr": lr, "plain": network(plain)})
            );
            lrs.push(lr);
        }
    }
    let mut table = Vec::new();
    // Per rate: the rate, and each network's runs over the seeds.
    let mut rates = Vec::new();
    for (i, &lr) in lrs.iter().enumerate() {
        let (bn, plain) = (across(&seeds, 2 * i), across(&seeds, 2 * i + 1));
        let mut cells = vec![format!("{lr:.1e}")];
        cells.extend(pair_cells(&bn, &plain, "mean_loss"));
        table.push(row(&cells));
        rates.push((lr, [bn, plain]));
    }
    let rates = &rates;
    assert_eq!(md.rows, table);
    same_findings(section, md);
    let learned = |accuracy: &dyn Fn(usize) -> f64| -> Vec<f64> {
        (0..rates.len())
            .filter(|&i| accuracy(i) > 0.9)
            .map(|i| rates[i].0)
            .collect()
    };
    let mean = |k: usize| move |i: usize| accuracies(&rates[i].1[k]).mean;
    let range = |lrs: &[f64]| match lrs {
        [] => "at none of the learning rates".to_string(),
        [a] => format!("only at lr {a:.1e}"),
        [a, .., b] => format!("from lr {a:.1e} to {b:.1e} ({} of 12)", lrs.len()),
    };
    let diverged = |k: usize| {
        let lrs: Vec<String> = rates
            .iter()
            .filter_map(|(lr, runs)| {
                let count = runs[k]
                    .iter()
                    .filter(|r| !r["diverged_at"].is_null())
                    .count();
                match count {
                    0 => None,
                    c if c == n => Some(format!("{lr:.1e}")),
                    c => Some(format!("{lr:.1e} ({c} of {n} seeds)")),
                }
            })
            .collect();
        if lrs.is_empty() {
            "at none".to_string()
        } else {
            format!("at lr {}", lrs.join(", "))
        }
    };
    let best = |k: usize| {
        let means: Vec<f64> = (0..rates.len()).map(mean(k)).collect();
        let i = first_extreme(&means, 1.0);
        (accuracies(&rates[i].1[k]), rates[i].0)
    };
    let ((bn_best, bn_lr), (plain_best, plain_lr)) = (best(0), best(1));
    let word = mean_word(n);
    let expected = format!(
        "With batch norm the network learned ({word}test accuracy above 90%) {}; without, {}. \
         It diverged {} with batch norm and {} without. The best {word}test accuracy is {} at \
         lr {bn_lr:.1e} with batch norm and {} at lr {plain_lr:.1e} without. ",
        range(&learned(&mean(0))),
        range(&learned(&mean(1))),
        diverged(0),
        diverged(1),
        bn_best.pct(),
        plain_best.pct(),
    );
    let verdict = md
        .findings
        .strip_prefix(&expected)
        .unwrap_or_else(|| panic!("findings:\n{}\nexpected:\n{expected}", md.findings));
    // Reproduced in a seed when batch norm learned there at a higher rate than any the plain
    // network learned at.
    let reproduced = (0..n)
        .filter(|&s| {
            let seed = |k: usize| move |i: usize| accuracy(rates[i].1[k][s]);
            let (bn, plain) = (learned(&seed(0)), learned(&seed(1)));
            bn.last()
                .is_some_and(|b| plain.last().is_none_or(|p| b > p))
        })
        .count();
    let claim = "batch norm lets a network learn at higher learning rates than without";
    let expected = match reproduced {
        k if k == n => format!(
            "As Bjorck et al. (2018, Figure 1) found, batch norm lets the network learn at \
             learning rates where the plain one does not: reproduced {}.",
            in_seeds(k, n)
        ),
        0 => format!(
            "Bjorck et al. (2018, Figure 1) found that {claim}; here it did not learn at a \
             higher one {}: not reproduced.",
            if n == 1 { "in this run" } else { "in any seed" }
        ),
        k => format!(
            "Bjorck et al. (2018, Figure 1) found that {claim}; here it learned at a higher one \
             {}: reproduced in some seeds only.",
            in_seeds(k, n)
        ),
    };
    assert_eq!(verdict, expected);
}

/// A ratio of gradient norms as `depth` prints it: `1.2e3`, over several seeds
/// `1.2e3 (8.1e2–1.6e3)`.
fn ratio(s: &Spread) -> String {
    match s.n {
        1 => format!("{:.1e}", s.mean),
        _ => format!("{:.1e} ({:.1e}–{:.1e})", s.mean, s.min, s.max),
    }
}

pub fn depth(section: &Value, md: &MdSection, report: &Value) {
    const DEPTHS: [usize; 6] = [2, 5, 10, 20, 35, 50];
    const LRS: [f64; 2] = [0.01, 0.1];
    let seeds = seeds(section, report, 48);
    let n = seeds.len();
    let steps = runs(section)[0]["steps"].as_u64().unwrap();
    assert!(
        md.setup.contains(&format!(
            "Then {steps} steps of plain SGD, batch 60, over the {} training images at lr 0.01 \
             and at lr 0.1",
            report["train_images"]
        )),
        "{}",
        md.setup
    );
    // Seed by seed: the runs of each family and depth, and their summary row.
    let families = [
        ("relu", "ReLU", std::f64::consts::SQRT_2),
        ("tanh", "tanh", 1.0),
    ];
    for (runs, rows) in &seeds {
        assert_eq!(rows.len(), 12);
        for (i, (summary, four)) in rows.iter().zip(runs.chunks(4)).enumerate() {
            let (activation, shown, gain) = families[i / 6];
            let depth = DEPTHS[i % 6];
            for (j, run) in four.iter().enumerate() {
                let (lr, norm) = (LRS[j / 2], ["bn", "plain"][j % 2]);
                assert_eq!(
                    name(run),
                    format!("{shown}, depth {depth}, lr {lr}, {norm}")
                );
                assert_eq!(run["config"]["hidden"], json!(vec![100; depth]));
                assert_eq!(
                    run["config"]["weight_init"]["KaimingNormal"]["gain"],
                    json!(gain)
                );
                assert_eq!(
                    run["config"]["weight_init"],
                    four[0]["config"]["weight_init"]
                );
                assert_eq!((num(&run["lr"]), &run["batch_size"]), (lr, &json!(60)));
                // The gradients at initialization: on the first rate's runs, one per layer.
                match j / 2 {
                    0 => {
                        let g = run["initial_gradients"].as_array().unwrap();
                        assert_eq!(g.len(), depth + 1, "{}", name(run));
                        assert!(g.iter().all(|v| num(v) > 0.0), "{}", name(run));
                    }
                    _ => assert!(run.get("initial_gradients").is_none(), "{}", name(run)),
                }
            }
            setting(&four[0], &four[1]);
            setting(&four[2], &four[3]);
            assert_eq!(summary["activation"], activation);
            assert_eq!(summary["depth"], json!(depth));
            for (k, key) in [(0, "batch_norm"), (1, "plain")] {
                let network = &summary[key];
                let g = &four[k]["initial_gradients"];
                assert_eq!(&network["gradient_norms"], g);
                let g: Vec<f64> = g.as_array().unwrap().iter().map(num).collect();
                let expected = g[0] / g[depth];
                let got = num(&network["first_to_last"]);
                assert!((got / expected - 1.0).abs() < 1e-12, "{got} vs {expected}");
                let accuracies = json!([four[k]["test_accuracy"], four[k + 2]["test_accuracy"]]);
                assert_eq!(network["test_accuracy"], accuracies);
                let diverged = json!([four[k]["diverged_at"], four[k + 2]["diverged_at"]]);
                assert_eq!(network["diverged_at"], diverged);
            }
        }
    }
    // Over the seeds: the table and the findings, from the summaries checked above.
    let over = |i: usize, key: &str, value: &dyn Fn(&Value) -> f64| {
        spread(seeds.iter().map(|(_, rows)| value(&rows[i][key])))
    };
    let to_last = |network: &Value| num(&network["first_to_last"]);
    let accuracy = |lr: usize| move |network: &Value| num(&network["test_accuracy"][lr]);
    let divergences = |i: usize, key: &str, lr: usize| -> Vec<Option<usize>> {
        seeds
            .iter()
            .map(|(_, rows)| step(&rows[i][key]["diverged_at"][lr]))
            .collect()
    };
    let mut table = Vec::new();
    for i in 0..12 {
        let mut cells = vec![families[i / 6].1.to_string(), DEPTHS[i % 6].to_string()];
        for key in ["batch_norm", "plain"] {
            cells.push(ratio(&over(i, key, &to_last)));
        }
        for lr in 0..2 {
            for key in ["batch_norm", "plain"] {
                cells.push(score(
                    &over(i, key, &accuracy(lr)),
                    &divergences(i, key, lr),
                ));
            }
        }
        table.push(row(&cells));
    }
    assert_eq!(md.rows, table);
    same_findings(section, md);
    let mut sentences = Vec::new();
    let mut verdicts = Vec::new();
    for (f, (_, shown, _)) in families.iter().enumerate() {
        let (shallow, deep) = (6 * f, 6 * f + 5);
        let r = |i: usize, key: &str| over(i, key, &to_last);
        let per_layer = |key: &str| r(deep, key).mean.powf(1.0 / 50.0);
        sentences.push(format!(
            "{shown}: with batch norm the first layer's gradient is {} times the output layer's \
             at 2 hidden layers and {} times at 50 (a factor of {:.2} per layer); without, {} \
             and {} ({:.2} per layer).",
            ratio(&r(shallow, "batch_norm")),
            ratio(&r(deep, "batch_norm")),
            per_layer("batch_norm"),
            ratio(&r(shallow, "plain")),
            ratio(&r(deep, "plain")),
            per_layer("plain"),
        ));
        let deepest = |key: &str, lr: usize| {
            (shallow..=deep)
                .filter(|&i| over(i, key, &accuracy(lr)).mean > 0.5)
                .map(|i| DEPTHS[i % 6])
                .max()
                .map_or("at no depth".to_string(), |d| {
                    format!("up to {d} hidden layers")
                })
        };
        let trained: Vec<String> = (0..2)
            .map(|lr| {
                format!(
                    "at lr {} {} with batch norm and {} without",
                    LRS[lr],
                    deepest("batch_norm", lr),
                    deepest("plain", lr)
                )
            })
            .collect();
        sentences.push(format!(
            "After {steps} steps the {shown} networks trained ({}test accuracy above 50%) {}.",
            mean_word(n),
            trained.join("; ")
        ));
        // Seed by seed: the ratio with batch norm at 50 layers above 10 times its value at 2
        // and 10 times the plain network's at 50.
        let exploded = seeds
            .iter()
            .filter(|(_, rows)| {
                let at = |i: usize, key: &str| to_last(&rows[i][key]);
                at(deep, "batch_norm") > 10.0 * at(shallow, "batch_norm")
                    && at(deep, "batch_norm") > 10.0 * at(deep, "plain")
            })
            .count();
        verdicts.push(format!("{shown} {}", in_seeds(exploded, n)));
    }
    let expected = format!(
        "{} Yang et al. (2019) prove that batch norm itself makes the gradient grow \
         exponentially from the last layer to the first at initialization in a deep network \
         without skip connections, whatever the activation and weight scale; we count it \
         reproduced where the ratio with batch norm at the deepest network is more than 10 times \
         that at the shallowest and more than 10 times the plain network's: {}.",
        sentences.join(" "),
        verdicts.join(", ")
    );
    assert_eq!(md.findings, expected);
}

pub fn landscape(section: &Value, md: &MdSection, report: &Value) {
    let seeds = seeds(section, report, 2);
    let n = seeds.len();
    let steps = runs(section)[0]["steps"].as_u64().unwrap();
    assert!(
        md.setup.contains(&format!(
            "plain SGD with lr 0.1, batch 60, {steps} steps over the {} training images. Every \
             100 steps",
            report["train_images"]
        )) && md
            .setup
            .contains("w − η·g for η = 0.025, 0.05, 0.1, 0.2, 0.4."),
        "{}",
        md.setup
    );
    // Seed by seed: each network's summary is its measurements, and their means.
    for (runs, rows) in &seeds {
        assert_eq!(rows.len(), 2);
        setting(&runs[0], &runs[1]);
        assert_eq!(name(&runs[0]), "ReLU 3×100, bn");
        for (run, summary) in runs.iter().zip(rows.iter()) {
            let curve = run["curve"].as_array().unwrap();
            let steps: Vec<Value> = curve.iter().map(|p| p["step"].clone()).collect();
            let landscape: Vec<Value> = curve.iter().map(|p| p["landscape"].clone()).collect();
            assert!(
                landscape
                    .iter()
                    .all(|l| l.as_array().is_some_and(|l| l.len() == 3))
            );
            if run["diverged_at"].is_null() {
                let every: Vec<u64> = (0..=run["steps"].as_u64().unwrap()).step_by(100).collect();
                assert_eq!(steps, every.iter().map(|s| json!(s)).collect::<Vec<_>>());
            }
            assert_eq!(summary["steps"], json!(steps));
            assert_eq!(summary["landscape"], json!(landscape));
            assert_eq!(summary["network"], run["name"]);
            assert_eq!(summary["test_accuracy"], run["test_accuracy"]);
            assert_eq!(summary["diverged_at"], run["diverged_at"]);
            for i in 0..3 {
                let values: Vec<f64> = landscape.iter().map(|l| num(&l[i])).collect();
                let mean = values.iter().sum::<f64>() / values.len() as f64;
                let got = num(&summary["means"][i]);
                assert!(
                    (got - mean).abs() <= 1e-12 * mean.abs().max(1.0),
                    "{got} vs {mean}"
                );
            }
        }
    }
    // Over the seeds, from the summaries' means checked above.
    let mean_of =
        |k: usize, i: usize| spread(seeds.iter().map(|(_, rows)| num(&rows[k]["means"][i])));
    let mut table = Vec::new();
    for (k, who) in ["with batch norm", "without batch norm"].iter().enumerate() {
        let runs = across(&seeds, k);
        let mut cells = vec![who.to_string()];
        cells.extend((0..3).map(|i| mean_of(k, i).fixed(4)));
        cells.push(score(&accuracies(&runs), &divergences(&runs)));
        table.push(row(&cells));
    }
    assert_eq!(md.rows, table);
    same_findings(section, md);
    let compare = |i: usize, what: &str| {
        let (b, p) = (mean_of(0, i), mean_of(1, i));
        let times = if b.mean <= p.mean {
            format!("{:.1} times smaller", p.mean / b.mean)
        } else {
            format!("{:.1} times larger", b.mean / p.mean)
        };
        format!(
            "{what} {} with batch norm against {} without ({times})",
            b.fixed(4),
            p.fixed(4),
        )
    };
    let names = [
        "the range of the loss",
        "the change of the gradient",
        "the effective β-smoothness",
    ];
    let smaller: Vec<usize> = (0..3)
        .map(|i| {
            seeds
                .iter()
                .filter(|(_, rows)| num(&rows[0]["means"][i]) < num(&rows[1]["means"][i]))
                .count()
        })
        .collect();
    let counts: Vec<String> = (0..3)
        .map(|i| format!("{} {}", names[i], in_seeds(smaller[i], n)))
        .collect();
    let verdict = match (
        smaller.iter().all(|&k| k == n),
        smaller.iter().all(|&k| k == 0),
    ) {
        (true, _) => "reproduced",
        (_, true) => "not reproduced",
        _ => "partly reproduced",
    };
    let expected = format!(
        "Averaged over the measurements{}: {}; {}; {}. Santurkar et al. (2018, Figure 4) found \
         all three smaller with batch norm: the loss changes less along the gradient, the \
         gradient is more predictive, the landscape smoother. Here batch norm's was smaller for \
         {}: {verdict}.",
        if n > 1 {
            format!(" and the {n} seeds")
        } else {
            String::new()
        },
        compare(0, "the loss along the gradient ranged over"),
        compare(1, "the gradient changed by up to"),
        compare(2, "the effective β-smoothness was"),
        counts.join(", "),
    );
    assert_eq!(md.findings, expected);
}

pub fn ics(section: &Value, md: &MdSection, report: &Value) {
    let seeds = seeds(section, report, 3);
    let n = seeds.len();
    let steps = runs(section)[0]["steps"].as_u64().unwrap();
    assert!(
        md.setup.contains(&format!(
            "plain SGD with lr 0.1, batch 60, {steps} steps over the {} training images",
            report["train_images"]
        )),
        "{}",
        md.setup
    );
    let close = |got: &Value, want: f64, what: &str| {
        let got = num(got);
        assert!(
            (got - want).abs() <= 1e-12 * want.abs().max(1.0),
            "{what}: {got} vs {want}"
        );
    };
    // Seed by seed: each network's summary from its run's curve.
    for (k, (runs, rows)) in seeds.iter().enumerate() {
        assert_eq!(rows.len(), 3);
        setting(&runs[0], &runs[1]);
        assert_eq!(name(&runs[2]), "ReLU 3×100, noisy bn");
        let seed = report["seed"].as_u64().unwrap() + k as u64;
        assert_eq!(runs[2]["config"]["bn_noise"]["seed"], json!(seed));
        assert_eq!(runs[2]["config"]["norm"], "Batch");
        assert!(runs[0]["config"]["bn_noise"].is_null());
        for (run, summary) in runs.iter().zip(rows.iter()) {
            assert_eq!(
                run["config"]["weight_init"],
                runs[0]["config"]["weight_init"]
            );
            let curve = run["curve"].as_array().unwrap();
            let median: Vec<f64> = curve.iter().map(|p| num(&p["probe"][1])).collect();
            let steps: Vec<Value> = curve.iter().map(|p| p["step"].clone()).collect();
            assert_eq!(summary["steps"], json!(steps));
            assert_eq!(summary["median"], json!(median));
            let drift = median.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>()
                / (median.len() - 1) as f64;
            let swing = median.iter().cloned().fold(f64::MIN, f64::max)
                - median.iter().cloned().fold(f64::MAX, f64::min);
            close(&summary["median_drift"], drift, "drift");
            close(&summary["median_swing"], swing, "swing");
            // Each measurement's shift, averaged over the layers after the first (three here).
            let ics: Vec<[f64; 2]> = curve
                .iter()
                .map(|p| {
                    let layers = p["ics"].as_array().unwrap();
                    assert_eq!(layers.len(), 3, "{}", name(run));
                    [0, 1].map(|i| layers.iter().map(|l| num(&l[i])).sum::<f64>() / 3.0)
                })
                .collect();
            for (got, want) in summary["ics"].as_array().unwrap().iter().zip(&ics) {
                close(&got[0], want[0], "ics distance");
                close(&got[1], want[1], "ics cosine");
            }
            for i in 0..2 {
                let later: Vec<f64> = ics[1..].iter().map(|l| l[i]).collect();
                close(
                    &summary["ics_means"][i],
                    later.iter().sum::<f64>() / later.len() as f64,
                    "ics mean",
                );
            }
            assert_eq!(summary["test_accuracy"], run["test_accuracy"]);
            assert_eq!(summary["diverged_at"], run["diverged_at"]);
            assert_eq!(summary["network"], run["name"]);
        }
    }
    // Over the seeds, from the summaries checked above.
    let over =
        |k: usize, f: &dyn Fn(&Value) -> f64| spread(seeds.iter().map(|(_, rows)| f(&rows[k])));
    let drift = |v: &Value| num(&v["median_drift"]);
    let swing = |v: &Value| num(&v["median_swing"]);
    let distance = |v: &Value| num(&v["ics_means"][0]);
    let cosine = |v: &Value| num(&v["ics_means"][1]);
    let who = [
        "with batch norm",
        "without batch norm",
        "with noisy batch norm",
    ];
    let table: Vec<String> = (0..3)
        .map(|k| {
            let runs = across(&seeds, k);
            row(&[
                who[k].to_string(),
                score(&accuracies(&runs), &divergences(&runs)),
                over(k, &drift).fixed(3),
                over(k, &swing).fixed(2),
                over(k, &distance).fixed(4),
                over(k, &cosine).fixed(3),
            ])
        })
        .collect();
    assert_eq!(md.rows, table);
    same_findings(section, md);
    let count =
        |claim: &dyn Fn(&[Value]) -> bool| seeds.iter().filter(|(_, rows)| claim(rows)).count();
    let moves_more = count(&|r| drift(&r[2]) > drift(&r[1]));
    let trains_like =
        count(&|r| (num(&r[2]["test_accuracy"]) - num(&r[0]["test_accuracy"])).abs() <= 0.01);
    let not_reduced = count(&|r| cosine(&r[0]) <= cosine(&r[1]));
    let accuracy = |k: usize| accuracies(&across(&seeds, k));
    let word = mean_word(n);
    let counts = [moves_more, trains_like, not_reduced];
    let verdict = if counts.iter().all(|&c| c == n) {
        "reproduced in every seed"
    } else if counts.iter().all(|&c| c == 0) {
        "not reproduced"
    } else {
        "partly reproduced"
    };
    let expected = format!(
        "The probed unit's median input changed by {} per measurement with noisy batch norm, \
         {} without batch norm and {} with it ({word}absolute change between measurements): \
         more with noisy batch norm than without {}. Noisy batch norm ended at {} test accuracy, \
         batch norm at {} and the plain network at {}: within 1 point of batch norm {}. When \
         the layers below took their step, a layer's gradient moved by {} with batch norm and \
         {} without ({word}ℓ2 distance), at a cosine of {} against {}: no better aligned with \
         batch norm {}. Santurkar et al. (2018) found that noisy batch norm, whose inputs move \
         more than a plain network's, trains like batch norm (Figure 2), and that batch norm \
         does not reduce internal covariate shift measured this way (Figure 5): {verdict}.",
        over(2, &drift).fixed(3),
        over(1, &drift).fixed(3),
        over(0, &drift).fixed(3),
        in_seeds(moves_more, n),
        accuracy(2).pct(),
        accuracy(0).pct(),
        accuracy(1).pct(),
        in_seeds(trains_like, n),
        over(0, &distance).fixed(4),
        over(1, &distance).fixed(4),
        over(0, &cosine).fixed(3),
        over(1, &cosine).fixed(3),
        in_seeds(not_reduced, n),
    );
    assert_eq!(md.findings, expected);
}

/// `norms`: five norms at six batch sizes, the batch-64 networks tested every way.
pub fn norms(section: &Value, md: &MdSection, report: &Value) {
    const NORMS: [&str; 5] = ["none", "batch", "layer", "group", "renorm"];
    const SIZES: [usize; 6] = [2, 4, 8, 16, 64, 256];
    let n = report["seeds"].as_u64().unwrap() as usize;
    let first = report["seed"].as_u64().unwrap();
    let train = report["train_images"].as_u64().unwrap() as usize;
    let test_images = report["test_images"].as_u64().unwrap() as f64;
    let images = 20_480.min(train);
    let summaries = section["summary"].as_array().unwrap();
    assert_eq!(summaries.len(), n);
    assert_eq!(runs(section).len(), n * 30);
    let configs = [
        json!("None"),
        json!("Batch"),
        json!("Layer"),
        json!({"Group": {"groups": 32}}),
        json!({"BatchRenorm": {"r_max": 3.0, "d_max": 5.0, "warmup_steps": 50, "r_max_step": 400, "d_max_step": 250}}),
    ];
    let seeds: Vec<&[Value]> = runs(section).chunks(30).collect();
    for (k, (runs, summary)) in seeds.iter().zip(summaries).enumerate() {
        let rows = summary["sizes"].as_array().unwrap();
        assert_eq!(rows.len(), SIZES.len());
        for ((&batch, group), row) in SIZES.iter().zip(runs.chunks(5)).zip(rows) {
            let steps = images.div_ceil(batch);
            let mut networks = Vec::new();
            for ((run, norm), config) in group.iter().zip(NORMS).zip(&configs) {
                assert_eq!(name(run), format!("batch {batch}, {norm}"));
                assert_eq!(run["seed"], json!(first + k as u64));
                assert_eq!(&run["config"]["norm"], config, "{}", name(run));
                assert_eq!(
                    run["config"]["weight_init"],
                    group[0]["config"]["weight_init"]
                );
                assert_eq!(run["batch_size"], json!(batch));
                assert_eq!(run["steps"], json!(steps));
                networks.push(json!({
                    "norm": norm,
                    "diverged_at": run["diverged_at"],
                    "test_accuracy": run["test_accuracy"],
                    "train_loss": run["mean_loss"],
                }));
            }
            assert_eq!(
                row,
                &json!({"batch_size": batch, "steps": steps, "networks": networks})
            );
        }
        // The inference tests: one per norm, of its batch-64 network.
        let tests = summary["inference"].as_array().unwrap();
        assert_eq!(tests.len(), 5);
        let at_64 = &runs[4 * 5..5 * 5];
        for ((t, norm), run) in tests.iter().zip(NORMS).zip(at_64) {
            assert_eq!(t["norm"], json!(norm));
            let train_mode: Vec<f64> = t["train_mode"]
                .as_array()
                .unwrap()
                .iter()
                .map(num)
                .collect();
            assert_eq!(train_mode.len(), 3);
            let eval = num(&t["eval_mode"]);
            // Eval mode is what the driver measured at the end of the run (one image's
            // worth of float rounding apart at most).
            assert!(
                (eval - accuracy(run)).abs() <= 1.0 / test_images + 1e-12,
                "{norm}: {eval} against {}",
                accuracy(run)
            );
            match norm {
                // Each image normalized on its own: the same answers in either mode.
                "layer" | "group" | "none" => {
                    for a in &train_mode {
                        assert!((a - eval).abs() <= 1.0 / test_images + 1e-12, "{norm}: {t}");
                    }
                }
                // One image: every image normalized to beta, one answer for all.
                "batch" => assert!(train_mode[0] <= 0.2, "{t}"),
                _ => {}
            }
        }
    }

    // The table: one row per norm.
    let at = |j: usize| -> Vec<&Value> { seeds.iter().map(|runs| &runs[j]).collect() };
    let test = |i: usize, f: &dyn Fn(&Value) -> f64| {
        spread(summaries.iter().map(|s| f(&s["inference"][i])))
    };
    let mut header = vec!["norm".to_string()];
    header.extend(
        SIZES
            .iter()
            .map(|b| format!("batch {b} ({} steps)", images.div_ceil(*b))),
    );
    header.extend([1, 2, 16].map(|b| format!("batch-64 net, train mode, test batch {b}")));
    header.push("batch-64 net, eval mode".into());
    assert_eq!(md.header, row(&header));
    let mut table = Vec::new();
    for (i, norm) in NORMS.iter().enumerate() {
        let mut cells = vec![norm.to_string()];
        for s in 0..SIZES.len() {
            let runs = at(5 * s + i);
            cells.push(score(&accuracies(&runs), &divergences(&runs)));
        }
        for j in 0..3 {
            cells.push(test(i, &|t| num(&t["train_mode"][j])).pct());
        }
        cells.push(test(i, &|t| num(&t["eval_mode"])).pct());
        table.push(row(&cells));
    }
    assert_eq!(md.rows, table);

    // The findings.
    same_findings(section, md);
    let acc = |s: usize, i: usize| accuracies(&at(5 * s + i));
    let best = |s: usize| {
        let mut order: Vec<(usize, f64)> = (0..5).map(|i| (i, acc(s, i).mean)).collect();
        order.sort_by(|a, b| b.1.total_cmp(&a.1));
        (NORMS[order[0].0], order[0].1 - order[1].1)
    };
    let winners: Vec<String> = (0..SIZES.len())
        .map(|s| {
            let (norm, margin) = best(s);
            format!("{norm} at {} (by {:.2} points)", SIZES[s], 100.0 * margin)
        })
        .collect();
    let lead = |s: usize, i: usize| {
        let (with, none) = (at(5 * s + i), at(5 * s));
        spread(
            with.iter()
                .zip(&none)
                .map(|(w, o)| accuracy(w) - accuracy(o)),
        )
    };
    let leads: Vec<String> = [1, 2, 3, 4]
        .iter()
        .map(|&i| {
            format!(
                "{} {} at batch 256 and {} at batch 2",
                NORMS[i],
                lead(5, i).points(),
                lead(0, i).points()
            )
        })
        .collect();
    // From batch 16 (row 3) down to 2 (row 0), in one seed.
    let change_in = |k: usize, i: usize| accuracy(&seeds[k][i]) - accuracy(&seeds[k][15 + i]);
    let change = |i: usize| spread((0..n).map(|k| change_in(k, i))).points();
    let holds = (0..n)
        .filter(|&k| change_in(k, 3).abs() <= 0.01 && change_in(k, 1) < -0.05)
        .count();
    // Batch renorm against batch norm at batches 2 and 4 (rows 0 and 1).
    let renorm_lead = |s: usize| {
        spread((0..n).map(|k| accuracy(&seeds[k][5 * s + 4]) - accuracy(&seeds[k][5 * s + 1])))
    };
    let renorm_ahead = (0..n)
        .filter(|&k| {
            (0..2).all(|s| accuracy(&seeds[k][5 * s + 4]) > accuracy(&seeds[k][5 * s + 1]))
        })
        .count();
    let behind: Vec<String> = (0..SIZES.len())
        .filter(|&s| acc(s, 1).mean < acc(s, 2).mean)
        .map(|s| {
            let count = (0..n)
                .filter(|&k| accuracy(&seeds[k][5 * s + 1]) < accuracy(&seeds[k][5 * s + 2]))
                .count();
            format!("{} ({})", SIZES[s], in_seeds(count, n))
        })
        .collect();
    let same = |i: usize| {
        summaries
            .iter()
            .flat_map(|s| {
                let t = &s["inference"][i];
                let eval = num(&t["eval_mode"]);
                t["train_mode"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(move |a| (num(a) - eval).abs())
                    .collect::<Vec<_>>()
            })
            .fold(0.0, f64::max)
    };
    let at_one = |i: usize| {
        format!(
            "{} with one image per batch in train mode against {} in eval mode",
            test(i, &|t| num(&t["train_mode"][0])).pct(),
            test(i, &|t| num(&t["eval_mode"])).pct()
        )
    };
    let word = mean_word(n);
    let expected = format!(
        "The best {word}test accuracy at each batch size: {}. Each norm's {word}lead over no \
         norm, in points: {}. Wu & He (2018, Fig. 1) find batch norm's error climbing below 16 \
         images per batch while group norm's stays flat. Here, from batch 16 down to 2, the \
         {word}test accuracy changes by {} points with batch norm, {} with batch renorm, {} \
         with layer norm and {} with group norm ({} without a norm); group norm within a point of \
         its batch-16 accuracy while batch norm falls by more than 5 points holds {}. Ioffe (2017, Fig. 2) finds batch renorm ahead of \
         batch norm with 4 examples per batch: here its {word}lead over batch norm is {} at \
         batch 2 and {} at batch 4, ahead at every batch size up to 4 {}. {} In train mode, \
         layer and group norm give the \
         eval-mode accuracy on every test batch (largest difference {:.2} and {:.2} points: \
         each image is normalized on its own). Batch norm gives {}; batch renorm gives {}.",
        winners.join(", "),
        leads.join("; "),
        change(1),
        change(4),
        change(2),
        change(3),
        change(0),
        in_seeds(holds, n),
        renorm_lead(0).points(),
        renorm_lead(1).points(),
        in_seeds(renorm_ahead, n),
        if behind.is_empty() {
            "Batch norm is ahead of layer norm at every batch size tried.".to_string()
        } else {
            format!(
                "Batch norm falls behind layer norm at batch {}.",
                behind.join(", ")
            )
        },
        100.0 * same(2),
        100.0 * same(3),
        at_one(1),
        at_one(4),
    );
    assert_eq!(md.findings, expected);
}
