//! [`PostgresConfig`]: where the server is, which schema holds Strata's tables, how large the
//! pool is, where time comes from, the input limits, and (feature `tls`) TLS.

use std::fmt;
use std::time::Duration;

use strata_core::{SharedClock, StoreError};

/// Default schema of Strata's tables.
pub const DEFAULT_SCHEMA: &str = "strata";

/// How a [`PostgresStoreFactory`](crate::PostgresStoreFactory) connects and what it accepts.
///
/// ```
/// use std::time::Duration;
/// use strata_postgres::PostgresConfig;
///
/// let config = PostgresConfig::new("postgres://strata@db.internal/agents")
///     .with_schema("runtime")
///     .with_max_connections(32)
///     .with_wait_timeout(Duration::from_secs(2));
/// assert_eq!(config.schema(), "runtime");
/// ```
#[derive(Clone)]
pub struct PostgresConfig {
    pub(crate) url: String,
    pub(crate) schema: String,
    pub(crate) max_connections: usize,
    pub(crate) wait_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) clock: Option<SharedClock>,
    pub(crate) limits: Limits,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::tls::TlsOptions>,
}

/// Input limits checked before anything is sent (a value over a limit is
/// [`StoreError::InvalidInput`] and applies nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest id (session, node, turn, batch, attachment, owner…) in bytes. Default 1024;
    /// PostgreSQL's b-tree indexes cannot hold keys much above 2.7 KB.
    pub max_id_bytes: usize,
    /// Largest single opaque value (node payload, config, blob, queue item…) in bytes.
    /// Default 64 MiB; PostgreSQL's hard limit for one value is 1 GB.
    pub max_value_bytes: usize,
    /// Largest total of opaque bytes in one call (a commit's nodes, frames and checkpoint, an
    /// enqueue's items). Default 256 MiB; one protocol message cannot exceed 1 GB.
    pub max_call_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_id_bytes: 1024, max_value_bytes: 64 << 20, max_call_bytes: 256 << 20 }
    }
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password: show only what follows the last '@'.
        let server = self.url.rsplit('@').next().unwrap_or_default();
        let mut debug = f.debug_struct("PostgresConfig");
        debug
            .field("server", &server)
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .field("wait_timeout", &self.wait_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("clock", &self.clock.as_ref().map_or("database", |_| "injected"))
            .field("limits", &self.limits);
        #[cfg(feature = "tls")]
        debug.field("tls", &self.tls.is_some());
        debug.finish()
    }
}

impl PostgresConfig {
    /// A configuration for the server at `url` (`postgres://user:password@host:port/db?…`,
    /// or the key-value form `host=… user=… dbname=…`; libpq's parameters such as
    /// `target_session_attrs=read-write` and several comma-separated hosts are understood).
    /// Defaults: schema `strata`, 16 connections, 5 s to wait for a connection or to connect,
    /// the database clock, [`Limits::default`], no TLS.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: DEFAULT_SCHEMA.to_owned(),
            max_connections: 16,
            wait_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            clock: None,
            limits: Limits::default(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// The schema that holds Strata's tables (created and migrated at connect). Must be a
    /// plain lower-case SQL identifier (`[a-z_][a-z0-9_]*`, at most 50 bytes).
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// The schema name.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Pool size: connections this process opens at most (default 16). Across a fleet, the
    /// sum over hosts must stay below the server's `max_connections`.
    pub fn with_max_connections(mut self, max_connections: usize) -> Self {
        self.max_connections = max_connections.max(1);
        self
    }

    /// How long a call waits for a free pooled connection before failing with
    /// [`StoreError::NotApplied`] (default 5 s).
    pub fn with_wait_timeout(mut self, timeout: Duration) -> Self {
        self.wait_timeout = timeout;
        self
    }

    /// How long opening one connection may take (default 5 s).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Takes "now" from `clock` instead of the database clock (tests that move time with a
    /// [`ManualClock`](strata_core::ManualClock)). In a fleet leave it unset: host clocks
    /// disagree, the database clock is one clock for every host.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Replaces the input limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Connects with TLS (feature `tls`): see [`TlsOptions`](crate::TlsOptions).
    #[cfg(feature = "tls")]
    pub fn with_tls(mut self, tls: crate::tls::TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Parses the URL and checks the schema name.
    pub(crate) fn pg_config(&self) -> Result<tokio_postgres::Config, StoreError> {
        validate_schema(&self.schema)?;
        let mut config: tokio_postgres::Config = self.url.parse().map_err(|error| {
            StoreError::InvalidInput(format!("PostgreSQL connection URL: {error}"))
        })?;
        // Every statement names tables unqualified; the schema is the connection's search
        // path. The setting is appended to any options the URL carries.
        let options = match config.get_options() {
            Some(existing) => format!("{existing} -c search_path={}", self.schema),
            None => format!("-c search_path={}", self.schema),
        };
        config.options(&options);
        if config.get_application_name().is_none() {
            config.application_name("strata");
        }
        config.connect_timeout(self.connect_timeout);
        Ok(config)
    }
}

/// Longest schema name: the queue's notification channel `<schema>_queued_work` must fit
/// PostgreSQL's 63-byte identifiers.
const MAX_SCHEMA_BYTES: usize = 50;

fn validate_schema(schema: &str) -> Result<(), StoreError> {
    let mut chars = schema.chars();
    let valid = schema.len() <= MAX_SCHEMA_BYTES
        && chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(StoreError::InvalidInput(format!(
            "schema name {schema:?} must match [a-z_][a-z0-9_]* and be at most {MAX_SCHEMA_BYTES} bytes"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for good in ["strata", "_x", "a1_b"] {
            assert!(validate_schema(good).is_ok(), "{good}");
        }
        for bad in ["", "1a", "Strata", "a-b", "a b", "a;drop", &"x".repeat(51)] {
            assert!(validate_schema(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_url_gets_the_search_path_and_debug_hides_the_password() {
        let config = PostgresConfig::new(
            "postgres://u:secret@localhost:5432/db?options=-c%20statement_timeout%3D5s",
        )
        .with_schema("s1");
        let pg = config.pg_config().unwrap();
        assert_eq!(pg.get_options(), Some("-c statement_timeout=5s -c search_path=s1"));
        let debug = format!("{config:?}");
        assert!(!debug.contains("secret"), "{debug}");
    }
}
