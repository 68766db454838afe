//! `config`: the plugin's settings at the current site — the keys its manifest declares, with
//! the administrator's values or the defaults. Free.

use super::Sandbox;
use crate::plugins::manifest::ConfigValue;
use crate::plugins::v0_1::osler::plugin::config;

fn wit(v: &ConfigValue) -> config::Value {
    match v {
        ConfigValue::Text(s) => config::Value::Text(s.clone()),
        ConfigValue::Integer(i) => config::Value::Integer(*i),
        ConfigValue::Boolean(b) => config::Value::Boolean(*b),
        ConfigValue::Number(n) => config::Value::Number(*n),
    }
}

impl config::Host for Sandbox {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<config::Value>> {
        Ok(self.call.config.get(&key).map(wit))
    }

    async fn all(&mut self) -> wasmtime::Result<Vec<(String, config::Value)>> {
        Ok(self
            .call
            .config
            .iter()
            .map(|(k, v)| (k.clone(), wit(v)))
            .collect())
    }
}
