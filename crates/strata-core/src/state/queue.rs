//! Queued work (`docs/contract.md` §6): stored batches with their fencing counters and claim holds,
//! the pure claim-selection logic, and the planners and mutations of enqueue, claim, renew,
//! abandon, cancel and completion.
//!
//! Ownership is by identity: a batch is held by the `(claim_id, lease_token)` recorded in its
//! [`ClaimHold`], whether or not the lease has expired; expiry only makes the batch claimable
//! by someone else (and cancellable). Every planner here reads the state and returns a
//! [`QueueMutation`]; [`QueueState::apply`] is the only place that changes it.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::{Mutation, Planned};
use crate::error::StoreError;
use crate::types::*;

/// Who holds a batch, and until when the lease is live.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimHold {
    /// The claim holding the batch.
    pub claim_id: String,
    /// The claim's lease token (the holder's proof of identity).
    pub lease_token: String,
    /// Who claimed.
    pub owner_id: String,
    /// Claim time (store clock, epoch ms).
    pub claimed_at_ms: u64,
    /// Lease expiry (store clock, epoch ms); the hold is live while `expires_at_ms > now`.
    pub expires_at_ms: u64,
}

impl ClaimHold {
    /// True while the lease has not expired at `now_ms`.
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.expires_at_ms > now_ms
    }

    fn is_held_by(&self, claim_id: &str, lease_token: &str) -> bool {
        self.claim_id == claim_id && self.lease_token == lease_token
    }
}

/// A stored batch plus its queue bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBatch {
    /// The batch as returned to callers.
    pub batch: QueuedWorkBatch,
    /// Incremented by one on every claim of this batch; never reset.
    pub fencing_counter: u64,
    /// The claim holding it, if any (live or expired).
    pub hold: Option<ClaimHold>,
}

impl StoredBatch {
    fn is_live_claimed(&self, now_ms: u64) -> bool {
        self.hold.as_ref().is_some_and(|hold| hold.is_live(now_ms))
    }

    fn is_held_by(&self, claim_id: &str, lease_token: &str) -> bool {
        self.hold.as_ref().is_some_and(|hold| hold.is_held_by(claim_id, lease_token))
    }
}

/// One session's batches, ascending `enqueue_seq`, with an id index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct SessionQueue {
    batches: BTreeMap<u64, StoredBatch>,
    by_id: HashMap<String, u64>,
}

impl SessionQueue {
    fn get(&self, batch_id: &str) -> Option<&StoredBatch> {
        self.by_id.get(batch_id).and_then(|seq| self.batches.get(seq))
    }

    fn get_mut(&mut self, batch_id: &str) -> Option<&mut StoredBatch> {
        let seq = self.by_id.get(batch_id)?;
        self.batches.get_mut(seq)
    }
}

/// Every queued batch of a store (possibly of several sessions) and the counters that keep
/// sequence numbers and claim ids unique.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueState {
    sessions: BTreeMap<String, SessionQueue>,
    /// The last `enqueue_seq` handed out (never reused, also after deletes).
    last_enqueue_seq: u64,
    /// The number of claims made so far (mints claim ids and lease tokens).
    claim_counter: u64,
}

/// A change to the queue, resolved by a planner and applied by [`QueueState::apply`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueMutation {
    /// Store a new batch (its id, seq, items and enqueue time already minted).
    Enqueue(QueuedWorkBatch),
    /// Hold `batch_ids` under `hold`, bumping each batch's fencing counter; `claim_seq` is the
    /// claim's number (the store's claim counter after it).
    Claim {
        /// Session of the batches.
        session_id: String,
        /// Batches to hold, in order.
        batch_ids: Vec<String>,
        /// The new hold.
        hold: ClaimHold,
        /// The claim counter after this claim.
        claim_seq: u64,
    },
    /// Set the lease expiry of held batches.
    Renew {
        /// Session of the batches.
        session_id: String,
        /// Batches whose hold is extended.
        batch_ids: Vec<String>,
        /// The new expiry.
        expires_at_ms: u64,
    },
    /// Drop the hold of batches (abandon).
    Release {
        /// Session of the batches.
        session_id: String,
        /// Batches released.
        batch_ids: Vec<String>,
    },
    /// Delete batches (cancel).
    Remove {
        /// Session of the batches.
        session_id: String,
        /// Batches deleted.
        batch_ids: Vec<String>,
    },
}

fn planned<T>(mutation: Option<QueueMutation>, output: T) -> Planned<T> {
    Planned { mutation: mutation.map(Mutation::Queue), output }
}

