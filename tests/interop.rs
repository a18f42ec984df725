//! PyTorch weights through the command line: import, evaluate, export, re-import.

use safetensors::SafeTensors;

use crate::util::{Args, fixture, mnist_bn, read_json};

#[test]
fn import_eval_export_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let checkpoint = tmp.path().join("imported");
    mnist_bn(&Args::import(
        &fixture("init_bn.pt"),
        "batchnorm",
        &checkpoint,
    ))
    .assert_ok();
    let json = tmp.path().join("eval.json");
    let eval = mnist_bn(
        &Args::eval(&checkpoint)
            .opt("--mode", "both")
            .test_limit(256)
            .path("--json", &json),
    );
    eval.assert_ok();
    let tests = read_json(&json);
    assert_eq!(tests[0]["mode"], "train");
    assert_eq!(tests[1]["mode"], "eval");

    let exported = tmp.path().join("out.safetensors");
    mnist_bn(&Args::export(&checkpoint, &exported)).assert_ok();
    // The export holds exactly the tensors of the original state_dict, with the same values.
    let original = std::fs::read(fixture("init_bn.safetensors")).unwrap();
    let original = SafeTensors::deserialize(&original).unwrap();
    let ours = std::fs::read(&exported).unwrap();
    let ours = SafeTensors::deserialize(&ours).unwrap();
    let mut names = original.names();
    names.sort();
    let mut our_names = ours.names();
    our_names.sort();
    assert_eq!(names, our_names);
    for name in names {
        assert_eq!(
            original.tensor(name).unwrap().data(),
            ours.tensor(name).unwrap().data(),
            "{name}"
        );
    }

    // Training can start from PyTorch's weights.
    let out = tmp.path().join("run");
    let run = mnist_bn(
        &Args::train("batchnorm")
            .path("--init-from", &exported)
            .epochs(1)
            .limits(640, 100)
            .out(&out),
    );
    run.assert_ok();
}

#[test]
fn importing_the_wrong_variant_names_the_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x");
    mnist_bn(&Args::import(
        &fixture("init_nonorm.safetensors"),
        "batchnorm",
        &out,
    ))
    .assert_error("missing tensors: batch_norm1.bias");
    assert!(!out.exists(), "nothing is written on failure");
}
