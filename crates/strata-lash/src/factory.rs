//! Factories across the bridge: [`ForLashFactory`] hands the lash runtime Strata stores (for
//! `LashCoreBuilder::store_factory`), [`FromLashFactory`] hands Strata lash stores (so
//! `StoreBuilder::build_factory` layers every handle of, say, `SqliteSessionStoreFactory`).

use std::sync::Arc;

use async_trait::async_trait;
use lash_core as lash;
use strata_core::{RuntimePersistence, SessionStoreFactory, SessionStoreRequest, StoreError};

use crate::mapping as map;
use crate::{ForLash, FromLash};

/// A Strata factory as lash's: each handle is a [`ForLash`] over the Strata handle of the same
/// session. lash's errors here are strings: the Strata error's message.
pub struct ForLashFactory<F: ?Sized> {
    factory: Arc<F>,
}

impl<F: SessionStoreFactory + 'static> ForLashFactory<F> {
    /// Wraps `factory`.
    pub fn new(factory: F) -> Self {
        Self { factory: Arc::new(factory) }
    }
}

impl<F: SessionStoreFactory + ?Sized + 'static> ForLashFactory<F> {
    /// Wraps a shared factory (`Arc<dyn SessionStoreFactory>` included).
    pub fn from_arc(factory: Arc<F>) -> Self {
        Self { factory }
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<F: SessionStoreFactory + ?Sized + 'static> lash::SessionStoreFactory for ForLashFactory<F> {
    fn durability_tier(&self) -> lash::DurabilityTier {
        map::tier_to_lash(self.factory.durability_tier())
    }

    async fn create_store(
        &self,
        request: &lash::SessionStoreCreateRequest,
    ) -> Result<Arc<dyn lash::RuntimePersistence>, String> {
        let store = self
            .factory
            .create_store(SessionStoreRequest::new(request.session_id.clone()))
            .await
            .map_err(|error| error.to_string())?;
        Ok(Arc::new(ForLash::from_arc(store)))
    }

    async fn delete_session(&self, session_id: &str) -> Result<(), String> {
        self.factory.delete_session(session_id).await.map_err(|error| error.to_string())
    }
}

/// A lash factory as Strata's: each handle is a [`FromLash`] over the lash handle of the same
/// session, created as a root session with lash's default policy. lash factories cannot tell
/// whether a session exists or list them: `open_existing_store` and `list_sessions` are
/// [`StoreError::Unsupported`], and lash's string errors arrive as [`StoreError::Backend`].
pub struct FromLashFactory {
    factory: Arc<dyn lash::SessionStoreFactory>,
}

impl FromLashFactory {
    /// Wraps a lash factory.
    pub fn new(factory: Arc<dyn lash::SessionStoreFactory>) -> Self {
        Self { factory }
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl SessionStoreFactory for FromLashFactory {
    fn durability_tier(&self) -> strata_core::DurabilityTier {
        map::tier_to_strata(self.factory.durability_tier())
    }

    async fn create_store(
        &self,
        request: SessionStoreRequest,
    ) -> Result<Arc<dyn RuntimePersistence>, StoreError> {
        let request = lash::SessionStoreCreateRequest {
            session_id: request.session_id,
            relation: lash::SessionRelation::Root,
            policy: lash::SessionPolicy::default(),
        };
        let store = self.factory.create_store(&request).await.map_err(StoreError::Backend)?;
        Ok(Arc::new(FromLash::new(store)))
    }

    async fn open_existing_store(
        &self,
        _session_id: &str,
    ) -> Result<Option<Arc<dyn RuntimePersistence>>, StoreError> {
        Err(StoreError::Unsupported("open_existing_store"))
    }

    async fn delete_session(&self, session_id: &str) -> Result<(), StoreError> {
        self.factory.delete_session(session_id).await.map_err(StoreError::Backend)
    }

    async fn list_sessions(&self) -> Result<Vec<String>, StoreError> {
        Err(StoreError::Unsupported("list_sessions"))
    }
}
