//! [`PostgresStoreFactory`]: the connection pool, the schema, the durability tier, and one
//! [`PostgresStore`] handle per session.

use std::fmt;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use deadpool_postgres::{
    ClientWrapper, HookError, Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime,
};
use strata_core::{
    DurabilityTier, RuntimePersistence, SessionStoreFactory, SessionStoreRequest, SharedClock,
    StoreError,
};
use tokio_postgres::NoTls;

use crate::codec::saturating;
use crate::config::{Limits, PostgresConfig};
use crate::error::{Phase, classify, pool_error};
use crate::listen::QueueListener;
use crate::schema;
use crate::sql::{self, Step, Tx};
use crate::store::PostgresStore;

/// How connections are encrypted.
#[derive(Clone)]
pub(crate) enum Connector {
    Plain,
    #[cfg(feature = "tls")]
    Tls(tokio_postgres_rustls::MakeRustlsConnect),
}

/// What every handle of one factory shares.
pub(crate) struct Shared {
    pub(crate) pool: Pool,
    pub(crate) pg_config: tokio_postgres::Config,
    pub(crate) connector: Connector,
    pub(crate) clock: Option<SharedClock>,
    pub(crate) tier: DurabilityTier,
    pub(crate) limits: Limits,
    pub(crate) schema: String,
}

impl Shared {
    /// A pooled connection; failing to get one proves nothing was sent.
    pub(crate) async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }

    /// The `injected` argument of `strata_now_ms`: the injected clock's time, or `NULL` for
    /// the database clock.
    pub(crate) fn now_param(&self) -> Option<i64> {
        self.clock.as_ref().map(|clock| saturating(clock.now_ms()))
    }

    /// The LISTEN/NOTIFY channel of this schema's queue.
    pub(crate) fn channel(&self) -> String {
        format!("{}_queued_work", self.schema)
    }

    /// Rejects an id this backend cannot store (empty, NUL, over the length limit).
    pub(crate) fn check_id(&self, what: &str, id: &str) -> Result<(), StoreError> {
        if id.is_empty() {
            return Err(StoreError::InvalidInput(format!("{what} is empty")));
        }
        if !self.storable(id) {
            return Err(StoreError::InvalidInput(format!(
                "{what} {:?}… is over {} bytes or contains NUL",
                id.chars().take(40).collect::<String>(),
                self.limits.max_id_bytes
            )));
        }
        Ok(())
    }

    /// Whether a string could have been stored as an id (used to skip lookups that cannot
    /// match, so that the server never sees a value it would refuse).
    pub(crate) fn storable(&self, id: &str) -> bool {
        id.len() <= self.limits.max_id_bytes && !id.contains('\0')
    }
}

/// The durability the server gives this connection's commits: `Durable` only when a commit
/// waits for the WAL flush (`synchronous_commit` not `off`) and the server fsyncs (`fsync` on).
async fn durability_of(
    client: &tokio_postgres::Client,
) -> Result<DurabilityTier, tokio_postgres::Error> {
    let row = client
        .query_one("SELECT current_setting('synchronous_commit'), current_setting('fsync')", &[])
        .await?;
    let synchronous_commit: &str = row.get(0);
    let fsync: &str = row.get(1);
    Ok(if synchronous_commit != "off" && fsync == "on" {
        DurabilityTier::Durable
    } else {
        DurabilityTier::Inline
    })
}

/// Makes [`PostgresStore`] handles over one connection pool and one schema.
///
/// Each session's state is a *store* named by the session id; every handle of one session, on
/// this host or another, shares it. Cloning the factory shares the pool.
#[derive(Clone)]
pub struct PostgresStoreFactory {
    shared: Arc<Shared>,
}

impl fmt::Debug for PostgresStoreFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStoreFactory")
            .field("schema", &self.shared.schema)
            .field("tier", &self.shared.tier)
            .field("pool", &self.shared.pool.status())
            .finish()
    }
}

impl PostgresStoreFactory {
    /// Connects: builds the pool, opens a first connection, reads the server's durability
    /// settings, and creates or migrates the schema. Fails with
    /// [`StoreError::UnsupportedRecordSchemaVersion`] when the schema was written by a newer
    /// build, and with [`StoreError::NotApplied`] when no connection can be made.
    ///
    /// Every later connection of the pool is checked to give the same durability as the first;
    /// one that does not is refused, so the declared tier holds for the factory's lifetime.
    pub async fn connect(config: PostgresConfig) -> Result<Self, StoreError> {
        let pg_config = config.pg_config()?;
        let connector = connector(&config)?;
        let manager_config = ManagerConfig { recycling_method: RecyclingMethod::Fast };
        let manager = match &connector {
            Connector::Plain => Manager::from_config(pg_config.clone(), NoTls, manager_config),
            #[cfg(feature = "tls")]
            Connector::Tls(tls) => {
                Manager::from_config(pg_config.clone(), tls.clone(), manager_config)
            }
        };
        let first_tier = Arc::new(OnceLock::new());
        let hook_tier = Arc::clone(&first_tier);
        let pool = Pool::builder(manager)
            .max_size(config.max_connections)
            .wait_timeout(Some(config.wait_timeout))
            .create_timeout(Some(config.connect_timeout))
            .runtime(Runtime::Tokio1)
            .post_create(deadpool_postgres::Hook::async_fn(move |client: &mut ClientWrapper, _| {
                let hook_tier = Arc::clone(&hook_tier);
                Box::pin(async move {
                    let tier = durability_of(client).await.map_err(HookError::Backend)?;
                    if *hook_tier.get_or_init(|| tier) == tier {
                        Ok(())
                    } else {
                        Err(HookError::message(format!(
                            "this connection's commits are {tier:?}, the pool's first were not: \
                             synchronous_commit or fsync changed"
                        )))
                    }
                })
            }))
            .build()
            .map_err(|error| {
                StoreError::Backend(format!("building the connection pool: {error}"))
            })?;
        let mut client = pool.get().await.map_err(pool_error)?;
        schema::migrate(&mut client, &config.schema).await?;
        let tier = *first_tier.get().expect("the first connection's hook recorded its tier");
        drop(client);
        Ok(Self {
            shared: Arc::new(Shared {
                pool,
                pg_config,
                connector,
                clock: config.clock,
                tier,
                limits: config.limits,
                schema: config.schema,
            }),
        })
    }

