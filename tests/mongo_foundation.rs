//! Connecting to a real MongoDB-protocol server, and the errors when that fails.
#![allow(clippy::unwrap_used)]

use crate::common::{mongo_uri, unique};
use mongodb::bson::{Binary, doc, spec::BinarySubtype};
use morgue::backends::mongo::{MongoBackendError, MongoConfig};

#[tokio::test]
async fn connects_and_keeps_binary_values_intact() {
    let cfg = MongoConfig {
        uri: mongo_uri(),
        db: "morgue_test".into(),
        collection: unique("foundation"),
        connect_timeout: std::time::Duration::from_secs(10),
    };
    let coll = cfg.connect().await.unwrap();
    let bytes = vec![0xff, 0x00, 0x80];
    coll.insert_one(doc! {
        "key": Binary { subtype: BinarySubtype::Generic, bytes: bytes.clone() },
        "value": "{\"price\": -3}",
        "timestamp": [1, 1_732_700_000_000i64],
    })
    .await
    .unwrap();
    let got = coll.find_one(doc! {}).await.unwrap().unwrap();
    assert_eq!(got.get_binary_generic("key").unwrap(), &bytes);
    assert_eq!(got.get_str("value").unwrap(), "{\"price\": -3}");
    coll.drop().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_server_is_quoted() {
    let cfg = MongoConfig {
        uri: "mongodb://ops:pw@127.0.0.1:1/?serverSelectionTimeoutMS=300".into(),
        db: "x".into(),
        collection: "y".into(),
        connect_timeout: std::time::Duration::from_secs(10),
    };
    let err = cfg.connect().await.unwrap_err();
    assert!(
        matches!(err, MongoBackendError::Unreachable { .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.starts_with("cannot reach MongoDB at 'mongodb://ops:***@127.0.0.1:1/"),
        "{msg}"
    );
    assert!(!msg.contains("pw"), "{msg}");
}

#[tokio::test]
async fn a_bad_uri_is_quoted() {
    let cfg = MongoConfig {
        uri: "postgres://nope".into(),
        db: "x".into(),
        collection: "y".into(),
        connect_timeout: std::time::Duration::from_secs(10),
    };
    let err = cfg.connect().await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("bad MongoDB URI 'postgres://nope'"),
        "{err}"
    );
}
