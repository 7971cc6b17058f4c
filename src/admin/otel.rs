//! OpenTelemetry trace export (cargo feature `otel`; `[opentelemetry] enabled = true`).
//!
//! Request spans (the `request` span of the HTTP middleware, with its method, route template,
//! project and request id; and everything inside it) are exported in batches over OTLP/HTTP
//! (protobuf) to `[opentelemetry] endpoint`. An incoming W3C trace context (`traceparent`,
//! `tracestate`) becomes the parent of the request span, so the server's spans join the caller's
//! trace. Export runs on the SDK's own thread; a collector that is down costs dropped spans, never
//! request latency.

use std::sync::OnceLock;

use axum::http::HeaderMap;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};
use opentelemetry_sdk::Resource;
use tracing::Subscriber;
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt};
use tracing_subscriber::registry::LookupSpan;

use crate::config::OtelConfig;

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The tracing layer that exports spans, or `None` when export is off. Call it once, outside
/// any async runtime (the exporter's HTTP client is a blocking one).
pub fn layer<S>(config: &OtelConfig) -> Result<Option<OpenTelemetryLayer<S, Tracer>>, String>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    if !config.enabled {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(config.endpoint.clone())
        .build()
        .map_err(|e| format!("[opentelemetry] endpoint {}: {e}", config.endpoint))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(config.service_name.clone())
                .build(),
        )
        .build();
    let tracer = provider.tracer("zaqar");
    let _ = PROVIDER.set(provider);
    Ok(Some(tracing_opentelemetry::layer().with_tracer(tracer)))
}

/// Whether spans are exported.
pub fn enabled() -> bool {
    PROVIDER.get().is_some()
}

/// Exports what is still buffered and stops the exporter (at process exit).
pub fn shutdown() {
    if let Some(p) = PROVIDER.get() {
        if let Err(e) = p.shutdown() {
            eprintln!("zaqar-server: OpenTelemetry shutdown: {e}");
        }
    }
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Makes the W3C trace context of `headers` (if any) the parent of `span`.
pub fn set_parent(span: &tracing::Span, headers: &HeaderMap) {
    if !enabled() || !headers.contains_key("traceparent") {
        return;
    }
    let cx = TraceContextPropagator::new().extract(&Headers(headers));
    let _ = span.set_parent(cx);
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceContextExt;

    #[test]
    fn extracts_the_w3c_trace_context() {
        let mut h = HeaderMap::new();
        h.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let cx = TraceContextPropagator::new().extract(&Headers(&h));
        let sc = cx.span().span_context().clone();
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(sc.is_remote() && sc.is_sampled());
    }
}
