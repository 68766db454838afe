//! What a component really imports and exports, compared with what its manifest declares —
//! read from the component's bytes (its embedded type), before anything is compiled, so a
//! package the host refuses is refused in milliseconds.
//!
//! Checked at install and again at every load. A component is refused, naming the interface,
//! when it imports an interface its manifest does not declare (or a capability's interface
//! without the capability), when its manifest declares a capability the component does not
//! import (over-declaration: what an administrator approves must be what the code can use),
//! when it mixes API versions or uses one the host lacks, or when the interfaces it shares
//! with other plugins carry anything but functions that can answer `unavailable`.

use std::collections::BTreeSet;

use wit_parser::decoding::{DecodedWasm, decode};
use wit_parser::{FunctionKind, Resolve, Type, TypeDefKind, WorldItem};

use super::manifest::{
    Capability, FREE_INTERFACES, HOST_API_VERSIONS, Manifest, api_has, capability_for,
};

/// WASI packages a plugin may import. The host links them with nothing granted (no files,
/// no environment, no stdio, and no network: every socket address and name lookup is refused);
/// language runtimes import them whatever the plugin does: Rust's standard library, and
/// CPython's C library under componentize-py, which imports `wasi:sockets` too.
const WASI_ALLOWED: &[&str] = &[
    "wasi:cli",
    "wasi:io",
    "wasi:clocks",
    "wasi:random",
    "wasi:filesystem",
    "wasi:sockets",
];

/// componentize-py (Python plugins) leaves its runtime's initialiser exported as an instance
/// named `exports` with one function, `init(app-name, symbols, stub-wasi)`, which it ran at
/// build time to snapshot the interpreter. The host never calls it (it calls only `handler`,
/// `event-handler`, `chart` and the interfaces the manifest declares), so exactly this shape
/// is let through; any other unnamed export is still refused.
fn is_componentize_py_init(
    resolve: &Resolve,
    key: &wit_parser::WorldKey,
    item: &WorldItem,
) -> bool {
    let (wit_parser::WorldKey::Name(name), WorldItem::Interface { id, .. }) = (key, item) else {
        return false;
    };
    let iface = &resolve.interfaces[*id];
    let mut funcs = iface.functions.values();
    let (Some(f), None) = (funcs.next(), funcs.next()) else {
        return false;
    };
    let params: Vec<&str> = f.params.iter().map(|p| p.name.as_str()).collect();
    name == "exports" && f.name == "init" && params == ["app-name", "symbols", "stub-wasi"]
}

/// An interface of another plugin that this component imports.
#[derive(Clone, Debug)]
pub struct PluginImport {
    /// The import's full name, e.g. `osler:scheduling/appointments@0.1.0`.
    pub name: String,
    /// Without the version: `osler:scheduling/appointments`.
    pub base: String,
    pub version: semver::Version,
    pub funcs: Vec<String>,
}

/// An interface this component exports to other plugins.
#[derive(Clone, Debug)]
pub struct PluginExport {
    pub name: String,
    pub base: String,
    pub version: semver::Version,
}

/// The checked shape of a component.
#[derive(Clone, Debug)]
pub struct Shape {
    /// The `osler:plugin` version it was built against.
    pub api: semver::Version,
    /// The `osler:plugin` interfaces it imports (without package and version).
    pub host_imports: Vec<String>,
    pub imports: Vec<PluginImport>,
    pub exports: Vec<PluginExport>,
    /// Whether it exports `event-handler` and `chart`.
    pub handles_events: bool,
    pub has_panels: bool,
}

impl Shape {
    /// The capabilities the component can use: those whose interfaces it imports.
    pub fn capabilities(&self) -> BTreeSet<Capability> {
        let mut caps: BTreeSet<Capability> = self
            .host_imports
            .iter()
            .filter_map(|i| capability_for(i))
            .collect();
        // A `kv` or `patient-data` batch of API 0.2 may publish events (the outbox).
        if self.api >= semver::Version::new(0, 2, 0)
            && (caps.contains(&Capability::Kv) || caps.contains(&Capability::PatientData))
        {
            caps.insert(Capability::EventsPublish);
        }
        // Every component exports `handler`, which inbound requests reach (API 0.2: the
        // handler tells them from a person's by `context`).
        if self.api >= semver::Version::new(0, 2, 0) {
            caps.insert(Capability::Inbound);
        }
        caps
    }
}

