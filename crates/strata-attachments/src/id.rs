//! Ids: [`AttachmentId`] (the content address of an attachment's bytes) and [`IntentId`] (one
//! put's manifest row: the content address plus a random nonce).
//!
//! Both are parsed strictly, so an id that reaches a store names exactly one file or object
//! under its root: nothing but lowercase hex after a fixed prefix, nothing that could hold a
//! path separator, `..` or NUL.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use strata_core::blob_ref;

use crate::error::AttachmentError;

/// The scheme prefix of every attachment id (the one `strata_core::blob_ref` writes).
const PREFIX: &str = "blake3:";
/// Hex digits of a BLAKE3 digest.
const DIGEST_HEX: usize = 64;
/// Separates an intent id's content id from its nonce.
const NONCE_SEPARATOR: char = '~';
/// Hex digits of an intent nonce (128 bits).
const NONCE_HEX: usize = 32;

/// The content address of an attachment: `blake3:<64 lowercase hex digits>`, the same form as
/// the checkpoint blob refs of `strata_core::blob_ref` (one hashing scheme in the project).
/// Identical bytes always get identical ids.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttachmentId(String);

impl AttachmentId {
    /// The id of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(blob_ref(bytes))
    }

    /// Parses `text`, rejecting anything but `blake3:` and 64 lowercase hex digits.
    pub fn parse(text: &str) -> Result<Self, AttachmentError> {
        let invalid = |reason| Err(AttachmentError::invalid_id(text, reason));
        let Some(digest) = text.strip_prefix(PREFIX) else {
            return invalid("does not start with \"blake3:\"");
        };
        if digest.len() != DIGEST_HEX {
            return invalid("is not followed by 64 hex digits");
        }
        if !is_lower_hex(digest) {
            return invalid("holds a character other than 0-9 and a-f");
        }
        Ok(Self(text.to_owned()))
    }

    /// The id as text (`blake3:…`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 64 hex digits of the digest: a safe file or object name.
    pub fn hex(&self) -> &str {
        &self.0[PREFIX.len()..]
    }

    /// The first two hex digits: the shard (one of 256) a sharded layout files it under.
    pub fn shard(&self) -> &str {
        &self.hex()[..2]
    }

    /// The id whose digest is `hex` (a file or object name written by [`hex`](Self::hex)).
    pub fn from_hex(hex: &str) -> Result<Self, AttachmentError> {
        Self::parse(&format!("{PREFIX}{hex}"))
    }
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
}

impl fmt::Display for AttachmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AttachmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl FromStr for AttachmentId {
    type Err = AttachmentError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl Serialize for AttachmentId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AttachmentId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The manifest id of one put: `<attachment id>~<32 lowercase hex digits>`.
///
/// Every put records its own manifest row under a fresh intent id (the content id plus a
/// random 128-bit nonce) rather than under the bare content id. The contract's `forget`
/// deletes a row whatever its state, so with rows keyed by content a sweep forgetting a stale
/// row could erase the fresh intent of a session writing the same bytes again at that moment,
/// and that session's later commit would stamp nothing. With one row per put, a row the sweeper
/// found stale is never touched by anyone else. The content id is the prefix, so rows group by
/// content for the sweeper.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IntentId {
    attachment_id: AttachmentId,
    nonce: u128,
}

impl IntentId {
    /// A fresh intent id for a put of `attachment_id`.
    pub fn new(attachment_id: AttachmentId) -> Self {
        Self { attachment_id, nonce: fastrand::u128(..) }
    }

    /// Parses a manifest row id; `None` when it is not an intent id of this crate (a row some
    /// other writer recorded).
    pub fn parse(text: &str) -> Option<Self> {
        let (content, nonce) = text.split_once(NONCE_SEPARATOR)?;
        Self::from_nonce_hex(AttachmentId::parse(content).ok()?, nonce)
    }

    /// The intent id of `attachment_id` with the nonce `nonce_hex` (as [`nonce_hex`](Self::nonce_hex)
    /// writes it); `None` if the nonce is not 32 lowercase hex digits.
    pub fn from_nonce_hex(attachment_id: AttachmentId, nonce_hex: &str) -> Option<Self> {
        if nonce_hex.len() != NONCE_HEX || !is_lower_hex(nonce_hex) {
            return None;
        }
        Some(Self { attachment_id, nonce: u128::from_str_radix(nonce_hex, 16).ok()? })
    }

    /// The content the put wrote.
    pub fn attachment_id(&self) -> &AttachmentId {
        &self.attachment_id
    }

    /// The nonce as 32 hex digits: with [`AttachmentId::hex`], a safe file or object name.
    pub fn nonce_hex(&self) -> String {
        format!("{:0width$x}", self.nonce, width = NONCE_HEX)
    }

    /// `<64 hex>~<32 hex>`: the intent id without the scheme prefix, a safe file name.
    pub fn file_name(&self) -> String {
        format!("{}{NONCE_SEPARATOR}{}", self.attachment_id.hex(), self.nonce_hex())
    }

    /// The intent id whose [`file_name`](Self::file_name) is `name`.
    pub fn from_file_name(name: &str) -> Option<Self> {
        Self::parse(&format!("{PREFIX}{name}"))
    }
}

impl fmt::Display for IntentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{NONCE_SEPARATOR}{}", self.attachment_id, self.nonce_hex())
    }
}

impl fmt::Debug for IntentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_the_cores_blob_refs() {
        let id = AttachmentId::of(b"png bytes");
        assert_eq!(id.as_str(), blob_ref(b"png bytes"));
        assert_eq!(AttachmentId::parse(id.as_str()).unwrap(), id);
        assert_eq!(AttachmentId::from_hex(id.hex()).unwrap(), id);
        assert_eq!(id.shard(), &id.hex()[..2]);
    }

    #[test]
    fn ids_that_could_escape_a_root_are_invalid() {
        let digest = "a".repeat(64);
        for bad in [
            String::new(),
            "../etc/passwd".to_owned(),
            format!("blake3:{}", "a".repeat(63)),
            format!("blake3:{}", "a".repeat(65)),
            format!("blake3:{}/", "a".repeat(63)),
            format!("blake3:..{}", "a".repeat(62)),
            format!("blake3:{}", "A".repeat(64)),
            format!("blake3:{}\0", "a".repeat(63)),
            format!("sha256:{digest}"),
        ] {
            let error = AttachmentId::parse(&bad).unwrap_err();
            assert!(matches!(error, AttachmentError::InvalidId { .. }), "{bad:?}: {error}");
        }
    }

    #[test]
    fn intent_ids_round_trip_and_name_their_content() {
        let id = AttachmentId::of(b"x");
        let intent = IntentId::new(id.clone());
        assert_ne!(intent, IntentId::new(id.clone()), "nonces differ");
        assert_eq!(IntentId::parse(&intent.to_string()), Some(intent.clone()));
        assert_eq!(IntentId::from_file_name(&intent.file_name()), Some(intent.clone()));
        assert_eq!(intent.attachment_id(), &id);
        assert!(intent.to_string().len() <= 255, "fits the file backend's id limit");
        for foreign in
            ["photo-1", id.as_str(), &format!("{id}~xyz"), &format!("{id}~{}", "A".repeat(32))]
        {
            assert_eq!(IntentId::parse(foreign), None, "{foreign:?}");
        }
    }
}
