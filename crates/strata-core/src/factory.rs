//! [`SessionStoreFactory`]: makes one store handle per session (`docs/contract.md` §9).

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::store::RuntimePersistence;
use crate::types::DurabilityTier;

/// What to open with [`SessionStoreFactory::create_store`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionStoreRequest {
    /// The session whose store to create or reopen.
    pub session_id: String,
}

impl SessionStoreRequest {
    /// A request for `session_id`.
    pub fn new(session_id: impl Into<String>) -> Self {
        Self { session_id: session_id.into() }
    }
}

/// Makes store handles per session. Every handle of one session shares one durable state,
/// also when opened several times concurrently.
#[async_trait]
pub trait SessionStoreFactory: Send + Sync {
    /// The tier of every store this factory makes.
    fn durability_tier(&self) -> DurabilityTier;

    /// Creates the session's store on first use, reopens it after.
    async fn create_store(
        &self,
        request: SessionStoreRequest,
    ) -> Result<Arc<dyn RuntimePersistence>, StoreError>;

    /// The session's store, or `None` if it never existed.
    async fn open_existing_store(
        &self,
        session_id: &str,
    ) -> Result<Option<Arc<dyn RuntimePersistence>>, StoreError>;

    /// Deletes the session's durable state; idempotent.
    async fn delete_session(&self, session_id: &str) -> Result<(), StoreError>;

    /// The ids of every session this factory holds (created and not deleted), sorted. Used by
    /// tools that look across sessions (the orphan-attachment sweeper, `strata inspect`).
    /// Default: a loud [`StoreError::Unsupported`]; every factory of this project lists.
    async fn list_sessions(&self) -> Result<Vec<String>, StoreError> {
        Err(StoreError::Unsupported("list_sessions"))
    }
}
