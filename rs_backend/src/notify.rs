//! Run notifications: the inline rules of a run's spec (`RunSpec.notification_rules`),
//! delivered when the run ends in one of a rule's phases — a webhook request, or an email
//! through the SMTP server this process is configured with.
//!
//! Templates (URL, headers, bodies, subject) may name the finished run's fields:
//! `{{.Run.Name}}`, `{{.Run.Project}}`, `{{.Run.Domain}}`, `{{.Run.Org}}`, `{{.Phase}}`
//! (`succeeded`, `failed`, `timed_out`, `aborted`) and `{{.Error}}`.
//!
//! Delivery never changes the run: a failed delivery is reported (logged, and returned to
//! the caller) and the next rule is tried. The same code serves the embedded backend and
//! local runs (through the Python extension), so both deliver alike.

use std::time::Duration;

use flyteidl2::flyteidl::common::ActionPhase;
use flyteidl2::flyteidl::notification::{
    email_delivery_template::Content, EmailDeliveryTemplate, EmailRecipient, HttpMethod,
    WebhookDeliveryTemplate,
};
use flyteidl2::flyteidl::task::{inline_rule::Delivery, InlineRuleList};
use flyteidl2::flyteidl::workflow::ConditionWebhook;
use flyteidl2::google::protobuf::{value::Kind, Struct, Value};
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// `host:port` of the SMTP server email notifications go through.
pub const SMTP_SERVER_ENV: &str = "FLYTE_SMTP_SERVER";
/// Sign-in for the SMTP server (both or neither); with them the connection must use STARTTLS.
pub const SMTP_USERNAME_ENV: &str = "FLYTE_SMTP_USERNAME";
pub const SMTP_PASSWORD_ENV: &str = "FLYTE_SMTP_PASSWORD";
/// The sender of notification emails (default `flyte@localhost`).
pub const SMTP_FROM_ENV: &str = "FLYTE_SMTP_FROM";

const TIMEOUT: Duration = Duration::from_secs(15);

/// What a notification says about the run that ended.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    pub org: String,
    pub project: String,
    pub domain: String,
    pub name: String,
    pub phase: ActionPhase,
    pub error: String,
}

/// The phases a notification can be sent for, as templates show them.
pub fn phase_label(phase: ActionPhase) -> Option<&'static str> {
    match phase {
        ActionPhase::Succeeded => Some("succeeded"),
        ActionPhase::Failed => Some("failed"),
        ActionPhase::TimedOut => Some("timed_out"),
        ActionPhase::Aborted => Some("aborted"),
        _ => None,
    }
}

/// Checks a run's rules when it is created. Named delivery configs are accepted only with
/// `allow_named` (a cluster's administrators define them; this process has none).
pub fn check_rules(rules: &InlineRuleList, allow_named: bool) -> Result<(), String> {
    for (i, rule) in rules.rules.iter().enumerate() {
        let at = format!("notification_rules.rules[{i}]");
        if rule.on_phases.is_empty() {
            return Err(format!("{at}: on_phases is empty"));
        }
        for phase in &rule.on_phases {
            let known = ActionPhase::try_from(*phase).ok().and_then(phase_label);
            if known.is_none() {
                return Err(format!(
                    "{at}: phase {phase} is not one a run ends in (succeeded, failed, timed_out, aborted)"
                ));
            }
        }
        match &rule.delivery {
            Some(Delivery::DeliveryConfigName(name)) if allow_named => {
                if name.is_empty() {
                    return Err(format!("{at}: delivery_config_name is empty"));
                }
            }
            Some(Delivery::DeliveryConfigName(name)) => {
                return Err(format!(
                    "{at}: delivery config {name:?} is not defined here: this backend has no named \
                     delivery configs; give the delivery inline (webhook or email)"
                ))
            }
            Some(Delivery::DeliveryTemplate(template)) => {
                match (&template.webhook, &template.email) {
                    (Some(hook), None) => {
                        let url = reqwest::Url::parse(&render(&hook.url, &example()))
                            .map_err(|e| format!("{at}: webhook url {:?}: {e}", hook.url))?;
                        if !matches!(url.scheme(), "http" | "https") {
                            return Err(format!("{at}: webhook url {:?} is not http(s)", hook.url));
                        }
                    }
                    (None, Some(email)) => {
                        if email.to.is_empty() {
                            return Err(format!("{at}: email has no recipients"));
                        }
                        if !matches!(email.content, Some(Content::Inline(_))) {
                            return Err(format!(
                                "{at}: email needs an inline template (provider templates are a \
                                 hosted email service's)"
                            ));
                        }
                    }
                    _ => return Err(format!("{at}: give exactly one of webhook and email")),
                }
            }
            None => return Err(format!("{at}: no delivery")),
        }
    }
    Ok(())
}

