//! Checks and clean-ups of what clients send: nicknames, room names, texts, file names and
//! MIME types.

use super::{MAX_FILE_NAME_CHARS, MAX_NICK_CHARS, MAX_ROOM_CHARS, MAX_TEXT_CHARS};

pub(super) fn clean_nick(nick: &str) -> String {
    nick.trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NICK_CHARS)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Room names: lowercase letters, digits, `-` and `_`, 1 to 32 of them; a leading `#` and
/// surrounding spaces are dropped.
pub(super) fn clean_room(room: &str) -> Result<String, String> {
    let room = room.trim().trim_start_matches('#').to_lowercase();
    let valid = !room.is_empty()
        && room.chars().count() <= MAX_ROOM_CHARS
        && room
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if valid {
        Ok(room)
    } else {
        Err(format!(
            "room names are 1 to {MAX_ROOM_CHARS} letters, digits, - or _"
        ))
    }
}

pub(super) fn clean_text(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("the message is empty".to_owned());
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(format!(
            "messages are limited to {MAX_TEXT_CHARS} characters"
        ));
    }
    Ok(text.to_owned())
}

pub(super) fn clean_file_name(name: &str) -> String {
    let name: String = name
        .chars()
        .filter(|c| !c.is_control() && *c != '/' && *c != '\\')
        .take(MAX_FILE_NAME_CHARS)
        .collect();
    if name.trim().is_empty() {
        "file".to_owned()
    } else {
        name
    }
}

/// A MIME type the page can trust to pick a preview: `type/subtype` of token characters.
pub(super) fn clean_mime(mime: &str) -> String {
    let ok = mime.len() <= 100
        && mime.split_once('/').is_some_and(|(t, s)| {
            let token = |x: &str| {
                !x.is_empty()
                    && x.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
            };
            token(t) && token(s)
        });
    if ok {
        mime.to_ascii_lowercase()
    } else {
        "application/octet-stream".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_are_normalised_or_refused() {
        assert_eq!(clean_room(" #Rust ").unwrap(), "rust");
        assert_eq!(clean_room("game-night_2").unwrap(), "game-night_2");
        assert!(clean_room("").is_err());
        assert!(clean_room("no spaces").is_err());
        assert!(clean_room(&"x".repeat(33)).is_err());
    }

    #[test]
    fn nicknames_texts_files_and_types_are_cleaned() {
        assert_eq!(clean_nick("  alice \n"), "alice");
        assert_eq!(clean_nick(&"é".repeat(40)).chars().count(), MAX_NICK_CHARS);
        assert!(clean_text("   ").is_err());
        assert!(clean_text(&"a".repeat(MAX_TEXT_CHARS + 1)).is_err());
        assert_eq!(clean_file_name("../etc/passwd"), "..etcpasswd");
        assert_eq!(clean_file_name("\n"), "file");
        assert_eq!(clean_mime("image/PNG"), "image/png");
        assert_eq!(
            clean_mime("text/html\"><script>"),
            "application/octet-stream"
        );
        assert_eq!(clean_mime(""), "application/octet-stream");
    }
}
