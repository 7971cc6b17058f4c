//! Pools and flavors (spec §1.11, §3.8, §3.9): one function per operation, shared by the HTTP
//! and WebSocket transports. Available only with `[DEFAULT] pooling = true`.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::validate::{limit, parse_object};
use super::Service;
use crate::error::{Error, Result};
use crate::store::management::{Flavor, Pool, PoolAdmin};

/// A flavor as shown: its pools and capabilities.
#[derive(Debug, Clone, PartialEq)]
pub struct FlavorView {
    pub name: String,
    pub pool_list: Vec<String>,
    pub capabilities: Vec<String>,
}

const POOL_KEYS: [&str; 4] = ["weight", "uri", "flavor", "options"];
const FLAVOR_KEYS: [&str; 2] = ["pool_list", "capabilities"];
const MAX_URI: usize = 255;

/// Pool and flavor names follow the rule of queue names: 1 to 64 of `A-Za-z0-9_-`.
fn check_name(kind: &str, name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(Error::invalid(format!(
            "The format of the submitted {kind} name is not valid: it must be at most 64 \
             characters of ASCII letters, digits, underscores and hyphens."
        )));
    }
    Ok(())
}

fn check_keys(body: &Map<String, Value>, allowed: &[&str]) -> Result<()> {
    match body.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(Error::invalid(format!(
            "Additional properties are not allowed ('{k}' was unexpected)."
        ))),
        None => Ok(()),
    }
}

fn weight(v: &Value) -> Result<i64> {
    match v.as_i64() {
        Some(w) if (0..=i64::from(u32::MAX)).contains(&w) && !v.is_boolean() => Ok(w),
        _ => Err(Error::invalid(format!(
            "The value of \"weight\" must be an integer from 0 to {}.",
            u32::MAX
        ))),
    }
}

fn uri(v: &Value) -> Result<String> {
    match v.as_str() {
        Some(u) if !u.trim().is_empty() && u.len() <= MAX_URI && u.contains("://") => {
            Ok(u.trim().to_string())
        }
        _ => Err(Error::invalid(format!(
            "The value of \"uri\" must be a URI of at most {MAX_URI} characters."
        ))),
    }
}

/// `flavor`: a string of at most 255 characters; `""` (or null) means none.
fn flavor_field(v: &Value) -> Result<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) if s.len() <= 255 => Ok(Some(s.clone())),
        _ => Err(Error::invalid(
            "The value of \"flavor\" must be a string of at most 255 characters.",
        )),
    }
}

fn options_field(v: &Value) -> Result<Map<String, Value>> {
    v.as_object()
        .cloned()
        .ok_or_else(|| Error::invalid("The value of \"options\" must be an object."))
}

