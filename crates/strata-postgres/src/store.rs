//! [`PostgresStore`]: one store's handle. Serves every request with SQL: reads in one
//! snapshot, writes in one transaction each (the commit in `commit.rs`, queued work in
//! `queue.rs`), metadata, the manifest and graph maintenance here.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use strata_core::*;
use tokio_postgres::Row;

use crate::codec::{self, FrameEntry, RowReader, ordered, saturating};
use crate::error::{Phase, corrupt};
use crate::factory::Shared;
use crate::sql::{self, Step, Tx};

/// A handle on one store (one session's durable state) in PostgreSQL. Cheap to clone; every
/// handle of one store, in this process or on another host, shares its state.
///
/// Made by [`PostgresStoreFactory::open_store`](crate::PostgresStoreFactory::open_store) or
/// [`create_store`](strata_core::SessionStoreFactory::create_store). Each call borrows a
/// pooled connection for its duration only, and does all its work when its future is polled.
#[derive(Clone)]
pub struct PostgresStore {
    pub(crate) shared: Arc<Shared>,
    pub(crate) store_id: Arc<str>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.shared.schema)
            .field("store_id", &self.store_id)
            .finish()
    }
}

/// The key columns naming a row in error messages, per table.
pub(crate) const NODE_KEY: &[&str] = &["store_id", "node_id"];
pub(crate) const HEAD_KEY: &[&str] = &["store_id"];

const LOAD_HEAD: &str = "SELECT store_id, session_id, revision, config, agent_frames,
        agent_frame_payloads, current_frame_id, leaf_node_id, live_node_count, checkpoint_ref,
        turn_state, tool_state_ref, plugin_snapshot_ref, plugin_snapshot_revision,
        execution_state_ref
    FROM strata_heads WHERE store_id = $1";

const LOAD_USAGE: &str = "SELECT source, model, input_tokens, output_tokens,
        cached_input_tokens, reasoning_tokens, store_id
    FROM strata_usage WHERE store_id = $1";

const LOAD_HEAD_BLOBS: &str = "SELECT b.store_id, b.blob_ref, b.bytes
    FROM strata_heads h
    JOIN strata_blobs b ON b.store_id = h.store_id
        AND b.blob_ref IN (h.tool_state_ref, h.plugin_snapshot_ref, h.execution_state_ref)
    WHERE h.store_id = $1";

const LOAD_FULL_GRAPH: &str = "SELECT store_id, node_id, parent_node_id, payload, timestamp_ms,
        frame_id, cause
    FROM strata_nodes WHERE store_id = $1 AND NOT tombstoned
    ORDER BY added_revision, ordinal";

/// The ancestry of a leaf (the given one, else the head's), root first, in one recursive
/// query. Each step enters a live node and takes its whole run segment when it is intact
/// (nodes `0..=i` of its run all live: one index range), else the node alone; it continues
/// from the parent of the segment's first node. The walk stops after `live_node_count` nodes:
/// a longer path is a cycle.
const LOAD_ACTIVE_PATH: &str = "WITH RECURSIVE walk(run_revision, run_ordinal, first_index,
        last_index, next_parent, step, walked) AS (
        SELECT x.run_revision, x.run_ordinal, segment.first_index, x.run_index,
               segment.next_parent, 1, x.run_index - segment.first_index + 1
        FROM strata_nodes x
        CROSS JOIN LATERAL strata_run_segment(x.store_id, x.run_revision, x.run_ordinal,
                                              x.run_index, x.parent_node_id) segment
        WHERE x.store_id = $1 AND NOT x.tombstoned
          AND x.node_id = COALESCE($2::text,
                                   (SELECT leaf_node_id FROM strata_heads WHERE store_id = $1))
      UNION ALL
        SELECT x.run_revision, x.run_ordinal, segment.first_index, x.run_index,
               segment.next_parent, walk.step + 1,
               walk.walked + x.run_index - segment.first_index + 1
        FROM walk
        JOIN strata_nodes x
          ON x.store_id = $1 AND x.node_id = walk.next_parent AND NOT x.tombstoned
        CROSS JOIN LATERAL strata_run_segment(x.store_id, x.run_revision, x.run_ordinal,
                                              x.run_index, x.parent_node_id) segment
        WHERE walk.walked <= (SELECT live_node_count FROM strata_heads WHERE store_id = $1)
    )
    SELECT n.store_id, n.node_id, n.parent_node_id, n.payload, n.timestamp_ms, n.frame_id,
           n.cause
    FROM walk
    JOIN strata_nodes n
      ON n.store_id = $1 AND n.run_revision = walk.run_revision
     AND n.run_ordinal = walk.run_ordinal
     AND n.run_index BETWEEN walk.first_index AND walk.last_index
    ORDER BY walk.step DESC, n.run_index";

