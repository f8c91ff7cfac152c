//! [`FileStoreFactory`]: one root directory, one subdirectory per (validated) session id.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use strata_core::{
    DurabilityTier, RuntimePersistence, SessionStoreFactory, SessionStoreRequest, StoreError,
};

use crate::engine::{self, sync_dir};
use crate::ids::validate_id;
use crate::options::FileStoreOptions;
use crate::store::{FileStore, offload};

/// Makes [`FileStore`] handles under one root: session `s` lives in `<root>/<s>/`. Handles of
/// one session share one engine within the process, across factories too (see
/// [`FileStore::open`]); another process opening the same session gets
/// [`StoreError::Locked`].
#[derive(Clone, Debug)]
pub struct FileStoreFactory {
    root: PathBuf,
    options: FileStoreOptions,
}

impl FileStoreFactory {
    /// A factory over `root` (created if missing). No server, no setup.
    pub fn open(root: impl AsRef<Path>, options: FileStoreOptions) -> Result<Self, StoreError> {
        let root = root.as_ref().to_path_buf();
        engine::ensure_dir(&root, options.sync.syncs())?;
        Ok(Self { root, options })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of `session_id`, once the id is known not to escape the root.
    pub fn session_dir(&self, session_id: &str) -> Result<PathBuf, StoreError> {
        validate_id("session id", session_id)?;
        Ok(self.root.join(session_id))
    }

    /// Opens (creating on first use) the store of `session_id`.
    pub fn open_store(&self, session_id: &str) -> Result<FileStore, StoreError> {
        FileStore::open(self.session_dir(session_id)?, self.options.clone())
    }

    fn session_ids(&self) -> Result<Vec<String>, StoreError> {
        let listing = |error| StoreError::io(format!("list {}", self.root.display()), error);
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(&self.root).map_err(listing)? {
            let entry = entry.map_err(listing)?;
            let Ok(name) = entry.file_name().into_string() else { continue };
            if validate_id("session id", &name).is_ok() && engine::store_exists(&entry.path()) {
                ids.push(name);
            }
        }
        ids.sort_unstable();
        Ok(ids)
    }

    /// Removes a session directory, retiring this process's engine of it first, or making sure
    /// (by taking its lock) that no other process has it open.
    fn delete_dir(&self, session_id: &str, dir: &Path) -> Result<(), StoreError> {
        if !dir.exists() {
            return Ok(());
        }
        let error = StoreError::Backend(format!("session {session_id:?} was deleted"));
        let _exclusive = if FileStore::retire(dir, error) {
            None
        } else {
            // Not open here: make sure no other process is using it either.
            Some(engine::take_lock(dir)?)
        };
        std::fs::remove_dir_all(dir)
            .map_err(|error| StoreError::io(format!("delete {}", dir.display()), error))?;
        if self.options.sync.syncs() {
            sync_dir(&self.root)?;
        }
        Ok(())
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl SessionStoreFactory for FileStoreFactory {
    fn durability_tier(&self) -> DurabilityTier {
        self.options.sync.tier()
    }

    async fn create_store(
        &self,
        request: SessionStoreRequest,
    ) -> Result<Arc<dyn RuntimePersistence>, StoreError> {
        let factory = self.clone();
        let store = offload(move || factory.open_store(&request.session_id)).await??;
        Ok(Arc::new(store))
    }

    async fn open_existing_store(
        &self,
        session_id: &str,
    ) -> Result<Option<Arc<dyn RuntimePersistence>>, StoreError> {
        let dir = self.session_dir(session_id)?;
        let options = self.options.clone();
        let store = offload(move || {
            engine::store_exists(&dir).then(|| FileStore::open(dir, options)).transpose()
        })
        .await??;
        Ok(store.map(|store| Arc::new(store) as Arc<dyn RuntimePersistence>))
    }

    /// Deletes the session's directory. Handles still open on it in this process fail from
    /// then on; a later `create_store` starts an empty store.
    async fn delete_session(&self, session_id: &str) -> Result<(), StoreError> {
        let dir = self.session_dir(session_id)?;
        let (factory, session_id) = (self.clone(), session_id.to_owned());
        offload(move || factory.delete_dir(&session_id, &dir)).await?
    }

    /// The subdirectories of the root that hold a store and whose names are valid session
    /// ids (anything else in the root is ignored).
    async fn list_sessions(&self) -> Result<Vec<String>, StoreError> {
        let factory = self.clone();
        offload(move || factory.session_ids()).await?
    }
}
