//! Helpers shared by the PostgreSQL integration tests: a fresh database per test (created
//! here, dropped when the guard drops), skipped with a notice when no server answers outside
//! CI, and child processes started from the test binary.

#![allow(dead_code)] // each test binary uses a subset

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use strata_core::RuntimePersistence;
use strata_postgres::{PostgresConfig, PostgresStore, PostgresStoreFactory};
use strata_testkit::fixtures::{commit, node};
use tokio_postgres::NoTls;

/// Environment variable naming the server (a URL without database path or query), default
/// `postgres://postgres@127.0.0.1:5432`.
pub const URL_ENV: &str = "STRATA_POSTGRES_URL";

/// The server the tests use.
pub fn server_url() -> String {
    std::env::var(URL_ENV).unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// A database made for one test and dropped (with its connections) when this guard drops.
pub struct TestDatabase {
    pub name: String,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

async fn admin() -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) =
        tokio_postgres::connect(&format!("{}/postgres", server_url()), NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

impl TestDatabase {
    /// Creates a fresh database for the test `label`. Without a server: `None` after printing
    /// why the test is skipped, unless `CI` is set (then the test fails).
    pub async fn create(label: &str) -> Option<Self> {
        let client = match admin().await {
            Ok(client) => client,
            Err(error) if std::env::var_os("CI").is_none() => {
                eprintln!(
                    "SKIPPED {label}: no PostgreSQL server answers at {} ({error}); start one or \
                     set {URL_ENV} to run the PostgreSQL tests",
                    server_url()
                );
                return None;
            }
            Err(error) => panic!("CI is set but PostgreSQL at {} is down: {error}", server_url()),
        };
        let name = format!(
            "strata_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            label
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(20)
                .collect::<String>()
                .to_lowercase()
        );
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create database");
        Some(Self { name })
    }

    /// The URL of this database.
    pub fn url(&self) -> String {
        format!("{}/{}", server_url(), self.name)
    }

    /// A configuration for this database.
    pub fn config(&self) -> PostgresConfig {
        PostgresConfig::new(self.url())
    }

    /// A raw connection to this database (for setting up faults and corrupting rows).
    pub async fn raw(&self) -> tokio_postgres::Client {
        let (client, connection) =
            tokio_postgres::connect(&self.url(), NoTls).await.expect("connect");
        tokio::spawn(connection);
        client
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // A runtime of its own: the test's runtime may be shutting down.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(async {
                    let client = admin().await?;
                    client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await
                })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!("could not drop test database {}: {error}", self.name);
        }
    }
}

/// A short stable name for a path (schema and store names per conformance check).
pub fn tag(path: &Path) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in path.as_os_str().as_encoded_bytes() {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Starts this test binary again, running only the ignored test `name`, with `env` set.
pub fn child(name: &str, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command.args(["--exact", name, "--ignored", "--nocapture", "--test-threads=1", "--quiet"]);
    for (key, value) in env {
        command.env(key, value);
    }
    command.stdout(Stdio::piped()).stderr(Stdio::inherit());
    command
}

/// Store `s` on a new pool over `config`, holding one commit (root node `a`, revision 1).
pub async fn store_with_root(config: PostgresConfig) -> (PostgresStoreFactory, PostgresStore) {
    let factory = PostgresStoreFactory::connect(config).await.expect("connect");
    let store = factory.open_store("s").await.expect("open");
    store
        .commit_runtime_state(commit("s").append([node("a", None)]).build())
        .await
        .expect("commit");
    (factory, store)
}

/// Holds the row of store `s` in `table` locked (in an open transaction on a raw connection)
/// so that the next write of that row blocks inside its transaction; returns the holding
/// client.
pub async fn hold_row_lock(database: &TestDatabase, table: &str) -> tokio_postgres::Client {
    let client = database.raw().await;
    client
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM strata.{table} WHERE store_id = 's' FOR UPDATE"
        ))
        .await
        .expect("lock");
    client
}
