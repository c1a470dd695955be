//! Every malformed phase directory under tests/fixtures/invalid/ fails to load with the exact
//! text a user reads (snapshots), and the valid set under tests/fixtures/phases/ loads clean.

use std::path::{Path, PathBuf};

use bringup::phase::model::StepKind;
use bringup::phase::{Values, graph, load_dir};

fn load(dir: &Path) -> Result<bringup::phase::PhaseSet, bringup::phase::Diagnostics> {
    let values = Values::load(dir, &[], &[]).expect("fixture values load");
    load_dir(dir, &values)
}

#[test]
fn every_invalid_fixture_reports_its_problems() {
    let root = Path::new("tests/fixtures/invalid");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 30, "only {} invalid fixtures", cases.len());
    for case in cases {
        let name = case.file_name().unwrap().to_str().unwrap().to_string();
        let diagnostics = match load(&case) {
            Ok(_) => panic!("{name} loaded without a problem"),
            Err(diagnostics) => diagnostics,
        };
        for diagnostic in diagnostics.iter() {
            assert!(
                diagnostic.line > 0 && diagnostic.column > 0,
                "{name}: no position: {diagnostic}"
            );
            assert!(diagnostic.hint.is_some(), "{name}: no hint: {diagnostic}");
        }
        insta::assert_snapshot!(name, diagnostics.to_string());
    }
}

#[test]
fn the_valid_fixtures_load_in_dependency_order() {
    let set = load(Path::new("tests/fixtures/phases")).unwrap_or_else(|d| panic!("{d}"));
    let order: Vec<&str> = set.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        order,
        ["shared-secrets", "dex", "external-secrets", "gitea"]
    );
    let (_, token) = set.step("gitea/renovate-token").unwrap();
    let StepKind::Http(http) = &token.kind else {
        panic!("renovate-token is an http step")
    };
    assert_eq!(
        http.request.json.as_ref().unwrap()["expires"],
        serde_json::json!(false)
    );
    assert_eq!(http.request.expect, [201]);
    assert_eq!(set.steps().count(), 9);
    insta::assert_snapshot!("valid_mermaid", graph::mermaid(&set));
}
