//! Queued work (`docs/contract.md` §6) over `strata_batches`.
//!
//! - **Enqueue** increments the store's counter in `strata_stores` (its row lock orders the
//!   enqueues of one store, so `enqueue_seq` follows commit order and a source key is checked
//!   after the previous enqueue committed), inserts the batch and sends a `NOTIFY` that is
//!   delivered when the transaction commits.
//! - **Claim** locks the first candidate with `FOR UPDATE SKIP LOCKED`: a claimer never waits
//!   for another one, it passes over the rows another transaction holds at that instant. A
//!   `Join` head is extended over the candidates that follow it *as they are committed* (not
//!   skipping any), and only as far as those rows can be locked without waiting: a claim is
//!   always one contiguous group, claimed whole or not at all. Each claimed row's fencing
//!   counter is incremented; claim id and lease token are random UUIDs minted by the server.
//! - **Renew**, **abandon** and **cancel** are conditional updates on `(claim_id,
//!   lease_token)`: ownership is by identity; the clock only decides whether a hold is live.
//!
//! "Now" is the database clock (or the injected one) for every comparison.

use serde::Serialize;
use strata_core::*;
use tokio_postgres::Row;

use crate::codec::{self, RowReader, ordered, saturating};
use crate::error::Phase;
use crate::sql::{self, Step, Tx};
use crate::store::PostgresStore;

const BATCH_KEY: &[&str] = &["store_id", "session_id", "batch_id"];

const LIST: &str = "SELECT store_id, session_id, enqueue_seq, batch_id, source_key,
        delivery_policy, slot_policy, merge_key, merge_group, available_at_ms, enqueued_at_ms,
        payloads
    FROM strata_batches WHERE store_id = $1 AND session_id = $2 ORDER BY enqueue_seq";

const LIST_PENDING: &str = "SELECT store_id, session_id, enqueue_seq, batch_id, source_key,
        delivery_policy, slot_policy, merge_key, merge_group, available_at_ms, enqueued_at_ms,
        payloads
    FROM strata_batches
    WHERE store_id = $1 AND session_id = $2
      AND (expires_at_ms IS NULL OR expires_at_ms <= strata_now_ms($3))
    ORDER BY enqueue_seq";

const NEXT_SEQ: &str = "UPDATE strata_stores SET last_enqueue_seq = last_enqueue_seq + 1
    WHERE store_id = $1 RETURNING last_enqueue_seq, strata_now_ms($2) AS now_ms";

const BY_SOURCE_KEY: &str = "SELECT store_id, session_id, enqueue_seq, batch_id, source_key,
        delivery_policy, slot_policy, merge_key, merge_group, available_at_ms, enqueued_at_ms,
        payloads
    FROM strata_batches WHERE store_id = $1 AND session_id = $2 AND source_key = $3";

const INSERT_BATCH: &str = "INSERT INTO strata_batches (store_id, session_id, enqueue_seq,
        batch_id, source_key, delivery_policy, slot_policy, merge_key, merge_group,
        available_at_ms, enqueued_at_ms, payloads)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

const NOTIFY: &str = "SELECT pg_notify($1, $2)";

/// The first claimable batch, locked unless another transaction holds it.
const LOCK_HEAD_CANDIDATE: &str = "SELECT store_id, session_id, enqueue_seq, batch_id,
        source_key, delivery_policy, slot_policy, merge_key, merge_group, available_at_ms,
        enqueued_at_ms, payloads
    FROM strata_batches
    WHERE store_id = $1 AND session_id = $2 AND available_at_ms <= strata_now_ms($3)
      AND (expires_at_ms IS NULL OR expires_at_ms <= strata_now_ms($3))
    ORDER BY enqueue_seq LIMIT 1
    FOR UPDATE SKIP LOCKED";

/// The committed candidates after the head, in order (not locked).
const FOLLOWING_CANDIDATES: &str = "SELECT enqueue_seq, batch_id, delivery_policy, slot_policy,
        merge_key, merge_group
    FROM strata_batches
    WHERE store_id = $1 AND session_id = $2 AND enqueue_seq > $3
      AND available_at_ms <= strata_now_ms($4)
      AND (expires_at_ms IS NULL OR expires_at_ms <= strata_now_ms($4))
    ORDER BY enqueue_seq LIMIT $5";

