//! The AWS Query protocol's request side: a form-encoded body of
//! `Action`, `Version` and flattened members (`Names.member.1`,
//! `Tags.member.2.Key`), read into typed values with the API's validation
//! errors.

use std::collections::BTreeMap;

use super::error::ApiError;

/// Most parameters one request may carry.
pub const PARAMS_MAX: usize = 4096;
/// Most bytes one parameter value may hold.
pub const VALUE_BYTES_MAX: usize = 64 << 10;

/// A request's parameters, or a view of the members under one prefix.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params {
    map: BTreeMap<String, String>,
}

impl Params {
    /// Parses a form-encoded body. Malformed percent-encoding is decoded
    /// leniently (as the form encoding does); too many parameters or an
    /// oversized value is a validation error.
    pub fn parse(body: &[u8]) -> Result<Params, ApiError> {
        let mut map = BTreeMap::new();
        for (key, value) in form_urlencoded::parse(body) {
            if map.len() >= PARAMS_MAX {
                return Err(ApiError::validation(format!("a request may carry at most {PARAMS_MAX} parameters")));
            }
            if value.len() > VALUE_BYTES_MAX {
                return Err(ApiError::validation(format!(
                    "the value of {key} is {} bytes long, over the limit of {VALUE_BYTES_MAX}",
                    value.len()
                )));
            }
            map.insert(key.into_owned(), value.into_owned());
        }
        Ok(Params { map })
    }

    /// From key/value pairs (tests, and the EC2 client's requests).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Params {
        Params { map: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    /// A parameter's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    /// A parameter the operation requires.
    pub fn required(&self, key: &str) -> Result<&str, ApiError> {
        self.get(key).ok_or_else(|| ApiError::missing(key))
    }

    /// `key.member.1`, `key.member.2`, ... in order, up to the first gap.
    pub fn list(&self, key: &str) -> Vec<&str> {
        (1..).map_while(|n| self.get(&format!("{key}.member.{n}"))).collect()
    }

    /// A list the operation requires, with at least one member.
    pub fn required_list(&self, key: &str) -> Result<Vec<&str>, ApiError> {
        let list = self.list(key);
        if list.is_empty() {
            return Err(ApiError::missing(key));
        }
        Ok(list)
    }

    /// The structures `key.member.N.*`, each as the parameters under its
    /// prefix, in order up to the first gap.
    pub fn structs(&self, key: &str) -> Vec<Params> {
        (1..).map_while(|n| Some(self.sub(&format!("{key}.member.{n}"))).filter(|p| !p.map.is_empty())).collect()
    }

    /// The parameters under `prefix.` (a nested structure), prefix removed.
    pub fn sub(&self, prefix: &str) -> Params {
        let dotted = format!("{prefix}.");
        let map = self
            .map
            .range(dotted.clone()..)
            .take_while(|(k, _)| k.starts_with(&dotted))
            .map(|(k, v)| (k[dotted.len()..].to_owned(), v.clone()))
            .collect();
        Params { map }
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// A whole number in `min..=max`.
    pub fn number<T>(&self, key: &str, min: T, max: T) -> Result<Option<T>, ApiError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(text) = self.get(key) else { return Ok(None) };
        match text.parse::<T>() {
            Ok(n) if n >= min && n <= max => Ok(Some(n)),
            _ => Err(ApiError::validation(format!(
                "1 validation error detected: Value '{text}' at '{}' failed to satisfy constraint: Member must \
                 have value between {min} and {max}",
                lower_first(key)
            ))),
        }
    }

    /// `true` or `false`.
    pub fn boolean(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(ApiError::validation(format!(
                "1 validation error detected: Value '{other}' at '{}' failed to satisfy constraint: Member must be \
                 true or false",
                lower_first(key)
            ))),
        }
    }

    /// One of `allowed` (the API's enum values), as given.
    pub fn one_of<'a>(&'a self, key: &str, allowed: &[&str]) -> Result<Option<&'a str>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(value) if allowed.contains(&value) => Ok(Some(value)),
            Some(value) => Err(ApiError::validation(format!(
                "1 validation error detected: Value '{value}' at '{}' failed to satisfy constraint: Member must \
                 satisfy enum value set: [{}]",
                lower_first(key),
                allowed.join(", ")
            ))),
        }
    }
}

/// `LoadBalancerArn` -> `loadBalancerArn`, as the API names members in messages.
pub fn lower_first(key: &str) -> String {
    let mut chars = key.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattened_lists_and_structures_read_in_order() {
        let body = b"Action=CreateLoadBalancer&Version=2015-12-01&Name=web&Subnets.member.1=subnet-a\
                     &Subnets.member.2=subnet-b&Subnets.member.4=ignored&Tags.member.1.Key=team&Tags.member.1.Value=a%20b\
                     &Tags.member.2.Key=env&Tags.member.2.Value=prod";
        let p = Params::parse(body).unwrap();
        assert_eq!(p.required("Name").unwrap(), "web");
        assert_eq!(p.list("Subnets"), ["subnet-a", "subnet-b"], "up to the first gap");
        let tags = p.structs("Tags");
        assert_eq!(tags.len(), 2);
        assert_eq!((tags[0].get("Key"), tags[0].get("Value")), (Some("team"), Some("a b")));
        assert_eq!(tags[1].get("Key"), Some("env"));
        assert!(p.list("SecurityGroups").is_empty());
        assert_eq!(p.required("Scheme").unwrap_err().code, "ValidationError");
    }

    #[test]
    fn numbers_booleans_and_enums_are_checked() {
        let p = Params::from_pairs([("Port", "70000"), ("PageSize", "10"), ("Flag", "yes"), ("Type", "application")]);
        assert!(p.number::<u32>("Port", 1, 65535).is_err());
        assert_eq!(p.number::<u32>("PageSize", 1, 400).unwrap(), Some(10));
        assert!(p.boolean("Flag").is_err());
        assert_eq!(p.one_of("Type", &["application", "network"]).unwrap(), Some("application"));
        assert!(p.one_of("Type", &["network"]).is_err());
    }

    #[test]
    fn limits_hold_and_bad_input_never_panics() {
        let big = format!("A={}", "x".repeat(VALUE_BYTES_MAX + 1));
        assert!(Params::parse(big.as_bytes()).is_err());
        let many: String = (0..PARAMS_MAX + 1).map(|i| format!("k{i}=v&")).collect();
        assert!(Params::parse(many.as_bytes()).is_err());
        assert!(Params::parse(b"%zz=%&&==\xff\xfe").is_ok());
    }
}
