//! The retry policy of spec §6.3: which policy applies (queue or subscription), and the
//! pauses between attempts with each of the four backoff functions.

use serde_json::Value;

/// The retry policy of spec §6.3.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub retries_with_no_delay: u32,
    pub minimum_delay_retries: u32,
    pub minimum_delay: u64,
    pub maximum_delay: u64,
    pub maximum_delay_retries: u32,
    pub backoff: String,
    pub ignore_subscription_override: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries_with_no_delay: 3,
            minimum_delay_retries: 3,
            minimum_delay: 5,
            maximum_delay: 30,
            maximum_delay_retries: 3,
            backoff: "linear".into(),
            ignore_subscription_override: false,
        }
    }
}

impl RetryPolicy {
    fn from_value(v: Option<&Value>) -> Option<RetryPolicy> {
        let o = v?.as_object()?;
        if o.is_empty() {
            return None;
        }
        let d = RetryPolicy::default();
        let int = |k: &str, def: u64| o.get(k).and_then(Value::as_u64).unwrap_or(def);
        Some(RetryPolicy {
            retries_with_no_delay: int("retries_with_no_delay", d.retries_with_no_delay as u64)
                as u32,
            minimum_delay_retries: int("minimum_delay_retries", d.minimum_delay_retries as u64)
                as u32,
            minimum_delay: int("minimum_delay", d.minimum_delay),
            maximum_delay: int("maximum_delay", d.maximum_delay),
            maximum_delay_retries: int("maximum_delay_retries", d.maximum_delay_retries as u64)
                as u32,
            backoff: o
                .get("retry_backoff_function")
                .and_then(Value::as_str)
                .unwrap_or("linear")
                .to_string(),
            ignore_subscription_override: o
                .get("ignore_subscription_override")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    /// The effective policy (spec §6.3): the queue's if either says to ignore the
    /// subscription's, else the subscription's, else the queue's, else the defaults.
    pub fn effective(queue: Option<&Value>, subscription: Option<&Value>) -> RetryPolicy {
        let q = Self::from_value(queue);
        let s = Self::from_value(subscription);
        let ignore = q.as_ref().is_some_and(|p| p.ignore_subscription_override)
            || s.as_ref().is_some_and(|p| p.ignore_subscription_override);
        match (ignore, q, s) {
            (true, Some(q), _) => q,
            (true, None, _) => RetryPolicy::default(),
            (false, _, Some(s)) => s,
            (false, Some(q), None) => q,
            (false, None, None) => RetryPolicy::default(),
        }
    }

    /// The delays of the backoff phase (step 3 of §6.3), in seconds.
    pub fn backoff_delays(&self) -> Vec<u64> {
        const I: u64 = 5;
        let (min, max) = (
            self.minimum_delay,
            self.maximum_delay.max(self.minimum_delay),
        );
        let n = ((max - min) / I) as usize;
        let floor = |x: f64| (x + 1e-9).floor() as u64;
        match self.backoff.as_str() {
            "geometric" | "exponential" if n >= 2 && min > 0 => {
                let k = (max as f64 / min as f64).powf(1.0 / (n as f64 - 1.0));
                (1..=n)
                    .map(|a| {
                        if self.backoff == "geometric" {
                            floor(min as f64 * k.powi(a as i32 - 1))
                        } else {
                            floor(min as f64 / k * k.powi(a as i32))
                        }
                    })
                    .collect()
            }
            "arithmetic" if n >= 2 => {
                let delta = 2.0 * (max - min) as f64 / (n as f64 * (n as f64 - 1.0));
                (1..=n)
                    .map(|a| floor(min as f64 + ((a - 1) * a) as f64 * delta / 2.0))
                    .collect()
            }
            _ => (0..)
                .map(|i| min + i * I)
                .take_while(|d| *d < max)
                .collect(),
        }
    }

    /// Every pause before a retry, in order (the first attempt is immediate).
    pub fn schedule(&self) -> Vec<u64> {
        let mut s = vec![0; self.retries_with_no_delay as usize];
        s.extend(std::iter::repeat_n(
            self.minimum_delay,
            self.minimum_delay_retries as usize,
        ));
        s.extend(self.backoff_delays());
        s.extend(std::iter::repeat_n(
            self.maximum_delay,
            self.maximum_delay_retries as usize,
        ));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn backoff_functions_match_the_spec() {
        let p = |f: &str| RetryPolicy {
            backoff: f.into(),
            ..Default::default()
        };
        assert_eq!(p("linear").backoff_delays(), vec![5, 10, 15, 20, 25]);
        assert_eq!(p("geometric").backoff_delays(), vec![5, 7, 12, 19, 30]);
        assert_eq!(p("exponential").backoff_delays(), vec![5, 7, 12, 19, 30]);
        assert_eq!(p("arithmetic").backoff_delays(), vec![5, 7, 12, 20, 30]);
        assert_eq!(
            p("linear").schedule(),
            vec![0, 0, 0, 5, 5, 5, 5, 10, 15, 20, 25, 30, 30, 30]
        );
    }

    #[test]
    fn effective_policy() {
        let q = json!({"retries_with_no_delay": 1});
        let s = json!({"retries_with_no_delay": 2});
        assert_eq!(
            RetryPolicy::effective(Some(&q), Some(&s)).retries_with_no_delay,
            2
        );
        assert_eq!(
            RetryPolicy::effective(Some(&q), None).retries_with_no_delay,
            1
        );
        let q_ignore = json!({"retries_with_no_delay": 1, "ignore_subscription_override": true});
        assert_eq!(
            RetryPolicy::effective(Some(&q_ignore), Some(&s)).retries_with_no_delay,
            1
        );
        assert_eq!(RetryPolicy::effective(None, None), RetryPolicy::default());
    }
}