/// `ns:pkg/iface@1.2.3` → (`ns:pkg`, `iface`, version).
fn split(name: &str) -> Option<(&str, &str, Option<semver::Version>)> {
    let (path, version) = match name.split_once('@') {
        Some((p, v)) => (p, Some(semver::Version::parse(v).ok()?)),
        None => (name, None),
    };
    let (pkg, iface) = path.split_once('/')?;
    Some((pkg, iface, version))
}

/// Follow `type x = y` aliases (a `use` is one) to the definition.
fn resolved(resolve: &Resolve, mut ty: Type) -> Type {
    while let Type::Id(id) = ty {
        match &resolve.types[id].kind {
            TypeDefKind::Type(t) => ty = *t,
            _ => break,
        }
    }
    ty
}

/// Every function of an inter-plugin interface must return `result<_, error>` where `error`
/// has an `unavailable` case, so that the host can answer for a provider that is not there.
fn returns_plugin_error(resolve: &Resolve, result: Option<Type>) -> bool {
    let Some(Type::Id(id)) = result.map(|t| resolved(resolve, t)) else {
        return false;
    };
    let TypeDefKind::Result(r) = &resolve.types[id].kind else {
        return false;
    };
    let Some(Type::Id(err)) = r.err.map(|t| resolved(resolve, t)) else {
        return false;
    };
    match &resolve.types[err].kind {
        TypeDefKind::Variant(v) => v.cases.iter().any(|c| c.name == "unavailable"),
        _ => false,
    }
}

/// The functions of a plugin interface, checked.
fn funcs_of(
    resolve: &Resolve,
    id: wit_parser::InterfaceId,
    name: &str,
) -> Result<Vec<String>, String> {
    let iface = &resolve.interfaces[id];
    for (tname, t) in &iface.types {
        if matches!(resolve.types[*t].kind, TypeDefKind::Resource) {
            return Err(format!(
                "`{name}`: `{tname}` is a resource; plugin interfaces carry functions and plain \
                 data types only"
            ));
        }
    }
    let mut out = Vec::new();
    for (fname, f) in &iface.functions {
        if !matches!(f.kind, FunctionKind::Freestanding) {
            return Err(format!(
                "`{name}`: `{fname}` is not a plain function; plugin interfaces carry functions \
                 and plain data types only"
            ));
        }
        if !returns_plugin_error(resolve, f.result) {
            return Err(format!(
                "`{name}`: function `{fname}` must return result<_, osler:plugin/types.error> \
                 so that callers can be told when no provider is available"
            ));
        }
        out.push(fname.clone());
    }
    Ok(out)
}

/// The interface a world item names, or why it is not one.
fn interface_name(
    resolve: &Resolve,
    item: &WorldItem,
    key: &wit_parser::WorldKey,
    what: &str,
) -> Result<Option<(String, wit_parser::InterfaceId)>, String> {
    match item {
        WorldItem::Interface { id, .. } => {
            let name = resolve
                .id_of(*id)
                .unwrap_or_else(|| resolve.name_world_key(key));
            Ok(Some((name, *id)))
        }
        // Types a world uses from its interfaces.
        WorldItem::Type { .. } => Ok(None),
        WorldItem::Function(f) => Err(format!(
            "the component {what} the bare function `{}`, which is not an interface",
            f.name
        )),
    }
}

