//! [`ObjectAttachmentStore`]: attachments in object storage through the `object_store` crate
//! (S3, GCS, Azure, a local directory, memory: one API), so a fleet of hosts shares them.
//!
//! # Layout (under an optional prefix)
//!
//! ```text
//! objects/<64 hex>         one attachment: metadata header + bytes (the file store's format)
//! refs/<64 hex>/<32 hex>   one reference (body: the session id)
//! trash/<64 hex>           deleted, not yet purged or restored
//! ```
//!
//! A put is one object put with [`PutMode::Create`], so of two concurrent puts of the same
//! bytes one creates the object and the other gets `AlreadyExists` and returns what is stored.
//! A backend without conditional puts (`NotImplemented`) gets a `head` first and an overwriting
//! put (both writers then store the same bytes; the last one's metadata wins). An object whose
//! header fails its checks is overwritten by the next put of the same bytes. Deletes and
//! restores are `rename` / `rename_if_not_exists` (a copy and a delete on S3: not atomic,
//! but at every moment the bytes exist under the live or the trash name, which is all the
//! sweeper relies on).
//!
//! # Durability
//!
//! The tier is declared by whoever builds the store, since only they know the backend: a
//! cloud object store acknowledges a put once it is durable (`Durable`);
//! `LocalFileSystem::new_with_prefix(dir)?.with_fsync(true)` is `Durable` too (without
//! `with_fsync` it is not: declare `Inline`); `InMemory` is `Inline`.
//!
//! The cloud backends are features of `object_store` itself (`aws`, `gcp`, `azure`): enable
//! the one you use on your own `object_store` dependency and pass its store in.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use strata_core::DurabilityTier;

use crate::encoding;
use crate::error::AttachmentError;
use crate::id::{AttachmentId, IntentId};
use crate::store::AttachmentStore;
use crate::types::*;

/// Attachments in an [`ObjectStore`] (see the module docs).
#[derive(Clone, Debug)]
pub struct ObjectAttachmentStore {
    objects: Arc<dyn ObjectStore>,
    prefix: Path,
    tier: DurabilityTier,
    max_bytes: u64,
}

/// An object-storage error as an [`AttachmentError::Io`] naming the step and path.
fn io_error(
    step: &'static str,
    path: &Path,
) -> impl FnOnce(object_store::Error) -> AttachmentError {
    move |error| AttachmentError::io(format_args!("{step} {path}"), error)
}

fn is_not_found(error: &object_store::Error) -> bool {
    matches!(error, object_store::Error::NotFound { .. })
}

impl ObjectAttachmentStore {
    /// A store over `objects`, whose acknowledged puts have durability `tier`, at the root of
    /// the bucket, with the [`DEFAULT_MAX_BYTES`] payload limit.
    pub fn new(objects: Arc<dyn ObjectStore>, tier: DurabilityTier) -> Self {
        Self { objects, prefix: Path::default(), tier, max_bytes: DEFAULT_MAX_BYTES }
    }

