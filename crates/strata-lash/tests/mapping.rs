//! Round-trip properties of the type mapping (proptest):
//!
//! - a Strata value survives a lash store byte for byte: `to_strata(to_lash(v, Exact)) == v`,
//!   for arbitrary bytes and for bytes that are lash encodings;
//! - a lash value survives a Strata store: `to_lash(to_strata(v)) == v` (compared through
//!   lash's own serde form, since lash's types do not implement `PartialEq`).

use lash_core as lash;
use proptest::prelude::*;
use strata_core::{self as strata, Bytes, StoreError};
use strata_lash::mapping::{self as map, Decode};

fn same<T: serde::Serialize>(left: &T, right: &T) -> bool {
    serde_json::to_value(left).expect("left") == serde_json::to_value(right).expect("right")
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

fn text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-z0-9 .:-]{1,12}", any::<String>()]
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        (-1e12f64..1e12).prop_map(serde_json::Value::from),
        text().prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    })
}

/// lash nodes: conversation messages, protocol events and plugin bodies, with or without
/// cause, frame and parent, and timestamps that are or are not RFC 3339.
fn lash_node() -> impl Strategy<Value = lash::SessionNodeRecord> {
    let timestamp = prop_oneof![
        Just("2026-06-02T10:11:12.123456789+00:00".to_owned()),
        Just("1970-01-01T00:00:00Z".to_owned()),
        text(),
    ];
    let cause = prop_oneof![
        Just(serde_json::Value::Null),
        text().prop_map(
            |turn| serde_json::json!({"type": "turn", "session_id": "s", "turn_id": turn})
        ),
    ];
    let body = prop_oneof![
        (text(), text()).prop_map(|(id, content)| serde_json::json!({"kind": "event", "event": {
            "Conversation": {"id": id, "role": "Assistant", "parts": [
                {"id": "p0", "kind": "Text", "content": content, "prune_state": "Intact"}]}}})),
        (text(), json_value()).prop_map(|(plugin_type, body)| serde_json::json!({
            "kind": "plugin", "plugin_type": plugin_type, "body": body})),
    ];
    (text(), prop::option::of(text()), prop::option::of(text()), timestamp, cause, body).prop_map(
        |(id, parent, frame, timestamp, cause, body)| {
            let mut node = serde_json::json!({
                "node_id": id, "parent_node_id": parent, "agent_frame_id": frame,
                "timestamp": timestamp, "caused_by": cause,
            });
            node.as_object_mut().unwrap().extend(body.as_object().unwrap().clone());
            serde_json::from_value(node).expect("a valid lash node")
        },
    )
}

/// Bytes: arbitrary, or the native encoding of a lash value (so both paths of the mapping
/// run), chosen by `native`.
fn bytes_or<S: Strategy>(native: S) -> impl Strategy<Value = Bytes>
where
    S::Value: serde::Serialize + std::fmt::Debug,
{
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from),
        native.prop_map(|value| map::encode(&value).expect("encodes")),
    ]
}

fn strata_node() -> impl Strategy<Value = strata::SessionNodeRecord> {
    let payload = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from),
        lash_node().prop_map(|node| map::node_to_strata(node).expect("maps").payload),
    ];
    (text(), prop::option::of(text()), payload, any::<u64>(), prop::option::of(text()))
        .prop_flat_map(|(node_id, parent_node_id, payload, timestamp_ms, frame_id)| {
            prop::option::of(text()).prop_map(move |cause| strata::SessionNodeRecord {
                node_id: node_id.clone(),
                parent_node_id: parent_node_id.clone(),
                payload: payload.clone(),
                timestamp_ms,
                frame_id: frame_id.clone(),
                cause,
            })
        })
}

fn blob() -> impl Strategy<Value = strata::CheckpointBlob> {
    (prop::option::of(text()), prop::option::of(prop::collection::vec(any::<u8>(), 0..32)))
        .prop_map(|(blob_ref, payload)| strata::CheckpointBlob {
            blob_ref,
            payload: payload.map(Bytes::from),
        })
}

fn strata_checkpoint() -> impl Strategy<Value = strata::RuntimeCheckpoint> {
    let turn_state = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..32).prop_map(Bytes::from),
        (0usize..9, prop::option::of(0u64..3)).prop_map(|(turn_index, revision)| {
            let turn_state = lash::PersistedTurnState { turn_index, ..Default::default() };
            map::turn_state_to_strata(&turn_state, revision).expect("maps").0
        }),
    ];
    (turn_state, blob(), blob(), 0u64..3, blob()).prop_map(
        |(turn_state, tool_state, plugin_snapshot, plugin_snapshot_revision, execution_state)| {
            strata::RuntimeCheckpoint {
                turn_state,
                tool_state,
                plugin_snapshot,
                plugin_snapshot_revision,
                execution_state,
            }
        },
    )
}