fn pool_list_field(body: &Map<String, Value>) -> Result<Vec<String>> {
    let list = body
        .get("pool_list")
        .ok_or_else(|| Error::invalid("\"pool_list\" is a required property."))?
        .as_array()
        .ok_or_else(|| Error::invalid("The value of \"pool_list\" must be an array."))?;
    if list.is_empty() {
        return Err(Error::invalid("\"pool_list\" must not be empty."));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for v in list {
        let s = v
            .as_str()
            .ok_or_else(|| Error::invalid("Each item of \"pool_list\" must be a pool name."))?;
        if !out.iter().any(|x| x == s) {
            out.push(s.to_string());
        }
    }
    Ok(out)
}

impl Service {
    /// The pooled store, when pooling is on.
    pub fn pools(&self) -> Option<&Arc<dyn PoolAdmin>> {
        self.options.pools.as_ref()
    }

    fn pooled(&self) -> Result<&Arc<dyn PoolAdmin>> {
        self.options
            .pools
            .as_ref()
            .ok_or_else(|| Error::not_found("Pooling is not enabled on this server."))
    }

    fn pool_limit(&self, l: Option<i64>, max: i64) -> Result<usize> {
        limit(l, 10, max).map_err(|_| {
            Error::invalid(format!(
                "Limit must be at least 1 and no greater than {max}."
            ))
        })
    }

    pub async fn list_pools(&self, marker: Option<&str>, lim: Option<i64>) -> Result<Vec<Pool>> {
        let pooled = self.pooled()?;
        let lim = self.pool_limit(lim, self.limits.max_pools_per_page)?;
        pooled.management().list_pools(marker, lim).await
    }

    pub async fn get_pool(&self, name: &str) -> Result<Pool> {
        let pooled = self.pooled()?;
        check_name("pool", name)?;
        pooled
            .management()
            .get_pool(name)
            .await?
            .ok_or_else(|| Error::not_found(format!("Pool {name} does not exist.")))
    }

    /// `PUT /v2/pools/{name}`: creates or replaces the pool.
    pub async fn put_pool(&self, name: &str, body: &[u8]) -> Result<Pool> {
        let pooled = self.pooled()?;
        check_name("pool", name)?;
        let body = parse_object(body)?;
        check_keys(&body, &POOL_KEYS)?;
        let w = weight(
            body.get("weight")
                .ok_or_else(|| Error::invalid("\"weight\" is a required property."))?,
        )?;
        let u = uri(body
            .get("uri")
            .ok_or_else(|| Error::invalid("\"uri\" is a required property."))?)?;
        let pool = Pool {
            name: name.to_string(),
            uri: u,
            weight: w,
            flavor: body.get("flavor").map(flavor_field).transpose()?.flatten(),
            options: body
                .get("options")
                .map(options_field)
                .transpose()?
                .unwrap_or_default(),
        };
        pooled.put_pool(pool.clone()).await?;
        Ok(pool)
    }

    /// `PATCH /v2/pools/{name}`: changes the given fields.
    pub async fn patch_pool(&self, name: &str, body: &[u8]) -> Result<Pool> {
        let pooled = self.pooled()?;
        check_name("pool", name)?;
        let body = parse_object(body)?;
        check_keys(&body, &POOL_KEYS)?;
        if body.is_empty() {
            return Err(Error::invalid(
                "Missing values: at least one of weight, uri, flavor or options is required.",
            ));
        }
        let mut pool = self.get_pool(name).await?;
        if let Some(v) = body.get("weight") {
            pool.weight = weight(v)?;
        }
        if let Some(v) = body.get("uri") {
            pool.uri = uri(v)?;
        }
        if let Some(v) = body.get("flavor") {
            pool.flavor = flavor_field(v)?;
        }
        if let Some(v) = body.get("options") {
            pool.options = options_field(v)?;
        }
        pooled.put_pool(pool.clone()).await?;
        Ok(pool)
    }

    pub async fn delete_pool(&self, name: &str) -> Result<()> {
        let pooled = self.pooled()?;
        check_name("pool", name)?;
        pooled.delete_pool(name).await
    }

    async fn flavor_view(&self, f: Flavor) -> Result<FlavorView> {
        let pools = self
            .pooled()?
            .management()
            .list_pools(None, usize::MAX)
            .await?;
        Ok(FlavorView {
            pool_list: pools
                .into_iter()
                .filter(|p| p.flavor.as_deref() == Some(f.name.as_str()))
                .map(|p| p.name)
                .collect(),
            name: f.name,
            capabilities: f.capabilities,
        })
    }

    pub async fn list_flavors(
        &self,
        project: &str,
        marker: Option<&str>,
        lim: Option<i64>,
    ) -> Result<Vec<FlavorView>> {
        let pooled = self.pooled()?;
        let lim = self.pool_limit(lim, self.limits.max_flavors_per_page)?;
        let flavors = pooled
            .management()
            .list_flavors(project, marker, lim)
            .await?;
        let mut out = Vec::with_capacity(flavors.len());
        for f in flavors {
            out.push(self.flavor_view(f).await?);
        }
        Ok(out)
    }

    pub async fn get_flavor(&self, project: &str, name: &str) -> Result<FlavorView> {
        let pooled = self.pooled()?;
        check_name("flavor", name)?;
        let f = pooled
            .management()
            .get_flavor(project, name)
            .await?
            .ok_or_else(|| Error::not_found(format!("Flavor {name} does not exist.")))?;
        self.flavor_view(f).await
    }

    /// The flavor of `pool_list` (every pool must exist and have the same capabilities).
    async fn store_flavor(
        &self,
        project: &str,
        name: &str,
        pools: Vec<String>,
    ) -> Result<FlavorView> {
        let pooled = self.pooled()?;
        let mgmt = pooled.management();
        let mut caps: Option<Vec<&'static str>> = None;
        for p in &pools {
            let pool = mgmt
                .get_pool(p)
                .await?
                .ok_or_else(|| Error::invalid(format!("Pool {p} does not exist.")))?;
            let c = pooled.capabilities(&pool.uri)?;
            match &caps {
                None => caps = Some(c),
                Some(first) if *first != c => {
                    return Err(Error::invalid(format!(
                        "Pool {p} has other capabilities than pool {}.",
                        pools[0]
                    )))
                }
                Some(_) => {}
            }
        }
        let flavor = Flavor {
            project: project.to_string(),
            name: name.to_string(),
            capabilities: caps
                .unwrap_or_default()
                .into_iter()
                .map(str::to_string)
                .collect(),
        };
        mgmt.put_flavor(&flavor, &pools).await?;
        pooled.reload().await?;
        Ok(FlavorView {
            name: flavor.name,
            pool_list: pools,
            capabilities: flavor.capabilities,
        })
    }

    /// `PUT /v2/flavors/{name}`: creates or replaces the flavor (its pools are `pool_list`;
    /// supplied `capabilities` are ignored, computed from the first pool).
    pub async fn put_flavor(&self, project: &str, name: &str, body: &[u8]) -> Result<FlavorView> {
        self.pooled()?;
        check_name("flavor", name)?;
        let body = parse_object(body)?;
        check_keys(&body, &FLAVOR_KEYS)?;
        if let Some(c) = body.get("capabilities") {
            if !c.is_object() {
                return Err(Error::invalid(
                    "The value of \"capabilities\" must be an object.",
                ));
            }
        }
        let pools = pool_list_field(&body)?;
        self.store_flavor(project, name, pools).await
    }

    /// `PATCH /v2/flavors/{name}`: replaces the pool list.
    pub async fn patch_flavor(&self, project: &str, name: &str, body: &[u8]) -> Result<FlavorView> {
        let pooled = self.pooled()?;
        check_name("flavor", name)?;
        let body = parse_object(body)?;
        check_keys(&body, &FLAVOR_KEYS)?;
        let pools = pool_list_field(&body)?;
        if pooled
            .management()
            .get_flavor(project, name)
            .await?
            .is_none()
        {
            return Err(Error::not_found(format!("Flavor {name} does not exist.")));
        }
        self.store_flavor(project, name, pools).await
    }

    pub async fn delete_flavor(&self, project: &str, name: &str) -> Result<()> {
        let pooled = self.pooled()?;
        check_name("flavor", name)?;
        pooled.management().delete_flavor(project, name).await?;
        pooled.reload().await
    }
}
