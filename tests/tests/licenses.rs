//! Licence keys end to end on the dev stack: a paid order gets a signed key on its page and in
//! its mail; `nightshift license verify` accepts it with the public key alone and refuses any
//! changed character; the licence endpoints answer for it; `nightshift keys generate` works.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use tests::{decoded, nightshift_binary, recipients, sample_store, DevStack, TempDir, APPROVE};

fn verify(public_key: &Path, key: &str) -> Output {
    Command::new(nightshift_binary())
        .args(["license", "verify", "--public-key"])
        .arg(public_key)
        .arg(key)
        .output()
        .unwrap()
}

/// The key with one character replaced by another from the key alphabet.
fn changed(key: &str, at: usize) -> String {
    let mut chars: Vec<char> = key.chars().collect();
    let index = (at..chars.len()).find(|&i| chars[i] != '-').unwrap();
    chars[index] = if chars[index] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

async fn bought_key(dev: &DevStack) -> (String, Value, String) {
    let token = dev
        .buy(&[("ferrite-pro", 1)], "Ann", APPROVE)
        .await
        .unwrap();
    let order = dev
        .wait_for_order(&token, |o| o["status"] == "fulfilled")
        .await
        .unwrap();
    let key = order["lines"][0]["access"]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    (key, order, token)
}

#[tokio::test]
async fn a_paid_licence_key_verifies_offline_and_one_changed_character_does_not() {
    let dev = DevStack::start(&sample_store()).unwrap();
    let (key, order, token) = bought_key(&dev).await;
    assert_eq!(order["lines"][0]["access"]["seats"], 1);
    let public = dev.license_public_key_file();

    let ok = verify(&public, &key);
    let out = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(ok.status.code(), Some(0), "{out}");
    assert!(
        out.contains("product:    ferrite-pro") && out.contains("valid"),
        "{out}"
    );
    assert!(out.contains(order["order_id"].as_str().unwrap()), "{out}");

    for at in [0, key.len() / 2, key.len() - 1] {
        let tampered = changed(&key, at);
        let refused = verify(&public, &tampered);
        assert_eq!(refused.status.code(), Some(1), "{tampered} verified");
        assert!(String::from_utf8_lossy(&refused.stdout).starts_with("invalid"));
    }

    // The page lets the key wrap between its groups (`<wbr>`), which copies as nothing.
    let page = decoded(&dev.order_page(&token).await.unwrap().1).replace("<wbr>", "");
    assert!(page.contains(&key), "the page shows the key");
    let mails = dev
        .wait_for_mail(1, |m| recipients(m, "to") == ["ann@example.com"])
        .await
        .unwrap();
    assert_eq!(mails.len(), 1);
    assert!(mails[0]["text"].as_str().unwrap().contains(&key));
}

#[tokio::test]
async fn the_licence_endpoints_give_a_keys_status_and_a_signed_revocation_list() {
    let dev = DevStack::start(&sample_store()).unwrap();
    let (key, order, _) = bought_key(&dev).await;
    let status = dev
        .http
        .get(dev.url(&format!("/licenses/{key}/status")))
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 200);
    let status: Value = status.json().await.unwrap();
    assert_eq!(status["status"], "valid");
    assert_eq!(status["product"], "ferrite-pro");
    assert_eq!(status["order_id"], order["order_id"]);

    let forged = dev
        .http
        .get(dev.url(&format!("/licenses/{}/status", changed(&key, 7))))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 404);
    assert_eq!(forged.headers()["content-type"], "application/problem+json");

    let list: Value = dev
        .http
        .get(dev.url("/licenses/revoked.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["revoked"], serde_json::json!([]));
    let public = dev.license_public_key().unwrap();
    let issued_at = list["issued_at"].as_u64().unwrap();
    let signature = list["signature"].as_str().unwrap();
    assert_eq!(
        shared::license::verify_revocations(&public, issued_at, &[], signature),
        Ok(())
    );
    assert!(shared::license::verify_revocations(&public, issued_at + 1, &[], signature).is_err());
}

#[test]
fn keys_generate_writes_a_pair_that_signs_verifiable_keys_and_refuses_to_overwrite() {
    let dir = TempDir::new("keys");
    let run = |extra: &[&str]| {
        Command::new(nightshift_binary())
            .args(["keys", "generate", "--out"])
            .arg(dir.path())
            .args(extra)
            .output()
            .unwrap()
    };
    assert!(run(&[]).status.success());
    let signing_hex = std::fs::read_to_string(dir.path().join("license-signing.key")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("license-signing.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the signing key is private");
    }
    let signing = shared::license::signing_key_from_hex(&signing_hex).unwrap();
    let license = shared::license::License {
        product: "app".into(),
        order_id: "ord_00112233445566778899".into(),
        line: 0,
        issued_at: 1_700_000_000,
        expires_at: None,
        seats: 1,
        email_hash: shared::license::License::email_hash("ann@example.com"),
    };
    let key = shared::license::sign(&signing, &license).unwrap();
    assert_eq!(
        verify(&dir.path().join("license-public.key"), &key)
            .status
            .code(),
        Some(0)
    );

    let again = run(&[]);
    assert!(!again.status.success(), "an existing pair is kept");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("license-signing.key")).unwrap(),
        signing_hex
    );
}
