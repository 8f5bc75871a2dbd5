//! Linux: procfs, sysfs and getifaddrs.
use std::path::PathBuf;

use super::*;

pub struct Linux;

impl Linux {
    pub fn with_roots(_procfs: PathBuf, _sysfs: PathBuf) -> Result<Linux, Error> {
        Ok(Linux)
    }
}

impl Backend for Linux {
    fn host(&self) -> Result<HostInfo, Error> {
        Err(Error::Unsupported { what: "host" })
    }
    fn for_each_process(
        &self,
        _fields: FieldSet,
        _visit: &mut dyn FnMut(ProcessInfo) -> std::ops::ControlFlow<()>,
    ) -> Result<(), Error> {
        Err(Error::Unsupported { what: "processes" })
    }
    fn process(&self, _pid: u32, _fields: FieldSet) -> Result<ProcessInfo, Error> {
        Err(Error::Unsupported { what: "processes" })
    }
    fn pid_exists(&self, _pid: u32) -> Result<bool, Error> {
        Err(Error::Unsupported { what: "processes" })
    }
    fn net_interfaces(&self) -> Result<Vec<NetInterface>, Error> {
        Err(Error::Unsupported { what: "interfaces" })
    }
}
