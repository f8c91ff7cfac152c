//! The directory layout the tool writes and reads.
//!
//! ```text
//! DIR/                   a data directory
//!   sessions/            the file store's factory root: one directory per session
//!     <session id>/      one file store (snapshot, log.<N>, bodies.<N>, LOCK: see strata-file)
//!   attachments/         a file attachment store (objects/, refs/, trash/, tmp/: see
//!                        strata-attachments)
//! ```
//!
//! This is the layout of an application that opens `FileStoreFactory::open("DIR/sessions")`
//! and `FileAttachmentStore::open("DIR/attachments")` (the README's attachment example, with
//! `DIR` = `.`). `strata bench --dir ROOT` writes one data directory per configuration,
//! `ROOT/<n>-<label>/` (`ROOT/1-file/`, `ROOT/2-file-cache/`, …), and prints where.
//!
//! `strata inspect` and `strata verify` take a data directory, a factory root (a directory
//! of session directories, e.g. `DIR/sessions`) or one session directory; `strata sweep`
//! takes a data directory (it needs both halves).

use std::path::{Path, PathBuf};

use strata::SessionStoreFactory;
use strata::file::inspect::holds_store;
use strata::file::{FileStoreFactory, FileStoreOptions};

use crate::error::{CliError, require_dir};

/// The sessions half of a data directory.
pub const SESSIONS: &str = "sessions";
/// The attachments half of a data directory.
pub const ATTACHMENTS: &str = "attachments";

/// Where a command finds its stores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The directory the command was given.
    pub dir: PathBuf,
    /// The sessions: a factory root, or one session's directory.
    pub sessions: Sessions,
    /// The file attachment store, when the data directory has one.
    pub attachments: Option<PathBuf>,
}

/// The session stores of a [`Layout`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sessions {
    /// A factory root: every subdirectory holding a store is a session.
    Root(PathBuf),
    /// One session's store directory (its name is the session id).
    One(PathBuf),
}

impl Layout {
    /// Creates the data directory `dir` (which must not exist) with both halves.
    pub fn create(dir: &Path) -> Result<Self, CliError> {
        std::fs::create_dir(dir).map_err(|error| match error.kind() {
            std::io::ErrorKind::AlreadyExists => CliError::Usage(format!(
                "{} already exists; point --dir at another directory or remove it",
                dir.display()
            )),
            _ => {
                CliError::Io { action: "create directory", path: dir.to_path_buf(), source: error }
            }
        })?;
        for half in [SESSIONS, ATTACHMENTS] {
            let path = dir.join(half);
            std::fs::create_dir(&path).map_err(CliError::io("create directory", &path))?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            sessions: Sessions::Root(dir.join(SESSIONS)),
            attachments: Some(dir.join(ATTACHMENTS)),
        })
    }

    /// Finds what `dir` holds: a data directory (`sessions/`, maybe `attachments/`), one
    /// session's store, or a factory root. Reads only.
    pub async fn find(dir: &Path) -> Result<Self, CliError> {
        require_dir(
            "directory",
            dir,
            "give the directory strata bench --dir or your application wrote",
        )?;
        let sessions = dir.join(SESSIONS);
        if sessions.is_dir() {
            let attachments = Some(dir.join(ATTACHMENTS)).filter(|path| path.is_dir());
            return Ok(Self {
                dir: dir.to_path_buf(),
                sessions: Sessions::Root(sessions),
                attachments,
            });
        }
        if holds_store(dir) {
            return Ok(Self {
                dir: dir.to_path_buf(),
                sessions: Sessions::One(dir.to_path_buf()),
                attachments: None,
            });
        }
        let layout = Self {
            dir: dir.to_path_buf(),
            sessions: Sessions::Root(dir.to_path_buf()),
            attachments: None,
        };
        if layout.session_dirs().await?.is_empty() {
            return Err(no_store_in(dir));
        }
        Ok(layout)
    }

    /// Like [`find`](Self::find), for `strata sweep`: a data directory with both halves.
    pub async fn find_data_dir(dir: &Path) -> Result<Self, CliError> {
        let layout = Self::find(dir).await?;
        match (&layout.sessions, &layout.attachments) {
            (Sessions::Root(root), Some(_)) if root.ends_with(SESSIONS) => Ok(layout),
            _ => Err(CliError::Usage(format!(
                "{} is not a data directory with {SESSIONS}/ and {ATTACHMENTS}/ (as strata bench \
                 --dir writes one per configuration); sweep needs both",
                dir.display()
            ))),
        }
    }

    /// The sessions, sorted by id: (session id, store directory). For a factory root, the
    /// subdirectories the file store's factory lists as sessions.
    pub async fn session_dirs(&self) -> Result<Vec<(String, PathBuf)>, CliError> {
        match &self.sessions {
            Sessions::One(dir) => {
                let name = dir
                    .canonicalize()
                    .ok()
                    .and_then(|path| Some(path.file_name()?.to_string_lossy().into_owned()))
                    .unwrap_or_else(|| dir.display().to_string());
                Ok(vec![(name, dir.clone())])
            }
            Sessions::Root(root) => {
                // The root exists, so opening the factory creates nothing.
                let context = || format!("cannot list the sessions in {}", root.display());
                let factory = FileStoreFactory::open(root, FileStoreOptions::default())
                    .map_err(|source| CliError::Store { context: context(), source })?;
                let ids = factory
                    .list_sessions()
                    .await
                    .map_err(|source| CliError::Store { context: context(), source })?;
                Ok(ids.into_iter().map(|id| (id.clone(), root.join(id))).collect())
            }
        }
    }
}

/// The error for a directory that holds no store, naming the data directories inside it
/// when it is a bench root.
fn no_store_in(dir: &Path) -> CliError {
    let mut inside: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.path().join(SESSIONS).is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    inside.sort();
    let hint = match inside.as_slice() {
        [] => format!(
            "expected a data directory ({SESSIONS}/ and {ATTACHMENTS}/), a directory of session \
             directories, or one session's directory"
        ),
        names => format!("it holds the data directories {}: give one of them", names.join(", ")),
    };
    CliError::Usage(format!("{} holds no strata store; {hint}", dir.display()))
}