    /// Under `prefix` (e.g. `"attachments"`), so the bucket can hold other things.
    pub fn with_prefix(mut self, prefix: impl Into<Path>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// With a payload limit of `max_bytes`.
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    fn object_path(&self, id: &AttachmentId) -> Path {
        self.prefix.clone().join("objects").join(id.hex())
    }

    fn trash_path(&self, id: &AttachmentId) -> Path {
        self.prefix.clone().join("trash").join(id.hex())
    }

    fn references_dir(&self, id: &AttachmentId) -> Path {
        self.prefix.clone().join("refs").join(id.hex())
    }

    fn reference_path(&self, intent: &IntentId) -> Path {
        self.references_dir(intent.attachment_id()).join(intent.nonce_hex().as_str())
    }

    /// The whole object at `path`, or `None` when missing.
    async fn read(&self, path: &Path) -> Result<Option<Bytes>, AttachmentError> {
        match self.objects.get(path).await {
            Ok(result) => Ok(Some(result.bytes().await.map_err(io_error("read", path))?)),
            Err(error) if is_not_found(&error) => Ok(None),
            Err(error) => Err(io_error("get", path)(error)),
        }
    }

    async fn write(
        &self,
        path: &Path,
        body: Bytes,
        mode: PutMode,
    ) -> Result<(), object_store::Error> {
        let options = PutOptions { mode, ..Default::default() };
        self.objects.put_opts(path, PutPayload::from(body), options).await.map(drop)
    }

    /// Creates `path` unless it exists; returns false when it existed. Uses a conditional put
    /// where the backend has one, else `head` + put.
    async fn create(&self, path: &Path, body: Bytes) -> Result<bool, AttachmentError> {
        match self.write(path, body.clone(), PutMode::Create).await {
            Ok(()) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(object_store::Error::NotImplemented { .. }) => {
                match self.objects.head(path).await {
                    Ok(_) => return Ok(false),
                    Err(error) if is_not_found(&error) => {}
                    Err(error) => return Err(io_error("head", path)(error)),
                }
                self.write(path, body, PutMode::Overwrite).await.map_err(io_error("put", path))?;
                Ok(true)
            }
            Err(error) => Err(io_error("put", path)(error)),
        }
    }

    /// The attachment stored at `path`, checked against `id` (header and content hash).
    async fn read_checked(
        &self,
        path: &Path,
        id: &AttachmentId,
    ) -> Result<Attachment, AttachmentError> {
        let stored =
            self.read(path).await?.ok_or_else(|| AttachmentError::NotFound { id: id.clone() })?;
        encoding::decode(path.as_ref(), id, stored)
    }

    /// Applies `step` to each id, skipping those whose object is missing; returns the ids done.
    async fn each<'a, F, Fut>(
        &'a self,
        ids: &'a [AttachmentId],
        step: F,
    ) -> Result<Vec<AttachmentId>, AttachmentError>
    where
        F: Fn(&'a AttachmentId) -> Fut,
        Fut: std::future::Future<Output = Result<bool, AttachmentError>>,
    {
        let mut done = Vec::new();
        for id in ids {
            if step(id).await? {
                done.push(id.clone());
            }
        }
        Ok(done)
    }
}

#[async_trait]
impl AttachmentStore for ObjectAttachmentStore {
    fn durability_tier(&self) -> DurabilityTier {
        self.tier
    }

    fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    fn uri(&self, id: &AttachmentId) -> String {
        format!("{}/{}", self.objects, self.object_path(id))
    }

    async fn put(
        &self,
        content: Content,
        meta: AttachmentMeta,
    ) -> Result<AttachmentInfo, AttachmentError> {
        let info = check_put(&content, &meta, self.max_bytes)?;
        let path = self.object_path(&info.id);
        let body = encoding::encode(&info, content.bytes());
        if self.create(&path, body.clone()).await? {
            return Ok(info);
        }
        match self.read_checked(&path, &info.id).await {
            Ok(stored) => Ok(stored.info),
            // Damaged, or deleted since the put found it: store these bytes.
            Err(
                AttachmentError::CorruptMetadata { .. }
                | AttachmentError::CorruptContent { .. }
                | AttachmentError::NotFound { .. },
            ) => {
                self.write(&path, body, PutMode::Overwrite)
                    .await
                    .map_err(io_error("put", &path))?;
                Ok(info)
            }
            Err(error) => Err(error),
        }
    }

    async fn get(&self, id: &AttachmentId) -> Result<Attachment, AttachmentError> {
        match self.read_checked(&self.object_path(id), id).await {
            Err(AttachmentError::NotFound { .. }) => {
                self.read_checked(&self.trash_path(id), id).await
            }
            found => found,
        }
    }

    async fn contains(&self, id: &AttachmentId) -> Result<bool, AttachmentError> {
        let path = self.object_path(id);
        match self.objects.head(&path).await {
            Ok(_) => Ok(true),
            Err(error) if is_not_found(&error) => Ok(false),
            Err(error) => Err(io_error("head", &path)(error)),
        }
    }

    async fn delete(&self, ids: &[AttachmentId]) -> Result<Vec<AttachmentId>, AttachmentError> {
        self.each(ids, |id| async move {
            let (from, to) = (self.object_path(id), self.trash_path(id));
            match self.objects.rename(&from, &to).await {
                Ok(()) => Ok(true),
                Err(error) if is_not_found(&error) => Ok(false),
                Err(error) => Err(io_error("move to trash", &from)(error)),
            }
        })
        .await
    }

