//! `ferrio-chat client`: the chat from the terminal, on `ferrio-client`.
//!
//! It speaks the page's protocol (`crate::chat`): the nickname in the CONNECT `auth`, `join`,
//! `leave`, `message`, `private` and `rooms` with acks, and it acks `private` and `file` as the
//! page does, so the sender sees the delivery. Each event is one line on stdout, with its time:
//!
//! ```text
//! [14:02:11] * connected to http://localhost:3000 (socket id 4iv0vGTfkJ8q8e3wAAAB)
//! [14:02:11] * you joined #lobby (2 members: alice, bob)
//! [14:02:15] #lobby <alice> hello
//! [14:02:16] #lobby ✓ delivered to 1 person: "hi alice"
//! [14:02:20] private <alice> psst
//! [14:02:31] * connection lost (transport close); reconnecting…
//! ```
//!
//! Lines typed before the first room is joined wait for it. Ctrl-D finishes what is under way
//! (bounded) and exits; `/quit` and Ctrl-C exit at once. Exit code 1 when the server refuses
//! the nickname or ends the session.

mod clock;
mod input;
mod requests;
mod session;
mod wire;

use std::process::ExitCode;
use std::time::Duration;

use ferrio_client::{Client, SocketEvent, Transport};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use tokio::time::Instant;

use clock::Clock;
use session::Session;

/// The page's reconnection delays.
const RECONNECTION_DELAY: Duration = Duration::from_millis(500);
const RECONNECTION_DELAY_MAX: Duration = Duration::from_secs(3);
/// After Ctrl-D, how long lines not yet sent or confirmed may take.
const FINISH_GRACE: Duration = Duration::from_secs(10);
/// After `/quit`, how long the goodbye to the server may take.
const GOODBYE: Duration = Duration::from_secs(1);
/// How long the connection's task gets to write the DISCONNECT and the close packet
/// (`ferrio-client` tells when the socket is disconnected, not when the packets are out).
const LINGER: Duration = Duration::from_millis(200);

/// `ferrio-chat client`.
#[derive(clap::Args, Debug)]
pub struct ClientArgs {
    /// Your nickname (1 to 24 characters).
    #[arg(long)]
    nick: String,
    /// The room to join first.
    #[arg(long, default_value = "lobby")]
    room: String,
    /// The chat server.
    #[arg(long, env = "FERRIO_CHAT_URL", default_value = "http://localhost:3000")]
    url: String,
    /// `websocket` (from the start), `polling` (HTTP long-polling only, as the page's
    /// `?transport=polling`) or `upgrade` (polling, then WebSocket, as the page by default).
    #[arg(long, value_enum, default_value_t = Mode::Websocket)]
    transport: Mode,
}

/// How the client reaches the server.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// WebSocket from the start: a terminal has no proxy in its way that would need polling
    /// first, and it saves the handshake's round trips.
    Websocket,
    /// HTTP long-polling only.
    Polling,
    /// Long-polling, upgraded to WebSocket.
    Upgrade,
}

/// Runs the terminal client until `/quit`, Ctrl-D or Ctrl-C.
pub fn main(args: ClientArgs) -> ExitCode {
    // Before the runtime starts its threads: see `Clock::local`.
    let clock = Clock::local();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ferrio-chat client: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(run(args, clock));
    // Stdin is read on a blocking thread that may wait for a line forever: do not wait for it.
    runtime.shutdown_background();
    code
}

async fn run(args: ClientArgs, clock: Clock) -> ExitCode {
    let transports: &[Transport] = match args.transport {
        Mode::Websocket => &[Transport::WebSocket],
        Mode::Polling => &[Transport::Polling],
        Mode::Upgrade => &[Transport::Polling, Transport::WebSocket],
    };
    let client = match Client::builder(&args.url)
        .auth(json!({ "nick": args.nick }))
        .transports(transports)
        .reconnection_delay(RECONNECTION_DELAY)
        .reconnection_delay_max(RECONNECTION_DELAY_MAX)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ferrio-chat client: {e}");
            return ExitCode::from(2);
        }
    };
    let socket = client.socket("/");
    let mut events = socket.events();
    let (outcomes_tx, mut outcomes) = mpsc::unbounded_channel();
    let mut session = Session::new(socket.clone(), &args, clock, outcomes_tx);
    session.status(format_args!("connecting to {} as {}…", args.url, args.nick));
    if socket.connect().await.is_err() {
        return ExitCode::from(1);
    }

    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    // Set by Ctrl-D: lines under way may finish until then.
    let mut finish_by: Option<Instant> = None;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let exit = loop {
        if let Some(exit) = session.exit {
            break exit;
        }
        if finish_by.is_some() && session.idle() {
            break Exit::Done;
        }
        let deadline = finish_by.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            event = events.next() => match event {
                Some(event) => session.on_event(event).await,
                None => break Exit::Failed,
            },
            Some(outcome) = outcomes.recv() => session.on_outcome(outcome),
            line = stdin.next_line(), if finish_by.is_none() => match line {
                Ok(Some(line)) => session.on_line(&line),
                Ok(None) | Err(_) => finish_by = Some(Instant::now() + FINISH_GRACE),
            },
            _ = &mut ctrl_c => break Exit::Done,
            () = tokio::time::sleep_until(deadline), if finish_by.is_some() => {
                session.error(format_args!(
                    "giving up: {} line(s) not sent, {} not confirmed",
                    session.held.len(),
                    session.pending
                ));
                break Exit::Failed;
            }
        }
    };

    // Goodbye: a DISCONNECT, so the others see "left" at once.
    if socket.connected() && client.disconnect().await.is_ok() {
        let _ = tokio::time::timeout(GOODBYE, async {
            while let Some(event) = events.next().await {
                if let SocketEvent::Disconnect(_) = event {
                    break;
                }
            }
        })
        .await;
        tokio::time::sleep(LINGER).await;
    }
    drop((socket, client));
    match exit {
        Exit::Done => ExitCode::SUCCESS,
        Exit::Failed => ExitCode::from(1),
    }
}

/// How the client ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exit {
    /// `/quit`, Ctrl-C, or Ctrl-D with everything sent.
    Done,
    /// Refused or disconnected by the server, or lines left unsent.
    Failed,
}
