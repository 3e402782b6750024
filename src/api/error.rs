//! The API's errors: a code, a message and an HTTP status, written as the
//! Query protocol's `ErrorResponse`.

use std::fmt;

use crate::elb::ElbError;

/// An error the API returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The API's error code, e.g. `DuplicateLoadBalancerName`.
    pub code: String,
    /// The message.
    pub message: String,
    /// The HTTP status.
    pub status: u16,
}

impl ApiError {
    /// An error with this code, message and status.
    pub fn new(code: impl Into<String>, message: impl Into<String>, status: u16) -> ApiError {
        ApiError { code: code.into(), message: message.into(), status }
    }

    /// `ValidationError` (400).
    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new("ValidationError", message, 400)
    }

    /// A required member that is missing (`ValidationError`, 400).
    pub fn missing(key: &str) -> ApiError {
        ApiError::validation(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            super::query::lower_first(key)
        ))
    }

    /// A parameter value the operation cannot take (`InvalidParameterValue`... is
    /// not an ELBv2 code: the API answers `ValidationError`).
    pub fn invalid(key: &str, value: &str, why: &str) -> ApiError {
        ApiError::validation(format!("the value '{value}' of {key} is not valid: {why}"))
    }

    /// The service failed (`InternalFailure`, 500).
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new("InternalFailure", message, 500)
    }

    /// `Sender` for the caller's errors (4xx), `Receiver` for the service's.
    pub fn fault(&self) -> &'static str {
        if self.status < 500 {
            "Sender"
        } else {
            "Receiver"
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl From<ElbError> for ApiError {
    fn from(err: ElbError) -> ApiError {
        ApiError::new(err.code(), err.to_string(), err.http_status())
    }
}

impl From<crate::store::Error> for ApiError {
    fn from(err: crate::store::Error) -> ApiError {
        ApiError::from(ElbError::Store(err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_refusals_keep_the_apis_code_and_status() {
        let err = ApiError::from(ElbError::LoadBalancerNotFound { id: crate::elb::LoadBalancerId(1) });
        assert_eq!((err.code.as_str(), err.status, err.fault()), ("LoadBalancerNotFound", 400, "Sender"));
        assert_eq!(ApiError::internal("x").fault(), "Receiver");
        assert!(ApiError::missing("LoadBalancerArn").message.contains("'loadBalancerArn'"));
    }
}
