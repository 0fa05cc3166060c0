//! Socket.IO protocol v4, spoken by `socket.io-client` 2.x (over Engine.IO v3): what differs
//! from v5 in the packets a server sends and reads. The packet syntax is the same.
//!
//! - The server connects the client to `/` on its own, with a bare `0` (v5 waits for the
//!   client's CONNECT); the client never sends a CONNECT for `/`.
//! - The CONNECT of another namespace carries no payload; the client's query (its
//!   `auth`, in v5 terms) is appended to the namespace: `0/admin?token=abc,`.
//! - The CONNECT reply has no payload (`0/admin,`): the socket id is known to the client
//!   from the Engine.IO session id.
//! - A refused CONNECT is answered with ERROR (`4`) whose payload is whatever the server
//!   gives, in practice a string: `4/admin,"not authorized"`.

use bytes::Bytes;
use serde_json::{Map, Value};

use super::packet::{Encoded, encode_connect_empty};

/// Splits the namespace of a v4 CONNECT into its name and its query, as Node reads it
/// (`new URL(nsp, "https://socket.io")`): `/admin?token=abc` is `/admin` with
/// `{"token":"abc"}`. A fragment is dropped; a key given twice keeps its last value.
pub fn split_namespace(nsp: &str) -> (&str, Map<String, Value>) {
    let nsp = nsp.split_once('#').map_or(nsp, |(n, _)| n);
    let Some((name, query)) = nsp.split_once('?') else {
        return (nsp, Map::new());
    };
    let query = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect();
    (name, query)
}

/// The server's CONNECT for `nsp`, with no payload: `0` for `/`, `0/admin,` otherwise.
pub fn encode_connect(nsp: &str) -> Encoded {
    encode_connect_empty(nsp)
}

/// ERROR for a refused CONNECT: `4/nsp,` followed by `data` as JSON (Node sends
/// `err.data || err.message`, so usually a string).
pub fn encode_error(nsp: &str, data: &Value) -> Encoded {
    // The Engine.IO message type, then the Socket.IO one.
    let mut buf = Vec::with_capacity(nsp.len() + 32);
    buf.extend_from_slice(b"44");
    if nsp != "/" {
        buf.extend_from_slice(nsp.as_bytes());
        buf.push(b',');
    }
    // Serialising a JSON value into memory cannot fail.
    let _ = serde_json::to_writer(&mut buf, data);
    Encoded {
        text: Bytes::from(buf),
        attachments: Vec::new(),
    }
}

/// The payload of the ERROR that Node sends for a middleware error: its `data` when it has
/// a value JavaScript holds true, else its message.
pub fn error_payload(message: &str, data: Option<&Value>) -> Value {
    match data {
        Some(d) if is_truthy(d) => d.clone(),
        _ => Value::String(message.to_owned()),
    }
}

fn is_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn namespace_query_is_the_auth() {
        assert_eq!(split_namespace("/admin"), ("/admin", Map::new()));
        let (name, q) = split_namespace("/admin?token=abc&x=1%202&x=3+4");
        assert_eq!(name, "/admin");
        assert_eq!(Value::Object(q), json!({"token": "abc", "x": "3 4"}));
        let (name, q) = split_namespace("/a?b=c#frag");
        assert_eq!((name, Value::Object(q)), ("/a", json!({"b": "c"})));
        assert_eq!(split_namespace("/?"), ("/", Map::new()));
    }

    #[test]
    fn packets() {
        // Encoded packets start with the Engine.IO message type `4`.
        assert_eq!(&encode_connect("/").text[..], b"40");
        assert_eq!(&encode_connect("/admin").text[..], b"40/admin,");
        assert_eq!(&encode_error("/", &json!("nope")).text[..], br#"44"nope""#);
        assert_eq!(
            &encode_error("/admin", &json!({"a": 1})).text[..],
            br#"44/admin,{"a":1}"#
        );
    }

    #[test]
    fn error_payload_is_data_or_message() {
        assert_eq!(error_payload("m", None), json!("m"));
        assert_eq!(error_payload("m", Some(&json!(null))), json!("m"));
        assert_eq!(error_payload("m", Some(&json!(""))), json!("m"));
        assert_eq!(error_payload("m", Some(&json!(0))), json!("m"));
        assert_eq!(error_payload("m", Some(&json!(false))), json!("m"));
        assert_eq!(error_payload("m", Some(&json!({"x": 1}))), json!({"x": 1}));
        assert_eq!(error_payload("m", Some(&json!("d"))), json!("d"));
    }
}
