//! Schemas by id, for the Confluent wire format: from a directory (`<id>.avsc`,
//! `<id>.json`, `<id>.proto`: offline, and first), else from a Confluent-compatible
//! schema registry (`GET /schemas/ids/{id}` with its `schemaType` and `references`,
//! each reference by `GET /subjects/{subject}/versions/{version}`, and the subject by
//! `GET /schemas/ids/{id}/versions`), through morgue's one HTTP client
//! ([`crate::engine::http`]: basic auth from the URL's user info; an `https` registry
//! may have its own CA and ask for a client certificate, [`TlsFiles`]). Each id is
//! asked once per session (10 s at most); a failure is remembered with its reason.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::DecodeError;
use crate::engine::http::{Client, TlsFiles};

/// Where schemas come from.
#[derive(Debug, Clone, Default)]
pub struct SchemaSource {
    /// A Confluent-compatible registry (`http://user:pass@host:8081`).
    pub registry: Option<String>,
    /// A directory of `<id>.avsc` / `<id>.json` / `<id>.proto` files.
    pub dir: Option<PathBuf>,
    /// Schemas for unframed payloads, by source topic.
    pub mapped: Vec<Mapping>,
    /// TLS files for an `https` registry.
    pub tls: TlsFiles,
    /// Re-encode edits under the latest version of the letter's subject
    /// (`--schema-version latest`) rather than the schema id it was written with.
    pub latest: bool,
}

/// What kind of schema an id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaKind {
    /// Apache Avro.
    Avro,
    /// Protocol Buffers.
    Protobuf,
    /// JSON Schema.
    Json,
}

/// A schema ready for decoding.
#[derive(Debug)]
pub struct Loaded {
    /// Its kind.
    pub kind: SchemaKind,
    /// The subject it is registered under, when known.
    pub subject: Option<String>,
    /// For Avro: the schema and the schemas it references.
    pub avro: Option<(apache_avro::Schema, Vec<apache_avro::Schema>)>,
    /// For Protobuf: the compiled schema.
    pub proto: Option<super::protobuf::ProtoSchema>,
    /// For JSON Schema: the compiled schema, or why it does not compile (decoding
    /// needs no schema; only edits are refused then).
    pub json: Option<Result<super::json_schema::JsonSchema, DecodeError>>,
}

/// A schema lookup's result, cached.
pub type Lookup = Result<Arc<Loaded>, DecodeError>;

/// The latest version of a subject: its id and schema, or why it could not be had.
pub type LatestLookup = Result<(u32, Arc<Loaded>), DecodeError>;

/// Schemas fetched so far, by id.
#[derive(Debug)]
pub struct SchemaStore {
    source: SchemaSource,
    /// The registry's client, made on first use (its TLS files read once, its
    /// connections kept for the next lookup).
    client: std::sync::OnceLock<Result<Arc<Client>, String>>,
    cache: Mutex<HashMap<u32, Lookup>>,
    /// The latest version of each subject asked for: its id and schema.
    latest: Mutex<HashMap<String, LatestLookup>>,
}

impl SchemaStore {
    /// An empty store reading from `source`.
    pub fn new(source: SchemaSource) -> Self {
        SchemaStore {
            source,
            client: std::sync::OnceLock::new(),
            cache: Mutex::new(HashMap::new()),
            latest: Mutex::new(HashMap::new()),
        }
    }

    /// True when edits are re-encoded under their subject's latest version.
    pub fn wants_latest(&self) -> bool {
        self.source.latest
    }

    /// The latest version of `subject` as cached (None: not asked yet).
    pub fn latest(&self, subject: &str) -> Option<LatestLookup> {
        self.latest.lock().ok()?.get(subject).cloned()
    }

    /// Fetches the latest version of `subject` into the cache unless it is there.
    pub async fn fetch_latest(&self, subject: &str) {
        if self.latest(subject).is_some() {
            return;
        }
        let got = self.load_latest(subject).await;
        if let Ok(mut c) = self.latest.lock() {
            c.insert(subject.to_string(), got);
        }
    }

    /// The schema `id` as cached (None: not asked yet).
    pub fn get(&self, id: u32) -> Option<Lookup> {
        self.cache.lock().ok()?.get(&id).cloned()
    }

    /// True when neither a registry nor a directory is configured.
    pub fn is_unconfigured(&self) -> bool {
        self.source.registry.is_none() && self.source.dir.is_none()
    }

    /// Fetches schema `id` into the cache unless it is there.
    pub async fn fetch(&self, id: u32) {
        if self.get(id).is_some() {
            return;
        }
        let got = self.load(id).await;
        if let Ok(mut c) = self.cache.lock() {
            c.insert(id, got);
        }
    }

