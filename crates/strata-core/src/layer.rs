//! Composition: [`Layer`], the [`StoreBuilder`] that stacks layers, and [`Around`] +
//! [`Decorated`], which serves a store's calls through a decorator that acts around them.
//!
//! # The ordering rule
//!
//! **The first layer added is the outermost**, exactly as tower's `ServiceBuilder`: a call
//! enters the first layer, then the second, …, then the store. The built stack's `Debug` prints
//! the resolved order, outermost first.
//!
//! ```
//! use strata_core::{PassThrough, StoreBuilder};
//! # #[derive(Debug)] struct Backend;
//! # strata_core::noop_attachment_manifest!(Backend);
//! # #[async_trait::async_trait]
//! # impl strata_core::RuntimePersistence for Backend {
//! #   async fn load_session(&self, _: strata_core::SessionReadScope) -> Result<Option<strata_core::PersistedSessionRead>, strata_core::StoreError> { Ok(None) }
//! #   async fn load_node(&self, _: &str) -> Result<Option<strata_core::SessionNodeRecord>, strata_core::StoreError> { Ok(None) }
//! #   async fn commit_runtime_state(&self, _: strata_core::RuntimeCommit) -> Result<strata_core::RuntimeCommitResult, strata_core::StoreError> { Err(strata_core::StoreError::Unsupported("commit_runtime_state")) }
//! #   async fn save_session_meta(&self, _: strata_core::SessionMeta) -> Result<(), strata_core::StoreError> { Ok(()) }
//! #   async fn load_session_meta(&self) -> Result<Option<strata_core::SessionMeta>, strata_core::StoreError> { Ok(None) }
//! #   async fn tombstone_nodes(&self, _: &[String]) -> Result<(), strata_core::StoreError> { Ok(()) }
//! #   async fn vacuum(&self) -> Result<strata_core::VacuumReport, strata_core::StoreError> { Ok(Default::default()) }
//! #   async fn gc_unreachable(&self) -> Result<strata_core::GcReport, strata_core::StoreError> { Ok(Default::default()) }
//! # }
//! let builder = StoreBuilder::new()
//!     .layer(PassThrough::named("outer"))
//!     .layer(PassThrough::named("inner"));
//! assert_eq!(format!("{builder:?}"), "StoreBuilder[outer → inner]");
//! // `Backend` implements `RuntimePersistence` directly, so it is layered behind an `Arc`.
//! let store = builder.build(std::sync::Arc::new(Backend));
//! assert_eq!(format!("{store:?}"), "outer → inner → Backend");
//! ```
//!
//! # Writing an around-decorator
//!
//! Implement [`Around`]: one async function that receives the inner store and the call as a
//! [`Request`], and returns the [`Response`]. [`Decorated`] serves every trait method (provided ones included) through it
//! via [`Serve`], the single place the methods are forwarded, so a new trait method is one edit
//! in [`crate::call`], not one per decorator.
//!
//! Layers wrap any [`Serve`] store: Strata's backends, already decorated stores, and `Arc<T>`
//! or `Box<T>` of any [`RuntimePersistence`]. The inner store is called through
//! [`Serve::serve`] directly, so a static stack pays no boxed future and no argument
//! conversion per layer; a store that implements [`RuntimePersistence`] itself is layered as
//! `Arc::new(store)`. Any
//! `Around + Clone` value is a [`Layer`]; clone it cheaply (share state behind an `Arc`) so
//! every store it wraps shares one table, one limiter, one breaker.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;

use crate::call::{Request, Response};
use crate::error::StoreError;
use crate::factory::{SessionStoreFactory, SessionStoreRequest};
use crate::store::{RuntimePersistence, Serve};
use crate::types::DurabilityTier;

