//! `nightshift check`: a good store passes; a broken one lists file:line: field: problem.

use std::process::Command;
use tests::{nightshift_binary, sample_store, TempDir};

fn check(store: &str) -> (i32, String, String) {
    let dir = TempDir::new("check");
    let path = dir.path().join("store.toml");
    std::fs::write(&path, store).unwrap();
    std::fs::create_dir_all(dir.path().join("templates/mail")).unwrap();
    for ext in ["html", "txt"] {
        let from = tests::repo_root().join(format!("templates/mail/cohort.{ext}"));
        std::fs::copy(
            from,
            dir.path().join(format!("templates/mail/cohort.{ext}")),
        )
        .unwrap();
    }
    let out = Command::new(nightshift_binary())
        .arg("check")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    let text = |b: Vec<u8>| {
        String::from_utf8(b)
            .unwrap()
            .replace(&path.display().to_string(), "store.toml")
    };
    (
        out.status.code().unwrap(),
        text(out.stdout),
        text(out.stderr),
    )
}

#[test]
fn the_sample_store_passes_the_check() {
    let (code, stdout, _) = check(&sample_store());
    assert_eq!(code, 0);
    let products = sample_store()
        .lines()
        .filter(|l| l.starts_with("[products."))
        .count();
    assert!(
        stdout.contains(&format!("ok ({products} products)")),
        "{stdout}"
    );
}

#[test]
fn a_broken_store_lists_every_problem_with_its_line_and_exits_1() {
    let broken = sample_store()
        .replace("currency = \"EUR\"", "currency = \"EURO\"")
        .replace("price = \"29.90\"", "price = 29.90")
        .replace("grouping = \"order\"", "grouping = \"weekly\"");
    let (code, _, stderr) = check(&broken);
    assert_eq!(code, 1);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(
        lines[0].starts_with("store.toml:6: store.currency: "),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with("store.toml:17: mail.grouping: "),
        "{stderr}"
    );
    let price_line = sample_store()
        .lines()
        .position(|l| l == "price = \"29.90\"")
        .unwrap()
        + 1;
    assert!(
        lines[2].starts_with(&format!(
            "store.toml:{price_line}: products.rust-book.price: "
        )),
        "{stderr}"
    );
}

#[test]
fn a_missing_product_template_names_the_field() {
    let broken = sample_store().replace("templates/mail/cohort", "templates/mail/missing");
    let (code, _, stderr) = check(&broken);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("products.mentoring-cohort.mail.template: cannot read"),
        "{stderr}"
    );
}
