//! A simulated file system for crash and fault tests (being written).

/// Simulated file system.
#[derive(Debug, Default, Clone)]
pub struct SimFs;
/// What a crash does to data that was written but not synced.
#[derive(Debug, Clone, Copy)]
pub enum CrashMode {}
/// The error an injected fault returns.
#[derive(Debug, Clone, Copy)]
pub enum FaultKind {}
/// Whether an injected fault fires once or forever.
#[derive(Debug, Clone, Copy)]
pub enum FaultMode {}
