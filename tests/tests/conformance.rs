//! One conformance suite for every state-store adapter: the embedded store and DynamoDB (on
//! moto) must give the same answers, including under concurrency.

use shared::adapters::dynamodb::{create_table, DynamoStore};
use shared::adapters::embedded::EmbeddedStore;
use shared::domain::{
    BuyerName, Currency, DownloadToken, Email, FulfillmentKind, Line, LineState, Money, Order,
    OrderId, OrderStatus, OrderToken, PaymentMethod, Quantity, SeenEvent, Sku,
};
use shared::ports::{
    Claim, DownloadGrant, DownloadTake, DueOrders, IdempotencyRecord, NewOrder, OrderStore, Owner,
    PlaceError, Reservation, StockLevel, StoreError, Suppressions, WorkClaims,
};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}

/// A new order with a fresh id and token, holding `quantity` of each sku.
fn new_order(skus: &[(&str, u32, u32)], key: Option<&str>) -> NewOrder {
    static N: AtomicU8 = AtomicU8::new(1);
    let mut seed = [0u8; 16];
    seed[..8].copy_from_slice(&rand_bytes());
    seed[8] = N.fetch_add(1, Ordering::SeqCst);
    let mut id = [0u8; 10];
    id.copy_from_slice(&seed[..10]);
    let eur = Currency::parse("EUR").unwrap();
    let id = OrderId::from_random(id);
    let order = Order {
        token: Some(page_token(&id).check()),
        id,
        version: 1,
        status: OrderStatus::PendingPayment,
        email: Email::parse("ann@example.com").unwrap(),
        name: BuyerName::parse("Ann").unwrap(),
        lines: skus
            .iter()
            .map(|(s, q, _)| Line {
                sku: sku(s),
                name: s.to_string(),
                kind: FulfillmentKind::Shipment,
                quantity: Quantity::new(*q).unwrap(),
                unit_price: Money::from_minor(1000, eur),
                state: LineState::Pending,
                access: None,
                failure: None,
                seats: Vec::new(),
            })
            .collect(),
        total: Money::from_minor(1000, eur),
        created_at: 1_700_000_000,
        reserved_until: 1_700_001_800,
        payment_method: PaymentMethod::Card,
        transfer_reference: None,
        refunded: None,
        decline_notice: false,
        payment_issues: Vec::new(),
        store_url: None,
        shipping: None,
        webhook_failures: Vec::new(),
        late_refund: None,
        texts: None,
        recovery_at: None,
        recovery_mailed: false,
        review_at: None,
        review_mailed: false,
        check_at: None,
        checks: 0,
        reminders_sent: 0,
        next_reminder_at: None,
        gateway_sessions: Vec::new(),
        events: Vec::new(),
    };
    NewOrder {
        reservations: skus
            .iter()
            .map(|(s, q, limit)| Reservation {
                sku: sku(s),
                quantity: *q,
                limit: *limit,
                method: PaymentMethod::Card,
            })
            .collect(),
        idempotency: key.map(|k| IdempotencyRecord {
            key_hash: k.into(),
            fingerprint: "f".into(),
            order_id: order.id.clone(),
        }),
        order,
    }
}

fn rand_bytes() -> [u8; 8] {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    h.finish().to_le_bytes()
}

/// The page token of a test order.
fn page_token(order: &OrderId) -> OrderToken {
    OrderToken::new(order, [9; 16])
}

async fn an_order_reads_back_by_id_and_by_token<S: OrderStore>(store: S) {
    let new = new_order(&[("book", 1, 10)], None);
    store.place_order(&new).await.unwrap();
    assert_eq!(
        store.order(&new.order.id).await.unwrap(),
        Some(new.order.clone())
    );
    assert_eq!(
        store
            .order_by_token(&page_token(&new.order.id))
            .await
            .unwrap(),
        Some(new.order.clone())
    );
    // Another secret for the same order, or a token naming an order that does not exist.
    let forged = OrderToken::new(&new.order.id, [8; 16]);
    assert_eq!(store.order_by_token(&forged).await.unwrap(), None);
    let elsewhere = page_token(&OrderId::from_random([7; 10]));
    assert_eq!(store.order_by_token(&elsewhere).await.unwrap(), None);
    assert_eq!(store.stock_taken(&sku("book")).await.unwrap(), 1);
    assert_eq!(
        store.order(&OrderId::from_random([7; 10])).await.unwrap(),
        None
    );
    assert_eq!(store.stock_taken(&sku("never-sold")).await.unwrap(), 0);
}

