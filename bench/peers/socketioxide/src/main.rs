//! The socketioxide peer of `bench-server`: `bench-socketioxide PORT`, 127.0.0.1, one line with
//! the address and the pid. Namespace `/`: `echo` acks with its argument, `broadcast` emits
//! `broadcast` to every socket of `/` (sender included). socketioxide's defaults (Node's),
//! TCP_NODELAY, current-thread runtime on one CPU unless `WORKERS` says otherwise.

use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef};

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("usage: bench-socketioxide PORT");
    let workers = std::env::var("WORKERS")
        .ok()
        .and_then(|w| w.parse::<usize>().ok())
        .filter(|&w| w > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let rt = if workers == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()?
    };
    rt.block_on(run(port))
}

async fn run(port: u16) -> std::io::Result<()> {
    let (svc, io) = SocketIo::new_svc();
    io.ns("/", async |socket: SocketRef| {
        socket.on(
            "echo",
            async |Data(data): Data<Value>, ack: AckSender| {
                let _ = ack.send(&data);
            },
        );
        socket.on(
            "broadcast",
            async |io: SocketIo, Data(data): Data<Value>| {
                let _ = io.emit("broadcast", &data).await;
            },
        );
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on {} pid {}", listener.local_addr()?, std::process::id());
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => r?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let _ = stream.set_nodelay(true);
        let svc = svc.clone();
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .with_upgrades()
                .await;
        });
    }
}
