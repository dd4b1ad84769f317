//! Literals as the values a person reads: numbers, text, lists and maps as JSON; dataclasses
//! and other msgpack-encoded values decoded; files, directories and data frames as
//! `{"type": "file", "uri": ..., "download": ...}` objects the page turns into links.

use std::collections::BTreeMap;

use flyteidl2::flyteidl::core::{
    blob_type::BlobDimensionality, literal, primitive, scalar, Literal, Primitive,
};
use flyteidl2::flyteidl::task::{Inputs, Outputs};
use flyteidl2::google::protobuf::{value::Kind, Struct, Value as PbValue};
use serde_json::{json, Map, Value};

/// Binary literals tagged with this hold msgpack (the SDKs' encoding of dataclasses and models).
const MSGPACK_TAG: &str = "msgpack";

/// Turns a storage URI into a link the browser can follow, if it can be downloaded.
pub trait Links {
    fn download(&self, uri: &str) -> Option<String>;
}

/// For readers outside a browser (the CLI): a file is its URI.
pub struct NoLinks;

impl Links for NoLinks {
    fn download(&self, _uri: &str) -> Option<String> {
        None
    }
}

/// Named values, in the order the task declares them.
pub fn inputs_json(inputs: &Inputs, links: &dyn Links) -> Value {
    named(
        inputs
            .literals
            .iter()
            .map(|n| (n.name.as_str(), n.value.as_ref())),
        links,
    )
}

pub fn outputs_json(outputs: &Outputs, links: &dyn Links) -> Value {
    named(
        outputs
            .literals
            .iter()
            .map(|n| (n.name.as_str(), n.value.as_ref())),
        links,
    )
}

fn named<'a>(
    values: impl Iterator<Item = (&'a str, Option<&'a Literal>)>,
    links: &dyn Links,
) -> Value {
    Value::Array(
        values
            .map(|(name, value)| {
                json!({
                    "name": name,
                    "value": value.map_or(Value::Null, |v| literal_json(v, links)),
                })
            })
            .collect(),
    )
}

pub fn literal_json(literal: &Literal, links: &dyn Links) -> Value {
    match &literal.value {
        Some(literal::Value::Scalar(scalar)) => match &scalar.value {
            Some(value) => scalar_json(value, links),
            None => Value::Null,
        },
        Some(literal::Value::Collection(c)) => {
            Value::Array(c.literals.iter().map(|l| literal_json(l, links)).collect())
        }
        Some(literal::Value::Map(m)) => {
            // Sorted, so the page shows a map the same way every time.
            let sorted: BTreeMap<_, _> = m.literals.iter().collect();
            Value::Object(
                sorted
                    .into_iter()
                    .map(|(k, v)| (k.clone(), literal_json(v, links)))
                    .collect(),
            )
        }
        Some(literal::Value::OffloadedMetadata(meta)) => json!({
            "type": "offloaded",
            "uri": meta.uri,
            "bytes": meta.size_bytes,
            "download": links.download(&meta.uri),
        }),
        None => Value::Null,
    }
}

