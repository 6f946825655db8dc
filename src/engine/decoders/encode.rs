//! Edits of decoded payloads, encoded back into the payload's own format: a Confluent
//! frame keeps its schema id (and Protobuf its message indexes), the JSON is checked
//! against the schema first (Avro, Protobuf, JSON Schema), and a mismatch is refused
//! with the field's path and the reason (`$.legs.0.qty: expected int, got "three"`). MessagePack and CBOR are written
//! again from the JSON, unframed Avro and Protobuf under their topic's mapped schema
//! ([`mapped`](super::mapped)), and a compressed payload is encoded inside, then
//! compressed again with the same codec.

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::Name;
use apache_avro::types::Value as Avro;
use serde_json::Value as Json;

use super::confluent::frame;
use std::sync::Arc;

use super::schemas::{Loaded, SchemaKind};
use super::{Attempt, Registry};

/// The bytes of `edited` in the format of `original` (which must decode with `reg`), a
/// payload of a letter from source `topic`. With `to_latest`, a framed payload is
/// encoded under its subject's latest version, once that version is found compatible
/// (readers of the original schema can read it).
pub fn reencode(
    original: &[u8],
    edited: &Json,
    reg: &Registry,
    topic: Option<&str>,
    to_latest: bool,
) -> Result<Vec<u8>, String> {
    if let (Some(name), Some(Ok(inner))) = (
        super::compress::kind(original),
        super::compress::decompress(original),
    ) {
        let plain = match reg.decode(&inner, topic) {
            Attempt::Decoded(_) => reencode(&inner, edited, reg, topic, to_latest)?,
            _ if serde_json::from_slice::<Json>(&inner).is_ok() => {
                serde_json::to_vec(edited).map_err(|e| e.to_string())?
            }
            _ => match edited {
                Json::String(text) => text.clone().into_bytes(),
                _ => {
                    return Err(format!(
                        "$: the {name} payload held text: expected a string"
                    ));
                }
            },
        };
        return super::compress::compress(name, &plain);
    }
    let Attempt::Decoded(s) = reg.decode(original, topic) else {
        return Err("the payload is not in a format that can be re-encoded".into());
    };
    if let Some((id, body)) = frame(original) {
        let original_schema = match reg.schemas.get(id) {
            Some(Ok(s)) => s,
            _ => return Err(format!("schema {id} is not loaded")),
        };
        let original_id = id;
        let (id, schema) = match to_latest {
            true => latest(reg, id, &original_schema, body)?,
            false => (id, original_schema.clone()),
        };
        let mut out = vec![0];
        out.extend(id.to_be_bytes());
        match schema.kind {
            SchemaKind::Avro => {
                let (main, refs) = schema.avro.as_ref().ok_or("no Avro schema")?;
                out.extend(avro_bytes(main, refs, edited)?);
            }
            SchemaKind::Protobuf => {
                let p = schema.proto.as_ref().ok_or("no Protobuf schema")?;
                out.extend(p.encode(body, edited)?);
            }
            SchemaKind::Json => {
                // Valid under the schema it is framed with, and under the one its readers had.
                check_json(&schema, id, edited)?;
                check_json(&original_schema, original_id, edited)?;
                out.extend(serde_json::to_vec(edited).map_err(|e| e.to_string())?);
            }
        }
        return Ok(out);
    }
    match s.format.as_str() {
        "MessagePack" => {
            let mut out = Vec::new();
            rmpv::encode::write_value(&mut out, &to_msgpack(edited)).map_err(|e| e.to_string())?;
            Ok(out)
        }
        "CBOR" => {
            let mut out = Vec::new();
            ciborium::ser::into_writer(edited, &mut out).map_err(|e| e.to_string())?;
            Ok(out)
        }
        other => super::mapped::encode(reg, topic, edited)
            .unwrap_or_else(|| Err(format!("{other} payloads cannot be re-encoded yet"))),
    }
}

/// Checks `edited` against JSON Schema `id`; a schema that did not compile refuses.
fn check_json(schema: &Loaded, id: u32, edited: &Json) -> Result<(), String> {
    match &schema.json {
        Some(Ok(s)) => s.check(edited),
        Some(Err(e)) => Err(format!("schema {id} cannot check the edit: {e}")),
        None => Err(format!("schema {id} is not a JSON Schema")),
    }
}

