//! The cache's metrics, recorded through the [`metrics`] facade with the metrics layer's
//! naming scheme (`strata_store_cache_*`, labels `operation`, `cause` or `outcome`, and the
//! optional `store`). The table is in the [crate docs](crate#metrics).

use std::borrow::Cow;
use std::sync::OnceLock;

use metrics::{Counter, Label, Unit};
use moka::notification::RemovalCause;
use strata_core::Operation;

use super::rules::{Rule, rule};

/// Names of every metric the cache layer records (documented in the crate docs).
pub mod names {
    /// Counter: reads answered from the cache, by `operation`.
    pub const HITS: &str = "strata_store_cache_hits_total";
    /// Counter: cacheable reads not answered from the cache, by `operation`.
    pub const MISSES: &str = "strata_store_cache_misses_total";
    /// Counter: store reads made to answer misses, by `operation`.
    pub const LOADS: &str = "strata_store_cache_loads_total";
    /// Counter: writes that invalidated cached entries, by `operation`.
    pub const INVALIDATIONS: &str = "strata_store_cache_invalidations_total";
    /// Counter: entries replaced by the state a write produced, by `operation`.
    pub const UPDATES: &str = "strata_store_cache_updates_total";
    /// Counter: entries evicted by the bounds, by `cause` (`size` or `expired`).
    pub const EVICTIONS: &str = "strata_store_cache_evictions_total";
    /// Counter: head-revision probes of revalidated session hits, by `outcome`.
    pub const REVALIDATIONS: &str = "strata_store_cache_revalidations_total";
}

/// Every metric: name and description (checked against the crate docs' table in tests).
pub(crate) const METRICS: [(&str, &str); 7] = [
    (names::HITS, "Store reads answered from the cache."),
    (names::MISSES, "Cacheable store reads not answered from the cache."),
    (names::LOADS, "Store reads made by the cache to answer misses."),
    (names::INVALIDATIONS, "Writes that invalidated cached entries."),
    (names::UPDATES, "Cached entries replaced by the state a write produced."),
    (names::EVICTIONS, "Cached entries evicted by the size bound or expiry."),
    (names::REVALIDATIONS, "Head-revision probes of revalidated session hits."),
];

/// The metric handles of one layer, built on first use against the recorder installed then.
pub(super) struct Stats {
    store_name: Option<Cow<'static, str>>,
    table: OnceLock<Table>,
}

struct Table {
    /// Indexed by [`Operation::index`].
    operations: Vec<OperationCounters>,
    evicted_by_size: Counter,
    expired: Counter,
    fresh: Counter,
    stale: Counter,
}

/// The handles of one operation: read counters for cached reads, write counters for writes.
#[derive(Default)]
struct OperationCounters {
    hits: Option<Counter>,
    misses: Option<Counter>,
    loads: Option<Counter>,
    invalidations: Option<Counter>,
    updates: Option<Counter>,
}

impl Table {
    fn new(store_name: Option<&str>) -> Self {
        for (name, description) in METRICS {
            metrics::describe_counter!(name, Unit::Count, description);
        }
        let base: Vec<Label> =
            store_name.map(|name| Label::new("store", name.to_owned())).into_iter().collect();
        let with = |key: &'static str, value: &'static str| {
            let mut labels = base.clone();
            labels.push(Label::from_static_parts(key, value));
            labels
        };
        let operations = Operation::ALL
            .iter()
            .map(|&operation| {
                let labels = with("operation", operation.name());
                let counter = |name: &'static str| Some(metrics::counter!(name, labels.clone()));
                match rule(operation) {
                    Rule::Cached => OperationCounters {
                        hits: counter(names::HITS),
                        misses: counter(names::MISSES),
                        loads: counter(names::LOADS),
                        ..OperationCounters::default()
                    },
                    Rule::Bypass(_) => OperationCounters::default(),
                    Rule::Commit | Rule::SaveMeta => OperationCounters {
                        invalidations: counter(names::INVALIDATIONS),
                        updates: counter(names::UPDATES),
                        ..OperationCounters::default()
                    },
                    Rule::Tombstone | Rule::Invalidate(_) => OperationCounters {
                        invalidations: counter(names::INVALIDATIONS),
                        ..OperationCounters::default()
                    },
                }
            })
            .collect();
        Self {
            operations,
            evicted_by_size: metrics::counter!(names::EVICTIONS, with("cause", "size")),
            expired: metrics::counter!(names::EVICTIONS, with("cause", "expired")),
            fresh: metrics::counter!(names::REVALIDATIONS, with("outcome", "fresh")),
            stale: metrics::counter!(names::REVALIDATIONS, with("outcome", "stale")),
        }
    }
}

/// Which per-operation counter to bump.
#[derive(Clone, Copy, Debug)]
pub(super) enum Event {
    Hit,
    Miss,
    Load,
    Invalidation,
    Update,
}

impl Stats {
    pub(super) fn new(store_name: Option<Cow<'static, str>>) -> Self {
        Self { store_name, table: OnceLock::new() }
    }

    pub(super) fn store_name(&self) -> Option<&str> {
        self.store_name.as_deref()
    }

    fn table(&self) -> &Table {
        self.table.get_or_init(|| Table::new(self.store_name.as_deref()))
    }

    /// Counts `count` events of `operation`.
    pub(super) fn record(&self, operation: Operation, event: Event, count: u64) {
        let Some(counters) = self.table().operations.get(operation.index()) else { return };
        let counter = match event {
            Event::Hit => &counters.hits,
            Event::Miss => &counters.misses,
            Event::Load => &counters.loads,
            Event::Invalidation => &counters.invalidations,
            Event::Update => &counters.updates,
        };
        if let Some(counter) = counter {
            counter.increment(count);
        }
    }

    /// Counts a revalidation probe's outcome.
    pub(super) fn revalidated(&self, fresh: bool) {
        let table = self.table();
        if fresh { &table.fresh } else { &table.stale }.increment(1);
    }

    /// Counts an entry moka removed; only evictions by the bounds count.
    pub(super) fn removed(&self, cause: RemovalCause) {
        match cause {
            RemovalCause::Size => self.table().evicted_by_size.increment(1),
            RemovalCause::Expired => self.table().expired.increment(1),
            RemovalCause::Explicit | RemovalCause::Replaced => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::METRICS;

    #[test]
    fn every_cache_metric_is_in_the_crate_docs_table_and_nothing_else_is() {
        let documented: Vec<&str> = include_str!("../lib.rs")
            .lines()
            .filter_map(|line| line.strip_prefix("//! | `"))
            .filter_map(|row| row.split('`').next())
            .filter(|name| name.starts_with("strata_store_cache_"))
            .collect();
        let recorded: Vec<&str> = METRICS.iter().map(|(name, _)| *name).collect();
        assert_eq!(documented, recorded);
    }
}