/// Locks those of the given candidates no other transaction holds.
const LOCK_CANDIDATES: &str = "SELECT enqueue_seq FROM strata_batches
    WHERE store_id = $1 AND session_id = $2 AND enqueue_seq = ANY($3)
      AND available_at_ms <= strata_now_ms($4)
      AND (expires_at_ms IS NULL OR expires_at_ms <= strata_now_ms($4))
    FOR UPDATE SKIP LOCKED";

/// Holds the locked group under a new claim (ids minted once, in a materialized CTE, so that
/// every row gets the same).
const HOLD: &str = "WITH minted AS MATERIALIZED (
        SELECT 'claim-' || gen_random_uuid() AS claim_id,
               'lease-' || gen_random_uuid() AS lease_token
    )
    UPDATE strata_batches SET fencing_counter = fencing_counter + 1,
        claim_id = minted.claim_id, lease_token = minted.lease_token, owner_id = $4,
        claimed_at_ms = strata_now_ms($5),
        expires_at_ms = LEAST(strata_now_ms($5)::numeric + $6::bigint, 9223372036854775807)::bigint
    FROM minted
    WHERE store_id = $1 AND session_id = $2 AND enqueue_seq = ANY($3)
    RETURNING strata_batches.store_id, session_id, enqueue_seq, batch_id, source_key,
        delivery_policy, slot_policy, merge_key, merge_group, available_at_ms, enqueued_at_ms,
        payloads, fencing_counter, strata_batches.claim_id, strata_batches.lease_token,
        claimed_at_ms, expires_at_ms";

const RENEW: &str = "UPDATE strata_batches
    SET expires_at_ms = LEAST(strata_now_ms($6)::numeric + $7::bigint, 9223372036854775807)::bigint
    WHERE store_id = $1 AND session_id = $2 AND batch_id = ANY($3) AND claim_id = $4
      AND lease_token = $5
    RETURNING store_id, session_id, batch_id, expires_at_ms";

const RELEASE: &str = "UPDATE strata_batches SET claim_id = NULL, lease_token = NULL,
        owner_id = NULL, claimed_at_ms = NULL, expires_at_ms = NULL
    WHERE store_id = $1 AND session_id = $2 AND batch_id = ANY($3) AND claim_id = $4
      AND lease_token = $5";

const CANCEL: &str = "DELETE FROM strata_batches
    WHERE store_id = $1 AND session_id = $2 AND batch_id = $3
      AND (expires_at_ms IS NULL OR expires_at_ms <= strata_now_ms($4))
    RETURNING store_id, session_id, enqueue_seq, batch_id, source_key, delivery_policy,
        slot_policy, merge_key, merge_group, available_at_ms, enqueued_at_ms, payloads";

/// What a `NOTIFY` on the queue channel carries.
#[derive(Serialize)]
struct Enqueued<'a> {
    store_id: &'a str,
    session_id: &'a str,
}

fn batches(rows: &[Row]) -> Result<Vec<QueuedWorkBatch>, StoreError> {
    rows.iter().map(|row| RowReader::new(row, "strata_batches", BATCH_KEY).batch()).collect()
}

/// The join rule's view of a candidate: slot, delivery and merge key columns.
fn join_key(row: &RowReader<'_>) -> Result<(String, String, String, Option<String>), StoreError> {
    Ok((
        row.get("slot_policy")?,
        row.get("delivery_policy")?,
        row.get("merge_key")?,
        row.get("merge_group")?,
    ))
}

impl PostgresStore {
    /// `list_queued_work` (`pending_only: false`) and `list_pending_queued_work`.
    pub(crate) async fn list_batches(
        &self,
        session_id: &str,
        pending_only: bool,
    ) -> Result<Vec<QueuedWorkBatch>, StoreError> {
        if !self.shared.storable(session_id) {
            return Ok(Vec::new());
        }
        let store_id = &*self.store_id;
        let now = self.shared.now_param();
        let client = self.shared.client().await?;
        let rows = if pending_only {
            sql::query(&client, LIST_PENDING, vec![&store_id, &session_id, &now], Phase::Read)
                .await?
        } else {
            sql::query(&client, LIST, vec![&store_id, &session_id], Phase::Read).await?
        };
        batches(&rows)
    }