/// Turns a store into a wrapped store (the tower shape).
pub trait Layer<S> {
    /// The wrapped store.
    type Store;
    /// Wraps `inner`.
    fn layer(&self, inner: S) -> Self::Store;
    /// Wraps `inner`, the handle of `session_id`. A [`LayeredFactory`] (and
    /// [`StoreBuilder::build_for_session`]) call this, so a layer that keeps per-session state
    /// (a cache shared by every handle of a session, the session's attachment scope) can key
    /// it by session. Default: [`layer`](Self::layer).
    fn layer_session(&self, session_id: &str, inner: S) -> Self::Store {
        let _ = session_id;
        self.layer(inner)
    }
    /// Told that `session_id`'s durable state was deleted, so that per-session state kept
    /// for [`layer_session`](Self::layer_session) (a cache shared by the session's handles)
    /// is dropped and handles opened afterwards start afresh. [`LayeredFactory`] calls it
    /// after the inner factory's `delete_session`, whatever that returned. Default: nothing.
    fn forget_session(&self, session_id: &str) {
        let _ = session_id;
    }
}

/// Behaviour around every async trait call of the store it wraps.
///
/// Implementations must return the inner store's error variants unchanged (or wrap them in a
/// decorator variant such as `RetriesExhausted`), and must leave their own state consistent if
/// the returned future is dropped mid-call.
pub trait Around: fmt::Debug + Send + Sync {
    /// Performs `request` against `inner` (usually `inner.serve(request)`) with this
    /// decorator's behaviour around it.
    fn around<'a, S>(
        &'a self,
        inner: &'a S,
        request: Request<'a>,
    ) -> impl Future<Output = Result<Response, StoreError>> + Send + 'a
    where
        S: Serve + ?Sized + 'a;
}

impl<S: Serve, A: Around + Clone> Layer<S> for A {
    type Store = Decorated<S, A>;
    fn layer(&self, inner: S) -> Decorated<S, A> {
        Decorated::new(inner, self.clone())
    }
}

/// A store wrapped by an [`Around`] decorator.
pub struct Decorated<S, A> {
    inner: S,
    around: A,
}

impl<S, A> Decorated<S, A> {
    /// Wraps `inner` with `around`.
    pub fn new(inner: S, around: A) -> Self {
        Self { inner, around }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: fmt::Debug, A: fmt::Debug> fmt::Debug for Decorated<S, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} → {:?}", self.around, self.inner)
    }
}

/// Every call goes through the decorator; the tier is the inner store's.
impl<S: Serve, A: Around> Serve for Decorated<S, A> {
    fn serve<'a>(
        &'a self,
        request: Request<'a>,
    ) -> impl Future<Output = Result<Response, StoreError>> + Send + 'a {
        self.around.around(&self.inner, request)
    }

    fn tier(&self) -> DurabilityTier {
        self.inner.tier()
    }
}

/// An around-decorator that does nothing: the baseline cost of one layer, and a test of the
/// forwarding machinery.
#[derive(Clone, Copy)]
pub struct PassThrough {
    name: &'static str,
}

impl PassThrough {
    /// A pass-through shown as `name` in a stack's `Debug`.
    pub const fn named(name: &'static str) -> Self {
        Self { name }
    }
}

impl Default for PassThrough {
    fn default() -> Self {
        Self::named("pass_through")
    }
}

impl fmt::Debug for PassThrough {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl Around for PassThrough {
    fn around<'a, S>(
        &'a self,
        inner: &'a S,
        request: Request<'a>,
    ) -> impl Future<Output = Result<Response, StoreError>> + Send + 'a
    where
        S: Serve + ?Sized + 'a,
    {
        inner.serve(request)
    }
}

/// The empty stack: returns the store unchanged.
#[derive(Clone, Copy, Default)]
pub struct Identity;

impl<S> Layer<S> for Identity {
    type Store = S;
    fn layer(&self, inner: S) -> S {
        inner
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, _f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Ok(())
    }
}

/// Two layers: `outer` wraps what `inner` produced.
#[derive(Clone)]
pub struct Stack<Inner, Outer> {
    inner: Inner,
    outer: Outer,
}

impl<S, Inner: Layer<S>, Outer: Layer<Inner::Store>> Layer<S> for Stack<Inner, Outer> {
    type Store = Outer::Store;
    fn layer(&self, store: S) -> Self::Store {
        self.outer.layer(self.inner.layer(store))
    }
    fn layer_session(&self, session_id: &str, store: S) -> Self::Store {
        self.outer.layer_session(session_id, self.inner.layer_session(session_id, store))
    }
    fn forget_session(&self, session_id: &str) {
        <Inner as Layer<S>>::forget_session(&self.inner, session_id);
        <Outer as Layer<Inner::Store>>::forget_session(&self.outer, session_id);
    }
}

