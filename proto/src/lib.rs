//! The `hostscope.v1` API: generated message types, the `HostInspector`
//! client and server, and the file descriptor set for server reflection.
//!
//! The `.proto` files under `hostscope/v1/` are the API reference.

#![allow(clippy::doc_lazy_continuation, clippy::large_enum_variant)]
#![deny(unsafe_code)]

mod generated {
    tonic::include_proto!("hostscope.v1");
}

pub use generated::*;

mod signal;

pub use signal::Signal;

/// The encoded `FileDescriptorSet` of every hostscope proto file, for
/// `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/hostscope_descriptor.bin"));

/// The `google.rpc.ErrorInfo` domain of every hostscope error.
pub const ERROR_DOMAIN: &str = "hostscope";

/// A protobuf enum's values by their short, lower-case names: `zombie` for
/// `PROCESS_STATUS_ZOMBIE`. This is how enums appear in JSON and on the CLI.
pub trait EnumName: Sized + Copy + 'static {
    /// The proto name prefix shared by every value (`PROCESS_STATUS_`).
    const PREFIX: &'static str;
    /// Every value but the zero `UNSPECIFIED` one.
    fn values() -> &'static [Self];
    /// The value's proto name (`PROCESS_STATUS_ZOMBIE`).
    fn proto_name(self) -> &'static str;
    /// Looks a wire value up.
    fn from_wire(value: i32) -> Option<Self>;

    /// The short name in upper case, as in `google.rpc.ErrorInfo` reasons
    /// (`NO_SUCH_PROCESS`).
    fn reason(self) -> &'static str {
        &self.proto_name()[Self::PREFIX.len()..]
    }

    /// The short name in lower case (`zombie`, `disk_sleep`).
    fn short_name(self) -> String {
        self.reason().to_ascii_lowercase()
    }

    /// Parses a short name in either case (`zombie`, `ZOMBIE`).
    fn from_short_name(name: &str) -> Option<Self> {
        Self::values()
            .iter()
            .copied()
            .find(|v| v.reason().eq_ignore_ascii_case(name))
    }

    /// Every short name, for help texts and error messages.
    fn short_names() -> Vec<String> {
        Self::values().iter().map(|v| v.short_name()).collect()
    }
}

macro_rules! enum_name {
    ($($ty:ident => $prefix:literal),* $(,)?) => {$(
        impl EnumName for $ty {
            const PREFIX: &'static str = $prefix;
            fn values() -> &'static [Self] {
                static VALUES: std::sync::OnceLock<Vec<$ty>> = std::sync::OnceLock::new();
                VALUES.get_or_init(|| {
                    (1..=i32::from(u8::MAX)).filter_map(|v| $ty::try_from(v).ok()).collect()
                })
            }
            fn proto_name(self) -> &'static str {
                self.as_str_name()
            }
            fn from_wire(value: i32) -> Option<Self> {
                $ty::try_from(value).ok().filter(|v| *v as i32 != 0)
            }
        }
    )*};
}

enum_name! {
    ProcessStatus => "PROCESS_STATUS_",
    ProcessField => "PROCESS_FIELD_",
    ErrorKind => "ERROR_KIND_",
    AddressFamily => "ADDRESS_FAMILY_",
    Duplex => "DUPLEX_",
    NetInterfaceField => "NET_INTERFACE_FIELD_",
    ProcessEventKind => "PROCESS_EVENT_KIND_",
    SystemField => "SYSTEM_FIELD_",
    DiskField => "DISK_FIELD_",
    IoNiceClass => "IO_NICE_CLASS_",
    ConnectionKind => "CONNECTION_KIND_",
    SocketFamily => "SOCKET_FAMILY_",
    SocketType => "SOCKET_TYPE_",
    ConnectionStatus => "CONNECTION_STATUS_",
    FileKind => "FILE_KIND_",
}

/// Serde helpers named by the generated `serialize_with` attributes: enum
/// fields are written as their short names, and unknown wire values as
/// their number.
#[doc(hidden)]
pub mod json {
    use serde::{Serializer, ser::SerializeSeq};

    use crate::EnumName;

    fn write<E: EnumName, S: Serializer>(value: i32, s: S) -> Result<S::Ok, S::Error> {
        match E::from_wire(value) {
            Some(e) => s.serialize_str(&e.short_name()),
            None if value == 0 => s.serialize_none(),
            None => s.serialize_i32(value),
        }
    }

    pub fn one<E: EnumName, S: Serializer>(value: &i32, s: S) -> Result<S::Ok, S::Error> {
        write::<E, S>(*value, s)
    }

    pub fn optional<E: EnumName, S: Serializer>(
        value: &Option<i32>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => write::<E, S>(*v, s),
            None => s.serialize_none(),
        }
    }

    pub fn many<E: EnumName, S: Serializer>(values: &[i32], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(values.len()))?;
        for v in values {
            match E::from_wire(*v) {
                Some(e) => seq.serialize_element(&e.short_name())?,
                None => seq.serialize_element(v)?,
            }
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_through_short_names() {
        assert_eq!(ProcessStatus::DiskSleep.short_name(), "disk_sleep");
        assert_eq!(ErrorKind::NoSuchProcess.reason(), "NO_SUCH_PROCESS");
        assert_eq!(
            ProcessStatus::from_short_name("ZOMBIE"),
            Some(ProcessStatus::Zombie)
        );
        assert_eq!(ProcessField::from_short_name("unspecified"), None);
        assert_eq!(ProcessStatus::values().len(), 14);
        assert_eq!(ProcessField::from_wire(0), None);
    }

    #[test]
    fn json_uses_short_enum_names_and_omits_absent_fields() {
        let p = Process {
            pid: 7,
            status: Some(ProcessStatus::Zombie as i32),
            field_errors: vec![FieldError {
                field: ProcessField::Exe as i32,
                kind: ErrorKind::ZombieProcess as i32,
            }],
            ..Default::default()
        };
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["status"], "zombie");
        assert_eq!(json["field_errors"][0]["field"], "exe");
        assert_eq!(json["field_errors"][0]["kind"], "zombie_process");
        assert!(json.get("ppid").is_none());
        assert!(json.get("memory_info").is_none());
    }
}