    pub(crate) async fn enqueue(
        &self,
        draft: &QueuedWorkBatchDraft,
    ) -> Result<QueuedWorkBatch, StoreError> {
        let mut transaction = Tx::write(self.shared.client().await?);
        let batch = self.enqueue_in(&mut transaction, draft).await;
        transaction.finish().await;
        batch
    }

    async fn enqueue_in(
        &self,
        transaction: &mut Tx,
        draft: &QueuedWorkBatchDraft,
    ) -> Result<QueuedWorkBatch, StoreError> {
        self.shared.check_id("session id", &draft.session_id)?;
        if let Some(key) = &draft.source_key
            && !self.shared.storable(key)
        {
            return Err(StoreError::InvalidInput(format!(
                "source key is over {} bytes or contains NUL",
                self.shared.limits.max_id_bytes
            )));
        }
        let available_at = ordered("available_at_ms", draft.available_at_ms)?;
        self.check_sizes("enqueue", draft.payloads.iter().map(Bytes::len))?;
        let store_id = &*self.store_id;
        let session_id = draft.session_id.as_str();
        let now = self.shared.now_param();

        let mut steps = vec![Step::new(NEXT_SEQ, vec![&store_id, &now])];
        if let Some(key) = &draft.source_key {
            steps.push(Step::new(BY_SOURCE_KEY, vec![&store_id, &session_id, key]));
        }
        let results = transaction.run(&steps).await?;
        let Some(counter) = results[0].first() else { return Err(self.deleted()) };
        if let Some(existing) = results.get(1).and_then(|rows| rows.first()) {
            // The key's batch exists: return it; the dropped transaction undoes the increment.
            return RowReader::new(existing, "strata_batches", BATCH_KEY).batch();
        }
        let counter = RowReader::new(counter, "strata_stores", &["store_id"]);
        let enqueue_seq = counter.ordered_u64("last_enqueue_seq")?;
        let enqueued_at_ms = counter.ordered_u64("now_ms")?;
        let seq_param = saturating(enqueue_seq);
        let now_param = saturating(enqueued_at_ms);
        let batch_id = format!("batch-{enqueue_seq}");
        let (merge_key, merge_group) = codec::merge_columns(&draft.merge_key);
        let payloads: Vec<&[u8]> = draft.payloads.iter().map(|payload| &payload[..]).collect();
        let delivery = codec::delivery_name(draft.delivery_policy);
        let slot = codec::slot_name(draft.slot_policy);
        let channel = self.shared.channel();
        let notice = serde_json::to_string(&Enqueued { store_id, session_id })
            .map_err(|error| StoreError::Backend(format!("encoding a notification: {error}")))?;
        let steps = [
            Step::new(
                INSERT_BATCH,
                vec![
                    &store_id,
                    &session_id,
                    &seq_param,
                    &batch_id,
                    &draft.source_key,
                    &delivery,
                    &slot,
                    &merge_key,
                    &merge_group,
                    &available_at,
                    &now_param,
                    &payloads,
                ],
            ),
            Step::new(NOTIFY, vec![&channel, &notice]),
        ];
        transaction.commit(&steps).await?;
        let items = codec::items(&batch_id, draft.payloads.iter().cloned());
        Ok(QueuedWorkBatch {
            batch_id,
            session_id: draft.session_id.clone(),
            enqueue_seq,
            source_key: draft.source_key.clone(),
            delivery_policy: draft.delivery_policy,
            slot_policy: draft.slot_policy,
            merge_key: draft.merge_key.clone(),
            available_at_ms: draft.available_at_ms,
            enqueued_at_ms,
            items,
        })
    }

    /// `claim_ready_queued_work` (`exact: None`) and `claim_ready_queued_work_by_batch_ids`
    /// (`exact: Some(ids)`, with `max_batches = ids.len()`): the group is claimed only if it
    /// is exactly those ids, in order.
    pub(crate) async fn claim(
        &self,
        session_id: &str,
        owner_id: &str,
        boundary: QueuedWorkClaimBoundary,
        lease_ttl_ms: u64,
        max_batches: usize,
        exact: Option<&[String]>,
    ) -> Result<Option<QueuedWorkClaim>, StoreError> {
        let mut transaction = Tx::write(self.shared.client().await?);
        let claim = self
            .claim_in(
                &mut transaction,
                session_id,
                owner_id,
                boundary,
                lease_ttl_ms,
                max_batches,
                exact,
            )
            .await;
        transaction.finish().await;
        claim
    }