    /// The schema holding this factory's tables.
    pub fn schema(&self) -> &str {
        &self.shared.schema
    }

    /// Opens the store named `store_id` (for a session: its session id), creating it on first
    /// use. Handles of one store share its state, across hosts too.
    pub async fn open_store(&self, store_id: &str) -> Result<PostgresStore, StoreError> {
        self.shared.check_id("store id", store_id)?;
        let client = self.shared.client().await?;
        sql::query(
            &client,
            "WITH registered AS (
                 INSERT INTO strata_stores (store_id) VALUES ($1) ON CONFLICT DO NOTHING
             )
             INSERT INTO strata_heads (store_id, revision) VALUES ($1, 0) ON CONFLICT DO NOTHING",
            vec![&store_id],
            Phase::Commit,
        )
        .await?;
        Ok(PostgresStore::new(Arc::clone(&self.shared), store_id))
    }

    /// A listener woken whenever queued work is enqueued in this schema (LISTEN/NOTIFY on a
    /// dedicated connection outside the pool): see [`QueueListener`].
    pub async fn queue_listener(&self) -> Result<QueueListener, StoreError> {
        QueueListener::connect(&self.shared).await
    }

    async fn exists(&self, store_id: &str) -> Result<bool, StoreError> {
        if !self.shared.storable(store_id) {
            return Ok(false);
        }
        let client = self.shared.client().await?;
        let rows = sql::query(
            &client,
            "SELECT 1 FROM strata_stores WHERE store_id = $1",
            vec![&store_id],
            Phase::Read,
        )
        .await?;
        Ok(!rows.is_empty())
    }
}

/// Every table holding a store's rows; `strata_stores` last.
const STORE_TABLES: &[&str] = &[
    "DELETE FROM strata_nodes WHERE store_id = $1",
    "DELETE FROM strata_blobs WHERE store_id = $1",
    "DELETE FROM strata_usage WHERE store_id = $1",
    "DELETE FROM strata_turn_stamps WHERE store_id = $1",
    "DELETE FROM strata_session_meta WHERE store_id = $1",
    "DELETE FROM strata_batches WHERE store_id = $1",
    "DELETE FROM strata_attachments WHERE store_id = $1",
    "DELETE FROM strata_heads WHERE store_id = $1",
    "DELETE FROM strata_stores WHERE store_id = $1",
];

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl SessionStoreFactory for PostgresStoreFactory {
    fn durability_tier(&self) -> DurabilityTier {
        self.shared.tier
    }

    async fn create_store(
        &self,
        request: SessionStoreRequest,
    ) -> Result<Arc<dyn RuntimePersistence>, StoreError> {
        Ok(Arc::new(self.open_store(&request.session_id).await?))
    }

    async fn open_existing_store(
        &self,
        session_id: &str,
    ) -> Result<Option<Arc<dyn RuntimePersistence>>, StoreError> {
        Ok(self
            .exists(session_id)
            .await?
            .then(|| Arc::new(PostgresStore::new(Arc::clone(&self.shared), session_id)) as _))
    }

    /// Deletes every row of the session's store in one transaction (after the head's row lock,
    /// so a commit in flight finishes first). Handles still open fail their writes from then
    /// on; a later `create_store` starts an empty store.
    async fn delete_session(&self, session_id: &str) -> Result<(), StoreError> {
        if !self.shared.storable(session_id) {
            return Ok(());
        }
        let mut transaction = Tx::write(self.shared.client().await?);
        let lock = Step::new(
            "SELECT 1 FROM strata_heads WHERE store_id = $1 FOR UPDATE",
            vec![&session_id],
        );
        let mut steps = vec![lock];
        steps.extend(STORE_TABLES.iter().map(|sql| Step::new(sql, vec![&session_id as _])));
        transaction.commit(&steps).await?;
        Ok(())
    }

    async fn list_sessions(&self) -> Result<Vec<String>, StoreError> {
        let client = self.shared.client().await?;
        let rows =
            sql::query(&client, "SELECT store_id FROM strata_stores", vec![], Phase::Read).await?;
        let mut ids = rows
            .iter()
            .map(|row| row.try_get::<_, String>(0).map_err(|error| classify(&error, Phase::Read)))
            .collect::<Result<Vec<_>, _>>()?;
        ids.sort_unstable();
        Ok(ids)
    }
}

fn connector(config: &PostgresConfig) -> Result<Connector, StoreError> {
    #[cfg(feature = "tls")]
    if let Some(tls) = &config.tls {
        return Ok(Connector::Tls(tls.connector()?));
    }
    let _ = config;
    Ok(Connector::Plain)
}