async fn fifty_concurrent_reservations_for_five_units_let_exactly_five_through<
    S: OrderStore + 'static,
>(
    store: S,
) {
    let store = Arc::new(store);
    let tasks = (0..50).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.place_order(&new_order(&[("seat", 1, 5)], None)).await })
    });
    let results = futures::future::join_all(tasks).await;
    let placed = results
        .iter()
        .filter(|r| r.as_ref().unwrap().is_ok())
        .count();
    let sold_out = results
        .iter()
        .filter(|r| matches!(r.as_ref().unwrap(), Err(PlaceError::SoldOut(s)) if *s == sku("seat")))
        .count();
    assert_eq!((placed, sold_out), (5, 45));
    assert_eq!(store.stock_taken(&sku("seat")).await.unwrap(), 5);
}

async fn a_refused_order_leaves_nothing_behind<S: OrderStore>(store: S) {
    store
        .place_order(&new_order(&[("b", 2, 2)], None))
        .await
        .unwrap();
    let refused = new_order(&[("a", 1, 10), ("b", 1, 2)], Some("key-refused"));
    assert!(
        matches!(store.place_order(&refused).await, Err(PlaceError::SoldOut(s)) if s == sku("b"))
    );
    assert_eq!(store.stock_taken(&sku("a")).await.unwrap(), 0);
    assert_eq!(store.order(&refused.order.id).await.unwrap(), None);
    assert_eq!(
        store
            .order_by_token(&page_token(&refused.order.id))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.idempotency_record("key-refused").await.unwrap(), None);
}

async fn an_idempotency_key_places_one_order<S: OrderStore>(store: S) {
    let first = new_order(&[("book", 1, 10)], Some("key-1"));
    store.place_order(&first).await.unwrap();
    let second = new_order(&[("book", 1, 10)], Some("key-1"));
    match store.place_order(&second).await {
        Err(PlaceError::KeyUsed(record)) => assert_eq!(record.order_id, first.order.id),
        other => panic!("expected KeyUsed, got {other:?}"),
    }
    assert_eq!(store.order(&second.order.id).await.unwrap(), None);
    assert_eq!(store.stock_taken(&sku("book")).await.unwrap(), 1);
    assert_eq!(
        store
            .idempotency_record("key-1")
            .await
            .unwrap()
            .unwrap()
            .order_id,
        first.order.id
    );
}

