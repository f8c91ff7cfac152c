//! The conformance suite for [`AttachmentStore`]s (`strata-attachments`): any store, Strata's or
//! a third party's, runs it.
//!
//! ```no_run
//! # async fn demo() {
//! use std::sync::Arc;
//! use strata_attachments::{AttachmentStore, FileAttachmentOptions, FileAttachmentStore};
//! use strata_testkit::attachments::{AttachmentSuiteOptions, run_attachment_suite};
//!
//! run_attachment_suite(AttachmentSuiteOptions::durable(), |ctx| async move {
//!     let options = FileAttachmentOptions::default().with_max_bytes(ctx.max_bytes);
//!     Arc::new(FileAttachmentStore::open(&ctx.dir, options).unwrap()) as Arc<dyn AttachmentStore>
//! })
//! .await
//! .assert_passed();
//! # }
//! ```
//!
//! Checks (`attachments::…`): bytes and metadata round trip, content addressing (the id is
//! the BLAKE3 ref of the bytes, identical bytes are stored once and the first put's metadata
//! wins), an empty payload, not found, the payload limit and bad metadata (typed errors,
//! nothing stored), the declared tier, the trash (`delete` / `restore` / `purge`, `get` reading
//! the trash), references, concurrent puts of the same bytes, and, with `reopenable`, that all
//! of it survives a reopen. Each check gets a fresh scratch directory and runs in its own task;
//! [`FILTER_ENV`](crate::FILTER_ENV) selects checks by name as in the store suite.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use strata_attachments::*;
use strata_core::DurabilityTier;

use crate::checks::{Outcome, ensure, expect_eq};
use crate::suite::{SuiteReport, isolated, scratch_dir};

/// The payload limit the suite asks the constructor to configure.
pub const SUITE_MAX_BYTES: u64 = 64 << 10;

/// What the attachment store under test promises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttachmentSuiteOptions {
    /// The tier the store must declare.
    pub tier: DurabilityTier,
    /// True when calling the constructor again on the same directory reopens the same stored
    /// attachments, trash and references.
    pub reopenable: bool,
}

impl AttachmentSuiteOptions {
    /// An in-memory store: `Inline`, not reopenable.
    pub const fn inline() -> Self {
        Self { tier: DurabilityTier::Inline, reopenable: false }
    }

    /// A durable store: `Durable`, reopenable.
    pub const fn durable() -> Self {
        Self { tier: DurabilityTier::Durable, reopenable: true }
    }
}

/// What a constructor gets for each check.
#[derive(Clone, Debug)]
pub struct AttachmentContext {
    /// A scratch directory for this check (the same one on reopen).
    pub dir: PathBuf,
    /// The payload limit the store must be built with ([`SUITE_MAX_BYTES`]).
    pub max_bytes: u64,
}

type Make =
    Arc<dyn Fn(AttachmentContext) -> BoxFuture<'static, Arc<dyn AttachmentStore>> + Send + Sync>;

/// One check's world.
struct Env {
    options: AttachmentSuiteOptions,
    context: AttachmentContext,
    make: Make,
}

impl Env {
    async fn store(&self) -> Arc<dyn AttachmentStore> {
        (self.make)(self.context.clone()).await
    }
}

struct Check {
    name: &'static str,
    needs_reopen: bool,
    run: fn(Arc<Env>) -> BoxFuture<'static, Outcome>,
}

macro_rules! attachment_checks {
    ($($name:literal $reopen:literal => $function:path,)*) => {
        &[$(
            Check {
                name: $name,
                needs_reopen: $reopen,
                run: |env| Box::pin(async move { $function(&env).await }),
            },
        )*]
    };
}

const CHECKS: &[Check] = attachment_checks![
    "attachments::round_trip_of_bytes_and_metadata" false => round_trip,
    "attachments::content_addressed_first_metadata_wins" false => content_addressing,
    "attachments::empty_payload" false => empty_payload,
    "attachments::not_found" false => not_found,
    "attachments::oversize_payload_is_refused_whole" false => oversize,
    "attachments::invalid_metadata_is_refused_whole" false => invalid_metadata,
    "attachments::declared_durability" false => durability,
    "attachments::trash_delete_restore_purge" false => trash,
    "attachments::restore_keeps_a_copy_stored_meanwhile" false => restore_after_put,
    "attachments::references" false => references,
    "attachments::concurrent_puts_of_the_same_bytes" false => concurrent_puts,
    "attachments::everything_survives_reopen" true => reopen,
];

