//! Schemas by id, for the Confluent wire format: from a directory (`<id>.avsc`,
//! `<id>.json`, `<id>.proto`: offline, and first), else from a Confluent-compatible
//! schema registry (`GET /schemas/ids/{id}` with its `schemaType` and `references`,
//! each reference by `GET /subjects/{subject}/versions/{version}`, and the subject by
//! `GET /schemas/ids/{id}/versions`). Basic auth comes from the URL's user info; an
//! `https` registry may have its own CA and ask for a client certificate
//! ([`RegistryTls`]). Each id is asked once per session (10 s at most); a failure is
//! remembered with its reason.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::engine::model::urls;

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
    pub tls: RegistryTls,
    /// Re-encode edits under the latest version of the letter's subject
    /// (`--schema-version latest`) rather than the schema id it was written with.
    pub latest: bool,
}

/// PEM files for an `https` schema registry.
#[derive(Debug, Clone, Default)]
pub struct RegistryTls {
    /// The CA certificates to trust instead of the built-in roots.
    pub ca: Option<PathBuf>,
    /// A client certificate (chain), when the registry asks for one.
    pub cert: Option<PathBuf>,
    /// The client certificate's private key.
    pub key: Option<PathBuf>,
}

impl RegistryTls {
    /// The TLS settings of these files; the error names the file.
    fn config(&self) -> Result<ureq::tls::TlsConfig, String> {
        use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};
        let who = "schema registry";
        let read = |what: &str, p: &PathBuf| {
            std::fs::read(p).map_err(|e| format!("{who} {what} '{}': {e}", p.display()))
        };
        let certs = |what: &str, p: &PathBuf| -> Result<Vec<Certificate<'static>>, String> {
            let pem = read(what, p)?;
            let all: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
                .filter_map(|i| match i {
                    Ok(PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if all.is_empty() {
                return Err(format!(
                    "{who} {what} '{}': no PEM certificate in it",
                    p.display()
                ));
            }
            Ok(all)
        };
        let mut b = TlsConfig::builder();
        if let Some(ca) = &self.ca {
            b = b.root_certs(RootCerts::new_with_certs(&certs("CA", ca)?));
        }
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let chain = certs("certificate", cert)?;
                let k = PrivateKey::from_pem(&read("key", key)?)
                    .map_err(|e| format!("{who} key '{}': {e}", key.display()))?;
                b = b.client_cert(Some(ClientCert::new_with_certs(&chain, k)));
            }
            (None, None) => {}
            _ => {
                return Err(format!(
                    "a {who} client certificate needs both its certificate and its key"
                ));
            }
        }
        Ok(b.build())
    }
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
    pub json: Option<Result<super::json_schema::JsonSchema, String>>,
}

/// A schema lookup's result, cached.
pub type Lookup = Result<Arc<Loaded>, String>;

/// The latest version of a subject: its id and schema, or why it could not be had.
pub type LatestLookup = Result<(u32, Arc<Loaded>), String>;

/// Schemas fetched so far, by id.
#[derive(Debug)]
pub struct SchemaStore {
    source: SchemaSource,
    cache: Mutex<HashMap<u32, Lookup>>,
    /// The latest version of each subject asked for: its id and schema.
    latest: Mutex<HashMap<String, LatestLookup>>,
}

