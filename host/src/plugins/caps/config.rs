//! `config`: the plugin's settings at the current site — the keys its manifest declares, with
//! the administrator's values or the defaults. Free.

use std::collections::BTreeMap;

use super::Sandbox;
use crate::plugins::manifest::ConfigValue;
use crate::plugins::v0_1::osler::plugin::config;

/// What `config` sees: this plugin's settings at this site.
pub struct ConfigView<'a> {
    config: &'a BTreeMap<String, ConfigValue>,
}

impl Sandbox {
    pub(super) fn config_view(&mut self) -> ConfigView<'_> {
        ConfigView {
            config: &self.call.config,
        }
    }
}

fn wit(v: &ConfigValue) -> config::Value {
    match v {
        ConfigValue::Text(s) => config::Value::Text(s.clone()),
        ConfigValue::Integer(i) => config::Value::Integer(*i),
        ConfigValue::Boolean(b) => config::Value::Boolean(*b),
        ConfigValue::Number(n) => config::Value::Number(*n),
    }
}

impl config::Host for ConfigView<'_> {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<config::Value>> {
        Ok(self.config.get(&key).map(wit))
    }

    async fn all(&mut self) -> wasmtime::Result<Vec<(String, config::Value)>> {
        Ok(self
            .config
            .iter()
            .map(|(k, v)| (k.clone(), wit(v)))
            .collect())
    }
}