/// The latest version of the subject of schema `id`, checked: an Avro schema readers of
/// `id` can read, a Protobuf one with the same message at the same indexes.
fn latest(
    reg: &Registry,
    id: u32,
    original: &Loaded,
    body: &[u8],
) -> Result<(u32, Arc<Loaded>), String> {
    let subject = original
        .subject
        .as_deref()
        .ok_or_else(|| format!("schema {id} has no subject: its latest version cannot be found"))?;
    let (latest_id, latest) = match reg.schemas.latest(subject) {
        Some(got) => got?,
        None => return Err(format!("the latest version of {subject} is not loaded")),
    };
    let refuse = |why: String| {
        format!(
            "schema {latest_id} (latest of {subject}) does not fit readers of schema {id}: {why}"
        )
    };
    match (&original.avro, &latest.avro, &original.proto, &latest.proto) {
        (Some((was, _)), Some((now, _)), _, _) => {
            apache_avro::schema_compatibility::SchemaCompatibility::can_read(now, was)
                .map_err(|e| refuse(e.to_string()))?;
        }
        (_, _, Some(was), Some(now)) => {
            let (a, b) = (
                was.message_name(body)?,
                now.message_name(body).map_err(refuse)?,
            );
            if a != b {
                return Err(refuse(format!(
                    "its message at these indexes is {b}, not {a}"
                )));
            }
        }
        _ if original.kind != latest.kind => {
            return Err(refuse(format!(
                "{:?}, not {:?}",
                latest.kind, original.kind
            )));
        }
        _ => {}
    }
    Ok((latest_id, latest))
}

fn to_msgpack(v: &Json) -> rmpv::Value {
    match v {
        Json::Null => rmpv::Value::Nil,
        Json::Bool(b) => rmpv::Value::Boolean(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => rmpv::Value::from(i),
            (None, Some(u)) => rmpv::Value::from(u),
            _ => rmpv::Value::F64(n.as_f64().unwrap_or(0.0)),
        },
        Json::String(s) => rmpv::Value::from(s.as_str()),
        Json::Array(a) => rmpv::Value::Array(a.iter().map(to_msgpack).collect()),
        Json::Object(o) => rmpv::Value::Map(
            o.iter()
                .map(|(k, v)| (rmpv::Value::from(k.as_str()), to_msgpack(v)))
                .collect(),
        ),
    }
}

/// An Avro datum of `edited` under `main`, checked field by field.
pub(super) fn avro_bytes(main: &Schema, refs: &[Schema], edited: &Json) -> Result<Vec<u8>, String> {
    let mut names = HashMap::new();
    for s in refs.iter().chain(std::iter::once(main)) {
        collect_names(s, &mut names);
    }
    let value = to_avro(main, edited, "$", &names)?;
    apache_avro::writer::datum::GenericDatumWriter::builder(main)
        .schemata(refs.iter().collect())
        .map_err(|e| e.to_string())?
        .build()
        .map_err(|e| e.to_string())?
        .write_value_to_vec(value)
        .map_err(|e| format!("$: {e}"))
}

fn collect_names<'a>(s: &'a Schema, out: &mut HashMap<Name, &'a Schema>) {
    match s {
        Schema::Record(r) => {
            out.insert(r.name.clone(), s);
            for f in &r.fields {
                collect_names(&f.schema, out);
            }
        }
        Schema::Enum(e) => {
            out.insert(e.name.clone(), s);
        }
        Schema::Fixed(f) => {
            out.insert(f.name.clone(), s);
        }
        Schema::Array(a) => collect_names(&a.items, out),
        Schema::Map(m) => collect_names(&m.types, out),
        Schema::Union(u) => u.variants().iter().for_each(|v| collect_names(v, out)),
        _ => {}
    }
}

fn kind(v: &Json) -> String {
    match v {
        Json::String(s) => format!("\"{s}\""),
        other => {
            let t = other.to_string();
            if t.len() > 40 {
                format!("{}…", &t[..40])
            } else {
                t
            }
        }
    }
}

