//! `outbound-http`: requests to the origins the manifest lists, when `outbound` is granted at
//! the site. A `"config:<key>"` entry allows the origin of the value the site's administrator
//! set for `<key>` (read at each call). Redirects are not followed (a redirect could lead anywhere); bodies are capped.

use std::time::Duration;

use super::{Cx, Sandbox};
use crate::access::{Capability, Check, Need};
use crate::plugins::latest::Error;
use crate::plugins::manifest::origin;
use crate::plugins::v0_2::osler::plugin::outbound_http as out;

/// What `outbound-http` sees: the call and the host's HTTP client.
pub struct OutboundView<'a> {
    cx: Cx<'a>,
    client: &'a reqwest::Client,
}

impl Sandbox {
    pub(crate) fn outbound_view(&mut self) -> OutboundView<'_> {
        OutboundView {
            cx: self.cx(),
            client: self.host().http_client(),
        }
    }
}

impl out::Host for OutboundView<'_> {
    async fn send(&mut self, req: out::Outgoing) -> wasmtime::Result<Result<out::Incoming, Error>> {
        Ok(self.send_checked(req).await)
    }
}

impl OutboundView<'_> {
    async fn send_checked(&self, req: out::Outgoing) -> Result<out::Incoming, Error> {
        self.cx.check_size("the request body", req.body.len())?;
        let target = origin(&req.url).map_err(Error::Invalid)?;
        let allowed = self
            .cx
            .call
            .plugin
            .manifest
            .outbound_at(&self.cx.call.config);
        let listed = allowed
            .iter()
            .any(|(_, o)| o.as_ref().is_ok_and(|o| *o == target));
        let check = Check::capability("plugin.outbound", Capability::Outbound, Need::Nothing);
        self.cx.allow(check).await?;
        // Nothing read from a chart may leave before its audit entry is on disk.
        self.cx
            .reads_durable()
            .await
            .map_err(|_| Error::Unavailable("the audit trail cannot be written".into()))?;
        if !listed {
            let check = Check::new("plugin.outbound", Need::Nothing).resource(target.clone());
            let mut reason = format!(
                "{target} is not among the origins plugin '{}' may reach (its manifest's \
                 `outbound` list)",
                self.cx.id()
            );
            for why in allowed.iter().filter_map(|(_, o)| o.as_ref().err()) {
                reason.push_str("; ");
                reason.push_str(why);
            }
            return Err(self.cx.deny(check, reason).await);
        }
        let method = reqwest::Method::from_bytes(req.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| Error::Invalid(format!("'{}' is not an HTTP method", req.method)))?;
        let limits = self.cx.limits();
        let timeout = req
            .timeout_ms
            .map(|t| Duration::from_millis(t as u64))
            .unwrap_or(limits.timeout())
            .min(limits.timeout());
        let mut rb = self
            .client
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
