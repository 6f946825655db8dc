//! Schemas by id, for the Confluent wire format: from a directory (`<id>.avsc`,
//! `<id>.json`, `<id>.proto`: offline, and first), else from a Confluent-compatible
//! schema registry (`GET /schemas/ids/{id}` with its `schemaType` and `references`,
//! each reference by `GET /subjects/{subject}/versions/{version}`, and the subject by
//! `GET /schemas/ids/{id}/versions`). Basic auth comes from the URL's user info. Each
//! id is asked once per session; a failure is remembered with its reason.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use base64::Engine as _;

/// Where schemas come from.
#[derive(Debug, Clone, Default)]
pub struct SchemaSource {
    /// A Confluent-compatible registry (`http://user:pass@host:8081`).
    pub registry: Option<String>,
    /// A directory of `<id>.avsc` / `<id>.json` / `<id>.proto` files.
    pub dir: Option<PathBuf>,
    /// Schemas for unframed payloads, by source topic.
    pub mapped: Vec<super::mapped::Mapping>,
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
}

/// A schema lookup's result, cached.
pub type Lookup = Result<Arc<Loaded>, String>;

/// Schemas fetched so far, by id.
#[derive(Debug)]
pub struct SchemaStore {
    source: SchemaSource,
    cache: Mutex<HashMap<u32, Lookup>>,
}

impl SchemaStore {
    /// An empty store reading from `source`.
    pub fn new(source: SchemaSource) -> Self {
        SchemaStore {
            source,
            cache: Mutex::new(HashMap::new()),
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

    /// Fetches schema `id` into the cache unless it is there (off the async threads).
    pub async fn fetch(&self, id: u32) {
        if self.get(id).is_some() {
            return;
        }
        let source = self.source.clone();
        let got = tokio::task::spawn_blocking(move || load(&source, id))
            .await
            .unwrap_or_else(|e| Err(format!("schema {id}: lookup task failed: {e}")));
        if let Ok(mut c) = self.cache.lock() {
            c.insert(id, got);
        }
    }

    /// Loads schema `id` now, on this thread (tests and tools).
    pub fn fetch_blocking(&self, id: u32) {
        if self.get(id).is_none() {
            let got = load(&self.source, id);
            if let Ok(mut c) = self.cache.lock() {
                c.insert(id, got);
            }
        }
    }
}

fn load(source: &SchemaSource, id: u32) -> Lookup {
    if let Some(dir) = &source.dir {
        for (ext, kind) in [
            ("avsc", SchemaKind::Avro),
            ("json", SchemaKind::Json),
            ("proto", SchemaKind::Protobuf),
        ] {
            let path = dir.join(format!("{id}.{ext}"));
            if let Ok(text) = std::fs::read_to_string(&path) {
                return loaded(kind, &text, &[], None)
                    .map_err(|e| format!("schema {id} in '{}': {e}", path.display()));
            }
        }
    }
    let Some(url) = &source.registry else {
        return Err(match &source.dir {
            Some(d) => format!(
                "schema {id}: no {id}.avsc/.json/.proto in '{}' and no --schema-registry",
                d.display()
            ),
            None => format!(
                "schema {id}: no schema registry (--schema-registry URL) or schema directory (--schemas DIR) given"
            ),
        });
    };
    let client = Client::new(url);
    let body = client.get(&format!("/schemas/ids/{id}"))?;
    let kind = match body["schemaType"].as_str().unwrap_or("AVRO") {
        "PROTOBUF" => SchemaKind::Protobuf,
        "JSON" => SchemaKind::Json,
        _ => SchemaKind::Avro,
    };
    let text = body["schema"]
        .as_str()
        .ok_or_else(|| format!("schema {id} at {}: no 'schema' in the answer", client.shown))?;
    let mut refs = Vec::new();
    references(&client, &body, &mut refs, 0)?;
    let subject = client
        .get(&format!("/schemas/ids/{id}/versions"))
        .ok()
        .and_then(|v| v[0]["subject"].as_str().map(str::to_string));
    loaded(kind, text, &refs, subject).map_err(|e| format!("schema {id} at {}: {e}", client.shown))
}

/// The schemas `body` references (`(name, text)`), dependencies first.
fn references(
    client: &Client,
    body: &serde_json::Value,
    out: &mut Vec<(String, String)>,
    depth: u8,
) -> Result<(), String> {
    let Some(refs) = body["references"].as_array() else {
        return Ok(());
    };
    if depth > 8 {
        return Err("schema references nest deeper than 8".into());
    }
    for r in refs {
        let (Some(subject), Some(version)) = (r["subject"].as_str(), r["version"].as_i64()) else {
            continue;
        };
        let sub = client.get(&format!("/subjects/{subject}/versions/{version}"))?;
        references(client, &sub, out, depth + 1)?;
        let name = r["name"].as_str().unwrap_or(subject);
        if let Some(t) = sub["schema"].as_str()
            && !out.iter().any(|(n, _)| n == name)
        {
            out.push((name.to_string(), t.to_string()));
        }
    }
    Ok(())
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
            let mut parsed = apache_avro::Schema::parse_list(all).map_err(|e| e.to_string())?;
            let main = parsed.pop().ok_or("empty Avro schema")?;
            Some((main, parsed))
        }
        _ => None,
    };
    Ok(Arc::new(Loaded {
        kind,
        subject,
        avro,
        proto,
    }))
}

/// A registry's base URL without its user info, and basic auth from it.
struct Client {
    base: String,
    shown: String,
    auth: Option<String>,
}

impl Client {
    fn new(url: &str) -> Client {
        let url = url.trim_end_matches('/');
        let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
        let (auth, host) = match rest.split_once('@') {
            Some((creds, host)) => (
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(creds)
                )),
                host,
            ),
            None => (None, rest),
        };
        let base = format!("{scheme}://{host}");
        Client {
            shown: base.clone(),
            base,
            auth,
        }
    }

    /// GET `path` as JSON; the error names the URL (never the password) and the status.
    fn get(&self, path: &str) -> Result<serde_json::Value, String> {
        let url = format!("{}{path}", self.base);
        let mut req = ureq::get(&url).header(
            "Accept",
            "application/vnd.schemaregistry.v1+json, application/json",
        );
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        let mut resp = req.call().map_err(|e| match e {
            ureq::Error::StatusCode(code) => format!("{url}: {code}"),
            other => format!("{url}: {other}"),
        })?;
        resp.body_mut()
            .read_json::<serde_json::Value>()
            .map_err(|e| format!("{url}: {e}"))
    }
}
