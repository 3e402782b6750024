//! An ELBv2-compatible API endpoint over an [`ElbStore`](crate::elb::ElbStore)
//! (feature `api`): the AWS Query protocol (API version 2015-12-01: a
//! form-encoded `POST /`, XML answers in the API's namespace, the API's
//! error codes), Signature Version 4 on every request, each caller confined
//! to its own account, every mutating call one transaction attributed to
//! the caller (`aws:ACCOUNT:ACCESS_KEY_ID`) for the Action and request id.
//! [`Service::handle`] is transport free; [`server`] serves it over HTTP.

pub mod auth;
pub mod error;
pub mod network;
mod ops;
pub mod query;
pub mod server;
pub mod service;
pub mod xml;

pub use error::ApiError;
pub use ops::ACTIONS;
pub use service::{Backend, Refused, Request, Response, Service, API_VERSION, APPROVER_HEADER, TICKET_HEADER};
