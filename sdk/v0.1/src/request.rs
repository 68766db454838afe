//! Helpers on [`Request`], [`Caller`] and [`Event`].

use serde::de::DeserializeOwned;

use crate::{Caller, Error, Event, Request};

impl Request {
    /// The value of the header `name` (compared case-insensitively), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The signed-in person this request is for.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The body as UTF-8 text; [`Error::Invalid`] when it is not.
    pub fn text(&self) -> Result<&str, Error> {
        std::str::from_utf8(&self.body).map_err(|_| Error::invalid("body: not UTF-8 text"))
    }

    /// The body decoded from JSON; [`Error::Invalid`] (naming the field, where serde can)
    /// when it does not decode.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        if self.body.is_empty() {
            return Err(Error::invalid("body: expected JSON, got nothing"));
        }
        serde_json::from_slice(&self.body).map_err(|e| Error::invalid(format!("body: {e}")))
    }

    /// The body decoded as an HTML form (`application/x-www-form-urlencoded`);
    /// [`Error::Invalid`] when it does not decode. The `_csrf` field is there too: ignore it
    /// (serde ignores unknown fields unless told otherwise), the host has already checked it.
    pub fn form<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_urlencoded::from_bytes(&self.body).map_err(|e| Error::invalid(format!("form: {e}")))
    }

    /// The query string decoded into `T`; [`Error::Invalid`] when it does not decode.
    pub fn query<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_urlencoded::from_str(&self.query).map_err(|e| Error::invalid(format!("query: {e}")))
    }

    /// The first value of the query parameter `name`, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.into_owned())
    }
}

impl Caller {
    /// Whether the caller has `role` (`admin`, `physician`, `nurse`, `reception`, `kiosk`,
    /// `researcher`, `patient`).
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether the caller's roles carry `permission`, e.g. `patients.read`. This is for what
    /// a page shows; the host checks every host call itself.
    pub fn can(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }
}

impl Event {
    /// The payload decoded from JSON; [`Error::Invalid`] when it does not decode.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_str(&self.payload).map_err(|e| Error::invalid(format!("payload: {e}")))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde::Deserialize;

    pub(crate) fn caller() -> Caller {
        Caller {
            user: "drlee".into(),
            display_name: "Dr. Lee".into(),
            roles: vec!["physician".into()],
            permissions: vec!["patients.read".into()],
            site: "main".into(),
            site_name: "Main Street Clinic".into(),
            csrf_token: "tok\"en".into(),
        }
    }

    pub(crate) fn request(method: &str, path: &str, query: &str, body: &[u8]) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_vec(),
            caller: caller(),
        }
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Note {
        title: String,
        body: String,
    }

    #[test]
    fn headers_are_case_insensitive() {
        let r = request("GET", "/", "", b"");
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        assert_eq!(r.header("accept"), None);
    }

    #[test]
    fn form_decodes_and_ignores_csrf() {
        let r = request("POST", "/", "", b"title=Hello+there&body=a%26b&_csrf=x");
        let n: Note = r.form().unwrap();
        assert_eq!(
            n,
            Note {
                title: "Hello there".into(),
                body: "a&b".into()
            }
        );
    }

    #[test]
    fn form_missing_field_is_invalid_and_named() {
        let r = request("POST", "/", "", b"title=x");
        let e = r.form::<Note>().unwrap_err();
        assert!(matches!(e, Error::Invalid(_)));
        assert!(e.message().contains("body"), "{e}");
    }

    #[test]
    fn json_errors_name_the_field() {
        let r = request("POST", "/", "", br#"{"title":"x"}"#);
        let e = r.json::<Note>().unwrap_err();
        assert!(e.message().contains("`body`"), "{e}");
        let e = request("POST", "/", "", b"").json::<Note>().unwrap_err();
        assert!(matches!(e, Error::Invalid(_)));
    }

    #[test]
    fn query_helpers() {
        #[derive(Deserialize)]
        struct Q {
            mib: u32,
        }
        let r = request("GET", "/", "mib=3&text=a%20b+c&text=second", b"");
        assert_eq!(r.query::<Q>().unwrap().mib, 3);
        assert_eq!(r.query_param("text").as_deref(), Some("a b c"));
        assert_eq!(r.query_param("none"), None);
        assert!(request("GET", "/", "mib=x", b"").query::<Q>().is_err());
    }

    #[test]
    fn caller_roles_and_permissions() {
        let c = caller();
        assert!(c.has_role("physician"));
        assert!(!c.has_role("admin"));
        assert!(c.can("patients.read"));
        assert!(!c.can("patients.write"));
    }
}