fn example() -> RunOutcome {
    RunOutcome {
        org: "org".into(),
        project: "project".into(),
        domain: "domain".into(),
        name: "run".into(),
        phase: ActionPhase::Succeeded,
        error: String::new(),
    }
}

/// How a value is written into the text it lands in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escape {
    /// Plain text (an e-mail's text part).
    None,
    /// Inside a JSON string (a webhook body, written by the SDK as JSON).
    Json,
    /// HTML text (an e-mail's HTML part).
    Html,
    /// A URL component (percent-encoded).
    Url,
    /// One line (a header value, a subject): line breaks become spaces.
    Line,
}

fn escaped(value: &str, how: Escape) -> String {
    match how {
        Escape::None => value.to_string(),
        Escape::Json => {
            // A JSON string's contents: its encoding without the surrounding quotes.
            let quoted = serde_json::Value::from(value).to_string();
            quoted[1..quoted.len() - 1].to_string()
        }
        Escape::Html => value
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#39;"),
        Escape::Url => {
            percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
        }
        Escape::Line => value.replace(['\r', '\n'], " "),
    }
}

/// `template` with the run's fields filled in as plain text.
pub fn render(template: &str, run: &RunOutcome) -> String {
    render_as(template, run, Escape::None)
}

/// `template` with the run's fields filled in, each escaped for where it lands.
pub fn render_as(template: &str, run: &RunOutcome, how: Escape) -> String {
    let phase = phase_label(run.phase).unwrap_or("unknown");
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        let name = rest[start + 2..start + len].trim();
        let value = match name {
            ".Run.Name" => Some(run.name.as_str()),
            ".Run.Project" => Some(run.project.as_str()),
            ".Run.Domain" => Some(run.domain.as_str()),
            ".Run.Org" => Some(run.org.as_str()),
            ".Phase" => Some(phase),
            ".Error" => Some(run.error.as_str()),
            _ => None,
        };
        out.push_str(&rest[..start]);
        match value {
            Some(v) => out.push_str(&escaped(v, how)),
            None => out.push_str(&rest[start..start + len + 2]),
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

/// Delivers every rule for the run's phase; returns what could not be delivered.
pub async fn deliver(rules: &InlineRuleList, run: &RunOutcome) -> Vec<String> {
    let mut failures = Vec::new();
    for rule in &rules.rules {
        if !rule.on_phases.contains(&(run.phase as i32)) {
            continue;
        }
        let Some(Delivery::DeliveryTemplate(template)) = &rule.delivery else {
            continue;
        };
        let result = match (&template.webhook, &template.email) {
            (Some(hook), _) => webhook(hook, run).await,
            (None, Some(email)) => send_email(email, run).await,
            (None, None) => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!(run = %run.name, error = %e, "notification not delivered");
            failures.push(e);
        }
    }
    failures
}

async fn webhook(hook: &WebhookDeliveryTemplate, run: &RunOutcome) -> Result<(), String> {
    let url = render_as(&hook.url, run, Escape::Url);
    let method = match HttpMethod::try_from(hook.method).unwrap_or(HttpMethod::Post) {
        HttpMethod::Get => reqwest::Method::GET,
        HttpMethod::Head => reqwest::Method::HEAD,
        HttpMethod::Put => reqwest::Method::PUT,
        HttpMethod::Delete => reqwest::Method::DELETE,
        HttpMethod::Connect => reqwest::Method::CONNECT,
        HttpMethod::Options => reqwest::Method::OPTIONS,
        HttpMethod::Trace => reqwest::Method::TRACE,
        HttpMethod::Patch => reqwest::Method::PATCH,
        HttpMethod::Post | HttpMethod::Unspecified => reqwest::Method::POST,
    };
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| format!("webhook {url}: {e}"))?;
    let mut request = client.request(method, &url);
    for (key, value) in &hook.headers {
        request = request.header(key, render_as(value, run, Escape::Line));
    }
    if !hook.body_template.is_empty() {
        request = request.body(render_as(&hook.body_template, run, Escape::Json));
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("webhook {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("webhook {url} answered {}", response.status()));
    }
    Ok(())
}

/// A protobuf `Struct` as JSON, with every string passed through `text` (which fills in
/// template variables).
pub fn struct_json(s: &Struct, text: &dyn Fn(&str) -> String) -> serde_json::Value {
    serde_json::Value::Object(
        s.fields
            .iter()
            .map(|(k, v)| (k.clone(), value_json(v, text)))
            .collect(),
    )
}

fn value_json(v: &Value, text: &dyn Fn(&str) -> String) -> serde_json::Value {
    use serde_json::Value as J;
    match v.kind.as_ref() {
        None | Some(Kind::NullValue(_)) => J::Null,
        Some(Kind::NumberValue(n)) => serde_json::Number::from_f64(*n).map_or(J::Null, J::Number),
        Some(Kind::StringValue(s)) => J::String(text(s)),
        Some(Kind::BoolValue(b)) => J::Bool(*b),
        Some(Kind::StructValue(s)) => struct_json(s, text),
        Some(Kind::ListValue(l)) => {
            J::Array(l.values.iter().map(|v| value_json(v, text)).collect())
        }
    }
}

/// Where a condition's webhook receiver signals it, in a webhook's payload.
pub const CALLBACK_URI_VARIABLE: &str = "{callback_uri}";

/// Fires a condition's webhook (`workflow.ConditionWebhook`): POSTs its payload as JSON, with
/// `{callback_uri}` in its strings replaced by where the condition is signalled.
pub async fn condition_webhook(hook: &ConditionWebhook, callback_uri: &str) -> Result<(), String> {
    let payload = hook
        .payload
        .as_ref()
        .map(|p| struct_json(p, &|s| s.replace(CALLBACK_URI_VARIABLE, callback_uri)))
        .unwrap_or(serde_json::Value::Null);
    let url = &hook.url;
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| format!("condition webhook {url}: {e}"))?;
    let response = client
        .post(url)
        .json(&payload)
        .send()
        .await
        .map_err(|e| format!("condition webhook {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!(
            "condition webhook {url} answered {}",
            response.status()
        ));
    }
    Ok(())
}

