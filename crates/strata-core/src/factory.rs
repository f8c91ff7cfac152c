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

/// A shared factory is a factory: `Arc<F>`, `Arc<dyn SessionStoreFactory>` included, can be
/// layered (`StoreBuilder::build_factory`) and passed wherever a factory is taken, so a stack
/// chosen at run time is built by wrapping one type-erased factory in another. Every method is
/// forwarded, provided ones included.
#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<F: SessionStoreFactory + ?Sized> SessionStoreFactory for Arc<F> {
    fn durability_tier(&self) -> DurabilityTier {
        (**self).durability_tier()
    }

    async fn create_store(
        &self,
        request: SessionStoreRequest,
    ) -> Result<Arc<dyn RuntimePersistence>, StoreError> {
        (**self).create_store(request).await
    }

    async fn open_existing_store(
        &self,
        session_id: &str,
    ) -> Result<Option<Arc<dyn RuntimePersistence>>, StoreError> {
        (**self).open_existing_store(session_id).await
    }

    async fn delete_session(&self, session_id: &str) -> Result<(), StoreError> {
        (**self).delete_session(session_id).await
    }

    async fn list_sessions(&self) -> Result<Vec<String>, StoreError> {
        (**self).list_sessions().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{PassThrough, StoreBuilder};

    /// Answers every call with an error naming the call, so forwarding is visible.
    struct Named;

    #[async_trait]
    impl SessionStoreFactory for Named {
        fn durability_tier(&self) -> DurabilityTier {
            DurabilityTier::Durable
        }
        async fn create_store(
            &self,
            request: SessionStoreRequest,
        ) -> Result<Arc<dyn RuntimePersistence>, StoreError> {
            Err(StoreError::Backend(format!("create {}", request.session_id)))
        }
        async fn open_existing_store(
            &self,
            session_id: &str,
        ) -> Result<Option<Arc<dyn RuntimePersistence>>, StoreError> {
            Err(StoreError::Backend(format!("open {session_id}")))
        }
        async fn delete_session(&self, session_id: &str) -> Result<(), StoreError> {
            Err(StoreError::Backend(format!("delete {session_id}")))
        }
        async fn list_sessions(&self) -> Result<Vec<String>, StoreError> {
            Ok(vec!["listed".into()])
        }
    }

    fn backend_error(text: &str) -> StoreError {
        StoreError::Backend(text.into())
    }

    #[test]
    fn a_shared_type_erased_factory_is_a_factory_that_can_be_layered() {
        let shared: Arc<dyn SessionStoreFactory> = Arc::new(Named);
        let layered = StoreBuilder::new().layer(PassThrough::default()).build_factory(shared);
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            assert_eq!(layered.durability_tier(), DurabilityTier::Durable);
            let created = layered.create_store(SessionStoreRequest::new("s")).await;
            assert_eq!(created.err(), Some(backend_error("create s")));
            let opened = layered.open_existing_store("s").await;
            assert_eq!(opened.err(), Some(backend_error("open s")));
            assert_eq!(layered.delete_session("s").await, Err(backend_error("delete s")));
            // A provided method is forwarded too, not answered by its default.
            assert_eq!(layered.list_sessions().await, Ok(vec!["listed".to_owned()]));
        });
    }
}