/// Check the component in `bytes` against its manifest.
pub fn check(bytes: &[u8], m: &Manifest) -> Result<Shape, String> {
    let (resolve, world) = match decode(bytes) {
        Ok(DecodedWasm::Component(r, w)) => (r, w),
        Ok(DecodedWasm::WitPackage(..)) => {
            return Err("this is a WIT package, not a component".into());
        }
        Err(e) => {
            return Err(format!(
                "not a valid WebAssembly component (build it with `cargo build --target \
                 wasm32-wasip2`, or componentize it): {e:#}"
            ));
        }
    };
    let w = &resolve.worlds[world];
    let mut api: Option<semver::Version> = None;
    let mut note_api = |v: &Option<semver::Version>, name: &str| -> Result<(), String> {
        let Some(v) = v else {
            return Err(format!("`{name}` has no version"));
        };
        if !HOST_API_VERSIONS.contains(v) {
            return Err(format!(
                "the component uses osler:plugin@{v}, which this host does not provide"
            ));
        }
        if !m.api.matches(v) {
            return Err(format!(
                "the component uses osler:plugin@{v} but its manifest says api = \"{}\"",
                m.api
            ));
        }
        if let Some(a) = &api
            && a != v
        {
            return Err(format!("the component mixes osler:plugin@{a} and @{v}"));
        }
        api = Some(v.clone());
        Ok(())
    };

    let mut host_imports = Vec::new();
    let mut imports = Vec::new();
    for (key, item) in &w.imports {
        let Some((name, id)) = interface_name(&resolve, item, key, "imports")? else {
            continue;
        };
        let Some((pkg, iface, version)) = split(&name) else {
            return Err(format!(
                "the component imports `{name}`, which is not an interface"
            ));
        };
        if pkg.starts_with("wasi:") {
            if !WASI_ALLOWED.contains(&pkg) {
                return Err(format!(
                    "the component imports `{name}`; plugins get no {pkg} (outbound requests go \
                     through osler:plugin/outbound-http)"
                ));
            }
            continue;
        }
        if pkg == "osler:plugin" {
            note_api(&version, &name)?;
            let v = version.clone().expect("checked");
            if !api_has(&v, iface) {
                return Err(format!(
                    "the component imports `{name}`, which osler:plugin@{v} does not have"
                ));
            }
            if FREE_INTERFACES.contains(&iface) {
            } else if let Some(cap) = capability_for(iface) {
                if !m.capabilities.contains(&cap) {
                    return Err(format!(
                        "the component imports `{name}` but its manifest does not declare the \
                         capability \"{cap}\""
                    ));
                }
            } else {
                return Err(format!(
                    "the component imports `{name}`, which osler:plugin does not have"
                ));
            }
            host_imports.push(iface.to_string());
            continue;
        }
        let base = format!("{pkg}/{iface}");
        let Some(version) = version else {
            return Err(format!("the component imports `{name}` without a version"));
        };
        match m.imports.get(&base) {
            Some(req) if req.matches(&version) => {}
            Some(req) => {
                return Err(format!(
                    "the component imports `{name}` but its manifest asks for {base} {req}"
                ));
            }
            None => {
                return Err(format!(
                    "the component imports `{name}`, which its manifest does not declare under \
                     [imports]"
                ));
            }
        }
        let funcs = funcs_of(&resolve, id, &name)?;
        imports.push(PluginImport {
            name,
            base,
            version,
            funcs,
        });
    }
    for base in m.imports.keys() {
        if !imports.iter().any(|i| &i.base == base) {
            return Err(format!(
                "the manifest declares the import {base} but the component does not import it"
            ));
        }
    }

    let mut exports = Vec::new();
    let (mut has_handler, mut handles_events, mut has_panels) = (false, false, false);
    for (key, item) in &w.exports {
        if is_componentize_py_init(&resolve, key, item) {
            continue;
        }
        let Some((name, id)) = interface_name(&resolve, item, key, "exports")? else {
            continue;
        };
        let Some((pkg, iface, version)) = split(&name) else {
            return Err(format!(
                "the component exports `{name}`, which is not an interface"
            ));
        };
        if pkg == "osler:plugin" {
            note_api(&version, &name)?;
            let v = version.clone().expect("checked");
            match iface {
                "handler" => has_handler = true,
                "event-handler" => handles_events = true,
                "chart" if api_has(&v, iface) => has_panels = true,
                "research-run" => {
                    return Err(format!(
                        "the component exports `{name}`: it is a research plugin, which runs \
                         only in the research sandbox; an administrator installs it for named \
                         researchers with `osler plugin install --sandbox`"
                    ));
                }
                _ => {
                    return Err(format!(
                        "the component exports `{name}`; a plugin exports only handler, \
                         event-handler and (from 0.2) chart of osler:plugin"
                    ));
                }
            }
            continue;
        }
        let base = format!("{pkg}/{iface}");
        let Some(version) = version else {
            return Err(format!("the component exports `{name}` without a version"));
        };
        if m.exports.get(&base) != Some(&version) {
            return Err(format!(
                "the component exports `{name}`, which its manifest does not declare under \
                 [exports] with that version"
            ));
        }
        funcs_of(&resolve, id, &name)?;
        exports.push(PluginExport {
            name,
            base,
            version,
        });
    }
    if !has_handler {
        return Err(
            "the component does not export osler:plugin/handler; is it an Osler plugin?".into(),
        );
    }
    for (base, v) in &m.exports {
        if !exports.iter().any(|e| &e.base == base) {
            return Err(format!(
                "the manifest declares the export {base}@{v} but the component does not export it"
            ));
        }
    }
    if !m.panels.is_empty() && !has_panels {
        return Err(
            "the manifest declares [[panels]] but the component does not export \
             osler:plugin/chart (API 0.2)"
                .into(),
        );
    }
    if !m.subscribe.is_empty() && !handles_events {
        return Err(
            "the manifest subscribes to events but the component does not export \
             osler:plugin/event-handler"
                .into(),
        );
    }
    let shape = Shape {
        api: api.ok_or("the component does not use osler:plugin")?,
        host_imports,
        imports,
        exports,
        handles_events,
        has_panels,
    };
    // Over-declaration: every capability the manifest asks for must be one the code imports,
    // so that what an administrator approves is what the component can use.
    let usable = shape.capabilities();
    if let Some(extra) = m.capabilities.iter().find(|c| !usable.contains(c)) {
        return Err(format!(
            "the manifest declares the capability \"{extra}\" but the component does not import \
             osler:plugin/{}; declare only the capabilities the component uses",
            super::manifest::interface_of(*extra)
        ));
    }
    Ok(shape)
}