/// The head's row, locked for the rest of the transaction: every graph write takes it first,
/// which serializes the writes of one store.
pub(crate) const LOCK_HEAD: &str = "SELECT store_id, session_id, revision, live_node_count,
        leaf_node_id, leaf_run_revision, leaf_run_ordinal, leaf_run_index,
        agent_frames, agent_frame_payloads, checkpoint_ref, turn_state, tool_state_ref,
        plugin_snapshot_ref, plugin_snapshot_revision, execution_state_ref
    FROM strata_heads WHERE store_id = $1 FOR UPDATE";

impl PostgresStore {
    pub(crate) fn new(shared: Arc<Shared>, store_id: &str) -> Self {
        Self { shared, store_id: Arc::from(store_id) }
    }

    /// The store's name (the session id, for handles a factory made).
    pub fn store_id(&self) -> &str {
        &self.store_id
    }

    /// The error for a write on a store whose rows were deleted (`delete_session`).
    pub(crate) fn deleted(&self) -> StoreError {
        StoreError::Backend(format!("store {:?} was deleted", &*self.store_id))
    }

    /// Dispatches one call.
    async fn call(&self, request: Request<'_>) -> Result<Response, StoreError> {
        Ok(match request {
            Request::LoadSession { scope } => {
                Response::Session(self.load_session(&scope).await?.map(Box::new))
            }
            Request::LoadNode { node_id } => Response::Node(self.load_node(node_id).await?),
            Request::CommitRuntimeState { commit } => {
                Response::Committed(self.commit(&commit).await?)
            }
            Request::SaveSessionMeta { meta } => {
                self.save_meta(&meta).await?;
                Response::Done
            }
            Request::LoadSessionMeta => Response::Meta(self.load_meta().await?),
            Request::TombstoneNodes { ids } => {
                self.tombstone(ids).await?;
                Response::Done
            }
            Request::Vacuum => Response::Vacuumed(self.vacuum().await?),
            Request::GcUnreachable => Response::Collected(self.gc().await?),
            Request::EnqueueQueuedWork { draft } => Response::Enqueued(self.enqueue(&draft).await?),
            Request::ClaimReadyQueuedWork {
                session_id,
                owner_id,
                boundary,
                lease_ttl_ms,
                max_batches,
            } => Response::Claim(
                self.claim(session_id, owner_id, boundary, lease_ttl_ms, max_batches, None).await?,
            ),
            Request::ClaimReadyQueuedWorkByBatchIds {
                session_id,
                owner_id,
                boundary,
                lease_ttl_ms,
                batch_ids,
            } => Response::Claim(
                self.claim(
                    session_id,
                    owner_id,
                    boundary,
                    lease_ttl_ms,
                    batch_ids.len(),
                    Some(batch_ids),
                )
                .await?,
            ),
            Request::RenewQueuedWorkClaim { claim, lease_ttl_ms } => {
                Response::Renewed(self.renew(claim, lease_ttl_ms).await?)
            }
            Request::AbandonQueuedWorkClaim { claim } => {
                self.abandon(claim).await?;
                Response::Done
            }
            Request::CancelQueuedWorkBatch { session_id, batch_id } => {
                Response::Cancelled(self.cancel(session_id, batch_id).await?)
            }
            Request::ListQueuedWork { session_id } => {
                Response::Batches(self.list_batches(session_id, false).await?)
            }
            Request::ListPendingQueuedWork { session_id } => {
                Response::Batches(self.list_batches(session_id, true).await?)
            }
            Request::RecordIntent { intent } => {
                self.record_intent(&intent).await?;
                Response::Done
            }
            Request::CommitRefs { session_id, attachment_ids } => {
                self.commit_refs(session_id, attachment_ids).await?;
                Response::Done
            }
            Request::ListUncommitted { older_than_ms } => {
                Response::Uncommitted(self.list_uncommitted(older_than_ms).await?)
            }
            Request::Forget { attachment_id } => {
                self.forget(attachment_id).await?;
                Response::Done
            }
        })
    }

    // ----- reads -------------------------------------------------------------------------

