//! Platforms without a backend: every call answers `Unsupported`, an
//! ordinary value the service turns into UNIMPLEMENTED, never a zero that
//! looks like data.

use std::{ops::ControlFlow, time::Duration};

use super::{
    Backend, Error, EventSource, FieldSet, HostInfo, NetInterface, ProcessInfo, WatchMode,
};

/// The backend of a platform the agent cannot read.
pub struct Unsupported;

impl Backend for Unsupported {
    fn host(&self) -> Result<HostInfo, Error> {
        Err(Error::Unsupported { what: "host facts" })
    }

    fn for_each_process(
        &self,
        _fields: FieldSet,
        _visit: &mut dyn FnMut(ProcessInfo) -> ControlFlow<()>,
    ) -> Result<(), Error> {
        Err(Error::Unsupported {
            what: "listing processes",
        })
    }

    fn process(&self, _pid: u32, _fields: FieldSet) -> Result<ProcessInfo, Error> {
        Err(Error::Unsupported {
            what: "reading a process",
        })
    }

    fn pid_exists(&self, _pid: u32) -> Result<bool, Error> {
        Err(Error::Unsupported {
            what: "checking a pid",
        })
    }

    fn net_interfaces(&self) -> Result<Vec<NetInterface>, Error> {
        Err(Error::Unsupported {
            what: "network interfaces",
        })
    }

    fn signal(&self, _pid: u32, _signal: i32, _expected: Option<f64>) -> Result<(), Error> {
        Err(Error::Unsupported {
            what: "signalling a process",
        })
    }

    fn events(
        &self,
        _mode: WatchMode,
        _poll_interval: Duration,
    ) -> Result<Box<dyn EventSource>, Error> {
        Err(Error::Unsupported {
            what: "watching processes",
        })
    }
}
