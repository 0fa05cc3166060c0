//! What the user types: a line of text for the current room, or a `/command`.

/// One line of input.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Input<'a> {
    /// Text for the current room.
    Say(&'a str),
    /// `/msg <nick> <text>`: a private message.
    Private { nick: &'a str, text: &'a str },
    /// `/join <room>`: join a room (or switch to it) and talk there.
    Join(&'a str),
    /// `/leave [room]`: leave a room, the current one by default.
    Leave(Option<&'a str>),
    /// `/rooms`: the rooms and their member counts.
    Rooms,
    /// `/who`: who is online.
    Who,
    /// `/help`.
    Help,
    /// `/quit`.
    Quit,
    /// Nothing to do (an empty line).
    Empty,
    /// A command that is unknown or misses its arguments; the text says how to use it.
    Invalid(String),
}

/// The help text, one command a line.
pub(super) const HELP: [&str; 8] = [
    "<text>             send to the current room",
    "/msg <nick> <text> private message (confirmed by the recipient)",
    "/join <room>       join a room (or switch to one you are in)",
    "/leave [room]      leave the current room (or the one named)",
    "/rooms             rooms and their member counts",
    "/who               who is online",
    "/help              this list",
    "/quit              leave the chat (Ctrl-D too)",
];

/// Parses one line. A line starting with `//` is text beginning with `/`.
pub(super) fn parse(line: &str) -> Input<'_> {
    let line = line.trim();
    if line.is_empty() {
        return Input::Empty;
    }
    let Some(command) = line.strip_prefix('/') else {
        return Input::Say(line);
    };
    if command.starts_with('/') {
        return Input::Say(command);
    }
    let (name, rest) = match command.split_once(char::is_whitespace) {
        Some((name, rest)) => (name, rest.trim()),
        None => (command, ""),
    };
    match (name.to_ascii_lowercase().as_str(), rest) {
        ("msg" | "m", rest) => match rest.split_once(char::is_whitespace) {
            Some((nick, text)) if !text.trim().is_empty() => Input::Private {
                nick,
                text: text.trim(),
            },
            _ => Input::Invalid("usage: /msg <nick> <text>".to_owned()),
        },
        ("join" | "j", "") => Input::Invalid("usage: /join <room>".to_owned()),
        ("join" | "j", room) => Input::Join(room),
        ("leave" | "part", "") => Input::Leave(None),
        ("leave" | "part", room) => Input::Leave(Some(room)),
        ("rooms" | "list", _) => Input::Rooms,
        ("who" | "users", _) => Input::Who,
        ("help" | "h" | "?", _) => Input::Help,
        ("quit" | "exit" | "q", _) => Input::Quit,
        _ => Input::Invalid(format!("unknown command /{name} (try /help)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_commands() {
        assert_eq!(parse("  hello there "), Input::Say("hello there"));
        assert_eq!(parse("//shrug"), Input::Say("/shrug"));
        assert_eq!(parse(""), Input::Empty);
        assert_eq!(parse("   "), Input::Empty);
        assert_eq!(
            parse("/msg bob  see you  later "),
            Input::Private {
                nick: "bob",
                text: "see you  later"
            }
        );
        assert_eq!(parse("/join #rust"), Input::Join("#rust"));
        assert_eq!(parse("/JOIN rust"), Input::Join("rust"));
        assert_eq!(parse("/leave"), Input::Leave(None));
        assert_eq!(parse("/leave random"), Input::Leave(Some("random")));
        assert_eq!(parse("/rooms"), Input::Rooms);
        assert_eq!(parse("/who"), Input::Who);
        assert_eq!(parse("/quit"), Input::Quit);
        assert_eq!(parse("/help"), Input::Help);
    }

    #[test]
    fn missing_arguments_and_unknown_commands_say_how() {
        assert!(matches!(parse("/msg bob"), Input::Invalid(u) if u.contains("/msg <nick>")));
        assert!(matches!(parse("/msg"), Input::Invalid(_)));
        assert!(matches!(parse("/join"), Input::Invalid(u) if u.contains("/join <room>")));
        assert!(matches!(parse("/dance"), Input::Invalid(u) if u.contains("/dance")));
    }
}