fn strata_meta() -> impl Strategy<Value = strata::SessionMeta> {
    let relation = prop::option::of(
        (text(), text())
            .prop_map(|(kind, session_id)| strata::SessionRelation { kind, session_id }),
    );
    (
        text(),
        prop::option::of(text()),
        any::<u64>(),
        prop::option::of(text()),
        prop::option::of(text()),
        relation,
    )
        .prop_map(|(session_id, session_name, created_at_epoch_ms, model, cwd, relation)| {
            strata::SessionMeta {
                session_id,
                session_name,
                created_at_epoch_ms,
                model,
                cwd,
                relation,
            }
        })
}

fn lash_meta() -> impl Strategy<Value = lash::SessionMeta> {
    let relation = prop_oneof![
        Just(lash::SessionRelation::Root),
        text().prop_map(|parent| lash::SessionRelation::Child {
            parent_session_id: parent,
            caused_by: None,
        }),
    ];
    (text(), text(), text(), text(), prop::option::of(text()), relation).prop_map(
        |(session_id, session_name, created_at, model, cwd, relation)| lash::SessionMeta {
            session_id,
            session_name,
            created_at,
            model,
            cwd,
            relation,
        },
    )
}

fn strata_error() -> impl Strategy<Value = StoreError> {
    let operation = prop::sample::select(
        strata::Operation::ALL.iter().map(|operation| operation.name()).collect::<Vec<_>>(),
    );
    let leaf = prop_oneof![
        (text(), text()).prop_map(|(bound_session_id, attempted_session_id)| {
            StoreError::SessionBindingMismatch { bound_session_id, attempted_session_id }
        }),
        (prop::option::of(any::<u64>()), any::<u64>())
            .prop_map(|(expected, actual)| StoreError::HeadRevisionConflict { expected, actual }),
        (text(), text()).prop_map(|(session_id, turn_id)| {
            StoreError::RuntimeTurnCommitConflict { session_id, turn_id }
        }),
        (text(), text()).prop_map(|(session_id, claim_id)| {
            StoreError::QueuedWorkClaimExpired { session_id, claim_id }
        }),
        ("[a-z_]{1,8}", any::<u32>(), any::<u32>()).prop_map(|(record_kind, actual, expected)| {
            StoreError::UnsupportedRecordSchemaVersion { record_kind, actual, expected }
        }),
        text().prop_map(StoreError::InvalidInput),
        (text(), text())
            .prop_map(|(location, detail)| StoreError::CorruptData { location, detail }),
        text().prop_map(StoreError::Unavailable),
        text().prop_map(StoreError::NotApplied),
        (operation.clone(), any::<u64>()).prop_map(|(operation, nanos)| StoreError::Timeout {
            operation,
            elapsed: std::time::Duration::from_nanos(nanos),
        }),
        text().prop_map(StoreError::Overloaded),
        (operation.clone(), any::<u64>()).prop_map(|(operation, nanos)| StoreError::CircuitOpen {
            operation,
            retry_after: std::time::Duration::from_nanos(nanos),
        }),
        text().prop_map(|path| StoreError::Locked { path }),
        operation.clone().prop_map(StoreError::Unsupported),
        text().prop_map(StoreError::Backend),
    ];
    leaf.prop_recursive(2, 4, 1, move |inner| {
        (operation.clone(), any::<u32>(), inner).prop_map(|(operation, attempts, last)| {
            StoreError::RetriesExhausted { operation, attempts, last_error: Box::new(last) }
        })
    })
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn strata_nodes_survive_a_lash_store(node in strata_node()) {
        let back = map::node_to_strata(map::node_to_lash(node.clone(), Decode::Exact)).unwrap();
        prop_assert_eq!(back, node);
    }

    #[test]
    fn lash_nodes_survive_a_strata_store(node in lash_node()) {
        let stored = map::node_to_strata(node.clone()).unwrap();
        prop_assert!(same(&map::node_to_lash(stored.clone(), Decode::Lenient), &node));
        prop_assert!(same(&map::node_to_lash(stored, Decode::Exact), &node));
    }

    #[test]
    fn strata_config_survives_a_lash_store(config in bytes_or(Just(lash::PersistedSessionConfig::default()))) {
        let back = map::config_to_strata(&map::config_to_lash(&config, Decode::Exact)).unwrap();
        prop_assert_eq!(back, config);
    }

    #[test]
    fn strata_frames_survive_a_lash_store(
        frame_id in text(),
        payload in bytes_or(Just(lash::PersistedSessionConfig::default())),
        blob_refs in prop::collection::vec(text(), 0..3),
    ) {
        let frame = strata::AgentFrame { frame_id, payload, blob_refs };
        let back = map::frame_to_strata(map::frame_to_lash(frame.clone(), Decode::Exact)).unwrap();
        prop_assert_eq!(back, frame);
    }

    #[test]
    fn lash_frames_survive_a_strata_store(frame_id in text(), snapshot in prop::option::of(prop::collection::vec(any::<u8>(), 0..16))) {
        let mut state = lash::RuntimeSessionState { session_id: "s".into(), ..Default::default() };
        state.ensure_agent_frame_initialized();
        let mut frame = state.agent_frames[0].clone();
        frame.frame_id = frame_id;
        frame.execution_state_ref = snapshot.as_ref().map(|_| lash::BlobRef("ref".into()));
        frame.execution_state_snapshot = snapshot;
        let back = map::frame_to_lash(map::frame_to_strata(frame.clone()).unwrap(), Decode::Exact);
        prop_assert!(same(&back, &frame));
    }

    #[test]
    fn strata_checkpoints_survive_a_lash_store(checkpoint in strata_checkpoint()) {
        let lash = map::checkpoint_to_lash(checkpoint.clone(), Decode::Exact).unwrap();
        prop_assert_eq!(map::checkpoint_to_strata(lash).unwrap(), checkpoint);
    }

    #[test]
    fn lash_checkpoints_survive_a_strata_store(
        turn_index in 0usize..1000,
        generation in any::<u64>(),
        revision in prop::option::of(any::<u64>()),
        execution in prop::option::of(prop::collection::vec(any::<u8>(), 0..16)),
    ) {
        let checkpoint = lash::HydratedSessionCheckpoint {
            turn_state: lash::PersistedTurnState { turn_index, ..Default::default() },
            tool_state_ref: Some(lash::BlobRef("t".into())),
            tool_state: Some(lash::ToolState::default().with_generation(generation)),
            plugin_snapshot: Some(lash::PluginSessionSnapshot::default()),
            plugin_snapshot_revision: revision,
            execution_state: execution,
            ..Default::default()
        };
        let back = map::checkpoint_to_lash(map::checkpoint_to_strata(checkpoint.clone()).unwrap(), Decode::Exact).unwrap();
        prop_assert!(same(&back, &checkpoint));
    }

    #[test]
    fn strata_meta_survives_a_lash_store(meta in strata_meta()) {
        let back = map::meta_to_strata(map::meta_to_lash(meta.clone(), Decode::Exact)).unwrap();
        prop_assert_eq!(back, meta);
    }

    #[test]
    fn lash_meta_survives_a_strata_store(meta in lash_meta()) {
        let back = map::meta_to_lash(map::meta_to_strata(meta.clone()).unwrap(), Decode::Exact);
        prop_assert!(same(&back, &meta));
    }

    #[test]
    fn strata_queue_payloads_survive_a_lash_store(payload in bytes_or(Just(0u8))) {
        let back = map::queue_payload_to_strata(&map::queue_payload_to_lash(&payload, Decode::Exact)).unwrap();
        prop_assert_eq!(back, payload);
    }

    #[test]
    fn lash_queue_payloads_survive_a_strata_store(text in text()) {
        let payload = lash::runtime::QueuedWorkPayload::turn_input(lash::TurnInput::text(text));
        let back = map::queue_payload_to_lash(&map::queue_payload_to_strata(&payload).unwrap(), Decode::Exact);
        prop_assert!(same(&back, &payload));
    }

    #[test]
    fn usage_round_trips_where_both_sides_can_count(counts in prop::array::uniform4(0..=i64::MAX)) {
        let usage = lash::TokenUsage {
            input_tokens: counts[0],
            output_tokens: counts[1],
            cached_input_tokens: counts[2],
            reasoning_tokens: counts[3],
        };
        let back = map::usage_to_lash(&map::usage_to_strata(&usage).unwrap()).unwrap();
        prop_assert!(same(&back, &usage));
    }

    #[test]
    fn strata_errors_keep_their_variant_through_lash(error in strata_error()) {
        prop_assert_eq!(map::error_to_strata(map::error_to_lash(error.clone())), error);
    }
}

