//! GetSystem and ListDisks: the host's own figures, converted for the wire.

use hostscope_proto as pb;

use crate::backend::SystemField;

/// The wire name of a system figure.
pub fn field_to_pb(field: SystemField) -> pb::SystemField {
    match field {
        SystemField::CpuTimes => pb::SystemField::CpuTimes,
        SystemField::CpuPercent => pb::SystemField::CpuPercent,
        SystemField::CpuTimesPercent => pb::SystemField::CpuTimesPercent,
        SystemField::CpuStats => pb::SystemField::CpuStats,
        SystemField::CpuFreq => pb::SystemField::CpuFreq,
        SystemField::CpuCount => pb::SystemField::CpuCount,
        SystemField::Loadavg => pb::SystemField::Loadavg,
        SystemField::VirtualMemory => pb::SystemField::VirtualMemory,
        SystemField::SwapMemory => pb::SystemField::SwapMemory,
        SystemField::Users => pb::SystemField::Users,
        SystemField::BootTime => pb::SystemField::BootTime,
        SystemField::SensorsTemperatures => pb::SystemField::SensorsTemperatures,
        SystemField::SensorsFans => pb::SystemField::SensorsFans,
        SystemField::SensorsBattery => pb::SystemField::SensorsBattery,
        SystemField::Cgroup => pb::SystemField::Cgroup,
    }
}