    /// `load_session`: head, ledger, checkpoint blobs and graph in one pipelined snapshot.
    async fn load_session(
        &self,
        scope: &SessionReadScope,
    ) -> Result<Option<PersistedSessionRead>, StoreError> {
        let store_id = &*self.store_id;
        let requested_leaf = match scope {
            SessionReadScope::FullGraph => None,
            SessionReadScope::ActivePath { leaf_node_id } => leaf_node_id.as_deref(),
        };
        // A leaf id that could not have been stored names no node: its path is empty.
        let unknown_leaf = requested_leaf.is_some_and(|leaf| !self.shared.storable(leaf));
        let graph_step = match scope {
            SessionReadScope::FullGraph => Step::new(LOAD_FULL_GRAPH, vec![&store_id]),
            SessionReadScope::ActivePath { .. } if unknown_leaf => {
                Step::new("SELECT 1 WHERE false", vec![])
            }
            SessionReadScope::ActivePath { .. } => {
                Step::new(LOAD_ACTIVE_PATH, vec![&store_id, &requested_leaf])
            }
        };
        let mut snapshot = Tx::snapshot(self.shared.client().await?);
        let steps = [
            Step::new(LOAD_HEAD, vec![&store_id]),
            Step::new(LOAD_USAGE, vec![&store_id]),
            Step::new(LOAD_HEAD_BLOBS, vec![&store_id]),
            graph_step,
        ];
        let results = snapshot.commit(&steps).await?;
        let [head, usage, blobs, graph] = <[Vec<Row>; 4]>::try_from(results).map_err(|_| {
            StoreError::Backend("pipeline returned a wrong number of results".into())
        })?;
        let Some(head) = head.first() else { return Ok(None) };
        let head = RowReader::new(head, "strata_heads", HEAD_KEY);
        let revision = head.ordered_u64("revision")?;
        if revision == 0 {
            return Ok(None);
        }
        let session_id = head
            .get::<Option<String>>("session_id")?
            .ok_or_else(|| head.corrupt("a committed head without session_id"))?;
        let head_leaf: Option<String> = head.get("leaf_node_id")?;
        let live_node_count = head.ordered_u64("live_node_count")?;
        let nodes = graph
            .iter()
            .map(|row| RowReader::new(row, "strata_nodes", NODE_KEY).node())
            .collect::<Result<Vec<_>, _>>()?;
        let leaf_node_id = match scope {
            SessionReadScope::FullGraph => head_leaf,
            SessionReadScope::ActivePath { leaf_node_id } => {
                if nodes.len() as u64 > live_node_count {
                    return Err(corrupt(
                        "strata_nodes",
                        &format!(
                            "store_id {store_id:?}, path from {:?}",
                            nodes.last().map(|n| &n.node_id)
                        ),
                        "its parent chain forms a cycle",
                    ));
                }
                leaf_node_id.clone().or(head_leaf)
            }
        };
        let (checkpoint_ref, checkpoint) = match head.manifest()? {
            Some((reference, manifest)) => {
                (Some(reference), Some(hydrate(store_id, &manifest, &blobs)?))
            }
            None => (None, None),
        };
        Ok(Some(PersistedSessionRead {
            session_id,
            head_revision: revision,
            config: head.bytes("config")?,
            agent_frames: head.agent_frames()?,
            current_frame_id: head.get("current_frame_id")?,
            graph: SessionGraph { nodes, leaf_node_id },
            checkpoint_ref,
            checkpoint,
            token_ledger: ledger(&usage)?,
        }))
    }

    /// `load_node`: one primary-key lookup.
    async fn load_node(&self, node_id: &str) -> Result<Option<SessionNodeRecord>, StoreError> {
        if !self.shared.storable(node_id) {
            return Ok(None);
        }
        let store_id = &*self.store_id;
        let client = self.shared.client().await?;
        let rows = sql::query(
            &client,
            "SELECT store_id, node_id, parent_node_id, payload, timestamp_ms, frame_id, cause
             FROM strata_nodes WHERE store_id = $1 AND node_id = $2 AND NOT tombstoned",
            vec![&store_id, &node_id],
            Phase::Read,
        )
        .await?;
        rows.first().map(|row| RowReader::new(row, "strata_nodes", NODE_KEY).node()).transpose()
    }

