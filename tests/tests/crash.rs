//! A crash in the middle: the dev stack is killed (SIGKILL) while it delivers paid orders,
//! then started again on the same data folder. Every order is delivered and mailed exactly
//! once and nothing reaches the dead-letter list: the work the dead process held is taken
//! over when its lease ends, and a message that finds it held waits for that instead of
//! failing toward the dead-letter limit.

use serde_json::Value;
use std::time::{Duration, Instant};
use tests::lms::FakeLms;
use tests::{recipients, sample_store, DevStack, APPROVE};

const ORDERS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_killed_mid_delivery_are_each_delivered_and_mailed_once_after_a_restart() {
    // Each enrolment takes two seconds: when the process dies, every one is in flight.
    let lms = FakeLms::start_slow("lms-secret", vec![], Duration::from_secs(2)).await;
    let store = format!(
        "{}\n[products.lms-course]\nname = \"LMS Course\"\nprice = \"99.00\"\n\
         fulfillment = {{ kind = \"course\", provider = \"webhook\", course_id = \"lms-1\", url = \"{}\", secret = \"lms\" }}\n",
        sample_store(),
        lms.url
    );
    let env = [("NIGHTSHIFT_SECRET_LMS", "lms-secret")];
    let dev = DevStack::start_with_env(&store, &env).unwrap();
    let mut tokens = Vec::new();
    for i in 0..ORDERS {
        let token = dev
            .checkout_form(&[("lms-course", 1)], &buyer(i), "Crash Test")
            .await
            .unwrap()
            .unwrap();
        tokens.push(token);
    }
    let paid = futures::future::join_all(tokens.iter().map(|t| dev.pay(t, APPROVE))).await;
    assert!(paid.iter().all(Result::is_ok), "{paid:?}");
    for token in &tokens {
        dev.wait_for_order(token, |o| o["status"] == "paid")
            .await
            .unwrap();
    }
    // The worker has taken the enrolments and is waiting for the LMS.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        dev.outbox().await.unwrap().is_empty(),
        "nothing delivered before the crash"
    );

    let dev = dev.restart_with_env(&env).unwrap();
    let deadline = Instant::now() + Duration::from_secs(150);
    for token in &tokens {
        loop {
            let order = dev.order_json(token).await.unwrap();
            if order["status"] == "fulfilled" {
                break;
            }
            assert!(Instant::now() < deadline, "never delivered: {order}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    // Mail follows delivery: wait for every buyer's, then make sure none came twice.
    let mails = loop {
        let mails = dev.outbox().await.unwrap();
        if (0..ORDERS).all(|i| mails.iter().any(|m| to(m, &buyer(i)))) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            break dev.outbox().await.unwrap();
        }
        assert!(Instant::now() < deadline, "mail missing: {mails:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    for i in 0..ORDERS {
        let count = mails.iter().filter(|m| to(m, &buyer(i))).count();
        assert_eq!(count, 1, "{} got {count} mails", buyer(i));
    }
    let dead: Vec<Value> = dev
        .http
        .get(dev.url("/dev/dead-letters.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(dead.is_empty(), "dead letters: {dead:?}");
}

fn buyer(i: usize) -> String {
    format!("crash{i}@example.com")
}

fn to(mail: &Value, address: &str) -> bool {
    recipients(mail, "to") == [address]
}
