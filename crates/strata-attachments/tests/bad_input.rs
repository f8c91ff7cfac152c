//! Bad input and damaged storage: typed errors, and nothing else lost. A damaged attachment
//! is reported (naming its file or object) and repaired by putting the same bytes again.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use strata_attachments::*;
use strata_core::DurabilityTier;

fn meta() -> AttachmentMeta {
    AttachmentMeta::new("image/png").with_label("chart")
}

fn open(dir: &Path) -> FileAttachmentStore {
    FileAttachmentStore::open(dir, FileAttachmentOptions::default().with_max_bytes(1024)).unwrap()
}

fn object_file(dir: &Path, id: &AttachmentId) -> PathBuf {
    dir.join("objects").join(id.shard()).join(id.hex())
}

/// Damages the stored file of `damaged` with `damage`, checks that `get` reports `expected`
/// naming the file, that `bystander` is unaffected, and that a put of the same bytes repairs it.
async fn damage_and_repair(damage: impl FnOnce(&Path), expected: fn(&AttachmentError) -> bool) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let damaged = Content::new(&b"the damaged attachment"[..]);
    let bystander = Content::new(&b"a bystander"[..]);
    let info = store.put(damaged.clone(), meta()).await.unwrap();
    let other = store.put(bystander.clone(), meta()).await.unwrap();
    let file = object_file(dir.path(), damaged.id());
    damage(&file);

    let error = store.get(damaged.id()).await.unwrap_err();
    assert!(expected(&error), "unexpected error {error}");
    assert!(error.to_string().contains(&file.display().to_string()), "names the file: {error}");
    assert!(!error.is_retryable());
    assert_eq!(store.get(bystander.id()).await.unwrap().info, other, "nothing else is lost");

    assert_eq!(store.put(damaged.clone(), meta()).await.unwrap(), info, "a put repairs it");
    let repaired = store.get(damaged.id()).await.unwrap();
    assert_eq!((repaired.info, repaired.bytes), (info, damaged.bytes().clone()));
}

fn is_corrupt_metadata(error: &AttachmentError) -> bool {
    matches!(error, AttachmentError::CorruptMetadata { .. })
}

fn is_corrupt_content(error: &AttachmentError) -> bool {
    matches!(error, AttachmentError::CorruptContent { .. })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_metadata_header_is_corrupt_metadata() {
    // The file holds the bare bytes, as if written without metadata.
    damage_and_repair(
        |file| std::fs::write(file, b"the damaged attachment").unwrap(),
        is_corrupt_metadata,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_file_is_corrupt_metadata() {
    damage_and_repair(|file| std::fs::write(file, b"").unwrap(), is_corrupt_metadata).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_metadata_header_is_corrupt_metadata() {
    damage_and_repair(
        |file| {
            let mut bytes = std::fs::read(file).unwrap();
            bytes[24] ^= 0x20;
            std::fs::write(file, bytes).unwrap();
        },
        is_corrupt_metadata,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_or_altered_bytes_are_corrupt_content() {
    damage_and_repair(
        |file| {
            let bytes = std::fs::read(file).unwrap();
            std::fs::write(file, &bytes[..bytes.len() - 3]).unwrap();
        },
        is_corrupt_content,
    )
    .await;
    damage_and_repair(
        |file| {
            let mut bytes = std::fs::read(file).unwrap();
            *bytes.last_mut().unwrap() ^= 1;
            std::fs::write(file, bytes).unwrap();
        },
        is_corrupt_content,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_put_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let big = Content::new(vec![0u8; 1025]);
    assert_eq!(
        store.put(big.clone(), meta()).await.unwrap_err(),
        AttachmentError::TooLarge { len: 1025, limit: 1024 }
    );
    assert!(!object_file(dir.path(), big.id()).exists());
    assert_eq!(std::fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_that_could_escape_the_root_never_reach_the_store() {
    for bad in [
        "../../etc/passwd",
        "blake3:../../../../etc/passwd",
        "blake3:",
        &format!("blake3:{}/x", "a".repeat(62)),
    ] {
        assert!(
            matches!(AttachmentId::parse(bad), Err(AttachmentError::InvalidId { .. })),
            "{bad}"
        );
        assert_eq!(IntentId::parse(bad), None, "{bad}");
    }
    // Stray names in the store's directories are ignored, not followed.
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let content = Content::new(&b"x"[..]);
    std::fs::write(dir.path().join("trash").join("..not-an-id"), b"junk").unwrap();
    let stray_ref = format!("{}~..escape", content.id().hex());
    std::fs::write(dir.path().join("refs").join(content.id().shard()).join(stray_ref), b"s1")
        .unwrap();
    assert!(store.trashed().await.unwrap().is_empty());
    assert!(store.references(content.id()).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reference_whose_session_is_not_text_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let reference = AttachmentReference {
        intent_id: IntentId::new(AttachmentId::of(b"x")),
        session_id: "s1".into(),
    };
    store.add_reference(&reference).await.unwrap();
    let id = reference.attachment_id();
    let file = dir.path().join("refs").join(id.shard()).join(reference.intent_id.file_name());
    std::fs::write(&file, [0xff, 0xfe]).unwrap();
    let error = store.references(id).await.unwrap_err();
    assert!(is_corrupt_metadata(&error), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_object_is_reported_and_repaired_by_a_put() {
    let objects = Arc::new(InMemory::new());
    let store =
        ObjectAttachmentStore::new(objects.clone() as Arc<dyn ObjectStore>, DurabilityTier::Inline);
    let content = Content::new(&b"object bytes"[..]);
    let info = store.put(content.clone(), meta()).await.unwrap();
    let path = ObjectPath::from(format!("objects/{}", content.id().hex()));
    objects.put(&path, PutPayload::from_static(b"object bytes")).await.unwrap();
    let error = store.get(content.id()).await.unwrap_err();
    assert!(is_corrupt_metadata(&error), "{error}");
    assert!(error.to_string().contains(content.id().hex()), "names the object: {error}");
    assert_eq!(store.put(content.clone(), meta()).await.unwrap(), info);
    assert_eq!(store.get(content.id()).await.unwrap().bytes, content.bytes().clone());
}
