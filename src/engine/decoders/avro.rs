//! Avro, both directions: a datum read as JSON (framed by Confluent's wire format or
//! mapped to a topic), and edited JSON written back as a datum of the same schema,
//! checked field by field (`$.legs.0.qty: expected int, got "three"`).

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::Name;
use apache_avro::types::Value as Avro;
use serde_json::Value as Json;

use super::DecodeError;
use crate::engine::model::text::clip;

/// An Avro datum of `main` (which may name types of `refs`), all of `body`, as JSON.
pub(super) fn decode(
    mut body: &[u8],
    main: &apache_avro::Schema,
    refs: &[apache_avro::Schema],
) -> Result<serde_json::Value, DecodeError> {
    let len = body.len();
    let bad = |e: apache_avro::Error| {
        DecodeError::malformed(format!("not an Avro datum of its schema: {e}"))
    };
    let reader = apache_avro::reader::datum::GenericDatumReader::builder(main)
        .writer_schemata(with_main(main, refs))
        .map_err(bad)?
        .build()
        .map_err(bad)?;
    let v = reader.read_value(&mut body).map_err(bad)?;
    if !body.is_empty() {
        return Err(DecodeError::malformed(format!(
            "not an Avro datum of its schema: {} of {len} bytes left over",
            body.len()
        )));
    }
    serde_json::Value::try_from(v)
        .map_err(|e| DecodeError::malformed(format!("Avro value not representable as JSON: {e}")))
}

/// An Avro datum of `edited` under `main`, checked field by field.
pub(super) fn encode(
    main: &Schema,
    refs: &[Schema],
    edited: &Json,
) -> Result<Vec<u8>, DecodeError> {
    let mut names = HashMap::new();
    for s in refs.iter().chain(std::iter::once(main)) {
        collect_names(s, &mut names);
    }
    let value = to_avro(main, edited, "$", &names).map_err(DecodeError::mismatch)?;
    apache_avro::writer::datum::GenericDatumWriter::builder(main)
        .schemata(with_main(main, refs))
        .map_err(|e| DecodeError::bad_schema(e.to_string()))?
        .build()
        .map_err(|e| DecodeError::bad_schema(e.to_string()))?
        .write_value_to_vec(value)
        .map_err(|e| DecodeError::mismatch(format!("$: {e}")))
}

/// The schemata whose named types `main` may use: `refs` and `main` itself (a type
/// defined once in `main` and named again later is a reference to it).
fn with_main<'a>(main: &'a Schema, refs: &'a [Schema]) -> Vec<&'a Schema> {
    refs.iter().chain(std::iter::once(main)).collect()
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

/// Longest rendering of a mismatched value in an error, in characters.
const MAX_SHOWN: usize = 40;

/// `v` as an error shows it: a string quoted, anything else as JSON cut to
/// [`MAX_SHOWN`] characters.
fn kind(v: &Json) -> String {
    match v {
        Json::String(s) => format!("\"{s}\""),
        other => clip(&other.to_string(), MAX_SHOWN).into_owned(),
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
        Schema::Float => {
            // Past f32's range it would be written as infinity, which reads back as no JSON.
            let f = v.as_f64().map(|f| f as f32).filter(|f| f.is_finite());
            Avro::Float(f.ok_or_else(|| want("float (at most 3.4e38)"))?)
        }
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
