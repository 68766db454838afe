//! This plugin's settings at the current site: the keys its manifest declares under
//! `[config.<key>]`, with the administrator's values or the manifest's defaults. No
//! capability needed.
//!
//! The typed getters return `None` for an undeclared key or a value of another type.

use crate::bindings::osler::plugin::config as wit;
pub use crate::bindings::osler::plugin::config::Value;

/// The value of `key`, if the manifest declares it.
pub fn get(key: &str) -> Option<Value> {
    wit::get(key)
}

/// A `text` setting.
pub fn get_text(key: &str) -> Option<String> {
    match get(key)? {
        Value::Text(s) => Some(s),
        _ => None,
    }
}

/// A `boolean` setting.
pub fn get_bool(key: &str) -> Option<bool> {
    match get(key)? {
        Value::Boolean(b) => Some(b),
        _ => None,
    }
}

/// An `integer` setting.
pub fn get_integer(key: &str) -> Option<i64> {
    match get(key)? {
        Value::Integer(i) => Some(i),
        _ => None,
    }
}

/// A `number` setting (an `integer` one is converted).
pub fn get_number(key: &str) -> Option<f64> {
    match get(key)? {
        Value::Number(n) => Some(n),
        Value::Integer(i) => Some(i as f64),
        _ => None,
    }
}

/// Every declared key and its value.
pub fn all() -> Vec<(String, Value)> {
    wit::all()
}
