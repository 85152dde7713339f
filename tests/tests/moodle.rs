//! Moodle enrolment end to end on the dev stack, against a fake Moodle that holds Nightshift
//! to the function and parameter names Moodle documents.

use serde_json::Value;
use tests::moodle::{FakeMoodle, TOKEN};
use tests::{decoded, recipients, sample_store, DevStack, APPROVE};

fn store_with_moodle(moodle: &FakeMoodle, course_id: u64) -> String {
    format!(
        "{}\n[products.moodle-course]\nname = \"Moodle Course\"\nprice = \"99.00\"\n\
         fulfillment = {{ kind = \"course\", provider = \"moodle\", url = \"{}/\", secret = \"moodle-token\", course_id = \"{course_id}\", role_id = 5 }}\n",
        sample_store(),
        moodle.url
    )
}

async fn start(moodle: &FakeMoodle, course_id: u64) -> DevStack {
    DevStack::start_with_env(
        &store_with_moodle(moodle, course_id),
        &[("NIGHTSHIFT_SECRET_MOODLE_TOKEN", TOKEN)],
    )
    .unwrap()
}

async fn bought(dev: &DevStack) -> (String, Value) {
    let token = dev
        .buy(&[("moodle-course", 1)], "Ann Lee", APPROVE)
        .await
        .unwrap();
    let order = dev
        .wait_for_order(&token, |o| {
            o["state"] == "approved" || o["status"] != "paid" && o["status"] != "pending_payment"
        })
        .await
        .unwrap();
    (token, order)
}

#[tokio::test]
async fn a_new_buyer_gets_a_moodle_account_and_enrolment_with_the_documented_calls() {
    let moodle = FakeMoodle::start(&[42]).await;
    let dev = start(&moodle, 42).await;
    let (token, order) = bought(&dev).await;
    assert_eq!(order["status"], "fulfilled", "{order}");

    let password = {
        let log = moodle.log.lock().unwrap();
        assert!(log.refused.is_empty(), "{:?}", log.refused);
        let functions: Vec<&str> = log.calls.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            functions,
            [
                "core_user_get_users_by_field",
                "core_user_create_users",
                "enrol_manual_enrol_users"
            ]
        );
        let lookup = &log.calls[0].1;
        assert_eq!(lookup["field"], "email");
        assert_eq!(lookup["values[0]"], "ann@example.com");
        let create = &log.calls[1].1;
        assert_eq!(create["users[0][username]"], "ann@example.com");
        assert_eq!(create["users[0][firstname]"], "Ann");
        assert_eq!(create["users[0][lastname]"], "Lee");
        assert_eq!(create["users[0][auth]"], "manual");
        let user = &log.users[0];
        assert_eq!(log.enrolments, [(user.id, 42, 5)]);

        let access = &order["lines"][0]["access"];
        assert_eq!(
            access["login_url"],
            format!("{}/login/index.php", moodle.url)
        );
        assert_eq!(access["username"], "ann@example.com");
        assert_eq!(access["password"].as_str(), user.password.as_deref());
        user.password.clone().unwrap()
    };
    assert!(decoded(&dev.order_page(&token).await.unwrap().1).contains(&password));
    let mails = dev
        .wait_for_mail(1, |m| recipients(m, "to") == ["ann@example.com"])
        .await
        .unwrap();
    assert!(mails[0]["text"].as_str().unwrap().contains(&password));
}

#[tokio::test]
async fn a_buyer_with_an_account_is_enrolled_and_keeps_their_password() {
    let moodle = FakeMoodle::start(&[42]).await;
    let id = moodle.add_user("ann", "ann@example.com");
    let dev = start(&moodle, 42).await;
    let (_, order) = bought(&dev).await;
    assert_eq!(order["status"], "fulfilled", "{order}");
    assert_eq!(
        moodle.functions(),
        ["core_user_get_users_by_field", "enrol_manual_enrol_users"]
    );
    assert_eq!(moodle.log.lock().unwrap().enrolments, [(id, 42, 5)]);
    let access = &order["lines"][0]["access"];
    assert_eq!(access["username"], "ann");
    assert!(access.get("password").is_none(), "{access}");
}

#[tokio::test]
async fn a_moodle_in_maintenance_is_retried_and_the_same_password_survives_the_retry() {
    let moodle = FakeMoodle::start(&[42]).await;
    // The account is made, then the enrolment meets maintenance twice.
    moodle.log.lock().unwrap().errors = ["sitemaintenance", "dmlwriteexception"]
        .map(|code| ("enrol_manual_enrol_users".to_owned(), code.to_owned()))
        .to_vec();
    let dev = start(&moodle, 42).await;
    let (_, order) = bought(&dev).await;
    assert_eq!(order["status"], "fulfilled", "{order}");
    let log = moodle.log.lock().unwrap();
    assert_eq!(log.users.len(), 1, "one account");
    assert_eq!(log.enrolments.len(), 1, "one enrolment");
    assert_eq!(
        order["lines"][0]["access"]["password"].as_str(),
        log.users[0].password.as_deref(),
        "the retry shows the password the account was made with"
    );
}

#[tokio::test]
async fn a_permanent_moodle_error_is_recorded_on_the_line_and_mailed_to_the_seller() {
    let moodle = FakeMoodle::start(&[42]).await;
    let dev = start(&moodle, 999).await;
    let token = dev
        .buy(&[("moodle-course", 1)], "Ann Lee", APPROVE)
        .await
        .unwrap();
    let order = dev
        .wait_for_order(&token, |o| o["lines"][0]["state"] == "failed")
        .await
        .unwrap();
    let failure = order["lines"][0]["failure"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let seller = dev
        .wait_for_mail(1, |m| {
            recipients(m, "to") == ["seller@example.com"]
                && m["text"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("invalidrecord")
        })
        .await
        .unwrap();
    assert_eq!(seller.len(), 1, "{failure}");
    assert_eq!(moodle.log.lock().unwrap().enrolments.len(), 0);
}
