//! TLS (feature `tls`) against the local server's certificate: verified against the CA the
//! caller adds, refused when that CA is not trusted.
#![cfg(feature = "tls")]

mod common;

use strata_core::{RuntimePersistence, SessionReadScope};
use strata_postgres::{PostgresConfig, PostgresStoreFactory, TlsOptions};
use strata_testkit::fixtures::{commit, node};

use common::{TestDatabase, server_url};

/// The Debian server's self-signed certificate (CN and SAN `localhost`).
const SERVER_CERTIFICATE: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_connections_verify_the_server() {
    let Some(database) = TestDatabase::create("tls").await else { return };
    let (Ok(pem), true) =
        (std::fs::read(SERVER_CERTIFICATE), server_url().contains("127.0.0.1:5432"))
    else {
        eprintln!(
            "SKIPPED tls: needs the local server and its certificate at {SERVER_CERTIFICATE}"
        );
        return;
    };
    let raw = database.raw().await;
    let ssl_on: String =
        raw.query_one("SELECT current_setting('ssl')", &[]).await.expect("show ssl").get(0);
    if ssl_on != "on" {
        eprintln!("SKIPPED tls: the server has ssl = {ssl_on}");
        return;
    }
    let url = format!(
        "postgres://postgres@localhost:5432/{}?sslmode=require&hostaddr=127.0.0.1",
        database.name
    );
    let trusted = TlsOptions::new().without_mozilla_roots().with_root_certificates_pem(pem);
    let factory = PostgresStoreFactory::connect(PostgresConfig::new(&url).with_tls(trusted))
        .await
        .expect("TLS connect with the server's CA trusted");
    let store = factory.open_store("s").await.expect("open");
    store
        .commit_runtime_state(commit("s").append([node("a", None)]).build())
        .await
        .expect("commit");
    assert!(store.load_session(SessionReadScope::FullGraph).await.expect("load").is_some());
    let encrypted: bool = raw
        .query_one(
            "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.application_name = 'strata' AND a.datname = current_database()",
            &[],
        )
        .await
        .expect("pg_stat_ssl")
        .get(0);
    assert!(encrypted, "every Strata connection uses TLS");
    let error =
        PostgresStoreFactory::connect(PostgresConfig::new(&url).with_tls(TlsOptions::new()))
            .await
            .expect_err("a self-signed server is not trusted by Mozilla's roots");
    assert!(error.proves_nothing_applied(), "{error:?}");
}