async fn saving_an_order_is_conditional_on_its_version<S: OrderStore>(store: S) {
    let new = new_order(&[("book", 1, 10)], None);
    store.place_order(&new).await.unwrap();
    let paid = Order {
        status: OrderStatus::Paid,
        version: 2,
        ..new.order.clone()
    };
    store.save_order(&paid, 1).await.unwrap();
    let stale = Order {
        status: OrderStatus::Declined,
        version: 2,
        ..new.order.clone()
    };
    assert!(matches!(
        store.save_order(&stale, 1).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store.order(&new.order.id).await.unwrap().unwrap().status,
        OrderStatus::Paid
    );
}

async fn releasing_an_order_returns_its_stock_once<S: OrderStore>(store: S) {
    let new = new_order(&[("book", 3, 3)], None);
    store.place_order(&new).await.unwrap();
    let expired = Order {
        status: OrderStatus::Expired,
        version: 2,
        ..new.order.clone()
    };
    store
        .release_order(&expired, 1, &new.reservations)
        .await
        .unwrap();
    assert_eq!(store.stock_taken(&sku("book")).await.unwrap(), 0);
    assert!(matches!(
        store.release_order(&expired, 1, &new.reservations).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.stock_taken(&sku("book")).await.unwrap(), 0);
}

async fn held_units_count_until_their_order_is_paid_or_gives_them_back<S: OrderStore>(store: S) {
    let level = |taken, card, transfer| StockLevel {
        taken,
        held_by_card: card,
        held_by_transfer: transfer,
    };
    let card = new_order(&[("mug", 2, 10)], None);
    let mut transfer = new_order(&[("mug", 3, 10)], None);
    transfer.order.payment_method = PaymentMethod::BankTransfer;
    for r in &mut transfer.reservations {
        r.method = PaymentMethod::BankTransfer;
    }
    assert_eq!(
        store.stock(&sku("mug")).await.unwrap(),
        StockLevel::default()
    );
    store.place_order(&card).await.unwrap();
    store.place_order(&transfer).await.unwrap();
    assert_eq!(store.stock(&sku("mug")).await.unwrap(), level(5, 2, 3));

    // Paid: still taken, no longer held; in the payment's own conditional write.
    let paid = Order {
        status: OrderStatus::Paid,
        version: 2,
        ..card.order.clone()
    };
    store
        .save_paid_order(&paid, 1, &card.reservations)
        .await
        .unwrap();
    assert_eq!(store.stock(&sku("mug")).await.unwrap(), level(5, 0, 3));
    assert!(matches!(
        store.save_paid_order(&paid, 1, &card.reservations).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.stock(&sku("mug")).await.unwrap(), level(5, 0, 3));

    // Given back: neither taken nor held.
    let expired = Order {
        status: OrderStatus::Expired,
        version: 2,
        ..transfer.order.clone()
    };
    store
        .release_order(&expired, 1, &transfer.reservations)
        .await
        .unwrap();
    assert_eq!(store.stock(&sku("mug")).await.unwrap(), level(2, 0, 0));
    assert_eq!(store.stock_taken(&sku("mug")).await.unwrap(), 2);
}

async fn a_late_payment_takes_its_stock_again_only_while_there_is_some<S: OrderStore>(store: S) {
    let late = new_order(&[("lamp", 2, 3)], None);
    store.place_order(&late).await.unwrap();
    let expired = Order {
        status: OrderStatus::Expired,
        version: 2,
        ..late.order.clone()
    };
    store
        .release_order(&expired, 1, &late.reservations)
        .await
        .unwrap();
    // Two of three are sold meanwhile: the late payment's two units are not there.
    let other = new_order(&[("lamp", 2, 3)], None);
    store.place_order(&other).await.unwrap();
    let paid = Order {
        status: OrderStatus::Paid,
        version: 3,
        ..expired.clone()
    };
    assert!(matches!(
        store.save_late_paid_order(&paid, 2, &late.reservations).await,
        Err(PlaceError::SoldOut(s)) if s == sku("lamp")
    ));
    assert_eq!(
        store.order(&late.order.id).await.unwrap().unwrap(),
        expired,
        "nothing written"
    );
    // The other order expires too: now they are, taken as sold (not held), in one write.
    let other_expired = Order {
        status: OrderStatus::Expired,
        version: 2,
        ..other.order.clone()
    };
    store
        .release_order(&other_expired, 1, &other.reservations)
        .await
        .unwrap();
    store
        .save_late_paid_order(&paid, 2, &late.reservations)
        .await
        .unwrap();
    let level = store.stock(&sku("lamp")).await.unwrap();
    assert_eq!((level.taken, level.held()), (2, 0));
    assert_eq!(
        store.order(&late.order.id).await.unwrap().unwrap().status,
        OrderStatus::Paid
    );
    // Conditional on the version read, like every order write.
    assert!(matches!(
        store
            .save_late_paid_order(&paid, 2, &late.reservations)
            .await,
        Err(PlaceError::Store(StoreError::Conflict))
    ));
    assert_eq!(store.stock(&sku("lamp")).await.unwrap().taken, 2);
}

async fn orders_with_timed_work_are_found_by_when_it_is_due<S: OrderStore + DueOrders>(store: S) {
    let at = |reserved_until: i64| {
        let mut new = new_order(&[], None);
        new.order.reserved_until = reserved_until;
        new
    };
    let (soon, later, last) = (at(1_000), at(2_000), at(3_000));
    for new in [&last, &soon, &later] {
        store.place_order(new).await.unwrap();
    }
    assert_eq!(store.orders_due(999, 10).await.unwrap(), vec![]);
    assert_eq!(
        store.orders_due(2_500, 10).await.unwrap(),
        vec![soon.order.id.clone(), later.order.id.clone()]
    );
    assert_eq!(
        store.orders_due(5_000, 1).await.unwrap(),
        vec![soon.order.id.clone()]
    );
    // Paid: nothing left due. Expired: likewise.
    let paid = Order {
        status: OrderStatus::Paid,
        version: 2,
        ..soon.order.clone()
    };
    store.save_paid_order(&paid, 1, &[]).await.unwrap();
    let expired = Order {
        status: OrderStatus::Expired,
        version: 2,
        ..later.order.clone()
    };
    store.release_order(&expired, 1, &[]).await.unwrap();
    // A reservation extended: due later.
    let extended = Order {
        reserved_until: 4_000,
        version: 2,
        ..last.order.clone()
    };
    store.save_order(&extended, 1).await.unwrap();
    assert_eq!(store.orders_due(3_500, 10).await.unwrap(), vec![]);
    assert_eq!(
        store.orders_due(4_000, 10).await.unwrap(),
        vec![last.order.id.clone()]
    );
}

async fn payment_events_are_kept_with_the_order_by_its_conditional_write<S: OrderStore>(store: S) {
    let new = new_order(&[("book", 1, 10)], None);
    store.place_order(&new).await.unwrap();
    let mut paid = Order {
        status: OrderStatus::Paid,
        version: 2,
        ..new.order.clone()
    };
    paid.events.push(SeenEvent {
        id: "testpay:e1".into(),
        at: 1_700_000_100,
    });
    // A stale write keeps neither the status nor the event.
    assert!(matches!(
        store.save_order(&paid, 7).await,
        Err(StoreError::Conflict)
    ));
    assert!(store
        .order(&new.order.id)
        .await
        .unwrap()
        .unwrap()
        .events
        .is_empty());
    store.save_order(&paid, 1).await.unwrap();
    let stored = store.order(&new.order.id).await.unwrap().unwrap();
    assert_eq!(stored, paid);
    // The same write again, as a second delivery racing the first would make: refused.
    assert!(matches!(
        store.save_order(&paid, 1).await,
        Err(StoreError::Conflict)
    ));
    // And the page token still opens the order after the write.
    assert_eq!(
        store
            .order_by_token(&page_token(&new.order.id))
            .await
            .unwrap(),
        Some(paid)
    );
}

async fn unfinished_work_is_what_nobody_holds_or_finished<S: OrderStore + WorkClaims>(store: S) {
    let order = OrderId::from_random([7; 10]);
    let works: Vec<String> = ["MAIL#a", "MAIL#b", "MAIL#c", "MAIL#d"]
        .iter()
        .map(|w| w.to_string())
        .collect();
    let owner = Owner::new();
    // Nothing claimed yet: all of it.
    assert_eq!(store.unfinished(&order, &works, 100).await.unwrap(), works);
    store
        .claim(&order, "MAIL#a", &owner, 100, 160)
        .await
        .unwrap();
    store
        .claim(&order, "MAIL#b", &owner, 100, 160)
        .await
        .unwrap();
    store
        .complete(&order, "MAIL#b", &owner, &serde_json::json!({}))
        .await
        .unwrap();
    // a is held, b done: c and d are left.
    assert_eq!(
        store.unfinished(&order, &works, 150).await.unwrap(),
        ["MAIL#c", "MAIL#d"]
    );
    // Once a's lease ran out, a is left too; looking claimed nothing.
    assert_eq!(
        store.unfinished(&order, &works, 160).await.unwrap(),
        ["MAIL#a", "MAIL#c", "MAIL#d"]
    );
    assert_eq!(
        store
            .claim(&order, "MAIL#c", &owner, 161, 200)
            .await
            .unwrap(),
        Claim::Acquired
    );
}

async fn unsubscribed_addresses_are_kept_by_digest_once<S: OrderStore + Suppressions>(store: S) {
    let digest = Email::parse("ann@example.com").unwrap().digest();
    assert!(!store.is_suppressed(&digest).await.unwrap());
    store.suppress(&digest, 100).await.unwrap();
    store.suppress(&digest, 200).await.unwrap();
    assert!(store.is_suppressed(&digest).await.unwrap());
    let other = Email::parse("bob@example.com").unwrap().digest();
    assert!(!store.is_suppressed(&other).await.unwrap());
}

async fn once_only_work_is_claimed_leased_completed_and_released<S: OrderStore + WorkClaims>(
    store: S,
) {
    let order = OrderId::from_random([3; 10]);
    let key = "STEP#0#course";
    let (first, second, third) = (Owner::new(), Owner::new(), Owner::new());
    assert_eq!(
        store.claim(&order, key, &first, 100, 160).await.unwrap(),
        Claim::Acquired
    );
    assert_eq!(
        store.claim(&order, key, &second, 120, 180).await.unwrap(),
        Claim::Busy { until: 160 }
    );
    // Nobody but the owner may give it back or finish it.
    assert!(matches!(
        store.release(&order, key, &second).await,
        Err(StoreError::LeaseLost)
    ));
    // A lease that ran out can be taken over…
    assert_eq!(
        store.claim(&order, key, &second, 160, 220).await.unwrap(),
        Claim::Acquired
    );
    // …and the worker whose lease ran out learns it: it can neither finish nor give back.
    let stale = serde_json::json!({"outcome": "stale"});
    assert!(matches!(
        store.complete(&order, key, &first, &stale).await,
        Err(StoreError::LeaseLost)
    ));
    assert!(matches!(
        store.release(&order, key, &first).await,
        Err(StoreError::LeaseLost)
    ));
    assert_eq!(
        store.claim(&order, key, &third, 170, 230).await.unwrap(),
        Claim::Busy { until: 220 }
    );
    store.release(&order, key, &second).await.unwrap();
    assert_eq!(
        store.claim(&order, key, &third, 170, 230).await.unwrap(),
        Claim::Acquired
    );
    let result = serde_json::json!({"outcome": "awaiting_shipment"});
    store.complete(&order, key, &third, &result).await.unwrap();
    assert_eq!(
        store.claim(&order, key, &first, 500, 560).await.unwrap(),
        Claim::Done(result.clone())
    );
    // Done work stays done, whoever asks to give it back.
    assert!(matches!(
        store.release(&order, key, &third).await,
        Err(StoreError::LeaseLost)
    ));
    assert_eq!(
        store.claim(&order, key, &first, 600, 660).await.unwrap(),
        Claim::Done(result)
    );
    assert_eq!(
        store
            .claim(&order, "MAIL#buyer#order", &first, 100, 160)
            .await
            .unwrap(),
        Claim::Acquired
    );
}

async fn concurrent_claims_give_the_work_to_exactly_one<S: OrderStore + WorkClaims + 'static>(
    store: S,
) {
    let store = Arc::new(store);
    let order = OrderId::from_random([4; 10]);
    let tasks = (0..20).map(|_| {
        let (store, order) = (store.clone(), order.clone());
        tokio::spawn(async move {
            store
                .claim(&order, "MAIL#buyer#order", &Owner::new(), 100, 160)
                .await
                .unwrap()
        })
    });
    let claims = futures::future::join_all(tasks).await;
    assert_eq!(
        claims
            .iter()
            .filter(|c| *c.as_ref().unwrap() == Claim::Acquired)
            .count(),
        1
    );
}

async fn several_works_are_claimed_and_completed_together<S: OrderStore + WorkClaims + 'static>(
    store: S,
) {
    let order = OrderId::from_random([5; 10]);
    let keys: Vec<String> = [
        "MAIL#buyer#order",
        "MAIL#seller-copy#order",
        "MAIL#extra#order",
    ]
    .map(str::to_owned)
    .to_vec();
    let (mine, theirs) = (Owner::new(), Owner::new());
    // Nothing claimed yet: all at once.
    assert_eq!(
        store
            .claim_all(&order, &keys, &mine, 100, 160)
            .await
            .unwrap(),
        vec![Claim::Acquired; 3]
    );
    assert_eq!(
        store
            .claim_all(&order, &keys, &theirs, 120, 180)
            .await
            .unwrap(),
        vec![Claim::Busy { until: 160 }; 3]
    );
    let sent = serde_json::json!({ "sent_at": 130 });
    store
        .complete_all(
            &order,
            &mine,
            &[
                (keys[0].clone(), sent.clone()),
                (keys[1].clone(), sent.clone()),
            ],
        )
        .await
        .unwrap();
    store.release(&order, &keys[2], &mine).await.unwrap();
    // Some done, one free: each gets its own answer.
    assert_eq!(
        store
            .claim_all(&order, &keys, &theirs, 140, 200)
            .await
            .unwrap(),
        vec![
            Claim::Done(sent.clone()),
            Claim::Done(sent.clone()),
            Claim::Acquired
        ]
    );
    // Completing works of which one is not ours: ours are done, and we are told.
    let late = OrderId::from_random([7; 10]);
    let (a, b) = (keys[0].clone(), keys[1].clone());
    store.claim(&late, &a, &mine, 100, 160).await.unwrap();
    store.claim(&late, &b, &theirs, 100, 160).await.unwrap();
    assert!(matches!(
        store
            .complete_all(
                &late,
                &mine,
                &[(a.clone(), sent.clone()), (b.clone(), sent.clone())]
            )
            .await,
        Err(StoreError::LeaseLost)
    ));
    assert_eq!(
        store.claim(&late, &a, &theirs, 110, 170).await.unwrap(),
        Claim::Done(sent)
    );
    assert_eq!(
        store.claim(&late, &b, &mine, 110, 170).await.unwrap(),
        Claim::Busy { until: 160 }
    );

    // Concurrent batches of the same works: each work goes to exactly one of them.
    let store = Arc::new(store);
    let other = OrderId::from_random([6; 10]);
    let tasks = (0..10).map(|_| {
        let (store, other, keys) = (store.clone(), other.clone(), keys.clone());
        tokio::spawn(async move {
            store
                .claim_all(&other, &keys, &Owner::new(), 100, 160)
                .await
                .unwrap()
        })
    });
    let batches: Vec<Vec<Claim>> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    for i in 0..keys.len() {
        let winners = batches.iter().filter(|b| b[i] == Claim::Acquired).count();
        assert_eq!(winners, 1, "work {} went to {winners} claimants", keys[i]);
    }
}

async fn revoked_licences_are_listed_once_each_in_order<S: OrderStore>(store: S) {
    assert!(store.revoked_licenses().await.unwrap().is_empty());
    let ids = ["ord_bbbbbbbbbbbbbbbbbbbb/1", "ord_aaaaaaaaaaaaaaaaaaaa/0"].map(String::from);
    store.revoke_licenses(&ids, 100).await.unwrap();
    store.revoke_licenses(&ids[..1], 200).await.unwrap();
    assert_eq!(
        store.revoked_licenses().await.unwrap(),
        vec![ids[1].clone(), ids[0].clone()]
    );
    assert!(store.is_license_revoked(&ids[0]).await.unwrap());
    assert!(!store
        .is_license_revoked("ord_cccccccccccccccccccc/0")
        .await
        .unwrap());
}

async fn a_download_link_counts_to_its_limit_and_stops_at_its_expiry<S: OrderStore>(store: S) {
    let token = DownloadToken::from_bytes([3; 16]).hash();
    let grant = DownloadGrant {
        order_id: OrderId::from_random([9; 10]),
        line: 2,
        sku: sku("guide"),
        expires_at: 1_000,
        max_downloads: 2,
    };
    assert_eq!(
        store.take_download(&token, 10).await.unwrap(),
        DownloadTake::Unknown
    );
    assert_eq!(store.downloads_used(&token).await.unwrap(), None);
    store.grant_download(&token, &grant).await.unwrap();
    assert_eq!(store.downloads_used(&token).await.unwrap(), Some(0));
    assert!(matches!(
        store.grant_download(&token, &grant).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store.take_download(&token, 999).await.unwrap(),
        DownloadTake::Counted {
            grant: grant.clone(),
            used: 1
        }
    );
    assert_eq!(
        store.take_download(&token, 1_000).await.unwrap(),
        DownloadTake::Expired
    );
    assert_eq!(
        store.take_download(&token, 10).await.unwrap(),
        DownloadTake::Counted {
            grant: grant.clone(),
            used: 2
        }
    );
    assert_eq!(
        store.take_download(&token, 10).await.unwrap(),
        DownloadTake::Exhausted
    );
    assert_eq!(store.downloads_used(&token).await.unwrap(), Some(2));
}

async fn concurrent_downloads_take_exactly_the_limit<S: OrderStore + Clone + 'static>(store: S) {
    let token = DownloadToken::from_bytes([4; 16]).hash();
    let grant = DownloadGrant {
        order_id: OrderId::from_random([8; 10]),
        line: 0,
        sku: sku("guide"),
        expires_at: 1_000,
        max_downloads: 5,
    };
    store.grant_download(&token, &grant).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (store, token) = (store.clone(), token.clone());
            tokio::spawn(async move { store.take_download(&token, 10).await.unwrap() })
        })
        .collect();
    let mut counted = Vec::new();
    for task in tasks {
        if let DownloadTake::Counted { used, .. } = task.await.unwrap() {
            counted.push(used);
        }
    }
    counted.sort_unstable();
    assert_eq!(counted, vec![1, 2, 3, 4, 5]);
}