    async fn restore(&self, ids: &[AttachmentId]) -> Result<Vec<AttachmentId>, AttachmentError> {
        self.each(ids, |id| async move {
            let (from, to) = (self.trash_path(id), self.object_path(id));
            match self.objects.rename_if_not_exists(&from, &to).await {
                Ok(()) => Ok(true),
                Err(error) if is_not_found(&error) => Ok(false),
                // Stored again meanwhile: that copy stays.
                Err(object_store::Error::AlreadyExists { .. }) => {
                    match self.objects.delete(&from).await {
                        Ok(()) => Ok(true),
                        Err(error) if is_not_found(&error) => Ok(false),
                        Err(error) => Err(io_error("delete", &from)(error)),
                    }
                }
                Err(
                    object_store::Error::NotImplemented { .. }
                    | object_store::Error::NotSupported { .. },
                ) => match self.objects.rename(&from, &to).await {
                    Ok(()) => Ok(true),
                    Err(error) if is_not_found(&error) => Ok(false),
                    Err(error) => Err(io_error("restore", &from)(error)),
                },
                Err(error) => Err(io_error("restore", &from)(error)),
            }
        })
        .await
    }

    async fn purge(&self, ids: &[AttachmentId]) -> Result<Vec<AttachmentId>, AttachmentError> {
        self.each(ids, |id| async move {
            let path = self.trash_path(id);
            // Some backends (S3, memory) report deleting a missing object as success.
            match self.objects.head(&path).await {
                Ok(_) => {}
                Err(error) if is_not_found(&error) => return Ok(false),
                Err(error) => return Err(io_error("head", &path)(error)),
            }
            match self.objects.delete(&path).await {
                Ok(()) => Ok(true),
                Err(error) if is_not_found(&error) => Ok(false),
                Err(error) => Err(io_error("delete", &path)(error)),
            }
        })
        .await
    }

    async fn trashed(&self) -> Result<Vec<AttachmentId>, AttachmentError> {
        let dir = self.prefix.clone().join("trash");
        let listed: Vec<_> =
            self.objects.list(Some(&dir)).try_collect().await.map_err(io_error("list", &dir))?;
        Ok(listed
            .iter()
            .filter_map(|meta| {
                meta.location.filename().and_then(|name| AttachmentId::from_hex(name).ok())
            })
            .collect())
    }

    async fn add_reference(&self, reference: &AttachmentReference) -> Result<(), AttachmentError> {
        let path = self.reference_path(&reference.intent_id);
        self.create(&path, Bytes::from(reference.session_id.clone())).await.map(drop)
    }

    async fn references(
        &self,
        id: &AttachmentId,
    ) -> Result<Vec<AttachmentReference>, AttachmentError> {
        let dir = self.references_dir(id);
        let listed: Vec<_> =
            self.objects.list(Some(&dir)).try_collect().await.map_err(io_error("list", &dir))?;
        let mut references = Vec::with_capacity(listed.len());
        for meta in listed {
            let Some(intent_id) = meta
                .location
                .filename()
                .and_then(|nonce| IntentId::from_nonce_hex(id.clone(), nonce))
            else {
                continue;
            };
            // Removed meanwhile by a sweep: skip it.
            let Some(session) = self.read(&meta.location).await? else { continue };
            let session_id = String::from_utf8(session.to_vec()).map_err(|_| {
                AttachmentError::CorruptMetadata {
                    location: meta.location.to_string(),
                    detail: "the reference's session id is not UTF-8".to_owned(),
                }
            })?;
            references.push(AttachmentReference { intent_id, session_id });
        }
        Ok(references)
    }

    async fn remove_references(
        &self,
        references: &[AttachmentReference],
    ) -> Result<(), AttachmentError> {
        for reference in references {
            let path = self.reference_path(&reference.intent_id);
            match self.objects.delete(&path).await {
                Ok(()) => {}
                Err(error) if is_not_found(&error) => {}
                Err(error) => return Err(io_error("delete", &path)(error)),
            }
        }
        Ok(())
    }
}