/// `v` as an Avro value of schema `s`; the error names the path and what was expected.
fn to_avro(
    s: &Schema,
    v: &Json,
    path: &str,
    names: &HashMap<Name, &Schema>,
) -> Result<Avro, String> {
    let want = |what: &str| format!("{path}: expected {what}, got {}", kind(v));
    Ok(match s {
        Schema::Ref { name } => {
            let target = names
                .get(name)
                .ok_or_else(|| format!("{path}: unknown type {name}"))?;
            return to_avro(target, v, path, names);
        }
        Schema::Null => match v {
            Json::Null => Avro::Null,
            _ => return Err(want("null")),
        },
        Schema::Boolean => Avro::Boolean(v.as_bool().ok_or_else(|| want("boolean"))?),
        Schema::Int => Avro::Int(
            v.as_i64()
                .and_then(|i| i32::try_from(i).ok())
                .ok_or_else(|| want("int"))?,
        ),
        Schema::Long => Avro::Long(v.as_i64().ok_or_else(|| want("long"))?),
        Schema::Float => Avro::Float(v.as_f64().ok_or_else(|| want("float"))? as f32),
        Schema::Double => Avro::Double(v.as_f64().ok_or_else(|| want("double"))?),
        Schema::String | Schema::Uuid(_) => {
            Avro::String(v.as_str().ok_or_else(|| want("string"))?.to_string())
        }
        Schema::Bytes => {
            Avro::Bytes(json_bytes(v).ok_or_else(|| want("bytes (an array of 0-255)"))?)
        }
        Schema::Fixed(f) => {
            let b = json_bytes(v).ok_or_else(|| want("fixed bytes"))?;
            if b.len() != f.size {
                return Err(format!(
                    "{path}: expected {} bytes, got {}",
                    f.size,
                    b.len()
                ));
            }
            Avro::Fixed(f.size, b)
        }
        Schema::Enum(e) => {
            let sym = v.as_str().ok_or_else(|| want("an enum symbol"))?;
            let i =
                e.symbols.iter().position(|s| s == sym).ok_or_else(|| {
                    format!("{path}: '{sym}' is not one of {}", e.symbols.join(", "))
                })?;
            Avro::Enum(i as u32, sym.to_string())
        }
        Schema::Array(a) => {
            let items = v.as_array().ok_or_else(|| want("an array"))?;
            Avro::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, x)| to_avro(&a.items, x, &format!("{path}.{i}"), names))
                    .collect::<Result<_, _>>()?,
            )
        }
        Schema::Map(m) => {
            let o = v.as_object().ok_or_else(|| want("an object"))?;
            Avro::Map(
                o.iter()
                    .map(|(k, x)| {
                        Ok((
                            k.clone(),
                            to_avro(&m.types, x, &format!("{path}.{k}"), names)?,
                        ))
                    })
                    .collect::<Result<_, String>>()?,
            )
        }
        Schema::Union(u) => {
            let mut last = None;
            for (i, variant) in u.variants().iter().enumerate() {
                match to_avro(variant, v, path, names) {
                    Ok(x) => return Ok(Avro::Union(i as u32, Box::new(x))),
                    Err(e) => last = Some(e),
                }
            }
            return Err(last.unwrap_or_else(|| want("a union branch")));
        }
        Schema::Record(r) => {
            let o = v.as_object().ok_or_else(|| want("an object"))?;
            if let Some(extra) = o.keys().find(|k| !r.fields.iter().any(|f| &f.name == *k)) {
                return Err(format!("{path}.{extra}: not a field of {}", r.name));
            }
            let mut fields = Vec::new();
            for f in &r.fields {
                let p = format!("{path}.{}", f.name);
                let x = match (o.get(&f.name), &f.default) {
                    (Some(x), _) => to_avro(&f.schema, x, &p, names)?,
                    (None, Some(d)) => to_avro(&f.schema, d, &p, names)?,
                    (None, None) => {
                        return Err(format!("{p}: missing (the schema has no default)"));
                    }
                };
                fields.push((f.name.clone(), x));
            }
            Avro::Record(fields)
        }
        other => return Err(format!("{path}: editing {other:?} values is not supported")),
    })
}

fn json_bytes(v: &Json) -> Option<Vec<u8>> {
    v.as_array()?
        .iter()
        .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
        .collect()
}