    async fn load_meta(&self) -> Result<Option<SessionMeta>, StoreError> {
        let store_id = &*self.store_id;
        let client = self.shared.client().await?;
        let rows = sql::query(
            &client,
            "SELECT store_id, session_id, session_name, created_at_epoch_ms, model, cwd,
                    relation_kind, relation_session_id
             FROM strata_session_meta WHERE store_id = $1",
            vec![&store_id],
            Phase::Read,
        )
        .await?;
        let Some(row) = rows.first() else { return Ok(None) };
        let row = RowReader::new(row, "strata_session_meta", HEAD_KEY);
        let relation =
            match (row.get::<Option<String>>("relation_kind")?, row.get("relation_session_id")?) {
                (Some(kind), Some(session_id)) => Some(SessionRelation { kind, session_id }),
                (None, None) => None,
                _ => return Err(row.corrupt("a relation with only one of kind and session id")),
            };
        Ok(Some(SessionMeta {
            session_id: row.get("session_id")?,
            session_name: row.get("session_name")?,
            created_at_epoch_ms: row.opaque_u64("created_at_epoch_ms")?,
            model: row.get("model")?,
            cwd: row.get("cwd")?,
            relation,
        }))
    }

    async fn list_uncommitted(
        &self,
        older_than_ms: u64,
    ) -> Result<Vec<AttachmentManifestEntry>, StoreError> {
        let store_id = &*self.store_id;
        let bound = saturating(older_than_ms);
        let client = self.shared.client().await?;
        let rows = sql::query(
            &client,
            "SELECT store_id, session_id, attachment_id, canonical_uri, intent_at_ms
             FROM strata_attachments
             WHERE store_id = $1 AND committed_at_ms IS NULL AND intent_at_ms <= $2",
            vec![&store_id, &bound],
            Phase::Read,
        )
        .await?;
        let mut entries = rows
            .iter()
            .map(|row| {
                let row = RowReader::new(row, "strata_attachments", ATTACHMENT_KEY);
                Ok(AttachmentManifestEntry {
                    attachment_id: row.get("attachment_id")?,
                    session_id: row.get("session_id")?,
                    canonical_uri: row.get("canonical_uri")?,
                    intent_at_epoch_ms: row.ordered_u64("intent_at_ms")?,
                    committed_at_epoch_ms: None,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        entries.sort_by(|a, b| {
            (&a.session_id, &a.attachment_id).cmp(&(&b.session_id, &b.attachment_id))
        });
        Ok(entries)
    }

    // ----- writes: metadata, manifest ----------------------------------------------------

    async fn save_meta(&self, meta: &SessionMeta) -> Result<(), StoreError> {
        let store_id = &*self.store_id;
        let created_at = codec::opaque(meta.created_at_epoch_ms);
        let relation_kind = meta.relation.as_ref().map(|relation| relation.kind.as_str());
        let relation_session = meta.relation.as_ref().map(|relation| relation.session_id.as_str());
        let client = self.shared.client().await?;
        sql::query(
            &client,
            "INSERT INTO strata_session_meta (store_id, session_id, session_name,
                 created_at_epoch_ms, model, cwd, relation_kind, relation_session_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (store_id) DO UPDATE SET session_id = excluded.session_id,
                 session_name = excluded.session_name,
                 created_at_epoch_ms = excluded.created_at_epoch_ms, model = excluded.model,
                 cwd = excluded.cwd, relation_kind = excluded.relation_kind,
                 relation_session_id = excluded.relation_session_id",
            vec![
                &store_id,
                &meta.session_id,
                &meta.session_name,
                &created_at,
                &meta.model,
                &meta.cwd,
                &relation_kind,
                &relation_session,
            ],
            Phase::Commit,
        )
        .await?;
        Ok(())
    }

    async fn record_intent(&self, intent: &AttachmentIntent) -> Result<(), StoreError> {
        if intent.attachment_id.is_empty() || intent.session_id.is_empty() {
            return Err(StoreError::InvalidInput(
                "an attachment intent needs a session id and an attachment id".into(),
            ));
        }
        self.shared.check_id("attachment id", &intent.attachment_id)?;
        self.shared.check_id("session id", &intent.session_id)?;
        let intent_at = ordered("intent_at_epoch_ms", intent.intent_at_epoch_ms)?;
        let store_id = &*self.store_id;
        let client = self.shared.client().await?;
        sql::query(
            &client,
            "INSERT INTO strata_attachments AS a (store_id, session_id, attachment_id,
                 canonical_uri, intent_at_ms)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (store_id, session_id, attachment_id)
             DO UPDATE SET intent_at_ms = excluded.intent_at_ms WHERE a.committed_at_ms IS NULL",
            vec![
                &store_id,
                &intent.session_id,
                &intent.attachment_id,
                &intent.canonical_uri,
                &intent_at,
            ],
            Phase::Commit,
        )
        .await?;
        Ok(())
    }

    async fn commit_refs(
        &self,
        session_id: &str,
        attachment_ids: &[String],
    ) -> Result<(), StoreError> {
        let ids = self.storable_ids(attachment_ids);
        if ids.is_empty() || !self.shared.storable(session_id) {
            return Ok(());
        }
        let store_id = &*self.store_id;
        let now = self.shared.now_param();
        let client = self.shared.client().await?;
        sql::query(
            &client,
            STAMP_ATTACHMENTS,
            vec![&store_id, &session_id, &ids, &now],
            Phase::Commit,
        )
        .await?;
        Ok(())
    }

    async fn forget(&self, attachment_id: &str) -> Result<(), StoreError> {
        if !self.shared.storable(attachment_id) {
            return Ok(());
        }
        let store_id = &*self.store_id;
        let client = self.shared.client().await?;
        sql::query(
            &client,
            "DELETE FROM strata_attachments WHERE store_id = $1 AND attachment_id = $2",
            vec![&store_id, &attachment_id],
            Phase::Commit,
        )
        .await?;
        Ok(())
    }

    // ----- writes: graph maintenance -----------------------------------------------------

    /// The ids among `ids` that could have been stored (others match nothing).
    pub(crate) fn storable_ids<'a>(&self, ids: &'a [String]) -> Vec<&'a str> {
        ids.iter().map(String::as_str).filter(|id| self.shared.storable(id)).collect()
    }

    async fn tombstone(&self, ids: &[String]) -> Result<(), StoreError> {
        let ids = self.storable_ids(ids);
        if ids.is_empty() {
            return Ok(());
        }
        let store_id = &*self.store_id;
        let mut transaction = Tx::write(self.shared.client().await?);
        let steps = [
            Step::new(LOCK_HEAD, vec![&store_id]),
            Step::new(
                "WITH hidden AS (
                     UPDATE strata_nodes SET tombstoned = true
                     WHERE store_id = $1 AND node_id = ANY($2) AND NOT tombstoned
                     RETURNING 1
                 )
                 UPDATE strata_heads
                 SET live_node_count = live_node_count - (SELECT count(*) FROM hidden)
                 WHERE store_id = $1",
                vec![&store_id, &ids],
            ),
        ];
        let results = transaction.commit(&steps).await?;
        if results[0].is_empty() {
            return Err(self.deleted());
        }
        Ok(())
    }

