//! Redrive (an extension): moving the messages of a dead-letter queue back to the queues they
//! came from, or to another queue.

use serde_json::Value;

use super::validate::{int_field, parse_object, queue_name};
use super::{Ctx, RedriveParams, Service};
use crate::error::{Error, Result};
use crate::model::RedriveOutcome;

impl Service {
    /// `POST .../redrive` (extension): moves messages of a (dead-letter) queue back to the
    /// queues they came from, or to `target`.
    pub async fn redrive(&self, ctx: Ctx<'_>, name: &str, body: &[u8]) -> Result<RedriveOutcome> {
        let q = ctx.queue(name)?;
        let mut params = RedriveParams::default();
        if !body.iter().all(u8::is_ascii_whitespace) {
            let doc = parse_object(body)?;
            for key in doc.keys() {
                if key != "target" && key != "limit" {
                    return Err(Error::invalid(format!("Unknown key: {key}.")));
                }
            }
            params.target = match doc.get("target") {
                None | Some(Value::Null) => None,
                Some(Value::String(t)) => Some(t.clone()),
                Some(_) => {
                    return Err(Error::body(
                        "The value of the \"target\" field must be a string.",
                    ))
                }
            };
            params.limit = match doc.get("limit") {
                None | Some(Value::Null) => None,
                Some(v) => Some(int_field(v, "limit")?),
            };
        }
        if let Some(t) = &params.target {
            queue_name(t)?;
            if t == name {
                return Err(Error::invalid("The redrive target must be another queue."));
            }
        }
        if params.limit.is_some_and(|l| l < 1) {
            return Err(Error::invalid("limit must be at least 1."));
        }
        let outcome = self
            .store
            .redrive_messages(
                q,
                params.target.as_deref(),
                params.limit.map(|l| l as usize),
            )
            .await?;
        for t in &outcome.targets {
            self.hub.notify(q.project, t);
        }
        Ok(outcome)
    }
}