    #[allow(clippy::too_many_arguments)]
    async fn claim_in(
        &self,
        transaction: &mut Tx,
        session_id: &str,
        owner_id: &str,
        boundary: QueuedWorkClaimBoundary,
        lease_ttl_ms: u64,
        max_batches: usize,
        exact: Option<&[String]>,
    ) -> Result<Option<QueuedWorkClaim>, StoreError> {
        if !self.shared.storable(owner_id) {
            return Err(StoreError::InvalidInput(format!(
                "owner id is over {} bytes or contains NUL",
                self.shared.limits.max_id_bytes
            )));
        }
        let unmatchable = exact.is_some_and(|ids| ids.iter().any(|id| !self.shared.storable(id)));
        if max_batches == 0 || unmatchable || !self.shared.storable(session_id) {
            return Ok(None);
        }
        let store_id = &*self.store_id;
        let now = self.shared.now_param();
        let ttl = saturating(lease_ttl_ms);

        let heads = transaction
            .run(&[Step::new(LOCK_HEAD_CANDIDATE, vec![&store_id, &session_id, &now])])
            .await?;
        let Some(head) = heads[0].first() else { return Ok(None) };
        let head = RowReader::new(head, "strata_batches", BATCH_KEY);
        let head_batch = head.batch()?;
        if boundary == QueuedWorkClaimBoundary::ActiveTurnCheckpoint
            && head_batch.delivery_policy != DeliveryPolicy::EarliestSafeBoundary
        {
            return Ok(None);
        }
        let mut group = vec![(saturating(head_batch.enqueue_seq), head_batch.batch_id.clone())];
        if head_batch.slot_policy == SlotPolicy::Join && max_batches > 1 {
            group
                .extend(self.joining(transaction, session_id, &head, &now, max_batches - 1).await?);
        }
        if let Some(ids) = exact
            && !group.iter().map(|(_, batch_id)| batch_id).eq(ids.iter())
        {
            return Ok(None);
        }
        let seqs: Vec<i64> = group.iter().map(|(seq, _)| *seq).collect();
        let mut held = transaction
            .commit(&[Step::new(HOLD, vec![&store_id, &session_id, &seqs, &owner_id, &now, &ttl])])
            .await?
            .pop()
            .unwrap_or_default();
        held.sort_by_key(|row| row.get::<_, i64>("enqueue_seq"));
        let first = held
            .first()
            .ok_or_else(|| StoreError::Backend("a locked claim group was not updated".into()))?;
        let first = RowReader::new(first, "strata_batches", BATCH_KEY);
        Ok(Some(QueuedWorkClaim {
            session_id: session_id.to_owned(),
            claim_id: first.get("claim_id")?,
            owner_id: owner_id.to_owned(),
            lease_token: first.get("lease_token")?,
            fencing_token: first.ordered_u64("fencing_counter")?,
            claimed_at_epoch_ms: first.ordered_u64("claimed_at_ms")?,
            expires_at_epoch_ms: first.ordered_u64("expires_at_ms")?,
            batches: batches(&held)?,
        }))
    }

    /// The candidates that join a `Join` head: the committed candidates after it, in order,
    /// while they join (same slot rule, delivery policy and merge key) and up to `limit`, cut
    /// at the first one another transaction holds.
    async fn joining(
        &self,
        transaction: &mut Tx,
        session_id: &str,
        head: &RowReader<'_>,
        now: &Option<i64>,
        limit: usize,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let store_id = &*self.store_id;
        let head_seq: i64 = head.get("enqueue_seq")?;
        let (_, delivery, merge_key, merge_group) = join_key(head)?;
        let limit = saturating(limit as u64);
        let following = transaction
            .run(&[Step::new(
                FOLLOWING_CANDIDATES,
                vec![&store_id, &session_id, &head_seq, now, &limit],
            )])
            .await?
            .pop()
            .unwrap_or_default();
        let mut run = Vec::new();
        for row in &following {
            let row =
                RowReader::new(row, "strata_batches", &["store_id", "session_id", "batch_id"]);
            if join_key(&row)?
                != ("join".to_owned(), delivery.clone(), merge_key.clone(), merge_group.clone())
            {
                break;
            }
            run.push((row.get::<i64>("enqueue_seq")?, row.get::<String>("batch_id")?));
        }
        if run.is_empty() {
            return Ok(run);
        }
        let seqs: Vec<i64> = run.iter().map(|(seq, _)| *seq).collect();
        let locked: std::collections::HashSet<i64> = transaction
            .run(&[Step::new(LOCK_CANDIDATES, vec![&store_id, &session_id, &seqs, now])])
            .await?
            .pop()
            .unwrap_or_default()
            .iter()
            .map(|row| row.get::<_, i64>(0))
            .collect();
        Ok(run.into_iter().take_while(|(seq, _)| locked.contains(seq)).collect())
    }