    async fn vacuum(&self) -> Result<VacuumReport, StoreError> {
        let store_id = &*self.store_id;
        let mut transaction = Tx::write(self.shared.client().await?);
        let steps = [
            Step::new(LOCK_HEAD, vec![&store_id]),
            Step::new(
                "DELETE FROM strata_nodes WHERE store_id = $1 AND tombstoned RETURNING 1",
                vec![&store_id],
            ),
        ];
        let results = transaction.commit(&steps).await?;
        if results[0].is_empty() {
            return Err(self.deleted());
        }
        Ok(VacuumReport { removed_node_count: results[1].len() as u64 })
    }

    /// `gc_unreachable`: under the head's lock (no commit can add a reference meanwhile),
    /// keep the blobs the head's manifest and agent frames name, delete the rest. An
    /// undecodable head aborts before anything is deleted.
    async fn gc(&self) -> Result<GcReport, StoreError> {
        let mut transaction = Tx::write(self.shared.client().await?);
        let report = self.gc_in(&mut transaction).await;
        transaction.finish().await;
        report
    }

    async fn gc_in(&self, transaction: &mut Tx) -> Result<GcReport, StoreError> {
        let store_id = &*self.store_id;
        let heads = transaction.run(&[Step::new(LOCK_HEAD, vec![&store_id])]).await?;
        let Some(head) = heads[0].first() else { return Err(self.deleted()) };
        let head = RowReader::new(head, "strata_heads", HEAD_KEY);
        let manifest = head.manifest()?;
        let codec::Json(frames) = head.get::<codec::Json<Vec<FrameEntry>>>("agent_frames")?;
        let mut reachable: Vec<&str> =
            frames.iter().flat_map(|frame| frame.blob_refs.iter().map(String::as_str)).collect();
        if let Some((_, manifest)) = &manifest {
            reachable.extend(manifest.blob_refs().map(String::as_str));
        }
        let steps = [
            Step::new(
                "DELETE FROM strata_blobs WHERE store_id = $1 AND blob_ref <> ALL($2) RETURNING 1",
                vec![&store_id, &reachable],
            ),
            Step::new("SELECT count(*) FROM strata_blobs WHERE store_id = $1", vec![&store_id]),
        ];
        let results = transaction.commit(&steps).await?;
        let retained: i64 = results[1].first().map_or(0, |row| row.get(0));
        Ok(GcReport {
            root_count: u64::from(manifest.is_some()),
            retained_blob_count: retained.unsigned_abs(),
            deleted_blob_count: results[0].len() as u64,
        })
    }
}