fn claim_expired(session_id: &str, claim_id: &str) -> StoreError {
    StoreError::QueuedWorkClaimExpired {
        session_id: session_id.to_owned(),
        claim_id: claim_id.to_owned(),
    }
}

impl QueueState {
    fn session(&self, session_id: &str) -> Option<&SessionQueue> {
        self.sessions.get(session_id)
    }

    fn batches(&self, session_id: &str) -> impl Iterator<Item = &StoredBatch> {
        self.session(session_id).into_iter().flat_map(|queue| queue.batches.values())
    }

    /// The stored batch with this id in this session.
    pub fn batch(&self, session_id: &str, batch_id: &str) -> Option<&StoredBatch> {
        self.session(session_id)?.get(batch_id)
    }

    /// Every stored batch of every session, with its fencing counter and claim hold: by
    /// session id, then ascending `enqueue_seq` (for tools that inspect a store).
    pub fn stored_batches(&self) -> impl Iterator<Item = &StoredBatch> {
        self.sessions.values().flat_map(|queue| queue.batches.values())
    }

    /// Every batch of the session, claimed ones included, ascending `enqueue_seq`.
    pub fn list(&self, session_id: &str) -> Vec<QueuedWorkBatch> {
        self.batches(session_id).map(|stored| stored.batch.clone()).collect()
    }

    /// [`list`](Self::list) minus batches held by a live claim at `now_ms`.
    pub fn list_pending(&self, session_id: &str, now_ms: u64) -> Vec<QueuedWorkBatch> {
        self.batches(session_id)
            .filter(|stored| !stored.is_live_claimed(now_ms))
            .map(|stored| stored.batch.clone())
            .collect()
    }

    /// The pure claim-selection rule: the group a claim at `now_ms` would take, in order
    /// (empty when nothing is claimable).
    pub fn select_claimable(
        &self,
        session_id: &str,
        boundary: QueuedWorkClaimBoundary,
        max_batches: usize,
        now_ms: u64,
    ) -> Vec<&StoredBatch> {
        if max_batches == 0 {
            return Vec::new();
        }
        let mut candidates = self.batches(session_id).filter(|stored| {
            stored.batch.available_at_ms <= now_ms && !stored.is_live_claimed(now_ms)
        });
        let Some(head) = candidates.next() else {
            return Vec::new();
        };
        let head_batch = &head.batch;
        if boundary == QueuedWorkClaimBoundary::ActiveTurnCheckpoint
            && head_batch.delivery_policy != DeliveryPolicy::EarliestSafeBoundary
        {
            return Vec::new();
        }
        let mut group = vec![head];
        if head_batch.slot_policy == SlotPolicy::Join {
            group.extend(
                candidates
                    .take_while(|stored| {
                        stored.batch.slot_policy == SlotPolicy::Join
                            && stored.batch.delivery_policy == head_batch.delivery_policy
                            && stored.batch.merge_key == head_batch.merge_key
                    })
                    .take(max_batches - 1),
            );
        }
        group
    }

    /// Enqueue (§6): dedupe by `(session, source_key)` while that batch exists, else mint a
    /// new batch with the next sequence number.
    pub fn plan_enqueue(
        &self,
        draft: &QueuedWorkBatchDraft,
        now_ms: u64,
    ) -> Result<Planned<QueuedWorkBatch>, StoreError> {
        if draft.session_id.is_empty() {
            return Err(StoreError::InvalidInput("queued work needs a session id".into()));
        }
        if let Some(key) = &draft.source_key
            && let Some(existing) =
                self.batches(&draft.session_id).find(|s| s.batch.source_key.as_ref() == Some(key))
        {
            return Ok(planned(None, existing.batch.clone()));
        }
        let enqueue_seq = self.last_enqueue_seq + 1;
        let batch_id = format!("batch-{enqueue_seq}");
        let items = draft
            .payloads
            .iter()
            .enumerate()
            .map(|(index, payload)| QueuedWorkItem {
                item_id: format!("{batch_id}/{index}"),
                payload: payload.clone(),
            })
            .collect();
        let batch = QueuedWorkBatch {
            batch_id,
            session_id: draft.session_id.clone(),
            enqueue_seq,
            source_key: draft.source_key.clone(),
            delivery_policy: draft.delivery_policy,
            slot_policy: draft.slot_policy,
            merge_key: draft.merge_key.clone(),
            available_at_ms: draft.available_at_ms,
            enqueued_at_ms: now_ms,
            items,
        };
        Ok(planned(Some(QueueMutation::Enqueue(batch.clone())), batch))
    }