    /// Loads `id` and `latest` from the directory as versions of `subject`, `latest`
    /// the latest (tests: the directory has no subjects).
    #[cfg(test)]
    pub fn put_versions(&self, subject: &str, id: u32, latest: u32) {
        let with_subject = |id| {
            blocking(self.load(id)).map(|l| {
                let mut l = Arc::try_unwrap(l).expect("fresh");
                l.subject = Some(subject.to_string());
                Arc::new(l)
            })
        };
        let mut cache = self.cache.lock().expect("cache");
        cache.insert(id, with_subject(id));
        let mut c = self.latest.lock().expect("latest");
        c.insert(
            subject.to_string(),
            with_subject(latest).map(|l| (latest, l)),
        );
    }

    /// Loads schema `id` now, waiting for it on this thread, inside an async runtime or
    /// outside any (tests, and checking `--schemas DIR`).
    pub fn fetch_blocking(&self, id: u32) {
        if self.get(id).is_none() {
            let got = blocking(self.load(id));
            if let Ok(mut c) = self.cache.lock() {
                c.insert(id, got);
            }
        }
    }
}

impl SchemaStore {
    /// The registry's client (the error: no registry, or a bad URL or TLS file).
    fn client(&self) -> Result<Arc<Client>, DecodeError> {
        let Some(url) = &self.source.registry else {
            return Err(DecodeError::no_schema(
                "no schema registry (--schema-registry URL) given",
            ));
        };
        let made = self
            .client
            .get_or_init(|| Client::new(url, &self.source.tls, "schema registry").map(Arc::new));
        made.clone().map_err(DecodeError::no_schema)
    }

    /// Schema `id` from the directory, else the registry: a schema that cannot be had
    /// is `NoSchema`, one that does not compile `BadSchema`. Files are read and schemas
    /// compiled off the async threads.
    async fn load(&self, id: u32) -> Lookup {
        if let Some(dir) = self.source.dir.clone()
            && let Some(found) = off_thread(move || Ok(from_dir(&dir, id))).await?
        {
            return found;
        }
        if self.source.registry.is_none() {
            return Err(DecodeError::no_schema(match &self.source.dir {
                Some(d) => format!(
                    "schema {id}: no {id}.avsc/.json/.proto in '{}' and no --schema-registry",
                    d.display()
                ),
                None => format!(
                    "schema {id}: no schema registry (--schema-registry URL) or schema directory (--schemas DIR) given"
                ),
            }));
        }
        let client = self.client()?;
        let fetched = async {
            let body = get(&client, &format!("/schemas/ids/{id}")).await?;
            let text = body["schema"].as_str().ok_or_else(|| {
                format!(
                    "schema {id} at {}: no 'schema' in the answer",
                    client.base_url()
                )
            })?;
            let text = text.to_string();
            let mut refs = Vec::new();
            references(&client, &body, &mut refs, 0).await?;
            let subject = get(&client, &format!("/schemas/ids/{id}/versions"))
                .await
                .ok()
                .and_then(|v| v[0]["subject"].as_str().map(str::to_string));
            Ok::<_, String>((kind_of(&body), text, refs, subject))
        };
        let (kind, text, refs, subject) = fetched.await.map_err(DecodeError::no_schema)?;
        let at = client.base_url().to_string();
        off_thread(move || {
            loaded(kind, &text, &refs, subject)
                .map_err(|e| e.context(|m| format!("schema {id} at {at}: {m}")))
        })
        .await
    }

    /// `GET /subjects/{subject}/versions/latest`: its id and schema.
    async fn load_latest(&self, subject: &str) -> LatestLookup {
        if self.source.registry.is_none() {
            return Err(DecodeError::no_schema(format!(
                "--schema-version latest needs a schema registry (subject {subject})"
            )));
        }
        let client = self.client()?;
        let fetched = async {
            let body = get(&client, &format!("/subjects/{subject}/versions/latest")).await?;
            let id = body["id"]
                .as_u64()
                .and_then(|i| u32::try_from(i).ok())
                .ok_or_else(|| {
                    format!(
                        "subject {subject} at {}: no id in the answer",
                        client.base_url()
                    )
                })?;
            let text = body["schema"].as_str().unwrap_or_default().to_string();
            let mut refs = Vec::new();
            references(&client, &body, &mut refs, 0).await?;
            Ok::<_, String>((id, kind_of(&body), text, refs))
        };
        let (id, kind, text, refs) = fetched.await.map_err(DecodeError::no_schema)?;
        let (at, subject) = (client.base_url().to_string(), subject.to_string());
        let loaded = off_thread(move || {
            loaded(kind, &text, &refs, Some(subject.clone()))
                .map_err(|e| e.context(|m| format!("subject {subject} at {at}: {m}")))
        })
        .await?;
        Ok((id, loaded))
    }
}

/// Schema `id` from `dir` (`<id>.avsc`, `.json` or `.proto`), compiled; None when no
/// such file is there.
fn from_dir(dir: &Path, id: u32) -> Option<Lookup> {
    for (ext, kind) in [
        ("avsc", SchemaKind::Avro),
        ("json", SchemaKind::Json),
        ("proto", SchemaKind::Protobuf),
    ] {
        let path = dir.join(format!("{id}.{ext}"));
        if let Ok(text) = std::fs::read_to_string(&path) {
            return Some(
                loaded(kind, &text, &[], None).map_err(|e| {
                    e.context(|m| format!("schema {id} in '{}': {m}", path.display()))
                }),
            );
        }
    }
    None
}