async fn embedded() -> EmbeddedStore {
    EmbeddedStore::in_memory()
}

async fn dynamodb() -> DynamoStore {
    let config = tests::moto::sdk_config(&tests::moto::moto().url).await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = tests::moto::unique("conformance");
    create_table(&client, &table).await.unwrap();
    DynamoStore::new(client, table)
}

macro_rules! conformance {
    ($adapter:ident: $($case:ident),* $(,)?) => {
        mod $adapter {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(super::$adapter().await).await;
                }
            )*
        }
    };
}

macro_rules! every_adapter {
    ($($case:ident),* $(,)?) => {
        conformance!(embedded: $($case),*);
        conformance!(dynamodb: $($case),*);
    };
}

every_adapter!(
    an_order_reads_back_by_id_and_by_token,
    fifty_concurrent_reservations_for_five_units_let_exactly_five_through,
    a_refused_order_leaves_nothing_behind,
    an_idempotency_key_places_one_order,
    saving_an_order_is_conditional_on_its_version,
    releasing_an_order_returns_its_stock_once,
    held_units_count_until_their_order_is_paid_or_gives_them_back,
    a_late_payment_takes_its_stock_again_only_while_there_is_some,
    orders_with_timed_work_are_found_by_when_it_is_due,
    payment_events_are_kept_with_the_order_by_its_conditional_write,
    once_only_work_is_claimed_leased_completed_and_released,
    unfinished_work_is_what_nobody_holds_or_finished,
    unsubscribed_addresses_are_kept_by_digest_once,
    concurrent_claims_give_the_work_to_exactly_one,
    several_works_are_claimed_and_completed_together,
    revoked_licences_are_listed_once_each_in_order,
    a_download_link_counts_to_its_limit_and_stops_at_its_expiry,
    concurrent_downloads_take_exactly_the_limit,
);
