//! Reaching the server directly or through an HTTP proxy: a `CONNECT` tunnel for WebSocket
//! and HTTPS, absolute-URI requests for plain HTTP polling (as a browser or Node's proxy
//! agents do). Also the TCP connector of the polling client.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::BuildError;

/// The largest `CONNECT` answer head read from a proxy.
const MAX_PROXY_HEAD: usize = 8 * 1024;

/// An HTTP proxy (`http://host:port`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Proxy {
    host: String,
    port: u16,
}

impl Proxy {
    pub(crate) fn parse(url: &str) -> Result<Self, BuildError> {
        let invalid = || BuildError::InvalidProxy(url.to_owned());
        let uri: Uri = url.parse().map_err(|_| invalid())?;
        if uri.scheme_str() != Some("http") {
            return Err(invalid());
        }
        let authority = uri.authority().ok_or_else(invalid)?;
        if authority.as_str().contains('@') {
            // Proxy authentication is not supported yet: refuse rather than ignore it.
            return Err(invalid());
        }
        Ok(Proxy {
            host: host_of(&uri).ok_or_else(invalid)?.to_owned(),
            port: uri.port_u16().unwrap_or(80),
        })
    }
}

/// The host of `uri`, without the brackets of an IPv6 literal.
pub(crate) fn host_of(uri: &Uri) -> Option<&str> {
    uri.host()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
}

/// A TCP connection to `host:port`, through a `CONNECT` tunnel of `proxy` when given.
pub(crate) async fn connect(
    proxy: Option<&Proxy>,
    host: &str,
    port: u16,
) -> std::io::Result<TcpStream> {
    let Some(proxy) = proxy else {
        let tcp = TcpStream::connect((host, port)).await?;
        tcp.set_nodelay(true)?;
        return Ok(tcp);
    };
    let mut tcp = TcpStream::connect((proxy.host.as_str(), proxy.port)).await?;
    tcp.set_nodelay(true)?;
    let target = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
    tcp.write_all(request.as_bytes()).await?;
    // Byte by byte: what follows the head belongs to the tunnel.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_PROXY_HEAD {
            return Err(proxy_error("the proxy's answer to CONNECT is too long"));
        }
        let mut b = [0u8; 1];
        if tcp.read(&mut b).await? == 0 {
            return Err(proxy_error(
                "the proxy closed the connection during CONNECT",
            ));
        }
        head.push(b[0]);
    }
    let status = head
        .split(|&b| b == b' ')
        .nth(1)
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse::<u16>().ok());
    match status {
        Some(200..=299) => Ok(tcp),
        other => Err(proxy_error(&format!(
            "the proxy refused CONNECT {target}: status {other:?}"
        ))),
    }
}

fn proxy_error(message: &str) -> std::io::Error {
    std::io::Error::other(message.to_owned())
}

/// The TCP connector of the polling client: direct, tunnelled through the proxy for
/// `https`, or to the proxy itself for `http` (then requests go in absolute form).
#[derive(Clone)]
pub(crate) struct Connector {
    pub(crate) proxy: Option<Arc<Proxy>>,
}

impl tower_service::Service<Uri> for Connector {
    type Response = ProxyIo;
    type Error = std::io::Error;
    type Future = BoxFuture<'static, std::io::Result<ProxyIo>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let proxy = self.proxy.clone();
        Box::pin(async move {
            let host = host_of(&uri)
                .ok_or_else(|| proxy_error("no host in the URL"))?
                .to_owned();
            let https = uri.scheme_str() == Some("https");
            let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
            match proxy.as_deref() {
                Some(p) if !https => {
                    let tcp = TcpStream::connect((p.host.as_str(), p.port)).await?;
                    tcp.set_nodelay(true)?;
                    Ok(ProxyIo {
                        io: TokioIo::new(tcp),
                        absolute_form: true,
                    })
                }
                p => Ok(ProxyIo {
                    io: TokioIo::new(connect(p, &host, port).await?),
                    absolute_form: false,
                }),
            }
        })
    }
}

/// A polling connection; `absolute_form` when it goes to a proxy that forwards requests.
pub(crate) struct ProxyIo {
    io: TokioIo<TcpStream>,
    absolute_form: bool,
}

impl Connection for ProxyIo {
    fn connected(&self) -> Connected {
        Connected::new().proxy(self.absolute_form)
    }
}

impl hyper::rt::Read for ProxyIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for ProxyIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls() {
        assert_eq!(
            Proxy::parse("http://127.0.0.1:3128").unwrap(),
            Proxy {
                host: "127.0.0.1".into(),
                port: 3128
            }
        );
        assert_eq!(Proxy::parse("http://[::1]").unwrap().host, "::1");
        assert!(Proxy::parse("socks5://127.0.0.1:1080").is_err());
        assert!(Proxy::parse("http://user:pass@127.0.0.1:3128").is_err());
        assert!(Proxy::parse("not a url").is_err());
    }
}