    /// Claim the next ready group (selection per [`select_claimable`](Self::select_claimable)).
    pub fn plan_claim(
        &self,
        session_id: &str,
        owner_id: &str,
        boundary: QueuedWorkClaimBoundary,
        lease_ttl_ms: u64,
        max_batches: usize,
        now_ms: u64,
    ) -> Planned<Option<QueuedWorkClaim>> {
        let group = self.select_claimable(session_id, boundary, max_batches, now_ms);
        self.claim_group(session_id, owner_id, lease_ttl_ms, &group, now_ms)
    }

    /// Claim exactly `batch_ids`, atomically: only when they are, in order, the group a claim
    /// of `batch_ids.len()` batches would take now; otherwise `None` and nothing changes.
    pub fn plan_claim_by_batch_ids(
        &self,
        session_id: &str,
        owner_id: &str,
        boundary: QueuedWorkClaimBoundary,
        lease_ttl_ms: u64,
        batch_ids: &[String],
        now_ms: u64,
    ) -> Planned<Option<QueuedWorkClaim>> {
        let group = self.select_claimable(session_id, boundary, batch_ids.len(), now_ms);
        if !group.iter().map(|stored| &stored.batch.batch_id).eq(batch_ids.iter()) {
            return planned(None, None);
        }
        self.claim_group(session_id, owner_id, lease_ttl_ms, &group, now_ms)
    }

    fn claim_group(
        &self,
        session_id: &str,
        owner_id: &str,
        lease_ttl_ms: u64,
        group: &[&StoredBatch],
        now_ms: u64,
    ) -> Planned<Option<QueuedWorkClaim>> {
        let Some(head) = group.first() else {
            return planned(None, None);
        };
        let claim_seq = self.claim_counter + 1;
        let hold = ClaimHold {
            claim_id: format!("claim-{claim_seq}"),
            lease_token: format!("lease-{claim_seq}-{now_ms}"),
            owner_id: owner_id.to_owned(),
            claimed_at_ms: now_ms,
            expires_at_ms: now_ms.saturating_add(lease_ttl_ms),
        };
        let claim = QueuedWorkClaim {
            session_id: session_id.to_owned(),
            claim_id: hold.claim_id.clone(),
            owner_id: hold.owner_id.clone(),
            lease_token: hold.lease_token.clone(),
            fencing_token: head.fencing_counter + 1,
            claimed_at_epoch_ms: hold.claimed_at_ms,
            expires_at_epoch_ms: hold.expires_at_ms,
            batches: group.iter().map(|stored| stored.batch.clone()).collect(),
        };
        let mutation = QueueMutation::Claim {
            session_id: session_id.to_owned(),
            batch_ids: claim.batch_ids(),
            hold,
            claim_seq,
        };
        planned(Some(mutation), Some(claim))
    }

    /// The ids of `claim`'s batches, if every one is still held under its identity; else
    /// `QueuedWorkClaimExpired` (also for a claim listing no batch).
    fn owned_batches(&self, claim: &QueuedWorkClaim) -> Result<Vec<String>, StoreError> {
        let owned = !claim.batches.is_empty()
            && claim.batches.iter().all(|batch| {
                self.batch(&claim.session_id, &batch.batch_id)
                    .is_some_and(|stored| stored.is_held_by(&claim.claim_id, &claim.lease_token))
            });
        if owned {
            Ok(claim.batch_ids())
        } else {
            Err(claim_expired(&claim.session_id, &claim.claim_id))
        }
    }

    /// Renew: extend every batch of the claim (all must still be held under its identity).
    pub fn plan_renew(
        &self,
        claim: &QueuedWorkClaim,
        lease_ttl_ms: u64,
        now_ms: u64,
    ) -> Result<Planned<QueuedWorkClaim>, StoreError> {
        let batch_ids = self.owned_batches(claim)?;
        let expires_at_ms = now_ms.saturating_add(lease_ttl_ms);
        let renewed = QueuedWorkClaim { expires_at_epoch_ms: expires_at_ms, ..claim.clone() };
        let mutation =
            QueueMutation::Renew { session_id: claim.session_id.clone(), batch_ids, expires_at_ms };
        Ok(planned(Some(mutation), renewed))
    }

    /// Abandon: release the claim's batches still held under its identity; never fails.
    pub fn plan_abandon(&self, claim: &QueuedWorkClaim) -> Planned<()> {
        let batch_ids: Vec<String> = claim
            .batches
            .iter()
            .filter(|batch| {
                self.batch(&claim.session_id, &batch.batch_id)
                    .is_some_and(|stored| stored.is_held_by(&claim.claim_id, &claim.lease_token))
            })
            .map(|batch| batch.batch_id.clone())
            .collect();
        let mutation = (!batch_ids.is_empty())
            .then(|| QueueMutation::Release { session_id: claim.session_id.clone(), batch_ids });
        planned(mutation, ())
    }