/// Columns naming an attachment row in error messages.
const ATTACHMENT_KEY: &[&str] = &["store_id", "session_id", "attachment_id"];

/// Stamps uncommitted manifest rows of a session ($1 store, $2 session, $3 ids, $4 injected
/// clock): `commit_refs`, and the same step inside a commit.
pub(crate) const STAMP_ATTACHMENTS: &str = "UPDATE strata_attachments
    SET committed_at_ms = strata_now_ms($4)
    WHERE store_id = $1 AND session_id = $2 AND attachment_id = ANY($3)
      AND committed_at_ms IS NULL";

/// The checkpoint hydrated from the blobs the head names; a missing blob is corrupt data.
fn hydrate(
    store_id: &str,
    manifest: &SessionCheckpoint,
    blobs: &[Row],
) -> Result<RuntimeCheckpoint, StoreError> {
    let mut bytes: HashMap<String, Bytes> = HashMap::with_capacity(blobs.len());
    for row in blobs {
        let row = RowReader::new(row, "strata_blobs", &["store_id", "blob_ref"]);
        bytes.insert(row.get("blob_ref")?, row.bytes("bytes")?);
    }
    let part = |blob_ref: &Option<BlobRef>| -> Result<CheckpointBlob, StoreError> {
        let Some(blob_ref) = blob_ref else { return Ok(CheckpointBlob::default()) };
        let payload = bytes.get(blob_ref).cloned().ok_or_else(|| {
            corrupt(
                "strata_blobs",
                &format!("store_id {store_id:?}, blob_ref {blob_ref:?}"),
                "the head's checkpoint names a blob the store does not hold",
            )
        })?;
        Ok(CheckpointBlob { blob_ref: Some(blob_ref.clone()), payload: Some(payload) })
    };
    Ok(RuntimeCheckpoint {
        turn_state: manifest.turn_state.clone(),
        tool_state: part(&manifest.tool_state_ref)?,
        plugin_snapshot: part(&manifest.plugin_snapshot_ref)?,
        plugin_snapshot_revision: manifest.plugin_snapshot_revision,
        execution_state: part(&manifest.execution_state_ref)?,
    })
}

/// The merged ledger: the table is merged already; drop all-zero rows, sort by (source,
/// model) bytewise (not by the database's collation).
fn ledger(rows: &[Row]) -> Result<Vec<TokenLedgerEntry>, StoreError> {
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        let row = RowReader::new(row, "strata_usage", &["store_id", "source", "model"]);
        let usage = TokenUsage {
            input_tokens: row.ordered_u64("input_tokens")?,
            output_tokens: row.ordered_u64("output_tokens")?,
            cached_input_tokens: row.ordered_u64("cached_input_tokens")?,
            reasoning_tokens: row.ordered_u64("reasoning_tokens")?,
        };
        if !usage.is_zero() {
            entries.push(TokenLedgerEntry {
                source: row.get("source")?,
                model: row.get("model")?,
                usage,
            });
        }
    }
    entries.sort_by(|a, b| (&a.source, &a.model).cmp(&(&b.source, &b.model)));
    Ok(entries)
}

/// Every call does its work when the returned future is polled (nothing runs in `serve`
/// itself), so a timeout, a limiter or a dropped call acts on the whole of it. A call
/// dropped inside a transaction rolls it back.
impl Serve for PostgresStore {
    fn serve<'a>(
        &'a self,
        request: Request<'a>,
    ) -> impl Future<Output = Result<Response, StoreError>> + Send + 'a {
        self.call(request)
    }

    fn tier(&self) -> DurabilityTier {
        self.shared.tier
    }
}
