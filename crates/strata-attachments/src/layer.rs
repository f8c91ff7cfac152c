//! [`AttachmentLayer`]: the attachment wrapper as a `RuntimePersistence` decorator. It hands out
//! each session's [`SessionScopedAttachmentStore`] and adds that session's pending attachment
//! ids to the session's next commit.
//!
//! # Shape, and why
//!
//! A stack built over `Arc<dyn RuntimePersistence>` (every layered factory) loses its concrete
//! types, so a runtime cannot downcast a handle to reach "its" attachment store. Instead the
//! layer value itself (cheap to clone, state shared behind an `Arc`) is the way in:
//!
//! - [`Layer::layer_session`] (called by `LayeredFactory` and `StoreBuilder::build_for_session`)
//!   tells the layer which session a handle belongs to; the layer remembers a weak reference to
//!   the handle's inner store as that session's manifest.
//! - [`AttachmentLayer::scoped`] returns the session's scoped store. Its puts go to the
//!   session's [`PendingIds`], kept in the layer's shared state and shared by every handle and
//!   scoped store of the session.
//! - Each wrapped handle adds the pending ids of a commit's session to its
//!   `committed_attachment_ids` (the store stamps them in the commit's transaction). Once the
//!   commit succeeds it calls `commit_refs` for the same ids (a no-op for rows the commit
//!   stamped; it stamps them when a stamped retry was answered from its stored result and so
//!   applied nothing) and marks them committed. When the commit fails (or its future is
//!   dropped) they stay pending and ride on the next commit, a retry included: stamping a row
//!   twice keeps the first stamp.
//!
//! The turn stamp's hash is the runtime's, computed before the ids are added; the store
//! compares it verbatim, so a retried stamped commit still matches.
//!
//! # Where it goes
//!
//! Outermost (add it first): the layers inside it (tracing, metrics, retry, timeout) then see
//! and retry the commit with its attachment ids. A scoped store records intents through the
//! store *inside* this layer.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use strata_core::{
    Around, AttachmentManifest, Decorated, Layer, Request, Response, Serve, SharedClock,
    StoreError, SystemClock,
};

use crate::error::AttachmentError;
use crate::scoped::{PendingIds, SessionScopedAttachmentStore};
use crate::store::AttachmentStore;

/// The attachment decorator (see the module docs). Clones share one state.
#[derive(Clone)]
pub struct AttachmentLayer {
    shared: Arc<Shared>,
}

struct Shared {
    store: Arc<dyn AttachmentStore>,
    clock: SharedClock,
    sessions: Mutex<HashMap<String, Session>>,
}

/// What the layer knows about one session.
#[derive(Default)]
struct Session {
    pending: PendingIds,
    manifests: Vec<Weak<dyn AttachmentManifest>>,
}

impl Session {
    fn manifest(&self) -> Option<Arc<dyn AttachmentManifest>> {
        self.manifests.iter().find_map(Weak::upgrade)
    }

    /// Still needed: a live handle, pending ids, or a scoped store holding the pending set.
    fn in_use(&mut self) -> bool {
        self.manifests.retain(|manifest| manifest.strong_count() > 0);
        !self.manifests.is_empty() || !self.pending.is_empty() || self.pending.is_shared()
    }
}

impl fmt::Debug for AttachmentLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("attachments")
    }
}

impl AttachmentLayer {
    /// A layer writing attachments to `store`, with intent times from the system clock.
    pub fn new(store: Arc<dyn AttachmentStore>) -> Self {
        Self::with_clock(store, Arc::new(SystemClock))
    }

    /// A layer writing attachments to `store`, with intent times from `clock` (use the clock
    /// the sweeper uses).
    pub fn with_clock(store: Arc<dyn AttachmentStore>, clock: SharedClock) -> Self {
        Self { shared: Arc::new(Shared { store, clock, sessions: Mutex::default() }) }
    }

    /// The attachment store.
    pub fn store(&self) -> &Arc<dyn AttachmentStore> {
        &self.shared.store
    }

