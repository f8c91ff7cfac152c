//! The one table that says what every operation does to the cache ([`RULES`], keyed by
//! [`Operation`]). Every call is served according to its row; an operation without a row is
//! treated as a write that may have changed everything of its session (and a test fails).

use strata_core::Operation;

use super::scope::Classes;

/// What one operation does to the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rule {
    /// A read answered from the cache: read-through, one store read per missing key at a time.
    Cached,
    /// Reaches the store every time and changes nothing the cache holds (the reason says why).
    Bypass(&'static str),
    /// `commit_runtime_state`: on success, replaces the session's full-graph and head
    /// active-path reads with the state the commit produced when the cache held the state it
    /// applied to, and invalidates the other session reads; `ReplaceFull` also invalidates
    /// every node; with negative caching on, the appended ids' node entries are invalidated.
    /// A head revision or turn commit conflict invalidates the session's reads and nodes
    /// (another writer moved the head).
    Commit,
    /// `save_session_meta`: on success, replaces the cached metadata record.
    SaveMeta,
    /// `tombstone_nodes`: invalidates the named nodes and every session read.
    Tombstone,
    /// A write that invalidates these classes of the session's entries.
    Invalidate(Classes),
}

impl Rule {
    /// What the write changes if it applied (also used for an ambiguous failure or a dropped
    /// call); node ids are added by the caller (tombstoned, or appended with negative caching).
    pub(crate) fn classes(self) -> Classes {
        match self {
            Rule::Cached | Rule::Bypass(_) => Classes::NONE,
            Rule::Commit | Rule::Tombstone => Classes::SESSIONS,
            Rule::SaveMeta => Classes::META,
            Rule::Invalidate(classes) => classes,
        }
    }
}

const QUEUE: Rule = Rule::Bypass("queued work is never cached");
const MANIFEST: Rule = Rule::Bypass("the attachment manifest is never cached");

/// Every operation's rule, in [`Operation::ALL`] order (a test checks the order and that no
/// operation is missing).
pub(crate) const RULES: &[(Operation, Rule)] = &[
    (Operation::LoadSession, Rule::Cached),
    (Operation::LoadNode, Rule::Cached),
    (Operation::CommitRuntimeState, Rule::Commit),
    (Operation::SaveSessionMeta, Rule::SaveMeta),
    (Operation::LoadSessionMeta, Rule::Cached),
    (Operation::TombstoneNodes, Rule::Tombstone),
    (Operation::Vacuum, Rule::Invalidate(Classes::SESSIONS_AND_NODES)),
    (
        Operation::GcUnreachable,
        Rule::Bypass("deletes only blobs unreachable from the head, which no read returns"),
    ),
    (Operation::EnqueueQueuedWork, QUEUE),
    (Operation::ClaimReadyQueuedWork, QUEUE),
    (Operation::ClaimReadyQueuedWorkByBatchIds, QUEUE),
    (Operation::RenewQueuedWorkClaim, QUEUE),
    (Operation::AbandonQueuedWorkClaim, QUEUE),
    (Operation::CancelQueuedWorkBatch, QUEUE),
    (Operation::ListQueuedWork, QUEUE),
    (Operation::ListPendingQueuedWork, QUEUE),
    (Operation::RecordIntent, MANIFEST),
    (Operation::CommitRefs, MANIFEST),
    (Operation::ListUncommitted, MANIFEST),
    (Operation::Forget, MANIFEST),
];

/// The rule of `operation`. Without a row: a write that may have changed every entry of the
/// session (the safe answer).
pub(crate) fn rule(operation: Operation) -> Rule {
    match RULES.get(operation.index()) {
        Some((listed, rule)) if *listed == operation => *rule,
        _ => Rule::Invalidate(Classes { sessions: true, nodes: true, meta: true }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_exactly_one_rule_in_declaration_order() {
        let listed: Vec<Operation> = RULES.iter().map(|(operation, _)| *operation).collect();
        assert_eq!(
            listed,
            Operation::ALL,
            "RULES must list every operation, in Operation::ALL order"
        );
        for &operation in Operation::ALL {
            assert_eq!(rule(operation), RULES[operation.index()].1, "{operation}");
        }
    }

    #[test]
    fn only_reads_are_cached_and_every_write_that_changes_reads_invalidates_them() {
        for &operation in Operation::ALL {
            let rule = rule(operation);
            let reads = matches!(
                operation,
                Operation::LoadSession | Operation::LoadNode | Operation::LoadSessionMeta
            );
            assert_eq!(rule == Rule::Cached, reads, "{operation}: {rule:?}");
        }
        for (operation, classes) in [
            (Operation::CommitRuntimeState, Classes::SESSIONS),
            (Operation::TombstoneNodes, Classes::SESSIONS),
            (Operation::Vacuum, Classes::SESSIONS_AND_NODES),
            (Operation::SaveSessionMeta, Classes::META),
        ] {
            assert_eq!(rule(operation).classes(), classes, "{operation}");
        }
    }

    #[test]
    fn the_module_docs_describe_every_rule_that_is_not_a_bypass() {
        let docs = include_str!("mod.rs");
        for (operation, rule) in RULES {
            if !matches!(rule, Rule::Bypass(_)) {
                let row = format!("//! | `{}`", operation.name());
                let named = docs.lines().any(|line| {
                    line.starts_with("//! | `") && line.contains(&format!("`{}`", operation.name()))
                });
                assert!(named, "no row of the rules table in the module docs names {row}");
            }
        }
    }
}
