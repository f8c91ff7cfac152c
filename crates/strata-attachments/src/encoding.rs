//! The stored form of one attachment, shared by the file and object stores: a metadata header
//! and the bytes, in **one** file or object.
//!
//! One file per attachment, rather than bytes plus a metadata file beside them, makes the pair
//! atomic by construction: a single rename (or object put) publishes both, so no crash or
//! racing reader can ever see bytes without their metadata or the reverse. The header is
//! checked by its own CRC (damage there is [`CorruptMetadata`](AttachmentError::CorruptMetadata)),
//! the bytes by their content id ([`CorruptContent`](AttachmentError::CorruptContent)).
//!
//! Layout (integers little-endian):
//!
//! ```text
//! magic "STRATAAT" (8) | version u32 (= 1) | info length u32 | info: JSON AttachmentInfo
//! | CRC-32 (IEEE) of everything before it u32 | the attachment's bytes
//! ```

use bytes::{BufMut, Bytes, BytesMut};
use strata_core::blob_ref;

use crate::error::AttachmentError;
use crate::id::AttachmentId;
use crate::types::{Attachment, AttachmentInfo};

const MAGIC: &[u8; 8] = b"STRATAAT";
const VERSION: u32 = 1;
/// Magic, version and info length.
const FIXED: usize = 16;
/// The CRC after the info.
const CRC: usize = 4;
/// The longest info accepted (metadata limits keep real ones far below).
const MAX_INFO: usize = 16 << 10;

/// The header for `info` (the bytes follow it).
pub fn header(info: &AttachmentInfo) -> Vec<u8> {
    let json = serde_json::to_vec(info).expect("attachment info always serializes");
    let mut header = Vec::with_capacity(FIXED + json.len() + CRC);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&VERSION.to_le_bytes());
    header.extend_from_slice(&(json.len() as u32).to_le_bytes());
    header.extend_from_slice(&json);
    let crc = crc32fast::hash(&header);
    header.extend_from_slice(&crc.to_le_bytes());
    header
}

/// Header and bytes in one buffer (for stores that write one payload).
pub fn encode(info: &AttachmentInfo, bytes: &[u8]) -> Bytes {
    let header = header(info);
    let mut out = BytesMut::with_capacity(header.len() + bytes.len());
    out.put_slice(&header);
    out.put_slice(bytes);
    out.freeze()
}

fn corrupt_metadata(location: &str, detail: String) -> AttachmentError {
    AttachmentError::CorruptMetadata { location: location.to_owned(), detail }
}

/// Reads the header of `stored` (the attachment named `id`); returns the info and the header
/// length. Checks that the stored length matches the info, not the content hash.
fn decode_header(
    location: &str,
    id: &AttachmentId,
    stored: &[u8],
) -> Result<(AttachmentInfo, usize), AttachmentError> {
    let (prefix, total_len) = (stored, stored.len() as u64);
    if prefix.len() < FIXED || &prefix[..8] != MAGIC {
        return Err(corrupt_metadata(location, "no attachment metadata header".to_owned()));
    }
    let version = u32::from_le_bytes(prefix[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(corrupt_metadata(
            location,
            format!("metadata format version {version}, this build reads version {VERSION}"),
        ));
    }
    let info_len = u32::from_le_bytes(prefix[12..16].try_into().expect("4 bytes")) as usize;
    let header_len = FIXED + info_len + CRC;
    if info_len > MAX_INFO || prefix.len() < header_len {
        return Err(corrupt_metadata(
            location,
            format!("metadata header of {info_len} bytes does not fit the stored {total_len}"),
        ));
    }
    let crc = u32::from_le_bytes(prefix[header_len - CRC..header_len].try_into().expect("4 bytes"));
    if crc32fast::hash(&prefix[..header_len - CRC]) != crc {
        return Err(corrupt_metadata(location, "metadata header checksum mismatch".to_owned()));
    }
    let info: AttachmentInfo = serde_json::from_slice(&prefix[FIXED..header_len - CRC])
        .map_err(|error| corrupt_metadata(location, format!("undecodable metadata: {error}")))?;
    if &info.id != id {
        return Err(corrupt_metadata(location, format!("metadata names {}", info.id)));
    }
    let stored = total_len.saturating_sub(header_len as u64);
    if stored != info.byte_len {
        return Err(AttachmentError::CorruptContent {
            location: location.to_owned(),
            detail: format!("{stored} bytes stored, the metadata says {}", info.byte_len),
        });
    }
    Ok((info, header_len))
}

/// Decodes a whole stored attachment and checks its bytes against `id`.
pub fn decode(
    location: &str,
    id: &AttachmentId,
    stored: Bytes,
) -> Result<Attachment, AttachmentError> {
    let (info, header_len) = decode_header(location, id, &stored)?;
    let bytes = stored.slice(header_len..);
    let actual = blob_ref(&bytes);
    if actual != id.as_str() {
        return Err(AttachmentError::CorruptContent {
            location: location.to_owned(),
            detail: format!("the bytes hash to {actual}"),
        });
    }
    Ok(Attachment { info, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{AttachmentMeta, Content, check_put};

    fn sample() -> (AttachmentInfo, Bytes) {
        let content = Content::new(&b"hello attachment"[..]);
        let info = check_put(&content, &AttachmentMeta::new("text/plain").with_label("l"), 1 << 20)
            .unwrap();
        (info, content.bytes().clone())
    }

    #[test]
    fn round_trips() {
        let (info, bytes) = sample();
        let stored = encode(&info, &bytes);
        let attachment = decode("f", &info.id, stored).unwrap();
        assert_eq!((attachment.info, attachment.bytes), (info, bytes));
    }

    #[test]
    fn damage_is_typed_by_where_it_is() {
        let (info, bytes) = sample();
        let stored = encode(&info, &bytes).to_vec();
        let header_len = header(&info).len();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (Vec::new(), "metadata"),
            (bytes.to_vec(), "metadata"),
            (stored[..header_len - 1].to_vec(), "metadata"),
            (
                {
                    let mut s = stored.clone();
                    s[20] ^= 1;
                    s
                },
                "metadata",
            ),
            (
                {
                    let mut s = stored.clone();
                    s[8] = 9;
                    s
                },
                "metadata",
            ),
            (stored[..stored.len() - 1].to_vec(), "content"),
            (
                {
                    let mut s = stored.clone();
                    *s.last_mut().unwrap() ^= 1;
                    s
                },
                "content",
            ),
        ];
        for (damaged, kind) in cases {
            let error = decode("f", &info.id, Bytes::from(damaged)).unwrap_err();
            let matched = match kind {
                "metadata" => matches!(error, AttachmentError::CorruptMetadata { .. }),
                _ => matches!(error, AttachmentError::CorruptContent { .. }),
            };
            assert!(matched, "expected corrupt {kind}, got {error}");
        }
        let other = AttachmentId::of(b"other");
        let error = decode("f", &other, Bytes::from(stored)).unwrap_err();
        assert!(matches!(error, AttachmentError::CorruptMetadata { .. }), "{error}");
    }
}
