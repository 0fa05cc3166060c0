//! Serving the official JavaScript client, like Node's `serveClient`.
//!
//! [`ClientBundle::from_dir`] reads the `dist/` folder of the npm `socket.io-client` package
//! once, at startup; the server then answers `GET <path>socket.io.js` (and the other files of
//! [`CLIENT_FILES`] that the folder holds) before the Engine.IO routing, with Node's headers:
//! `ETag: "<version>"` (the package version), `Cache-Control: public, max-age=0`,
//! `Content-Type: application/javascript; charset=utf-8` (`application/json` for source maps),
//! and `304 Not Modified` when `If-None-Match` names that ETag (weak or strong).
//!
//! Unlike Node, the files are not compressed on the fly.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};

/// The file names served, as in Node's `CLIENT_FILES`. Names missing from the folder are not
/// served (the request goes on to the Engine.IO routing).
pub const CLIENT_FILES: [&str; 8] = [
    "socket.io.esm.min.js",
    "socket.io.esm.min.js.map",
    "socket.io.js",
    "socket.io.js.map",
    "socket.io.min.js",
    "socket.io.min.js.map",
    "socket.io.msgpack.min.js",
    "socket.io.msgpack.min.js.map",
];

/// Why a client bundle could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientBundleError {
    /// The folder does not hold `socket.io.js`.
    #[error(
        "no socket.io.js in {0} (expected the dist/ folder of the npm socket.io-client package)"
    )]
    NotFound(PathBuf),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// The files of the JavaScript client, read into memory, with their ETag. Cloning is cheap.
#[derive(Clone)]
pub struct ClientBundle {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    version: Option<String>,
    etag: HeaderValue,
    files: BTreeMap<&'static str, Bytes>,
}

impl std::fmt::Debug for ClientBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBundle")
            .field("dir", &self.inner.dir)
            .field("version", &self.inner.version)
            .field("files", &self.inner.files.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ClientBundle {
    /// Reads the bundle from `dir`, the `dist/` folder of the npm `socket.io-client` package
    /// (`node_modules/socket.io-client/dist`). The ETag is the package version, read from
    /// `../package.json`; without it, a hash of the files.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, ClientBundleError> {
        let dir = dir.as_ref().to_path_buf();
        if !dir.join("socket.io.js").is_file() {
            return Err(ClientBundleError::NotFound(dir));
        }
        let mut files = BTreeMap::new();
        for name in CLIENT_FILES {
            let path = dir.join(name);
            if !path.is_file() {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|source| ClientBundleError::Read {
                path: path.clone(),
                source,
            })?;
            files.insert(name, Bytes::from(bytes));
        }
        let version = package_version(&dir);
        let tag = match &version {
            Some(v) => v.clone(),
            None => {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                files.hash(&mut h);
                format!("{:016x}", h.finish())
            }
        };
        let etag = HeaderValue::from_str(&format!("\"{tag}\""))
            .unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
        Ok(ClientBundle {
            inner: Arc::new(Inner {
                dir,
                version,
                etag,
                files,
            }),
        })
    }

    /// The version of the `socket.io-client` package, when its `package.json` was found.
    pub fn version(&self) -> Option<&str> {
        self.inner.version.as_deref()
    }

    /// The ETag sent with every file, quoted (`"4.8.1"`).
    pub fn etag(&self) -> &str {
        self.inner.etag.to_str().unwrap_or("")
    }

    /// The folder the files were read from.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The names of the files served, sorted.
    pub fn files(&self) -> impl Iterator<Item = &str> {
        self.inner.files.keys().copied()
    }

    /// The answer to a request for `name` (a file name without the path prefix), or `None`
    /// when the bundle does not hold it or the method is neither GET nor HEAD.
    pub(crate) fn respond(
        &self,
        method: &Method,
        name: &str,
        headers: &HeaderMap,
    ) -> Option<Response<Bytes>> {
        if method != Method::GET && method != Method::HEAD {
            return None;
        }
        let body = self.inner.files.get(name)?;
        if self.not_modified(headers) {
            let mut res = Response::new(Bytes::new());
            *res.status_mut() = StatusCode::NOT_MODIFIED;
            res.headers_mut()
                .insert(header::ETAG, self.inner.etag.clone());
            return Some(res);
        }
        let content_type = if name.ends_with(".map") {
            "application/json; charset=utf-8"
        } else {
            "application/javascript; charset=utf-8"
        };
        let mut res = Response::new(if method == Method::HEAD {
            Bytes::new()
        } else {
            body.clone()
        });
        let h = res.headers_mut();
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=0"),
        );
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        h.insert(header::ETAG, self.inner.etag.clone());
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        Some(res)
    }

    /// Whether `If-None-Match` names this bundle's ETag (strong, weak, in a list, or `*`).
    fn not_modified(&self, headers: &HeaderMap) -> bool {
        let etag = self.etag();
        headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .any(|t| t == "*" || t == etag || t.strip_prefix("W/") == Some(etag))
    }
}

