//! Compiles `hostscope/v1/*.proto` with protox (no `protoc` needed) and
//! tonic-prost-build, and writes the file descriptor set for reflection.
//!
//! Every generated type derives `serde::Serialize` so that tools can print
//! messages as JSON. The attributes are derived from the descriptors, so a
//! new field needs no edit here: proto3 `optional` fields are skipped when
//! absent, and enum fields serialize as their lower-case value names
//! (`"zombie"`, `"inet6"`) through `crate::json`.

use std::{env, fs, path::PathBuf};

use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let mut files: Vec<PathBuf> = fs::read_dir(dir.join("hostscope/v1"))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "proto"));
    files.sort();
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let fds = protox::compile(&files, [&dir])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out.join("hostscope_descriptor.bin"), fds.encode_to_vec())?;

    let mut config = tonic_prost_build::configure()
        .btree_map(".")
        .type_attribute(".hostscope.v1", "#[derive(serde::Serialize)]");
    for file in &fds.file {
        let package = file.package();
        for message in &file.message_type {
            for field in &message.field {
                let path = format!(".{package}.{}.{}", message.name(), field.name());
                if let Some(attr) = serde_attribute(field) {
                    config = config.field_attribute(path, attr);
                }
            }
        }
    }
    config.compile_fds(fds)?;
    Ok(())
}

fn serde_attribute(field: &prost_types::FieldDescriptorProto) -> Option<String> {
    let optional = field.proto3_optional();
    if field.r#type() == Type::Enum {
        let name = field.type_name().rsplit('.').next()?;
        let shape = match (field.label(), optional) {
            (Label::Repeated, _) => "many",
            (_, true) => "optional",
            _ => "one",
        };
        let skip = if optional {
            ", skip_serializing_if = \"Option::is_none\""
        } else {
            ""
        };
        return Some(format!(
            "#[serde(serialize_with = \"crate::json::{shape}::<crate::{name}, _>\"{skip})]"
        ));
    }
    // A process's field errors are the exception, not the rule: leave the
    // empty list out rather than print it on every record.
    if field.name() == "field_errors" {
        return Some("#[serde(skip_serializing_if = \"Vec::is_empty\")]".to_owned());
    }
    if optional || (field.r#type() == Type::Message && field.label() != Label::Repeated) {
        return Some("#[serde(skip_serializing_if = \"Option::is_none\")]".to_owned());
    }
    None
}
