//! Protobuf in Confluent's wire format: after the schema id, the message indexes
//! (zig-zag varints: a count, then the path of the message type among the file's
//! messages and their nested ones; a single `0` byte means the first message), then
//! the message. `.proto` schemas, from the registry (with their imports as
//! references) or a directory, are compiled at run time by protox: no `protoc`.

use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};

use super::DecodeError;

/// A compiled `.proto` schema: its pool and the name of its main file.
#[derive(Debug)]
pub struct ProtoSchema {
    pool: DescriptorPool,
    file: String,
}

/// The name the main file of a schema is compiled under.
const MAIN: &str = "schema.proto";

impl ProtoSchema {
    /// Compiles `text` with its imports `refs` (`(import name, source)`). A schema is
    /// `.proto` source (the Java serializer's form) or a base64 `FileDescriptorProto`
    /// (the Python serializer's); imports of Google's well-known types come with protox.
    pub fn compile(text: &str, refs: &[(String, String)]) -> Result<ProtoSchema, DecodeError> {
        Self::compile_text(text, refs).map_err(DecodeError::bad_schema)
    }

    fn compile_text(text: &str, refs: &[(String, String)]) -> Result<ProtoSchema, String> {
        let mut files: Vec<(String, String)> = refs.to_vec();
        if let Some(main) = descriptor_proto(text) {
            let mut pool = DescriptorPool::new();
            let mut protos = Vec::new();
            for dep in &main.dependency {
                if !refs.iter().any(|(n, _)| n == dep) {
                    protos.extend(compiled(dep, &[])?.file);
                }
            }
            for (name, src) in refs {
                match descriptor_proto(src) {
                    Some(p) => protos.push(p),
                    None => protos.extend(compiled(name, &files)?.file),
                }
            }
            let file = main.name().to_string();
            protos.push(main);
            pool.add_file_descriptor_protos(protos)
                .map_err(|e| first_line(&e.to_string()))?;
            return Ok(ProtoSchema { pool, file });
        }
        files.push((MAIN.to_string(), text.to_string()));
        let set = compiled(MAIN, &files)?;
        let pool = DescriptorPool::from_file_descriptor_set(set).map_err(|e| e.to_string())?;
        Ok(ProtoSchema {
            pool,
            file: MAIN.to_string(),
        })
    }

    /// The message type at `path` (indexes among the file's messages, then nested ones).
    fn message(&self, path: &[usize]) -> Result<MessageDescriptor, String> {
        let file = self
            .pool
            .get_file_by_name(&self.file)
            .ok_or("the schema's file is missing from its pool")?;
        let (first, rest) = path.split_first().ok_or("no message index")?;
        let mut m = file
            .messages()
            .nth(*first)
            .ok_or_else(|| format!("no message #{first} in the schema"))?;
        for i in rest {
            let next = m.child_messages().nth(*i);
            m = next.ok_or_else(|| format!("no nested message #{i} in {}", m.full_name()))?;
        }
        Ok(m)
    }

    /// The full name of the message type a framed body's indexes point at.
    pub fn message_name(&self, body: &[u8]) -> Result<String, DecodeError> {
        let (path, _) = indexes(body).map_err(DecodeError::malformed)?;
        let m = self.message(&path).map_err(DecodeError::malformed)?;
        Ok(m.full_name().to_string())
    }

    /// Decodes a framed body (message indexes, then the message) as JSON, with the
    /// message type's full name.
    pub fn decode(&self, body: &[u8]) -> Result<(String, serde_json::Value), DecodeError> {
        let (path, msg) = indexes(body).map_err(DecodeError::malformed)?;
        let desc = self.message(&path).map_err(DecodeError::malformed)?;
        let m = DynamicMessage::decode(desc.clone(), msg).map_err(|e| {
            DecodeError::malformed(format!("not a {} message: {e}", desc.full_name()))
        })?;
        let v = serde_json::to_value(&m).map_err(|e| DecodeError::malformed(e.to_string()))?;
        Ok((desc.full_name().to_string(), v))
    }
}

impl ProtoSchema {
    /// The framed body of `edited` as the same message type as `body` (its message
    /// indexes kept); a JSON that does not fit the type is refused with serde's reason.
    pub fn encode(&self, body: &[u8], edited: &serde_json::Value) -> Result<Vec<u8>, DecodeError> {
        use prost::Message as _;
        let (path, msg) = indexes(body).map_err(DecodeError::malformed)?;
        let desc = self.message(&path).map_err(DecodeError::malformed)?;
        let m = DynamicMessage::deserialize(desc.clone(), edited)
            .map_err(|e| DecodeError::mismatch(format!("$: not a {}: {e}", desc.full_name())))?;
        let mut out = body[..body.len() - msg.len()].to_vec();
        out.extend(m.encode_to_vec());
        Ok(out)
    }
}

/// The message index path and the rest of the body.
fn indexes(body: &[u8]) -> Result<(Vec<usize>, &[u8]), String> {
    let mut rest = body;
    let n = zigzag(&mut rest)?;
    if n == 0 {
        return Ok((vec![0], rest));
    }
    if !(0..=64).contains(&n) {
        return Err(format!("message index count {n} is not plausible"));
    }
    let mut path = Vec::new();
    for _ in 0..n {
        let i = zigzag(&mut rest)?;
        path.push(usize::try_from(i).map_err(|_| format!("message index {i}"))?);
    }
    Ok((path, rest))
}

fn zigzag(buf: &mut &[u8]) -> Result<i64, String> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf
            .split_first()
            .ok_or("the message indexes are cut short")?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(((v >> 1) as i64) ^ -((v & 1) as i64));
        }
    }
    Err("a message index varint is too long".into())
}

/// `name` compiled with its imports from `files` and protox's well-known types.
fn compiled(
    name: &str,
    files: &[(String, String)],
) -> Result<prost_types::FileDescriptorSet, String> {
    let mut chain = protox::file::ChainFileResolver::new();
    chain.add(Sources(files.to_vec()));
    chain.add(protox::file::GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(chain);
    compiler.include_imports(true);
    compiler
        .open_file(name)
        .map_err(|e| first_line(&e.to_string()))?;
    Ok(compiler.file_descriptor_set())
}

/// A base64 `FileDescriptorProto`, as the Python serializer registers a schema.
fn descriptor_proto(text: &str) -> Option<prost_types::FileDescriptorProto> {
    use base64::Engine as _;
    use prost::Message as _;
    let t = text.trim();
    if t.is_empty() || t.contains(char::is_whitespace) {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(t).ok()?;
    prost_types::FileDescriptorProto::decode(bytes.as_slice()).ok()
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).to_string()
}

/// Sources given by name (the schema and its references).
struct Sources(Vec<(String, String)>);

impl protox::file::FileResolver for Sources {
    fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
        match self.0.iter().find(|(n, _)| n == name) {
            Some((n, src)) => protox::file::File::from_source(n, src),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}