    fn sessions(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        self.shared.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The pending ids of `session_id`, if the layer has seen it.
    fn pending(&self, session_id: &str) -> Option<PendingIds> {
        self.sessions().get(session_id).map(|session| session.pending.clone())
    }

    /// The scoped attachment store of `session_id`, which must have a live handle layered by
    /// this layer with its session known ([`AttachmentError::SessionNotOpen`] otherwise).
    pub fn scoped(
        &self,
        session_id: &str,
    ) -> Result<SessionScopedAttachmentStore, AttachmentError> {
        let sessions = self.sessions();
        let session = sessions.get(session_id);
        let manifest = session
            .and_then(Session::manifest)
            .ok_or_else(|| AttachmentError::SessionNotOpen { session_id: session_id.to_owned() })?;
        let pending = session.expect("found above").pending.clone();
        Ok(SessionScopedAttachmentStore::sharing(
            session_id.to_owned(),
            Arc::clone(&self.shared.store),
            manifest,
            Arc::clone(&self.shared.clock),
            pending,
        ))
    }

    /// The ids `session_id`'s next commit will carry.
    pub fn pending_ids(&self, session_id: &str) -> Vec<String> {
        self.pending(session_id).map(|pending| pending.snapshot()).unwrap_or_default()
    }

    fn register(&self, session_id: &str, manifest: Weak<dyn AttachmentManifest>) {
        let mut sessions = self.sessions();
        sessions.retain(|_, session| session.in_use());
        sessions.entry(session_id.to_owned()).or_default().manifests.push(manifest);
    }

    fn wrap<S: Serve + 'static>(&self, inner: Arc<S>) -> Decorated<Arc<S>, AddPendingAttachments> {
        Decorated::new(inner, AddPendingAttachments { layer: self.clone() })
    }
}

/// Wraps any store; a handle layered with its session (`layer_session`) is reachable by
/// [`AttachmentLayer::scoped`].
impl<S: Serve + 'static> Layer<S> for AttachmentLayer {
    type Store = Decorated<Arc<S>, AddPendingAttachments>;

    fn layer(&self, inner: S) -> Self::Store {
        self.wrap(Arc::new(inner))
    }

    fn layer_session(&self, session_id: &str, inner: S) -> Self::Store {
        let inner = Arc::new(inner);
        let manifest: Weak<dyn AttachmentManifest> = Arc::downgrade(&inner) as Weak<S>;
        self.register(session_id, manifest);
        self.wrap(inner)
    }
}

/// The behaviour of an [`AttachmentLayer`] around each call: commits carry their session's
/// pending attachment ids; every other call passes through.
#[derive(Clone)]
pub struct AddPendingAttachments {
    layer: AttachmentLayer,
}

impl fmt::Debug for AddPendingAttachments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("attachments")
    }
}

impl Around for AddPendingAttachments {
    async fn around<'a, S>(
        &'a self,
        inner: &'a S,
        request: Request<'a>,
    ) -> Result<Response, StoreError>
    where
        S: Serve + ?Sized + 'a,
    {
        let Request::CommitRuntimeState { mut commit } = request else {
            return inner.serve(request).await;
        };
        let pending = self.layer.pending(&commit.session_id).unwrap_or_default();
        let ids = pending.snapshot();
        if ids.is_empty() {
            return inner.serve(Request::CommitRuntimeState { commit }).await;
        }
        let session_id = commit.session_id.clone();
        let committed = &mut Arc::make_mut(&mut commit).committed_attachment_ids;
        for id in &ids {
            if !committed.contains(id) {
                committed.push(id.clone());
            }
        }
        let response = inner.serve(Request::CommitRuntimeState { commit }).await?;
        let stamp = Request::CommitRefs { session_id: &session_id, attachment_ids: &ids };
        match inner.serve(stamp).await {
            Ok(_) => pending.committed(&ids),
            // The commit stood; the ids stay pending and ride on the next commit.
            Err(error) => tracing::warn!(
                %session_id, pending = ids.len(), %error,
                "commit_refs after a successful commit failed; attachment ids stay pending"
            ),
        }
        Ok(response)
    }
}
