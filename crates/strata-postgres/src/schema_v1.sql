-- Strata PostgreSQL schema, version 1. Runs inside the migration transaction, with the
-- connection's search_path set to the configured schema. Every table is keyed by store_id:
-- the store a handle was opened on (a factory names each session's store by its session id).
-- Unsigned 64-bit values the store compares (times, sequence numbers, revisions, fencing
-- counters) are stored as bigint and must be at most 2^63-1; opaque ones (node timestamps,
-- plugin snapshot revisions, creation times) are stored bit for bit (values above 2^63-1 read
-- back negative in SQL, exactly in Rust).

-- One row per store: the registry `list_sessions` reads, and the enqueue counter (its row lock
-- serializes the enqueues of one store, so enqueue_seq follows commit order).
CREATE TABLE strata_stores (
    store_id         text PRIMARY KEY,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_enqueue_seq bigint NOT NULL DEFAULT 0
);

-- The head of each store, created with the store at revision 0 (no commit yet, session_id
-- NULL). Every graph write locks this row first, so writes of one store are serialized and
-- cannot deadlock each other.
CREATE TABLE strata_heads (
    store_id                 text PRIMARY KEY,
    session_id               text,
    revision                 bigint NOT NULL,
    config                   bytea NOT NULL DEFAULT '',
    agent_frames             jsonb NOT NULL DEFAULT '[]',
    agent_frame_payloads     bytea[] NOT NULL DEFAULT '{}',
    current_frame_id         text,
    leaf_node_id             text,
    -- The run (see strata_nodes) of the leaf, set only while the leaf is the last node of
    -- its run: the next commit appending under the leaf continues that run.
    leaf_run_revision        bigint,
    leaf_run_ordinal         bigint,
    leaf_run_index           bigint,
    live_node_count          bigint NOT NULL DEFAULT 0,
    -- The checkpoint manifest (present iff checkpoint_ref is not NULL).
    checkpoint_ref           text,
    turn_state               bytea,
    tool_state_ref           text,
    plugin_snapshot_ref      text,
    plugin_snapshot_revision bigint,
    execution_state_ref      text
);

-- Session graph nodes. Insertion order is (added_revision, ordinal): the revision of the
-- commit that wrote the node and its index in that commit.
--
-- Runs make long active paths cheap to read: a node whose parent is the node appended just
-- before it in the same run (the previous node of its commit, or the head's leaf for a
-- commit's first node) continues that run at the next run_index; any other node starts a run
-- named by its own (added_revision, ordinal). While nodes 0..=i of a run are all live, they
-- are the ancestry of node i up to the run's first node, read in one index range scan.
CREATE TABLE strata_nodes (
    store_id       text NOT NULL,
    node_id        text NOT NULL,
    parent_node_id text,
    payload        bytea NOT NULL,
    timestamp_ms   bigint NOT NULL,
    frame_id       text,
    cause          text,
    added_revision bigint NOT NULL,
    ordinal        bigint NOT NULL,
    run_revision   bigint NOT NULL,
    run_ordinal    bigint NOT NULL,
    run_index      bigint NOT NULL,
    tombstoned     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (store_id, node_id)
);
CREATE INDEX strata_nodes_order ON strata_nodes (store_id, added_revision, ordinal);
CREATE UNIQUE INDEX strata_nodes_runs
    ON strata_nodes (store_id, run_revision, run_ordinal, run_index) INCLUDE (tombstoned);

-- Content-addressed checkpoint blobs (blob_ref = strata_core::blob_ref(bytes)).
CREATE TABLE strata_blobs (
    store_id text NOT NULL,
    blob_ref text NOT NULL,
    bytes    bytea NOT NULL,
    PRIMARY KEY (store_id, blob_ref)
);

-- The token ledger, merged by (source, model) as commits append to it.
CREATE TABLE strata_usage (
    store_id            text NOT NULL,
    source              text NOT NULL,
    model               text NOT NULL,
    input_tokens        bigint NOT NULL,
    output_tokens       bigint NOT NULL,
    cached_input_tokens bigint NOT NULL,
    reasoning_tokens    bigint NOT NULL,
    PRIMARY KEY (store_id, source, model)
);

-- Turn stamps and the result each stamped commit returned (replayed verbatim to a retry).
CREATE TABLE strata_turn_stamps (
    store_id                 text NOT NULL,
    turn_id                  text NOT NULL,
    turn_commit_hash         text NOT NULL,
    head_revision            bigint NOT NULL,
    checkpoint_ref           text,
    turn_state               bytea,
    tool_state_ref           text,
    plugin_snapshot_ref      text,
    plugin_snapshot_revision bigint,
    execution_state_ref      text,
    PRIMARY KEY (store_id, turn_id)
);

-- Session metadata: one last-writer-wins record per store.
CREATE TABLE strata_session_meta (
    store_id            text PRIMARY KEY,
    session_id          text NOT NULL,
    session_name        text,
    created_at_epoch_ms bigint NOT NULL,
    model               text,
    cwd                 text,
    relation_kind       text,
    relation_session_id text
);

-- Queued work. A batch is held by the claim named in claim_id/lease_token (all five hold
-- columns are set together or all NULL); the hold is live while expires_at_ms > now.
CREATE TABLE strata_batches (
    store_id        text NOT NULL,
    session_id      text NOT NULL,
    enqueue_seq     bigint NOT NULL,
    batch_id        text NOT NULL,
    source_key      text,
    delivery_policy text NOT NULL,
    slot_policy     text NOT NULL,
    merge_key       text NOT NULL,
    merge_group     text,
    available_at_ms bigint NOT NULL,
    enqueued_at_ms  bigint NOT NULL,
    payloads        bytea[] NOT NULL,
    fencing_counter bigint NOT NULL DEFAULT 0,
    claim_id        text,
    lease_token     text,
    owner_id        text,
    claimed_at_ms   bigint,
    expires_at_ms   bigint,
    PRIMARY KEY (store_id, session_id, enqueue_seq),
    UNIQUE (store_id, session_id, batch_id),
    UNIQUE (store_id, session_id, source_key)
);
CREATE INDEX strata_batches_claim ON strata_batches (store_id, session_id, claim_id)
    WHERE claim_id IS NOT NULL;

-- The attachment write-ahead manifest, keyed by (session, attachment id) within a store.
CREATE TABLE strata_attachments (
    store_id        text NOT NULL,
    session_id      text NOT NULL,
    attachment_id   text NOT NULL,
    canonical_uri   text NOT NULL,
    intent_at_ms    bigint NOT NULL,
    committed_at_ms bigint,
    PRIMARY KEY (store_id, session_id, attachment_id)
);
CREATE INDEX strata_attachments_uncommitted ON strata_attachments (store_id, intent_at_ms)
    WHERE committed_at_ms IS NULL;

-- "Now" in epoch milliseconds: the injected clock's value when the store passes one, else the
-- database clock at the start of the current transaction (one value per transaction).
CREATE FUNCTION strata_now_ms(injected bigint) RETURNS bigint
    LANGUAGE sql STABLE
    AS $$ SELECT COALESCE(injected, floor(extract(epoch FROM transaction_timestamp()) * 1000)::bigint) $$;

-- The run segment a walk takes from node (run, run_index, parent) of a store: the whole run
-- up to that node when its nodes 0..=run_index are all live (first_index 0, continuing from
-- the run's first node's parent), else the node alone (continuing from its own parent).
CREATE FUNCTION strata_run_segment(store text, run_rev bigint, run_ord bigint, idx bigint,
                                   parent text)
    RETURNS TABLE (first_index bigint, next_parent text)
    LANGUAGE sql STABLE
    AS $$
    SELECT CASE WHEN intact THEN 0 ELSE idx END,
           CASE WHEN intact THEN (SELECT f.parent_node_id FROM strata_nodes f
                                  WHERE f.store_id = store AND f.run_revision = run_rev
                                    AND f.run_ordinal = run_ord AND f.run_index = 0)
                ELSE parent END
    FROM (SELECT idx > 0 AND (SELECT count(*) FROM strata_nodes r
                              WHERE r.store_id = store AND r.run_revision = run_rev
                                AND r.run_ordinal = run_ord AND r.run_index <= idx
                                AND NOT r.tombstoned) = idx + 1 AS intact) AS segment
    $$;