/// Names of the checks [`run_attachment_suite`] runs (before option and name filtering).
pub fn attachment_check_names() -> Vec<&'static str> {
    CHECKS.iter().map(|check| check.name).collect()
}

/// Runs every attachment-store check. `make` must return a store over the context's directory
/// with the context's payload limit: empty for a new directory, and (with `reopenable`) the
/// same stored state for a directory it has seen.
pub async fn run_attachment_suite<F, Fut>(options: AttachmentSuiteOptions, make: F) -> SuiteReport
where
    F: Fn(AttachmentContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Arc<dyn AttachmentStore>> + Send + 'static,
{
    let make: Make = Arc::new(move |context| Box::pin(make(context)));
    let mut report = SuiteReport::named("attachment store");
    for check in CHECKS {
        if report.filtered_out(check.name) {
            continue;
        }
        if check.needs_reopen && !options.reopenable {
            report.skip(check.name, "store is not reopenable");
            continue;
        }
        let outcome = match scratch_dir() {
            Ok(dir) => {
                let context =
                    AttachmentContext { dir: dir.path().to_owned(), max_bytes: SUITE_MAX_BYTES };
                let env = Arc::new(Env { options, context, make: Arc::clone(&make) });
                let outcome = isolated((check.run)(env)).await;
                drop(dir);
                outcome
            }
            Err(message) => Err(message),
        };
        report.record(check.name, outcome);
    }
    report
}

/// Turns an attachment error into a failure message naming the step.
trait Step<T> {
    fn step(self, what: &str) -> Result<T, String>;
}

impl<T> Step<T> for Result<T, AttachmentError> {
    fn step(self, what: &str) -> Result<T, String> {
        self.map_err(|error| format!("{what}: expected success, observed error {error:?}"))
    }
}

fn expect_attachment_error<T: std::fmt::Debug>(
    what: &str,
    result: Result<T, AttachmentError>,
    expected: impl Fn(&AttachmentError) -> bool,
    description: &str,
) -> Outcome {
    match result {
        Err(error) if expected(&error) => Ok(()),
        Err(error) => Err(format!("{what}: expected {description}, observed error {error:?}")),
        Ok(value) => Err(format!("{what}: expected {description}, observed success {value:?}")),
    }
}

fn png(tag: &str) -> Content {
    Content::new(Bytes::from(format!("\u{89}PNG {tag} ").repeat(50)))
}

fn meta() -> AttachmentMeta {
    AttachmentMeta::new("image/png").with_size(640, 480).with_label("chart")
}

fn reference(content: &Content, session: &str) -> AttachmentReference {
    AttachmentReference {
        intent_id: IntentId::new(content.id().clone()),
        session_id: session.to_owned(),
    }
}

async fn expect_stored(
    store: &dyn AttachmentStore,
    content: &Content,
    info: &AttachmentInfo,
) -> Outcome {
    let got = store.get(content.id()).await.step(&format!("get({})", content.id()))?;
    expect_eq("get: info", info, &got.info)?;
    expect_eq("get: bytes", content.bytes(), &got.bytes)
}

async fn round_trip(env: &Env) -> Outcome {
    let store = env.store().await;
    let content = png("round trip");
    let info = store.put(content.clone(), meta()).await.step("put")?;
    let expected = AttachmentInfo {
        id: AttachmentId::of(content.bytes()),
        byte_len: content.len(),
        meta: meta(),
    };
    expect_eq("put: info", &expected, &info)?;
    expect_eq(
        "put: id is the BLAKE3 ref of the bytes",
        strata_core::blob_ref(content.bytes()).as_str(),
        info.id.as_str(),
    )?;
    expect_stored(&*store, &content, &info).await?;
    expect_eq("contains after put", &true, &store.contains(content.id()).await.step("contains")?)
}

async fn content_addressing(env: &Env) -> Outcome {
    let store = env.store().await;
    let content = png("same");
    let first = store.put(content.clone(), meta()).await.step("first put")?;
    let again = store
        .put(content.clone(), AttachmentMeta::new("application/octet-stream"))
        .await
        .step("second put of the same bytes")?;
    expect_eq(
        "second put of the same bytes returns the stored info (first metadata wins)",
        &first,
        &again,
    )?;
    expect_stored(&*store, &content, &first).await?;
    let other = png("other");
    let info = store.put(other.clone(), meta()).await.step("put of other bytes")?;
    ensure(info.id != first.id, || "different bytes must get different ids".to_owned())?;
    expect_stored(&*store, &other, &info).await
}

async fn empty_payload(env: &Env) -> Outcome {
    let store = env.store().await;
    let content = Content::new(Bytes::new());
    let info = store
        .put(content.clone(), AttachmentMeta::new("text/plain"))
        .await
        .step("put of 0 bytes")?;
    expect_eq("byte_len", &0, &info.byte_len)?;
    expect_stored(&*store, &content, &info).await
}

async fn not_found(env: &Env) -> Outcome {
    let store = env.store().await;
    let id = png("never stored").id().clone();
    expect_attachment_error(
        "get of an unknown id",
        store.get(&id).await,
        |error| error == &AttachmentError::NotFound { id: id.clone() },
        "NotFound naming the id",
    )?;
    expect_eq("contains of an unknown id", &false, &store.contains(&id).await.step("contains")?)?;
    let none: Vec<AttachmentId> = Vec::new();
    let ids = std::slice::from_ref(&id);
    expect_eq("delete of an unknown id", &none, &store.delete(ids).await.step("delete")?)?;
    expect_eq("restore of an unknown id", &none, &store.restore(ids).await.step("restore")?)?;
    expect_eq("purge of an unknown id", &none, &store.purge(ids).await.step("purge")?)?;
    expect_eq(
        "references of an unknown id",
        &0,
        &store.references(&id).await.step("references")?.len(),
    )
}

async fn oversize(env: &Env) -> Outcome {
    let store = env.store().await;
    let limit = env.context.max_bytes;
    expect_eq(
        "max_bytes (the constructor must apply the context's limit)",
        &limit,
        &store.max_bytes(),
    )?;
    let too_big = Content::new(vec![1u8; limit as usize + 1]);
    expect_attachment_error(
        "put of max_bytes + 1",
        store.put(too_big.clone(), meta()).await,
        |error| error == &AttachmentError::TooLarge { len: limit + 1, limit },
        "TooLarge { len, limit }",
    )?;
    expect_eq(
        "contains after a refused put",
        &false,
        &store.contains(too_big.id()).await.step("contains")?,
    )?;
    let just_fits = Content::new(vec![2u8; limit as usize]);
    let info = store.put(just_fits.clone(), meta()).await.step("put of exactly max_bytes")?;
    expect_stored(&*store, &just_fits, &info).await
}

async fn invalid_metadata(env: &Env) -> Outcome {
    let store = env.store().await;
    let content = png("bad metadata");
    expect_attachment_error(
        "put with an empty media type",
        store.put(content.clone(), AttachmentMeta::new("")).await,
        |error| matches!(error, AttachmentError::InvalidMetadata(_)),
        "InvalidMetadata",
    )?;
    expect_eq(
        "contains after a refused put",
        &false,
        &store.contains(content.id()).await.step("contains")?,
    )
}

async fn durability(env: &Env) -> Outcome {
    let store = env.store().await;
    expect_eq("durability_tier", &env.options.tier, &store.durability_tier())
}

async fn trash(env: &Env) -> Outcome {
    let store = env.store().await;
    let content = png("trash");
    let id = content.id().clone();
    let ids = std::slice::from_ref(&id);
    let info = store.put(content.clone(), meta()).await.step("put")?;
    expect_eq(
        "delete returns the ids moved",
        &ids.to_vec(),
        &store.delete(ids).await.step("delete")?,
    )?;
    expect_eq("contains after delete", &false, &store.contains(&id).await.step("contains")?)?;
    expect_stored(&*store, &content, &info)
        .await
        .map_err(|error| format!("get reads the trash: {error}"))?;
    expect_eq("trashed after delete", &ids.to_vec(), &store.trashed().await.step("trashed")?)?;
    expect_eq(
        "restore returns the ids restored",
        &ids.to_vec(),
        &store.restore(ids).await.step("restore")?,
    )?;
    expect_eq("contains after restore", &true, &store.contains(&id).await.step("contains")?)?;
    expect_eq("trashed after restore", &0, &store.trashed().await.step("trashed")?.len())?;
    store.delete(ids).await.step("delete again")?;
    expect_eq(
        "purge returns the ids purged",
        &ids.to_vec(),
        &store.purge(ids).await.step("purge")?,
    )?;
    expect_attachment_error(
        "get after purge",
        store.get(&id).await,
        |error| matches!(error, AttachmentError::NotFound { .. }),
        "NotFound",
    )?;
    expect_eq("trashed after purge", &0, &store.trashed().await.step("trashed")?.len())?;
    let again = store.put(content.clone(), meta()).await.step("put after purge")?;
    expect_stored(&*store, &content, &again).await
}

async fn restore_after_put(env: &Env) -> Outcome {
    let store = env.store().await;
    let content = png("restore");
    let id = content.id().clone();
    let ids = std::slice::from_ref(&id);
    store.put(content.clone(), meta()).await.step("put")?;
    store.delete(ids).await.step("delete")?;
    let info = store.put(content.clone(), meta()).await.step("put of the trashed bytes")?;
    expect_eq(
        "contains after the put stored them again",
        &true,
        &store.contains(&id).await.step("contains")?,
    )?;
    store.restore(ids).await.step("restore")?;
    expect_eq("trashed after restore", &0, &store.trashed().await.step("trashed")?.len())?;
    expect_stored(&*store, &content, &info).await
}

async fn references(env: &Env) -> Outcome {
    let store = env.store().await;
    let (a, b) = (png("a"), png("b"));
    let (a1, a2, b1) = (reference(&a, "s1"), reference(&a, "s2"), reference(&b, "s1"));
    for (what, reference) in [("a1", &a1), ("a2", &a2), ("b1", &b1), ("a1 again", &a1)] {
        store.add_reference(reference).await.step(&format!("add_reference({what})"))?;
    }
    let sorted = |mut refs: Vec<AttachmentReference>| {
        refs.sort();
        refs
    };
    let mut expected = vec![a1.clone(), a2.clone()];
    expected.sort();
    expect_eq(
        "references(a) (a repeated add is idempotent)",
        &expected,
        &sorted(store.references(a.id()).await.step("references(a)")?),
    )?;
    let unknown = reference(&a, "s3");
    store.remove_references(&[a1.clone(), unknown]).await.step("remove_references")?;
    expect_eq(
        "references(a) after removing a1",
        &vec![a2],
        &store.references(a.id()).await.step("references(a)")?,
    )?;
    expect_eq("references(b)", &vec![b1], &store.references(b.id()).await.step("references(b)")?)
}

async fn concurrent_puts(env: &Env) -> Outcome {
    let store = env.store().await;
    let content = png("raced");
    let puts: Vec<_> = (0..8)
        .map(|n| {
            let (store, content) = (Arc::clone(&store), content.clone());
            tokio::spawn(async move {
                store.put(content, meta().with_label(format!("writer {n}"))).await
            })
        })
        .collect();
    let mut infos = Vec::new();
    for put in puts {
        let result = put.await.map_err(|error| format!("put task failed: {error}"))?;
        infos.push(result.step("concurrent put")?);
    }
    let stored = store.get(content.id()).await.step("get")?;
    expect_eq("bytes after concurrent puts", content.bytes(), &stored.bytes)?;
    for info in &infos {
        expect_eq("every concurrent put returns the stored info", &stored.info, info)?;
    }
    Ok(())
}

async fn reopen(env: &Env) -> Outcome {
    let (kept, trashed) = (png("kept"), png("trashed"));
    // A reference to content never put: a scoped wrapper adds references of its own puts.
    let referenced = png("referenced");
    let kept_ref = reference(&referenced, "s1");
    let (kept_info, trashed_info) = {
        let store = env.store().await;
        let kept_info = store.put(kept.clone(), meta()).await.step("put")?;
        let trashed_info = store.put(trashed.clone(), meta()).await.step("put")?;
        store.delete(std::slice::from_ref(trashed.id())).await.step("delete")?;
        store.add_reference(&kept_ref).await.step("add_reference")?;
        (kept_info, trashed_info)
    };
    let store = env.store().await;
    expect_stored(&*store, &kept, &kept_info)
        .await
        .map_err(|error| format!("after reopen: {error}"))?;
    expect_stored(&*store, &trashed, &trashed_info)
        .await
        .map_err(|error| format!("after reopen (trash): {error}"))?;
    expect_eq(
        "trashed after reopen",
        &vec![trashed.id().clone()],
        &store.trashed().await.step("trashed")?,
    )?;
    expect_eq(
        "references after reopen",
        &vec![kept_ref],
        &store.references(referenced.id()).await.step("references")?,
    )
}
