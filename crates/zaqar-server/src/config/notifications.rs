//! `[notification]`: how notifications are delivered (workers, webhook timeout, e-mail by
//! command or over SMTP) and the templates of the confirmation e-mails.

use super::resolve::{parse_dict, Resolver};
use super::{ConfigError, Secret};

/// An e-mail template option (a `DictOpt` of `topic`, `body` and `sender`); a key that is not
/// given keeps its default.
fn template(
    r: &Resolver<'_>,
    name: &str,
    default: (&str, &str, &str),
) -> zaqar_notify::EmailTemplate {
    let d = parse_dict(&r.string("notification", name));
    zaqar_notify::EmailTemplate {
        topic: d
            .get("topic")
            .cloned()
            .unwrap_or_else(|| default.0.to_string()),
        body: d
            .get("body")
            .cloned()
            .unwrap_or_else(|| default.1.to_string()),
        sender: d
            .get("sender")
            .cloned()
            .unwrap_or_else(|| default.2.to_string()),
    }
}

/// `[notification]`.
pub(super) fn notification_config(
    r: &Resolver<'_>,
) -> Result<zaqar_notify::NotifierConfig, ConfigError> {
    use zaqar_notify::{NotifierConfig, SmtpMode, SmtpTls};
    const N: &str = "notification";
    const SENDER: &str = "Zaqar Notifications <no-reply@openstack.org>";
    let smtp_mode = match r
        .choice(N, "smtp_mode", &["third_part", "self_local"])?
        .as_str()
    {
        "self_local" => SmtpMode::Smtp,
        _ => SmtpMode::Command,
    };
    let smtp_tls = match r
        .choice(N, "smtp_tls", &["tls", "starttls", "none"])?
        .as_str()
    {
        "starttls" => SmtpTls::StartTls,
        "none" => SmtpTls::None,
        _ => SmtpTls::Implicit,
    };
    let non_empty = |v: String| Some(v.trim().to_string()).filter(|v| !v.is_empty());
    Ok(NotifierConfig {
        require_confirmation: r.bool(N, "require_confirmation")?,
        max_workers: r.int(N, "max_notifier_workers", 1, 10_000)? as usize,
        webhook_timeout_secs: r.int(N, "webhook_timeout", 1, 600)? as u64,
        smtp_mode,
        smtp_command: r.string(N, "smtp_command"),
        smtp_host: r.string(N, "smtp_host"),
        smtp_port: r.int(N, "smtp_port", 1, 65535)? as u16,
        smtp_tls,
        smtp_user: r.string(N, "smtp_user_name"),
        smtp_password: Secret(r.string(N, "smtp_user_password")),
        external_confirmation_url: non_empty(r.string(N, "external_confirmation_url")),
        public_url: non_empty(r.string(N, "public_url")),
        confirmation_template: template(
            r,
            "subscription_confirmation_email_template",
            (
                "Zaqar Notification - Subscription Confirmation",
                "You have chosen to subscribe to the queue: {0}. This queue belongs to project: {1}. To confirm this subscription, click or visit this link below: {2}",
                SENDER,
            ),
        ),
        unsubscribe_template: template(
            r,
            "unsubscribe_confirmation_email_template",
            (
                "Zaqar Notification - Unsubscribe Confirmation",
                "You have unsubscribed successfully to the queue: {0}. This queue belongs to project: {1}. To resubscribe this subscription, click or visit this link below: {2}",
                SENDER,
            ),
        ),
    })
}