/// WASI packages a research plugin may import: what Rust's standard library and other
/// language runtimes import whatever the plugin does. Its clocks read the run's time, its
/// random numbers are seeded from the run, and it has no files, environment or stdio. Unlike a
/// clinical plugin, it may not import `wasi:sockets` even to be refused: it never calls out.
const RESEARCH_WASI: &[&str] = &[
    "wasi:cli",
    "wasi:io",
    "wasi:clocks",
    "wasi:random",
    "wasi:filesystem",
];

/// The `osler:plugin` interfaces a research plugin may import (the `research` world).
pub const RESEARCH_IMPORTS: &[&str] = &["types", "log", "config", "kv", "patients-deidentified"];

/// The capabilities a research plugin may use: those of [`RESEARCH_IMPORTS`].
pub const RESEARCH_CAPABILITIES: &[Capability] =
    &[Capability::Kv, Capability::PatientsDeidentified];

/// Whether the component in `bytes` exports `osler:plugin/research-run` (a research plugin).
pub fn is_research(bytes: &[u8]) -> bool {
    let Ok(DecodedWasm::Component(resolve, world)) = decode(bytes) else {
        return false;
    };
    resolve.worlds[world].exports.iter().any(|(key, item)| {
        matches!(interface_name(&resolve, item, key, "exports"), Ok(Some((name, _)))
            if split(&name).is_some_and(|(pkg, iface, _)| pkg == "osler:plugin" && iface == "research-run"))
    })
}