    /// Whether every id of a claim could have been stored (others cannot hold anything).
    fn claim_storable(&self, claim: &QueuedWorkClaim) -> bool {
        [&claim.session_id, &claim.claim_id, &claim.lease_token]
            .into_iter()
            .chain(claim.batches.iter().map(|batch| &batch.batch_id))
            .all(|id| self.shared.storable(id))
    }

    pub(crate) async fn renew(
        &self,
        claim: &QueuedWorkClaim,
        lease_ttl_ms: u64,
    ) -> Result<QueuedWorkClaim, StoreError> {
        let expired = || StoreError::QueuedWorkClaimExpired {
            session_id: claim.session_id.clone(),
            claim_id: claim.claim_id.clone(),
        };
        if claim.batches.is_empty() || !self.claim_storable(claim) {
            return Err(expired());
        }
        let store_id = &*self.store_id;
        let mut ids: Vec<&str> =
            claim.batches.iter().map(|batch| batch.batch_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let now = self.shared.now_param();
        let ttl = saturating(lease_ttl_ms);
        let mut transaction = Tx::write(self.shared.client().await?);
        let renewing = Step::new(
            RENEW,
            vec![
                &store_id,
                &claim.session_id,
                &ids,
                &claim.claim_id,
                &claim.lease_token,
                &now,
                &ttl,
            ],
        );
        let renewed = match transaction.run(&[renewing]).await {
            Ok(mut results) if results[0].len() == ids.len() => {
                transaction.commit(&[]).await?;
                results.pop().unwrap_or_default()
            }
            Ok(_) => {
                // Some batch is no longer held: rolling back undoes the extension.
                transaction.finish().await;
                return Err(expired());
            }
            Err(error) => return Err(error),
        };
        let expires_at = renewed
            .first()
            .map(|row| {
                RowReader::new(row, "strata_batches", &["store_id", "session_id", "batch_id"])
                    .ordered_u64("expires_at_ms")
            })
            .transpose()?
            .unwrap_or(claim.expires_at_epoch_ms);
        Ok(QueuedWorkClaim { expires_at_epoch_ms: expires_at, ..claim.clone() })
    }

    pub(crate) async fn abandon(&self, claim: &QueuedWorkClaim) -> Result<(), StoreError> {
        if claim.batches.is_empty() || !self.claim_storable(claim) {
            return Ok(());
        }
        let store_id = &*self.store_id;
        let ids: Vec<&str> = claim.batches.iter().map(|batch| batch.batch_id.as_str()).collect();
        let client = self.shared.client().await?;
        sql::query(
            &client,
            RELEASE,
            vec![&store_id, &claim.session_id, &ids, &claim.claim_id, &claim.lease_token],
            Phase::Commit,
        )
        .await?;
        Ok(())
    }

    pub(crate) async fn cancel(
        &self,
        session_id: &str,
        batch_id: &str,
    ) -> Result<Option<QueuedWorkBatch>, StoreError> {
        if !self.shared.storable(session_id) || !self.shared.storable(batch_id) {
            return Ok(None);
        }
        let store_id = &*self.store_id;
        let now = self.shared.now_param();
        let client = self.shared.client().await?;
        let rows = sql::query(
            &client,
            CANCEL,
            vec![&store_id, &session_id, &batch_id, &now],
            Phase::Commit,
        )
        .await?;
        Ok(batches(&rows)?.pop())
    }
}
