//! `--check` names every committed manifest that differs from what would be
//! generated, and only those.

use std::path::Path;

#[test]
fn check_names_the_file_that_differs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let files = match manifest_gen::generate(&root) {
        Ok(f) => f,
        // The modules are built by scripts/build.sh; without them there are no digests.
        Err(e) if e.contains("scripts/build.sh") => return eprintln!("skipped: {e}"),
        Err(e) => panic!("{e}"),
    };
    let tmp = std::env::temp_dir().join(format!("manifest-gen-check-{}", std::process::id()));
    manifest_gen::write(&tmp, &files).unwrap();
    assert!(manifest_gen::check(&tmp, &files).is_empty());
    let (rel, text) = &files[1];
    std::fs::write(tmp.join(rel), text.replace("FAIL_OPEN", "FAIL_CLOSE")).unwrap();
    let problems = manifest_gen::check(&tmp, &files);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with(&format!("{}: out of date", rel.display())),
        "{problems:?}"
    );
    std::fs::remove_file(tmp.join(&files[0].0)).unwrap();
    let problems = manifest_gen::check(&tmp, &files);
    assert!(problems
        .iter()
        .any(|p| p == &format!("{}: missing", files[0].0.display())));
    let _ = std::fs::remove_dir_all(&tmp);
}