fn mailbox(r: &EmailRecipient) -> Result<Mailbox, String> {
    let text = if r.name.is_empty() {
        r.address.clone()
    } else {
        format!("{} <{}>", r.name, r.address)
    };
    text.parse()
        .map_err(|e| format!("email recipient {text:?}: {e}"))
}

async fn send_email(email: &EmailDeliveryTemplate, run: &RunOutcome) -> Result<(), String> {
    let Some(Content::Inline(inline)) = &email.content else {
        return Err("email without an inline template".into());
    };
    let server = std::env::var(SMTP_SERVER_ENV).map_err(|_| {
        format!("email not sent: no SMTP server configured (set {SMTP_SERVER_ENV}=host:port)")
    })?;
    let (host, port) = match server.rsplit_once(':') {
        Some((h, p)) => (
            h.to_string(),
            p.parse::<u16>()
                .map_err(|_| format!("{SMTP_SERVER_ENV}={server:?}: the port is not a number"))?,
        ),
        None => (server.clone(), 25),
    };
    let from = std::env::var(SMTP_FROM_ENV).unwrap_or_else(|_| "flyte@localhost".into());
    let mut message = Message::builder()
        .from(
            from.parse()
                .map_err(|e| format!("{SMTP_FROM_ENV}={from:?}: {e}"))?,
        )
        .subject(render_as(&inline.subject, run, Escape::Line));
    for r in &email.to {
        message = message.to(mailbox(r)?);
    }
    for r in &email.cc {
        message = message.cc(mailbox(r)?);
    }
    for r in &email.bcc {
        message = message.bcc(mailbox(r)?);
    }
    let text = render(&inline.text_template, run);
    let built = if inline.html_template.is_empty() {
        message.singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(text),
        )
    } else {
        message.multipart(MultiPart::alternative_plain_html(
            text,
            render_as(&inline.html_template, run, Escape::Html),
        ))
    }
    .map_err(|e| format!("email: {e}"))?;
    let user = std::env::var(SMTP_USERNAME_ENV).ok();
    let transport = match user {
        Some(user) => {
            let password = std::env::var(SMTP_PASSWORD_ENV).unwrap_or_default();
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host)
                .map_err(|e| format!("SMTP server {server}: {e}"))?
                .port(port)
                .credentials(Credentials::new(user, password))
                .timeout(Some(TIMEOUT))
                .build()
        }
        // A relay that takes mail without sign-in (a local MTA or a test server).
        None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host)
            .port(port)
            .timeout(Some(TIMEOUT))
            .build(),
    };
    transport
        .send(built)
        .await
        .map_err(|e| format!("email via {server}: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(phase: ActionPhase) -> RunOutcome {
        RunOutcome {
            org: "o".into(),
            project: "p".into(),
            domain: "d".into(),
            name: "r1".into(),
            phase,
            error: "boom".into(),
        }
    }

    #[test]
    fn templates_name_the_finished_run() {
        let out = render(
            "{{.Run.Project}}/{{.Run.Domain}}/{{ .Run.Name }} {{.Phase}}: {{.Error}} {{.Other}} {{",
            &run(ActionPhase::Failed),
        );
        assert_eq!(out, "p/d/r1 failed: boom {{.Other}} {{");
    }

    #[test]
    fn values_are_escaped_for_where_they_land() {
        let mut r = run(ActionPhase::Failed);
        r.error = "File \"x.py\", line 1\n  <module>".into();
        let body = render_as(r#"{"error": "{{.Error}}"}"#, &r, Escape::Json);
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["error"], r.error.as_str());
        assert_eq!(
            render_as("<p>{{.Error}}</p>", &r, Escape::Html),
            "<p>File &quot;x.py&quot;, line 1\n  &lt;module&gt;</p>"
        );
        assert_eq!(
            render_as("{{.Error}}", &r, Escape::Line),
            "File \"x.py\", line 1   <module>"
        );
        assert_eq!(
            render_as("http://h/{{.Error}}", &r, Escape::Url).find(' '),
            None
        );
    }

    #[test]
    fn rules_this_process_cannot_deliver_are_refused() {
        use flyteidl2::flyteidl::notification::DeliveryConfigTemplate;
        use flyteidl2::flyteidl::task::InlineRule;

        let rule = |phases: Vec<i32>, delivery| InlineRuleList {
            rules: vec![InlineRule {
                on_phases: phases,
                delivery: Some(delivery),
            }],
        };
        let named = rule(
            vec![ActionPhase::Failed as i32],
            Delivery::DeliveryConfigName("oncall".into()),
        );
        assert!(check_rules(&named, false)
            .unwrap_err()
            .contains("no named delivery configs"));
        assert!(check_rules(&named, true).is_ok());
        let hook = |url: &str| {
            Delivery::DeliveryTemplate(DeliveryConfigTemplate {
                webhook: Some(WebhookDeliveryTemplate {
                    url: url.into(),
                    ..Default::default()
                }),
                email: None,
            })
        };
        let running = rule(vec![ActionPhase::Running as i32], hook("http://x/"));
        assert!(check_rules(&running, true)
            .unwrap_err()
            .contains("not one a run ends in"));
        let ftp = rule(vec![ActionPhase::Failed as i32], hook("ftp://x/"));
        assert!(check_rules(&ftp, true).unwrap_err().contains("not http(s)"));
        let ok = rule(
            vec![ActionPhase::Failed as i32],
            hook("https://h/{{.Run.Name}}"),
        );
        assert!(check_rules(&ok, false).is_ok());
    }
}
