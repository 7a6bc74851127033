//! A hook's query parameters (SPEC §1.18): `device`, `priority`, `tags` (a comma list) and
//! `ttl` override what the mapping chose, so one tool can page the phone and another only the
//! desktop without a template. Values are checked by the send engine like any field.

use crate::api::{ApiError, ErrorCode};
use serde_json::{Map, Value};

/// The overrides a hook's URL gave; unknown query parameters are ignored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    device: Option<String>,
    priority: Option<String>,
    tags: Option<Vec<String>>,
    ttl: Option<Value>,
}

impl Overrides {
    /// Reads the raw query string. A `ttl` that is not a number is 400 `invalid_body`, as a
    /// JSON `ttl` of the wrong type is.
    pub fn parse(query: Option<&str>) -> Result<Overrides, ApiError> {
        let mut overrides = Overrides::default();
        let Some(query) = query else {
            return Ok(overrides);
        };
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            match name.as_ref() {
                "device" => overrides.device = Some(value.into_owned()),
                "priority" => overrides.priority = Some(value.into_owned()),
                "tags" => {
                    overrides.tags = Some(
                        value
                            .split(',')
                            .map(str::trim)
                            .filter(|t| !t.is_empty())
                            .map(str::to_owned)
                            .collect(),
                    )
                }
                "ttl" => {
                    let seconds = value
                        .trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|s| s.is_finite())
                        .and_then(serde_json::Number::from_f64)
                        .ok_or_else(|| {
                            ApiError::new(ErrorCode::InvalidBody, "ttl must be a number of seconds")
                        })?;
                    overrides.ttl = Some(Value::Number(seconds));
                }
                _ => {}
            }
        }
        Ok(overrides)
    }

    /// Writes the overrides over the mapped request's raw fields.
    pub fn apply(&self, fields: &mut Map<String, Value>) {
        if let Some(device) = &self.device {
            fields.insert("device".into(), device.clone().into());
        }
        if let Some(priority) = &self.priority {
            fields.insert("priority".into(), priority.clone().into());
        }
        if let Some(tags) = &self.tags {
            fields.insert("tags".into(), tags.clone().into());
        }
        if let Some(ttl) = &self.ttl {
            fields.insert("ttl".into(), ttl.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ttl_that_is_not_a_number_is_invalid_body() {
        for bad in ["ttl=soon", "ttl=", "ttl=NaN", "ttl=inf"] {
            let refused = Overrides::parse(Some(bad)).unwrap_err();
            assert_eq!(refused.code, ErrorCode::InvalidBody, "{bad}");
        }
    }

    #[test]
    fn unknown_parameters_are_ignored_and_an_empty_tag_list_clears_tags() {
        let overrides = Overrides::parse(Some("token=x&tags=,&utm=1")).unwrap();
        let mut fields = Map::new();
        overrides.apply(&mut fields);
        assert_eq!(fields.len(), 1);
        assert_eq!(fields["tags"], serde_json::json!([]));
    }
}
