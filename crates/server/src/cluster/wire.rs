//! Pieces of Node's message shapes both families share: options, flags, payload decoding.

use std::time::Duration;

use bytes::Bytes;
use ferrio_proto::value::{Value, msgpack};

use crate::adapter::{BroadcastFlags, BroadcastOptions, Room};

/// Decodes a message: JSON when it starts with `{` (0x7b), msgpack otherwise (Node's rule).
pub(crate) fn decode(payload: &Bytes) -> Result<Value, String> {
    if payload.first() == Some(&b'{') {
        Value::from_json(payload).map_err(|e| e.to_string())
    } else {
        msgpack::decode(payload).map_err(|e| e.to_string())
    }
}

fn rooms_value(rooms: &[Room]) -> Value {
    Value::Array(rooms.iter().map(|r| Value::from(r.as_ref())).collect())
}

/// Node's flags object: only the flags that are set.
pub(crate) fn flags_value(flags: &BroadcastFlags) -> Value {
    let mut out = Vec::new();
    if flags.volatile {
        out.push(("volatile".to_owned(), Value::Bool(true)));
    }
    if let Some(c) = flags.compress {
        out.push(("compress".to_owned(), Value::Bool(c)));
    }
    if let Some(t) = flags.timeout {
        out.push(("timeout".to_owned(), Value::from(t.as_millis() as u64)));
    }
    Value::Map(out)
}

/// `{rooms, except, flags}` (broadcasts).
pub(crate) fn opts_value(opts: &BroadcastOptions) -> Value {
    Value::map([
        ("rooms", rooms_value(&opts.rooms)),
        ("except", rooms_value(&opts.except)),
        ("flags", flags_value(&opts.flags)),
    ])
}

/// `{rooms, except}` (classic requests).
pub(crate) fn filter_value(opts: &BroadcastOptions) -> Value {
    Value::map([
        ("rooms", rooms_value(&opts.rooms)),
        ("except", rooms_value(&opts.except)),
    ])
}

/// Room names from an array of strings (numbers become their decimal form, as JavaScript
/// `Set` members would be matched by the room index).
pub(crate) fn rooms(v: Option<&Value>) -> Vec<Room> {
    v.and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|r| match r {
                    Value::String(s) => Some(Room::Owned(s.clone())),
                    Value::Int(_) | Value::UInt(_) | Value::Float(_) => Some(Room::Owned(
                        String::from_utf8_lossy(&r.to_json()).into_owned(),
                    )),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Options from Node's `{rooms, except, flags}` (flags optional).
pub(crate) fn opts(v: Option<&Value>) -> BroadcastOptions {
    let mut opts = BroadcastOptions {
        rooms: rooms(v.and_then(|v| v.get("rooms"))),
        except: rooms(v.and_then(|v| v.get("except"))),
        ..Default::default()
    };
    if let Some(flags) = v.and_then(|v| v.get("flags")) {
        opts.flags.volatile = flags.get("volatile").is_some_and(truthy);
        opts.flags.compress = flags.get("compress").and_then(Value::as_bool);
        opts.flags.timeout = flags
            .get("timeout")
            .and_then(Value::as_u64)
            .map(Duration::from_millis);
    }
    opts
}

fn truthy(v: &Value) -> bool {
    !matches!(v, Value::Null | Value::Bool(false))
}

/// The first element of an ack's arguments (Node forwards only that one).
pub(crate) fn first_arg(args: &ferrio_proto::socket::Args) -> Value {
    args.to_values()
        .ok()
        .and_then(|v| v.into_iter().next())
        .unwrap_or_default()
}