/// The `version` of the `package.json` next to the `dist/` folder.
fn package_version(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.parent()?.join("package.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let version = json.get("version")?.as_str()?;
    // An ETag holds visible ASCII except `"`.
    version
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'"')
        .then(|| version.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(with_package: bool) -> (tempdir::Dir, ClientBundle) {
        let root = tempdir::Dir::new();
        let dist = root.path().join("dist");
        std::fs::create_dir_all(&dist).unwrap();
        std::fs::write(dist.join("socket.io.js"), "/* full */").unwrap();
        std::fs::write(dist.join("socket.io.js.map"), "{}").unwrap();
        std::fs::write(dist.join("socket.io.min.js"), "/* min */").unwrap();
        std::fs::write(dist.join("other.js"), "no").unwrap();
        if with_package {
            std::fs::write(
                root.path().join("package.json"),
                r#"{"name":"socket.io-client","version":"4.8.4"}"#,
            )
            .unwrap();
        }
        let b = ClientBundle::from_dir(&dist).unwrap();
        (root, b)
    }

    fn get(b: &ClientBundle, name: &str, if_none_match: Option<&str>) -> Option<Response<Bytes>> {
        let mut h = HeaderMap::new();
        if let Some(v) = if_none_match {
            h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
        }
        b.respond(&Method::GET, name, &h)
    }

    #[test]
    fn serves_known_files_with_node_headers() {
        let (_root, b) = bundle(true);
        assert_eq!(b.version(), Some("4.8.4"));
        assert_eq!(
            b.files().collect::<Vec<_>>(),
            ["socket.io.js", "socket.io.js.map", "socket.io.min.js"]
        );
        let res = get(&b, "socket.io.js", None).unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.body().as_ref(), b"/* full */");
        let h = res.headers();
        assert_eq!(h[header::ETAG], "\"4.8.4\"");
        assert_eq!(h[header::CACHE_CONTROL], "public, max-age=0");
        assert_eq!(
            h[header::CONTENT_TYPE],
            "application/javascript; charset=utf-8"
        );
        assert_eq!(h[header::CONTENT_LENGTH], "10");
        let map = get(&b, "socket.io.js.map", None).unwrap();
        assert_eq!(
            map.headers()[header::CONTENT_TYPE],
            "application/json; charset=utf-8"
        );
    }

    #[test]
    fn unknown_or_absent_files_and_other_methods_pass_through() {
        let (_root, b) = bundle(true);
        assert!(get(&b, "other.js", None).is_none());
        assert!(get(&b, "socket.io.esm.min.js", None).is_none());
        assert!(get(&b, "", None).is_none());
        assert!(
            b.respond(&Method::POST, "socket.io.js", &HeaderMap::new())
                .is_none()
        );
        let head = b
            .respond(&Method::HEAD, "socket.io.js", &HeaderMap::new())
            .unwrap();
        assert!(head.body().is_empty());
        assert_eq!(head.headers()[header::CONTENT_LENGTH], "10");
    }

    #[test]
    fn if_none_match_answers_304() {
        let (_root, b) = bundle(true);
        for tag in ["\"4.8.4\"", "W/\"4.8.4\"", "\"x\", \"4.8.4\"", "*"] {
            let res = get(&b, "socket.io.min.js", Some(tag)).unwrap();
            assert_eq!(res.status(), StatusCode::NOT_MODIFIED, "{tag}");
            assert!(res.body().is_empty());
        }
        let res = get(&b, "socket.io.min.js", Some("\"4.8.3\"")).unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }

    #[test]
    fn without_package_json_the_etag_is_a_content_hash() {
        let (_root, b) = bundle(false);
        assert_eq!(b.version(), None);
        assert!(
            b.etag().starts_with('"') && b.etag().len() == 18,
            "{}",
            b.etag()
        );
    }

    #[test]
    fn a_folder_without_the_bundle_is_refused() {
        let root = tempdir::Dir::new();
        assert!(matches!(
            ClientBundle::from_dir(root.path()),
            Err(ClientBundleError::NotFound(_))
        ));
    }

    /// A temporary folder removed on drop (no extra dependency for two tests).
    mod tempdir {
        use std::path::{Path, PathBuf};
        use std::sync::atomic::{AtomicU32, Ordering};

        pub struct Dir(PathBuf);

        impl Dir {
            pub fn new() -> Self {
                static N: AtomicU32 = AtomicU32::new(0);
                let path = std::env::temp_dir().join(format!(
                    "ferrio-client-bundle-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&path).unwrap();
                Dir(path)
            }

            pub fn path(&self) -> &Path {
                &self.0
            }
        }

        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }
}