impl<Inner: fmt::Debug, Outer: fmt::Debug> fmt::Debug for Stack<Inner, Outer> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let outer = format!("{:?}", self.outer);
        if outer.is_empty() {
            write!(f, "{:?}", self.inner)
        } else {
            write!(f, "{outer} → {:?}", self.inner)
        }
    }
}

/// Stacks layers; **the first layer added is the outermost**.
#[derive(Clone, Default)]
pub struct StoreBuilder<L = Identity> {
    layers: L,
}

impl StoreBuilder<Identity> {
    /// An empty builder.
    pub fn new() -> Self {
        Self { layers: Identity }
    }
}

impl<L> StoreBuilder<L> {
    /// Adds `layer` *inside* every layer added so far.
    pub fn layer<T>(self, layer: T) -> StoreBuilder<Stack<T, L>> {
        StoreBuilder { layers: Stack { inner: layer, outer: self.layers } }
    }

    /// Wraps `store` in the stack (static: the result's type names every layer).
    pub fn build<S>(&self, store: S) -> L::Store
    where
        L: Layer<S>,
    {
        self.layers.layer(store)
    }

    /// Wraps `store`, the handle of `session_id`, in the stack (see [`Layer::layer_session`]).
    pub fn build_for_session<S>(&self, session_id: &str, store: S) -> L::Store
    where
        L: Layer<S>,
    {
        self.layers.layer_session(session_id, store)
    }

    /// Wraps `store` in the stack and erases the type.
    pub fn build_shared<S>(&self, store: S) -> Arc<dyn RuntimePersistence>
    where
        L: Layer<S>,
        L::Store: RuntimePersistence + 'static,
    {
        Arc::new(self.layers.layer(store))
    }

    /// A factory whose every handle comes out wrapped in this stack; the handles share the
    /// layers' state (clone the builder first to keep using it).
    pub fn build_factory<F>(self, factory: F) -> LayeredFactory<F, L>
    where
        F: SessionStoreFactory,
        L: Layer<Arc<dyn RuntimePersistence>> + Send + Sync,
        L::Store: RuntimePersistence + 'static,
    {
        LayeredFactory { factory, layers: self.layers }
    }
}

impl<L: fmt::Debug> fmt::Debug for StoreBuilder<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreBuilder[{:?}]", self.layers)
    }
}

/// A [`SessionStoreFactory`] whose handles are wrapped in a layer stack.
pub struct LayeredFactory<F, L> {
    factory: F,
    layers: L,
}

impl<F: fmt::Debug, L: fmt::Debug> fmt::Debug for LayeredFactory<F, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} → {:?}", self.layers, self.factory)
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<F, L> SessionStoreFactory for LayeredFactory<F, L>
where
    F: SessionStoreFactory,
    L: Layer<Arc<dyn RuntimePersistence>> + Send + Sync,
    L::Store: RuntimePersistence + 'static,
{
    fn durability_tier(&self) -> DurabilityTier {
        self.factory.durability_tier()
    }

    async fn create_store(
        &self,
        request: SessionStoreRequest,
    ) -> Result<Arc<dyn RuntimePersistence>, StoreError> {
        let store = self.factory.create_store(request.clone()).await?;
        Ok(Arc::new(self.layers.layer_session(&request.session_id, store)))
    }

    async fn open_existing_store(
        &self,
        session_id: &str,
    ) -> Result<Option<Arc<dyn RuntimePersistence>>, StoreError> {
        let store = self.factory.open_existing_store(session_id).await?;
        Ok(store.map(|store| {
            Arc::new(self.layers.layer_session(session_id, store)) as Arc<dyn RuntimePersistence>
        }))
    }

    async fn delete_session(&self, session_id: &str) -> Result<(), StoreError> {
        let deleted = self.factory.delete_session(session_id).await;
        // Even a failed delete may have removed part of the state: forget it either way.
        Layer::<Arc<dyn RuntimePersistence>>::forget_session(&self.layers, session_id);
        deleted
    }

    async fn list_sessions(&self) -> Result<Vec<String>, StoreError> {
        self.factory.list_sessions().await
    }
}