#[test]
fn counters_one_side_cannot_hold_are_refused_not_truncated() {
    let negative = lash::TokenUsage { input_tokens: -1, ..Default::default() };
    assert!(matches!(map::usage_to_strata(&negative), Err(StoreError::InvalidInput(_))));
    let huge = strata::TokenUsage { output_tokens: u64::MAX, ..Default::default() };
    assert!(matches!(map::usage_to_lash(&huge), Err(StoreError::InvalidInput(_))));
}

#[test]
fn lash_errors_without_a_tag_stay_backend_errors() {
    let error = lash::StoreError::Backend("database is locked".into());
    assert_eq!(map::error_to_strata(error), StoreError::Backend("database is locked".into()));
}

#[test]
fn foreign_bytes_reach_lash_as_recognizable_envelopes() {
    let node = strata::SessionNodeRecord {
        node_id: "n".into(),
        parent_node_id: None,
        payload: Bytes::from_static(b"payload of n"),
        timestamp_ms: 7,
        frame_id: None,
        cause: Some("why".into()),
    };
    let lash = map::node_to_lash(node, Decode::Lenient);
    assert!(matches!(
        &lash.payload,
        lash::SessionNodePayload::Plugin { plugin_type, .. } if plugin_type == map::ENVELOPE
    ));
}