fn scalar_json(value: &scalar::Value, links: &dyn Links) -> Value {
    match value {
        scalar::Value::Primitive(p) => primitive_json(p),
        scalar::Value::NoneType(_) => Value::Null,
        scalar::Value::Blob(blob) => {
            let multipart = blob
                .metadata
                .as_ref()
                .and_then(|m| m.r#type.as_ref())
                .is_some_and(|t| t.dimensionality == BlobDimensionality::Multipart as i32);
            json!({
                "type": if multipart { "dir" } else { "file" },
                "uri": blob.uri,
                "download": if multipart { None } else { links.download(&blob.uri) },
            })
        }
        scalar::Value::StructuredDataset(sd) => {
            let format = sd
                .metadata
                .as_ref()
                .and_then(|m| m.structured_dataset_type.as_ref())
                .map(|t| t.format.clone())
                .unwrap_or_default();
            json!({
                "type": "dataframe",
                "uri": sd.uri,
                "format": format,
                "download": links.download(&sd.uri),
            })
        }
        scalar::Value::Binary(binary) if binary.tag == MSGPACK_TAG => {
            match rmpv::decode::read_value(&mut binary.value.as_slice()) {
                Ok(decoded) => msgpack_json(&decoded),
                Err(_) => json!({"type": "binary", "tag": binary.tag, "bytes": binary.value.len()}),
            }
        }
        scalar::Value::Binary(binary) => {
            json!({"type": "binary", "tag": binary.tag, "bytes": binary.value.len()})
        }
        scalar::Value::Generic(s) => struct_json(s),
        scalar::Value::Union(union) => union
            .value
            .as_deref()
            .map_or(Value::Null, |l| literal_json(l, links)),
        scalar::Value::Error(err) => json!({"type": "error", "message": err.message}),
        scalar::Value::Schema(schema) => json!({"type": "schema", "uri": schema.uri}),
    }
}

fn primitive_json(p: &Primitive) -> Value {
    match &p.value {
        Some(primitive::Value::Integer(i)) => json!(i),
        Some(primitive::Value::FloatValue(f)) => {
            // JSON has no NaN or infinities: those travel as text.
            serde_json::Number::from_f64(*f).map_or_else(|| json!(f.to_string()), Value::Number)
        }
        Some(primitive::Value::StringValue(s)) => json!(s),
        Some(primitive::Value::Boolean(b)) => json!(b),
        Some(primitive::Value::Datetime(ts)) => {
            let when = chrono::DateTime::from_timestamp(ts.seconds, ts.nanos.max(0) as u32);
            when.map_or(Value::Null, |w| json!(w.to_rfc3339()))
        }
        Some(primitive::Value::Duration(d)) => {
            json!({"type": "duration", "seconds": d.seconds as f64 + f64::from(d.nanos) / 1e9})
        }
        None => Value::Null,
    }
}

fn struct_json(s: &Struct) -> Value {
    Value::Object(
        s.fields
            .iter()
            .map(|(k, v)| (k.clone(), pb_value_json(v)))
            .collect::<Map<_, _>>(),
    )
}

fn pb_value_json(v: &PbValue) -> Value {
    match &v.kind {
        Some(Kind::NullValue(_)) | None => Value::Null,
        Some(Kind::NumberValue(n)) => {
            serde_json::Number::from_f64(*n).map_or_else(|| json!(n.to_string()), Value::Number)
        }
        Some(Kind::StringValue(s)) => json!(s),
        Some(Kind::BoolValue(b)) => json!(b),
        Some(Kind::StructValue(s)) => struct_json(s),
        Some(Kind::ListValue(l)) => Value::Array(l.values.iter().map(pb_value_json).collect()),
    }
}

fn msgpack_json(v: &rmpv::Value) -> Value {
    match v {
        rmpv::Value::Nil => Value::Null,
        rmpv::Value::Boolean(b) => json!(b),
        rmpv::Value::Integer(i) => i
            .as_i64()
            .map(|i| json!(i))
            .or_else(|| i.as_u64().map(|u| json!(u)))
            .unwrap_or(Value::Null),
        rmpv::Value::F32(f) => json!(f64::from(*f)),
        rmpv::Value::F64(f) => {
            serde_json::Number::from_f64(*f).map_or_else(|| json!(f.to_string()), Value::Number)
        }
        rmpv::Value::String(s) => json!(s.as_str().unwrap_or_default()),
        rmpv::Value::Binary(b) => json!({"type": "binary", "bytes": b.len()}),
        rmpv::Value::Array(items) => Value::Array(items.iter().map(msgpack_json).collect()),
        rmpv::Value::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        rmpv::Value::String(s) => s.as_str().unwrap_or_default().to_string(),
                        other => other.to_string(),
                    };
                    (key, msgpack_json(v))
                })
                .collect(),
        ),
        rmpv::Value::Ext(tag, data) => json!({"type": "ext", "tag": tag, "bytes": data.len()}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flyteidl2::flyteidl::core::{
        Binary, Blob, BlobMetadata, BlobType, LiteralCollection, LiteralMap, Scalar, Void,
    };

    struct TestLinks;
    impl Links for TestLinks {
        fn download(&self, uri: &str) -> Option<String> {
            Some(format!("/dl?{uri}"))
        }
    }

    fn scalar(value: scalar::Value) -> Literal {
        Literal {
            value: Some(literal::Value::Scalar(Box::new(Scalar {
                value: Some(value),
            }))),
            ..Default::default()
        }
    }

    fn prim(value: primitive::Value) -> Literal {
        scalar(scalar::Value::Primitive(Primitive { value: Some(value) }))
    }

    #[test]
    fn primitives_collections_and_maps() {
        let list = Literal {
            value: Some(literal::Value::Collection(LiteralCollection {
                literals: vec![
                    prim(primitive::Value::Integer(3)),
                    prim(primitive::Value::FloatValue(1.5)),
                    prim(primitive::Value::FloatValue(f64::NAN)),
                    scalar(scalar::Value::NoneType(Void {})),
                ],
            })),
            ..Default::default()
        };
        assert_eq!(
            literal_json(&list, &TestLinks),
            json!([3, 1.5, "NaN", null])
        );
        let map = Literal {
            value: Some(literal::Value::Map(LiteralMap {
                literals: [
                    ("b".to_string(), prim(primitive::Value::Boolean(true))),
                    (
                        "a".to_string(),
                        prim(primitive::Value::StringValue("x".into())),
                    ),
                ]
                .into(),
            })),
            ..Default::default()
        };
        assert_eq!(literal_json(&map, &TestLinks), json!({"a": "x", "b": true}));
    }

    #[test]
    fn msgpack_dataclasses_are_decoded() {
        // {"name": "ada", "scores": [1, 2]} in msgpack.
        let mut bytes = Vec::new();
        rmpv::encode::write_value(
            &mut bytes,
            &rmpv::Value::Map(vec![
                ("name".into(), "ada".into()),
                (
                    "scores".into(),
                    rmpv::Value::Array(vec![1.into(), 2.into()]),
                ),
            ]),
        )
        .unwrap();
        let value = scalar(scalar::Value::Binary(Binary {
            value: bytes,
            tag: MSGPACK_TAG.into(),
        }));
        assert_eq!(
            literal_json(&value, &TestLinks),
            json!({"name": "ada", "scores": [1, 2]})
        );
    }

    #[test]
    fn files_and_dirs_are_links() {
        let blob = |dim: BlobDimensionality| {
            scalar(scalar::Value::Blob(Blob {
                uri: "file:///d/x".into(),
                metadata: Some(BlobMetadata {
                    r#type: Some(BlobType {
                        format: String::new(),
                        dimensionality: dim as i32,
                    }),
                }),
            }))
        };
        assert_eq!(
            literal_json(&blob(BlobDimensionality::Single), &TestLinks),
            json!({"type": "file", "uri": "file:///d/x", "download": "/dl?file:///d/x"})
        );
        assert_eq!(
            literal_json(&blob(BlobDimensionality::Multipart), &TestLinks)["type"],
            "dir"
        );
    }
}
