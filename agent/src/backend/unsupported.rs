//! Platforms without a backend: every call answers `Unsupported`.