/// Check a research (sandbox) component against its manifest, before anything is compiled:
/// it imports only the `research` world's interfaces (`log`, `config`, `kv`,
/// `patients-deidentified`) and WASI's basics, exports only `osler:plugin/research-run@0.2.0`,
/// and its manifest asks for nothing else (no other capabilities, outbound origins,
/// interfaces, events, pages or panels). Returns the capabilities it imports.
pub fn check_research(bytes: &[u8], m: &Manifest) -> Result<BTreeSet<Capability>, String> {
    let (resolve, world) = match decode(bytes) {
        Ok(DecodedWasm::Component(r, w)) => (r, w),
        Ok(DecodedWasm::WitPackage(..)) => {
            return Err("this is a WIT package, not a component".into());
        }
        Err(e) => {
            return Err(format!(
                "not a valid WebAssembly component (build it with `cargo build --target \
                 wasm32-wasip2`): {e:#}"
            ));
        }
    };
    let api = semver::Version::new(0, 2, 0);
    if !m.api.matches(&api) {
        return Err(format!(
            "a research plugin targets osler:plugin/research@{api}, but its manifest says api = \
             \"{}\"",
            m.api
        ));
    }
    let mut problems = Vec::new();
    if !m.outbound.is_empty() || !m.outbound_config.is_empty() {
        problems.push("outbound origins");
    }
    if !m.exports.is_empty() || !m.imports.is_empty() {
        problems.push("[exports] or [imports] of plugin interfaces");
    }
    if !m.subscribe.is_empty() {
        problems.push("event subscriptions");
    }
    if !m.nav.is_empty() || !m.panels.is_empty() {
        problems.push("pages or chart panels");
    }
    if let Some(c) = m
        .capabilities
        .iter()
        .find(|c| !RESEARCH_CAPABILITIES.contains(c))
    {
        return Err(format!(
            "a research plugin may ask only for the capabilities kv and patients.deidentified; \
             its manifest asks for \"{c}\""
        ));
    }
    if !problems.is_empty() {
        return Err(format!(
            "a research plugin's manifest may not declare {}",
            problems.join(", ")
        ));
    }
    let w = &resolve.worlds[world];
    let mut imported = BTreeSet::new();
    for (key, item) in &w.imports {
        let Some((name, _)) = interface_name(&resolve, item, key, "imports")? else {
            continue;
        };
        let Some((pkg, iface, version)) = split(&name) else {
            return Err(format!(
                "the component imports `{name}`, which is not an interface"
            ));
        };
        if pkg.starts_with("wasi:") {
            if !RESEARCH_WASI.contains(&pkg) {
                return Err(format!(
                    "the component imports `{name}`; a research plugin gets no {pkg}: it never \
                     calls out"
                ));
            }
            continue;
        }
        if pkg != "osler:plugin" {
            return Err(format!(
                "the component imports `{name}`; a research plugin may not call other plugins"
            ));
        }
        if version.as_ref() != Some(&api) {
            return Err(format!(
                "the component imports `{name}`; a research plugin uses osler:plugin@{api}"
            ));
        }
        if !RESEARCH_IMPORTS.contains(&iface) {
            return Err(format!(
                "the component imports `{name}`; a research plugin may import only {} — it sees \
                 the de-identified patient view and its own storage, and cannot read identified \
                 records, write patient data, publish events or call out",
                RESEARCH_IMPORTS.join(", ")
            ));
        }
        if let Some(cap) = capability_for(iface) {
            if !m.capabilities.contains(&cap) {
                return Err(format!(
                    "the component imports `{name}` but its manifest does not declare the \
                     capability \"{cap}\""
                ));
            }
            imported.insert(cap);
        }
    }
    let mut exports_research = false;
    for (key, item) in &w.exports {
        let Some((name, _)) = interface_name(&resolve, item, key, "exports")? else {
            continue;
        };
        match split(&name) {
            Some(("osler:plugin", "research-run", Some(v))) if v == api => exports_research = true,
            _ => {
                return Err(format!(
                    "the component exports `{name}`; a research plugin exports only \
                     osler:plugin/research-run@{api}"
                ));
            }
        }
    }
    if !exports_research {
        return Err(format!(
            "the component does not export osler:plugin/research-run@{api}; is it a research \
             plugin (world osler:plugin/research)?"
        ));
    }
    if let Some(extra) = m.capabilities.iter().find(|c| !imported.contains(c)) {
        return Err(format!(
            "the manifest declares the capability \"{extra}\" but the component does not import \
             osler:plugin/{}; declare only the capabilities the component uses",
            super::manifest::interface_of(*extra)
        ));
    }
    Ok(imported)
}
