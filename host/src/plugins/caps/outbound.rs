//! `outbound-http`: requests to the origins the manifest lists, when `outbound` is granted at
//! the site. Redirects are not followed (a redirect could lead anywhere); bodies are capped.

use std::time::Duration;

use super::Sandbox;
use crate::plugins::manifest::{Capability, origin};
use crate::plugins::v0_1::Error;
use crate::plugins::v0_1::osler::plugin::outbound_http as out;

impl out::Host for Sandbox {
    async fn send(&mut self, req: out::Outgoing) -> wasmtime::Result<Result<out::Incoming, Error>> {
        Ok(self.send_checked(req).await)
    }
}

impl Sandbox {
    async fn send_checked(&self, req: out::Outgoing) -> Result<out::Incoming, Error> {
        self.check_size("the request body", req.body.len())?;
        let target = origin(&req.url).map_err(Error::Invalid)?;
        let listed = self.call.plugin.manifest.outbound.contains(&target);
        self.allow(Capability::Outbound, None, "plugin.outbound")
            .await?;
        // Nothing read from a chart may leave before its audit entry is on disk.
        self.audit_durable()
            .await
            .map_err(|_| Error::Unavailable("the audit trail cannot be written".into()))?;
        if !listed {
            let mut ev = self.call.ctx.event("plugin.outbound", "denied");
            ev.resource = Some(target.clone());
            ev.detail = Some("origin not in the plugin's manifest".into());
            let _ = self.app.audit.record_durable(ev).await;
            return Err(Error::Denied(format!(
                "{target} is not among the origins plugin '{}' may reach",
                self.call.id()
            )));
        }
        let method = reqwest::Method::from_bytes(req.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| Error::Invalid(format!("'{}' is not an HTTP method", req.method)))?;
        let limits = self.app.plugins.runtime_limits();
        let timeout = req
            .timeout_ms
            .map(|t| Duration::from_millis(t as u64))
            .unwrap_or(limits.timeout())
            .min(limits.timeout());
        let mut rb = self
            .app
            .plugins
            .http_client()
            .request(method, &req.url)
            .timeout(timeout)
            .body(req.body);
        for (k, v) in &req.headers {
            // The host decides where the request goes and how it is framed.
            let framing = [
                "host",
                "connection",
                "content-length",
                "transfer-encoding",
                "upgrade",
            ];
            if !framing.contains(&k.to_ascii_lowercase().as_str()) {
                rb = rb.header(k, v);
            }
        }
        let mut resp = rb
            .send()
            .await
            .map_err(|e| Error::Unavailable(format!("{target}: {}", e.without_url())))?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let max = limits.payload_bytes();
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| Error::Unavailable(format!("{target}: {}", e.without_url())))?
        {
            if body.len() + chunk.len() > max {
                return Err(Error::TooLarge(format!(
                    "the response from {target} is larger than {max} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(out::Incoming {
            status,
            headers,
            body,
        })
    }
}
