//! MongoDB DLQ collections through the official driver: connecting with a clear error
//! when the server is unreachable or the URI is wrong.

use std::time::Duration;

use mongodb::bson::{Document, doc};
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection};
use thiserror::Error;

pub mod clients;
pub mod dlq;
pub mod doc;
pub mod errors;
pub mod ledger;
pub mod liveness;
pub mod overview;
pub mod sink;

/// The collection a DLQ lives in when the profile names none.
pub const DEFAULT_COLLECTION: &str = "deadletter_messages";

/// A MongoDB backend failure, quoting the URI (without password) or collection.
#[derive(Debug, Error)]
pub enum MongoBackendError {
    /// The URI could not be parsed.
    #[error("bad MongoDB URI '{uri}': {source}")]
    BadUri {
        /// URI as given, password hidden.
        uri: String,
        /// What the driver said.
        source: mongodb::error::Error,
    },
    /// No server answered a ping in time.
    #[error("cannot reach MongoDB at '{uri}': {cause}")]
    Unreachable {
        /// URI as given, password hidden.
        uri: String,
        /// What the driver said, on one line.
        cause: String,
    },
    /// The collection is not in the database (reading never creates it).
    #[error("collection '{collection}' not found in database '{db}' on {server}")]
    CollectionNotFound {
        /// Collection asked for.
        collection: String,
        /// Its database.
        db: String,
        /// The server(s) asked, `host:port`.
        server: String,
    },
    /// A request the server refused or failed, worded with what was asked.
    #[error("{0}")]
    Request(String),
}

/// Where a DLQ collection is.
#[derive(Debug, Clone)]
pub struct MongoConfig {
    /// Connection string, `mongodb://...`.
    pub uri: String,
    /// Database name.
    pub db: String,
    /// Collection name.
    pub collection: String,
    /// How long to look for a server before it counts as unreachable (unless the URI
    /// sets `serverSelectionTimeoutMS`).
    pub connect_timeout: Duration,
}

impl MongoConfig {
    /// Connects, pings the server, and returns the DLQ collection.
    pub async fn connect(&self) -> Result<Collection<Document>, MongoBackendError> {
        Ok(self.database().await?.collection(&self.collection))
    }

    /// Connects, pings the server, and returns the DLQ collection if it exists: a
    /// missing one is [`MongoBackendError::CollectionNotFound`], and is not created. A
    /// server that will not list this user's collections is taken at its word later.
    pub async fn connect_existing(&self) -> Result<Collection<Document>, MongoBackendError> {
        let db = self.database().await?;
        let found = db
            .list_collection_names()
            .filter(doc! { "name": &self.collection })
            .authorized_collections(true)
            .await;
        match found {
            Ok(names) if names.is_empty() => Err(MongoBackendError::CollectionNotFound {
                collection: self.collection.clone(),
                db: self.db.clone(),
                server: self.servers(),
            }),
            Ok(_) => Ok(db.collection(&self.collection)),
            Err(e) => {
                tracing::debug!(
                    "listing collection '{}' of '{}' failed, not checked: {}",
                    self.collection,
                    self.db,
                    errors::short(&e)
                );
                Ok(db.collection(&self.collection))
            }
        }
    }

    /// The URI's servers (`host:port,host:port`), without user, password or options.
    pub fn servers(&self) -> String {
        crate::engine::model::urls::conn_hosts(&self.uri)
    }

    /// Connects, pings the server, and returns the database.
    pub async fn database(&self) -> Result<mongodb::Database, MongoBackendError> {
        let uri = redact(&self.uri);
        let mut opts =
            ClientOptions::parse(&self.uri)
                .await
                .map_err(|source| MongoBackendError::BadUri {
                    uri: uri.clone(),
                    source,
                })?;
        opts.server_selection_timeout
            .get_or_insert(self.connect_timeout);
        opts.app_name.get_or_insert_with(|| "morgue".to_string());
        let client = clients::shared(&self.uri, self.connect_timeout, || {
            Client::with_options(opts).map_err(|source| MongoBackendError::BadUri {
                uri: uri.clone(),
                source,
            })
        })?;
        let db = client.database(&self.db);
        db.run_command(doc! { "ping": 1 })
            .await
            .map_err(|e| MongoBackendError::Unreachable {
                uri,
                cause: unreachable_cause(&e, self.connect_timeout),
            })?;
        Ok(db)
    }
}

/// Why no server answered, on one line: the driver's server-selection error is a dump
/// of its topology; the first server's error in it is what a person can act on.
fn unreachable_cause(e: &mongodb::error::Error, waited: Duration) -> String {
    let mongodb::error::ErrorKind::ServerSelection { message, .. } = &*e.kind else {
        return errors::short(e);
    };
    let first = message
        .split_once("Error: Kind: ")
        .map(|(_, rest)| rest.split(", labels").next().unwrap_or(rest).trim());
    match first {
        Some(why) => format!("no server answered within {waited:?}: {why}"),
        None => format!("no server answered within {waited:?}"),
    }
}

/// The URI with any password replaced by `***`, safe to print.
pub use crate::engine::model::urls::redact_conn as redact;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_named_without_credentials_or_options() {
        let cfg = |uri: &str| MongoConfig {
            uri: uri.into(),
            db: "d".into(),
            collection: "c".into(),
            connect_timeout: Duration::from_secs(1),
        };
        assert_eq!(
            cfg("mongodb://ops:s3cret@db-1:27017,db-2:27017/admin?replicaSet=rs").servers(),
            "db-1:27017,db-2:27017"
        );
        assert_eq!(
            cfg("mongodb://127.0.0.1:47443/?directConnection=true").servers(),
            "127.0.0.1:47443"
        );
        assert_eq!(
            cfg("mongodb+srv://ops@cluster0.example.net").servers(),
            "cluster0.example.net"
        );
        // A '/' in the password (unencoded: the driver refuses it; errors print this).
        assert_eq!(
            cfg("mongodb://ops:p/w@db:27017/admin").servers(),
            "db:27017"
        );
    }

    #[test]
    fn passwords_never_print() {
        assert_eq!(
            redact("mongodb://ops:s3cret@db:27017/?authSource=admin"),
            "mongodb://ops:***@db:27017/?authSource=admin"
        );
        assert_eq!(redact("mongodb://db:27017"), "mongodb://db:27017");
        assert_eq!(redact("mongodb://ops@db"), "mongodb://ops@db");
        // An '@' in the password, several hosts: the user info ends at the last '@'.
        assert_eq!(
            redact("mongodb://ops:p@ss@db-1:27017,db-2:27017/admin?replicaSet=rs"),
            "mongodb://ops:***@db-1:27017,db-2:27017/admin?replicaSet=rs"
        );
    }
}