/// `f` (file reads, schema compiles) on a blocking thread, not the async ones.
async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DecodeError> + Send + 'static,
) -> Result<T, DecodeError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DecodeError::no_schema(format!("the schema lookup task failed: {e}")))?
}

/// `f` run to its end on a thread and runtime of its own, so that a caller inside an
/// async runtime (a test, a flag's check) or outside any can wait for it.
fn blocking<T: Send>(
    f: impl std::future::Future<Output = Result<T, DecodeError>> + Send,
) -> Result<T, DecodeError> {
    let lost = |e: String| DecodeError::no_schema(format!("the schema lookup failed: {e}"));
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| lost(e.to_string()))?
                .block_on(f)
        })
        .join()
        .map_err(|_| lost("its thread panicked".into()))?
    })
}

/// How long one registry request may take.
const REGISTRY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The media types a registry answers in.
const REGISTRY_JSON: &str = "application/vnd.schemaregistry.v1+json, application/json";

/// GET `path` from the registry as JSON.
async fn get(client: &Client, path: &str) -> Result<serde_json::Value, String> {
    client.get_json(path, REGISTRY_JSON, REGISTRY_TIMEOUT).await
}

/// The kind a registry answer names (`schemaType`, Avro when absent).
fn kind_of(body: &serde_json::Value) -> SchemaKind {
    match body["schemaType"].as_str().unwrap_or("AVRO") {
        "PROTOBUF" => SchemaKind::Protobuf,
        "JSON" => SchemaKind::Json,
        _ => SchemaKind::Avro,
    }
}

/// The schemas `body` references (`(name, text)`), dependencies first (each reference's
/// own references before it, 8 levels at most).
fn references<'a>(
    client: &'a Client,
    body: &'a serde_json::Value,
    out: &'a mut Vec<(String, String)>,
    depth: u8,
) -> futures::future::BoxFuture<'a, Result<(), String>> {
    Box::pin(async move {
        let Some(refs) = body["references"].as_array() else {
            return Ok(());
        };
        if depth > 8 {
            return Err("schema references nest deeper than 8".into());
        }
        for r in refs {
            let (Some(subject), Some(version)) = (r["subject"].as_str(), r["version"].as_i64())
            else {
                continue;
            };
            let sub = get(client, &format!("/subjects/{subject}/versions/{version}")).await?;
            references(client, &sub, out, depth + 1).await?;
            let name = r["name"].as_str().unwrap_or(subject);
            if let Some(t) = sub["schema"].as_str()
                && !out.iter().any(|(n, _)| n == name)
            {
                out.push((name.to_string(), t.to_string()));
            }
        }
        Ok(())
    })
}

fn loaded(
    kind: SchemaKind,
    text: &str,
    refs: &[(String, String)],
    subject: Option<String>,
) -> Lookup {
    let proto = match kind {
        SchemaKind::Protobuf => Some(super::protobuf::ProtoSchema::compile(text, refs)?),
        _ => None,
    };
    let avro = match kind {
        SchemaKind::Avro => {
            let mut all: Vec<&str> = refs.iter().map(|(_, t)| t.as_str()).collect();
            all.push(text);
            let mut parsed = apache_avro::Schema::parse_list(all)
                .map_err(|e| DecodeError::bad_schema(e.to_string()))?;
            let main = parsed
                .pop()
                .ok_or_else(|| DecodeError::bad_schema("empty Avro schema"))?;
            Some((main, parsed))
        }
        _ => None,
    };
    let json = match kind {
        SchemaKind::Json => Some(super::json_schema::JsonSchema::compile(text, refs)),
        _ => None,
    };
    Ok(Arc::new(Loaded {
        kind,
        subject,
        avro,
        proto,
        json,
    }))
}

/// A schema for the source topics a glob matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// The source topics (`*` any run, `?` one character).
    pub glob: String,
    /// A `.avsc` or `.proto` file.
    pub file: PathBuf,
    /// For `.proto`: the message type's full name (default: the file's first message).
    pub message: Option<String>,
}

impl Mapping {
    /// `GLOB` and `FILE[:MESSAGE]`, a relative file taken from `dir`; the error quotes the input.
    pub fn parse(glob: &str, target: &str, dir: Option<&Path>) -> Result<Mapping, String> {
        let (file, message) = match target.rsplit_once(':') {
            Some((f, m)) if f.ends_with(".proto") && !m.is_empty() => (f, Some(m.to_string())),
            _ => (target, None),
        };
        if !(file.ends_with(".avsc") || file.ends_with(".proto")) {
            return Err(format!(
                "schema map '{glob}' = '{target}': expected a .avsc file or FILE.proto[:MESSAGE]"
            ));
        }
        let file = PathBuf::from(file);
        let file = match dir {
            Some(d) if file.is_relative() => d.join(file),
            _ => file,
        };
        Ok(Mapping {
            glob: glob.to_string(),
            file,
            message,
        })
    }
}