    /// Cancel: remove an unclaimed or expired-claim batch and return it; `None` if missing or
    /// live-claimed.
    pub fn plan_cancel(
        &self,
        session_id: &str,
        batch_id: &str,
        now_ms: u64,
    ) -> Planned<Option<QueuedWorkBatch>> {
        match self.batch(session_id, batch_id) {
            Some(stored) if !stored.is_live_claimed(now_ms) => {
                let mutation = QueueMutation::Remove {
                    session_id: session_id.to_owned(),
                    batch_ids: vec![batch_id.to_owned()],
                };
                planned(Some(mutation), Some(stored.batch.clone()))
            }
            _ => planned(None, None),
        }
    }

    /// Commit step 4: every completion is for `session_id`, every batch it lists is held under
    /// its identity, and it lists every batch held under that claim. Returns the batch ids to
    /// delete (deduplicated, in order), or `QueuedWorkClaimExpired` for the first failure.
    pub fn check_completions(
        &self,
        session_id: &str,
        completions: &[QueuedWorkCompletion],
    ) -> Result<Vec<String>, StoreError> {
        let mut completed = Vec::new();
        let mut seen = HashSet::new();
        for completion in completions {
            let expired = || claim_expired(&completion.session_id, &completion.claim_id);
            if completion.session_id != session_id || completion.batch_ids.is_empty() {
                return Err(expired());
            }
            let listed: HashSet<&str> = completion.batch_ids.iter().map(String::as_str).collect();
            let all_listed_held = listed.iter().all(|batch_id| {
                self.batch(session_id, batch_id).is_some_and(|stored| {
                    stored.is_held_by(&completion.claim_id, &completion.lease_token)
                })
            });
            let all_held_listed = self
                .batches(session_id)
                .filter(|stored| stored.is_held_by(&completion.claim_id, &completion.lease_token))
                .all(|stored| listed.contains(stored.batch.batch_id.as_str()));
            if !(all_listed_held && all_held_listed) {
                return Err(expired());
            }
            for batch_id in &completion.batch_ids {
                if seen.insert(batch_id.as_str()) {
                    completed.push(batch_id.clone());
                }
            }
        }
        Ok(completed)
    }

    /// Deletes batches (completion or cancel); unknown ids are skipped.
    pub(super) fn remove(&mut self, session_id: &str, batch_ids: &[String]) {
        let Some(queue) = self.sessions.get_mut(session_id) else {
            return;
        };
        for batch_id in batch_ids {
            if let Some(seq) = queue.by_id.remove(batch_id) {
                queue.batches.remove(&seq);
            }
        }
        if queue.batches.is_empty() {
            self.sessions.remove(session_id);
        }
    }

    fn for_each_batch(
        &mut self,
        session_id: &str,
        batch_ids: &[String],
        mut change: impl FnMut(&mut StoredBatch),
    ) {
        if let Some(queue) = self.sessions.get_mut(session_id) {
            for batch_id in batch_ids {
                if let Some(stored) = queue.get_mut(batch_id) {
                    change(stored);
                }
            }
        }
    }

    /// Applies one queue mutation: infallible and deterministic.
    pub fn apply(&mut self, mutation: &QueueMutation) {
        match mutation {
            QueueMutation::Enqueue(batch) => {
                self.last_enqueue_seq = self.last_enqueue_seq.max(batch.enqueue_seq);
                let queue = self.sessions.entry(batch.session_id.clone()).or_default();
                queue.by_id.insert(batch.batch_id.clone(), batch.enqueue_seq);
                queue.batches.insert(
                    batch.enqueue_seq,
                    StoredBatch { batch: batch.clone(), fencing_counter: 0, hold: None },
                );
            }
            QueueMutation::Claim { session_id, batch_ids, hold, claim_seq } => {
                self.claim_counter = self.claim_counter.max(*claim_seq);
                self.for_each_batch(session_id, batch_ids, |stored| {
                    stored.fencing_counter += 1;
                    stored.hold = Some(hold.clone());
                });
            }
            QueueMutation::Renew { session_id, batch_ids, expires_at_ms } => {
                self.for_each_batch(session_id, batch_ids, |stored| {
                    if let Some(hold) = &mut stored.hold {
                        hold.expires_at_ms = *expires_at_ms;
                    }
                });
            }
            QueueMutation::Release { session_id, batch_ids } => {
                self.for_each_batch(session_id, batch_ids, |stored| stored.hold = None);
            }
            QueueMutation::Remove { session_id, batch_ids } => self.remove(session_id, batch_ids),
        }
    }
}
