//! Once-only work claims on DynamoDB: an order's claims live in one item (`ORDER#<id>` /
//! `WORK`), one map attribute per work with its lease, owner and, once done, its result.

use super::{
    condition_failed, corrupt, json, key, n, order_key, s, unavailable, written, DynamoStore,
    WORKS_PER_UPDATE, WORK_SK,
};
use crate::domain::OrderId;
use crate::ports::{Claim, Owner, StoreError, WorkClaims};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

impl DynamoStore {
    /// Takes every work in `works` of the order, if each is free to take (never claimed, or
    /// not done and its lease run out), in one conditional update of the order's work item;
    /// says whether it took them.
    async fn take_works(
        &self,
        order: &OrderId,
        works: &[String],
        owner: &Owner,
        now: i64,
        lease_until: i64,
    ) -> Result<bool, StoreError> {
        let lease = HashMap::from([
            ("done".to_owned(), AttributeValue::Bool(false)),
            ("lease_until".to_owned(), n(lease_until)),
            ("owner".to_owned(), s(owner.as_str())),
        ]);
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(order_key(order), WORK_SK)))
            .expression_attribute_values(":lease", AttributeValue::M(lease))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":now", n(now));
        let (mut sets, mut free) = (Vec::new(), Vec::new());
        for (i, work) in works.iter().enumerate() {
            sets.push(format!("#w{i} = :lease"));
            free.push(format!(
                "(attribute_not_exists(#w{i}) OR (#w{i}.done = :false AND #w{i}.lease_until <= :now))"
            ));
            update = update.expression_attribute_names(format!("#w{i}"), work);
        }
        let result = update
            .update_expression(format!("SET {}", sets.join(", ")))
            .condition_expression(free.join(" AND "))
            .send()
            .await;
        written(result)
    }

    /// Marks `owner`'s works done in one conditional update: all of them, or (when any is
    /// no longer `owner`'s) none, answering [`StoreError::LeaseLost`].
    async fn complete_chunk(
        &self,
        order: &OrderId,
        owner: &Owner,
        chunk: &[(String, serde_json::Value)],
    ) -> Result<(), StoreError> {
        if chunk.is_empty() {
            return Ok(());
        }
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(order_key(order), WORK_SK)))
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", s(owner.as_str()))
            .expression_attribute_values(":false", AttributeValue::Bool(false));
        let (mut sets, mut ours) = (Vec::with_capacity(chunk.len()), Vec::new());
        for (i, (work, result)) in chunk.iter().enumerate() {
            sets.push(format!("#w{i} = :d{i}"));
            ours.push(format!("(#w{i}.#owner = :owner AND #w{i}.done = :false)"));
            let entry = HashMap::from([
                ("done".to_owned(), AttributeValue::Bool(true)),
                ("lease_until".to_owned(), n(0)),
                ("result".to_owned(), json(result)),
                ("owner".to_owned(), s(owner.as_str())),
            ]);
            update = update
                .expression_attribute_names(format!("#w{i}"), work)
                .expression_attribute_values(format!(":d{i}"), AttributeValue::M(entry));
        }
        let result = update
            .update_expression(format!("SET {}", sets.join(", ")))
            .condition_expression(ours.join(" AND "))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Err(StoreError::LeaseLost),
            Err(e) => Err(unavailable(e)),
        }
    }
}

impl WorkClaims for DynamoStore {
    async fn unfinished(
        &self,
        order: &OrderId,
        works: &[String],
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        let item = self.get(order_key(order), WORK_SK).await?;
        let number = |entry: &HashMap<String, AttributeValue>, name: &str| {
            entry
                .get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
        };
        Ok(works
            .iter()
            .filter(
                |work| match item.as_ref().and_then(|i| i.get(work.as_str())) {
                    Some(AttributeValue::M(entry)) => {
                        let done = entry.get("done").and_then(|v| v.as_bool().ok()) == Some(&true);
                        !done && number(entry, "lease_until").unwrap_or(0) <= now
                    }
                    _ => true,
                },
            )
            .cloned()
            .collect())
    }

    async fn claim(
        &self,
        order: &OrderId,
        work: &str,
        owner: &Owner,
        now: i64,
        lease_until: i64,
    ) -> Result<Claim, StoreError> {
        if self
            .take_works(order, &[work.to_owned()], owner, now, lease_until)
            .await?
        {
            return Ok(Claim::Acquired);
        }
        let item = self.get(order_key(order), WORK_SK).await?;
        let Some(AttributeValue::M(entry)) = item.as_ref().and_then(|i| i.get(work)) else {
            // Given back in between: a later try will take it.
            return Ok(Claim::Busy { until: now });
        };
        if entry.get("done").and_then(|v| v.as_bool().ok()) != Some(&true) {
            let until = entry
                .get("lease_until")
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(lease_until);
            return Ok(Claim::Busy { until });
        }
        let result = entry
            .get("result")
            .and_then(|v| v.as_s().ok())
            .map_or("null", String::as_str);
        Ok(Claim::Done(serde_json::from_str(result).map_err(corrupt)?))
    }

    async fn claim_all(
        &self,
        order: &OrderId,
        works: &[String],
        owner: &Owner,
        now: i64,
        lease_until: i64,
    ) -> Result<Vec<Claim>, StoreError> {
        // All at once in one conditional update (the common case: nothing claimed yet);
        // should any be taken or done, one by one to learn which.
        if works.len() > 1
            && works.len() <= WORKS_PER_UPDATE
            && self
                .take_works(order, works, owner, now, lease_until)
                .await?
        {
            return Ok(vec![Claim::Acquired; works.len()]);
        }
        let mut claims = Vec::with_capacity(works.len());
        for work in works {
            claims.push(self.claim(order, work, owner, now, lease_until).await?);
        }
        Ok(claims)
    }

    async fn complete_all(
        &self,
        order: &OrderId,
        owner: &Owner,
        done: &[(String, serde_json::Value)],
    ) -> Result<(), StoreError> {
        let mut lost = false;
        for chunk in done.chunks(WORKS_PER_UPDATE) {
            match self.complete_chunk(order, owner, chunk).await {
                Ok(()) => {}
                // Some work of the chunk is no longer ours: complete the rest one by one.
                Err(StoreError::LeaseLost) => {
                    for one in chunk {
                        match self
                            .complete_chunk(order, owner, std::slice::from_ref(one))
                            .await
                        {
                            Ok(()) => {}
                            Err(StoreError::LeaseLost) => lost = true,
                            Err(e) => return Err(e),
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        if lost {
            Err(StoreError::LeaseLost)
        } else {
            Ok(())
        }
    }

    async fn complete(
        &self,
        order: &OrderId,
        work: &str,
        owner: &Owner,
        result: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.complete_chunk(order, owner, &[(work.to_owned(), result.clone())])
            .await
    }

    async fn release(&self, order: &OrderId, work: &str, owner: &Owner) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(order_key(order), WORK_SK)))
            .update_expression("REMOVE #w")
            .condition_expression("#w.done = :false AND #w.#owner = :owner")
            .expression_attribute_names("#w", work)
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":owner", s(owner.as_str()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Done, gone, or another worker's now: not ours to give back.
            Err(e) if condition_failed(&e) => Err(StoreError::LeaseLost),
            Err(e) => Err(unavailable(e)),
        }
    }
}