impl SchemaStore {
    /// An empty store reading from `source`.
    pub fn new(source: SchemaSource) -> Self {
        SchemaStore {
            source,
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
        let (source, s) = (self.source.clone(), subject.to_string());
        let got = tokio::task::spawn_blocking(move || load_latest(&source, &s))
            .await
            .unwrap_or_else(|e| Err(format!("subject {subject}: lookup task failed: {e}")));
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

    /// Loads `id` and `latest` from the directory as versions of `subject`, `latest`
    /// the latest (tests: the directory has no subjects).
    #[cfg(test)]
    pub fn put_versions(&self, subject: &str, id: u32, latest: u32) {
        let with_subject = |id| {
            load(&self.source, id).map(|l| {
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
    let client = Client::new(url, &source.tls)?;
    let body = client.get(&format!("/schemas/ids/{id}"))?;
    let kind = kind_of(&body);
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

/// The kind a registry answer names (`schemaType`, Avro when absent).
fn kind_of(body: &serde_json::Value) -> SchemaKind {
    match body["schemaType"].as_str().unwrap_or("AVRO") {
        "PROTOBUF" => SchemaKind::Protobuf,
        "JSON" => SchemaKind::Json,
        _ => SchemaKind::Avro,
    }
}

/// `GET /subjects/{subject}/versions/latest`: its id and schema.
fn load_latest(source: &SchemaSource, subject: &str) -> LatestLookup {
    let url = source.registry.as_ref().ok_or_else(|| {
        format!("--schema-version latest needs a schema registry (subject {subject})")
    })?;
    let client = Client::new(url, &source.tls)?;
    let body = client.get(&format!("/subjects/{subject}/versions/latest"))?;
    let id = body["id"]
        .as_u64()
        .and_then(|i| u32::try_from(i).ok())
        .ok_or_else(|| format!("subject {subject} at {}: no id in the answer", client.shown))?;
    let kind = kind_of(&body);
    let text = body["schema"].as_str().unwrap_or_default();
    let mut refs = Vec::new();
    references(&client, &body, &mut refs, 0)?;
    let loaded = loaded(kind, text, &refs, Some(subject.to_string()))
        .map_err(|e| format!("subject {subject} at {}: {e}", client.shown))?;
    Ok((id, loaded))
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

/// A registry's base URL without its user info, and basic auth from it.
struct Client {
    base: String,
    shown: String,
    auth: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    fn new(url: &str, tls: &RegistryTls) -> Result<Client, String> {
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .tls_config(tls.config()?)
                .timeout_global(Some(std::time::Duration::from_secs(10)))
                .build(),
        );
        // A registry given as `host:port` is reached over http.
        let with_scheme = match url.contains("://") {
            true => url.to_string(),
            false => format!("http://{url}"),
        };
        let parsed = urls::parse_http(&with_scheme).map_err(|e| format!("schema registry {e}"))?;
        let auth = urls::basic_auth(&parsed);
        let mut bare = urls::without_credentials(&parsed);
        bare.set_query(None);
        bare.set_fragment(None);
        let base = bare.as_str().trim_end_matches('/').to_string();
        Ok(Client {
            shown: base.clone(),
            base,
            auth,
            agent,
        })
    }

    /// GET `path` as JSON; the error names the URL (never the password) and the status.
    fn get(&self, path: &str) -> Result<serde_json::Value, String> {
        let url = format!("{}{path}", self.base);
        let mut req = self.agent.get(&url).header(
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

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    /// What `client` sends as basic auth, decoded.
    fn sent(client: &Client) -> Option<String> {
        let token = client.auth.as_deref()?.strip_prefix("Basic ")?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(token)
            .ok()?;
        String::from_utf8(bytes).ok()
    }

    #[test]
    fn the_registry_user_info_is_decoded_and_never_shown() {
        for (url, creds, base) in [
            (
                "http://ops:p@ss@reg:8081/",
                Some("ops:p@ss"),
                "http://reg:8081",
            ),
            (
                "https://ops:p%40ss%3A%2F@reg:8081/ccompat/",
                Some("ops:p@ss:/"),
                "https://reg:8081/ccompat",
            ),
            ("http://ops@reg:8081", Some("ops:"), "http://reg:8081"),
            ("http://reg:8081", None, "http://reg:8081"),
            ("reg:8081", None, "http://reg:8081"),
        ] {
            let client = Client::new(url, &RegistryTls::default()).expect(url);
            assert_eq!(sent(&client).as_deref(), creds, "{url}");
            assert_eq!(client.base, base, "{url}");
            assert_eq!(client.shown, base, "{url}");
        }
    }
}
