//! The ELBv2-compatible API service (AWS Query protocol) over the store: request authentication and the network the API stands on. (Feature `api`.)

pub mod auth;
pub mod network;
