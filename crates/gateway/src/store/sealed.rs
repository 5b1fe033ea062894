//! Where the sealed record bytes live: the data dir (the default), or an S3-compatible object
//! store named by URL (`medledger gateway start --store s3://bucket/prefix?endpoint=…`), through
//! the `object_store` crate. Only ciphertext goes there: metadata, wrapped keys and shares stay in
//! the data dir (docs/vault.md, "Storage layout").
//!
//! The data dir keeps the gateway's own durable writer ([`super::write_durable`]: `0600`, fsync,
//! rename, fsync of the folder): `object_store`'s `LocalFileSystem` neither fsyncs nor sets a
//! file's mode. An object store's `PUT` is atomic and durable once acknowledged.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStore, PutPayload, RetryConfig};

use medledger_vault::record::MAX_RECORD_BYTES;

use crate::error::StoreUnavailable;

/// The largest object a gateway reads back from an object store: a record at its limit,
/// sealed, with room to spare. A larger object is not one this gateway wrote.
pub const MAX_OBJECT_BYTES: u64 = MAX_RECORD_BYTES as u64 + 64 * 1024;

/// The longest a `--store` URL may be.
pub const MAX_STORE_URL_LEN: usize = 1024;

/// Where a gateway keeps sealed record bytes (`gateway start --store`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum StoreUrl {
    /// `<data dir>/records/<hex id>.sealed` (the default).
    #[default]
    DataDir,
    /// An S3-compatible bucket.
    S3(Box<S3Url>),
}

/// A parsed `s3://bucket[/prefix][?endpoint=URL&region=R&virtual_hosted_style_request=BOOL]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Url {
    /// The bucket (it must exist; the gateway does not create it).
    pub bucket: String,
    /// The key prefix under which `records/` lies (no leading or trailing `/`; may be empty).
    pub prefix: String,
    /// The S3 endpoint (`http://` or `https://`); none: AWS (or `AWS_ENDPOINT_URL`).
    pub endpoint: Option<String>,
    /// The region (none: `AWS_REGION` / `AWS_DEFAULT_REGION`, else `us-east-1`).
    pub region: Option<String>,
    /// Virtual-hosted-style requests (`bucket.endpoint/key`) instead of path style.
    pub virtual_hosted: bool,
}

/// Query keys a `--store` URL may carry.
const URL_KEYS: &str = "endpoint, region, virtual_hosted_style_request";

impl StoreUrl {
    /// Parses a `--store` value. Credentials are refused here: they come from the standard AWS
    /// environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, or a role), never from a value that shows in `ps`.
    pub fn parse(s: &str) -> Result<StoreUrl, String> {
        if s.len() > MAX_STORE_URL_LEN {
            return Err(format!("a store URL is at most {MAX_STORE_URL_LEN} bytes"));
        }
        // Errors never echo the value: a mistyped URL may hold what should have been a secret.
        let url = url::Url::parse(s).map_err(|e| format!("the store is not a URL: {e}"))?;
        if url.scheme() != "s3" {
            return Err(format!(
                "store scheme {:?} is not supported: give s3://bucket[/prefix]?endpoint=URL \
                 (leave --store out to keep records in the data dir)",
                url.scheme()
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(credentials_refused());
        }
        if url.fragment().is_some() || url.port().is_some() {
            return Err("a store URL has no port or fragment: s3://bucket[/prefix]".into());
        }
        let bucket = url.host_str().unwrap_or_default().to_string();
        if !valid_bucket(&bucket) {
            return Err(format!(
                "bucket {bucket:?}: 3 to 63 lowercase letters, digits, '.' and '-', starting and \
                 ending with a letter or digit"
            ));
        }
        let prefix = raw_prefix(s)?;
        let mut out = S3Url {
            bucket,
            prefix,
            endpoint: None,
            region: None,
            virtual_hosted: false,
        };
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                "endpoint" => {
                    let e = url::Url::parse(&v).map_err(|e| format!("endpoint: {e}"))?;
                    if !matches!(e.scheme(), "http" | "https") || e.host_str().is_none() {
                        return Err("endpoint: an http:// or https:// URL".into());
                    }
                    if !e.username().is_empty() || e.password().is_some() {
                        return Err(credentials_refused());
                    }
                    out.endpoint = Some(v.trim_end_matches('/').to_string());
                }
                "region" => {
                    if v.is_empty()
                        || v.len() > 64
                        || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    {
                        return Err(format!("region {v:?}: letters, digits and '-'"));
                    }
                    out.region = Some(v.to_string());
                }
                "virtual_hosted_style_request" => {
                    out.virtual_hosted = v
                        .parse()
                        .map_err(|_| format!("virtual_hosted_style_request={v}: true or false"))?;
                }
                k if k.contains("key") || k.contains("secret") || k.contains("token") => {
                    return Err(credentials_refused())
                }
                k => {
                    return Err(format!(
                        "store URL key {k:?} is unknown (known: {URL_KEYS})"
                    ))
                }
            }
        }
        Ok(StoreUrl::S3(Box::new(out)))
    }
}

/// The prefix as written (the URL parser would resolve `.` and `..` silently): segments of
/// ASCII letters, digits, `-`, `_` and `.`, none empty, `.` or `..`; one trailing `/` allowed.
fn raw_prefix(s: &str) -> Result<String, String> {
    let rest = s.strip_prefix("s3://").unwrap_or(s);
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let Some((_, path)) = rest.split_once('/') else {
        return Ok(String::new());
    };
    let path = path.strip_suffix('/').unwrap_or(path);
    if path.is_empty() {
        return Ok(String::new());
    }
    let segment_ok = |seg: &str| {
        !seg.is_empty()
            && seg != "."
            && seg != ".."
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    if !path.split('/').all(segment_ok) {
        return Err(format!(
            "prefix {path:?}: '/'-separated segments of letters, digits, '-', '_' and '.', none \
             empty, '.' or '..'"
        ));
    }
    Ok(path.to_string())
}

fn credentials_refused() -> String {
    "a store URL carries no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and \
     AWS_SESSION_TOKEN) in the gateway's environment"
        .into()
}

/// S3's bucket naming rules (the general-purpose ones).
fn valid_bucket(b: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        && edge(b.chars().next())
        && edge(b.chars().last())
        && !b.contains("..")
}

impl std::fmt::Display for StoreUrl {
    /// The URL as given, less nothing secret (it holds none).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreUrl::DataDir => f.write_str("data dir"),
            StoreUrl::S3(u) => {
                write!(f, "s3://{}/{}", u.bucket, u.prefix)?;
                if let Some(e) = &u.endpoint {
                    write!(f, " at {e}")?;
                }
                Ok(())
            }
        }
    }
}

/// The sealed bytes' place, opened.
#[derive(Clone)]
pub(crate) enum Sealed {
    /// `<data dir>/records/`.
    Local(PathBuf),
    /// An object store; objects are `<prefix>/records/<hex id>.sealed`.
    Remote {
        store: Arc<dyn ObjectStore>,
        prefix: Vec<String>,
        shown: String,
    },
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sealed::Local(p) => write!(f, "Local({})", p.display()),
            Sealed::Remote { shown, .. } => write!(f, "Remote({shown})"),
        }
    }
}

/// An `object_store` error as an I/O error, naming the store: `NotFound` kept, anything else a
/// [`StoreUnavailable`] (the gateway answers 503, not 500).
fn io_err(shown: &str, e: object_store::Error) -> io::Error {
    let msg = format!("object store {shown}: {e}");
    match e {
        object_store::Error::NotFound { .. } => io::Error::new(io::ErrorKind::NotFound, msg),
        _ => io::Error::other(StoreUnavailable(msg)),
    }
}

/// The S3 client for `u`: the AWS environment's settings and credentials
/// (`AmazonS3Builder::from_env`), then the URL's.
fn s3_builder(u: &S3Url) -> AmazonS3Builder {
    // A down store fails a request within seconds rather than holding it for the crate's
    // default three minutes of retries.
    let retry = RetryConfig {
        backoff: Default::default(),
        max_retries: 3,
        retry_timeout: Duration::from_secs(15),
    };
    let options = ClientOptions::new()
        .with_timeout(Duration::from_secs(30))
        .with_connect_timeout(Duration::from_secs(5));
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(&u.bucket)
        .with_virtual_hosted_style_request(u.virtual_hosted)
        .with_retry(retry)
        .with_client_options(options);
    if let Some(e) = &u.endpoint {
        // An http:// endpoint is the operator's explicit choice (a store on the same host or a
        // private network).
        b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
    }
    if let Some(r) = &u.region {
        b = b.with_region(r);
    }
    b
}

impl Sealed {
    /// Opens the place `url` names (`records` is the data dir's folder), with the credentials
    /// of the environment. Contacts nothing.
    pub(crate) fn open(url: &StoreUrl, records: PathBuf) -> io::Result<Sealed> {
        match url {
            StoreUrl::DataDir => Ok(Sealed::Local(records)),
            StoreUrl::S3(u) => Sealed::remote(url, s3_builder(u)),
        }
    }

    fn remote(url: &StoreUrl, builder: AmazonS3Builder) -> io::Result<Sealed> {
        let StoreUrl::S3(u) = url else {
            return Err(io::Error::other("not an object store"));
        };
        let store = builder
            .build()
            .map_err(|e| io::Error::other(format!("object store {url}: {e}")))?;
        Ok(Sealed::Remote {
            store: Arc::new(store),
            prefix: u
                .prefix
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            shown: url.to_string(),
        })
    }

    fn object(prefix: &[String], name: &str) -> ObjectPath {
        ObjectPath::from_iter(prefix.iter().map(String::as_str).chain(["records", name]))
    }

    /// Checks that the store answers (lists the prefix): a wrong bucket, endpoint or
    /// credentials fail `gateway start`, not the first record.
    pub(crate) async fn check(&self) -> io::Result<()> {
        match self {
            Sealed::Local(_) => Ok(()),
            Sealed::Remote {
                store,
                prefix,
                shown,
            } => {
                let p = ObjectPath::from_iter(prefix.iter().map(String::as_str));
                store
                    .list_with_delimiter(Some(&p))
                    .await
                    .map(|_| ())
                    .map_err(|e| io_err(shown, e))
            }
        }
    }

    /// Writes the sealed bytes of file `name` durably.
    pub(crate) async fn put(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        match self {
            Sealed::Local(dir) => super::write_durable(&dir.join(name), bytes),
            Sealed::Remote {
                store,
                prefix,
                shown,
            } => store
                .put(
                    &Self::object(prefix, name),
                    PutPayload::from(bytes.to_vec()),
                )
                .await
                .map(|_| ())
                .map_err(|e| io_err(shown, e)),
        }
    }

    /// The sealed bytes of file `name` (`NotFound` if absent).
    pub(crate) async fn get(&self, name: &str) -> io::Result<Vec<u8>> {
        match self {
            Sealed::Local(dir) => std::fs::read(dir.join(name)),
            Sealed::Remote {
                store,
                prefix,
                shown,
            } => {
                let got = store
                    .get(&Self::object(prefix, name))
                    .await
                    .map_err(|e| io_err(shown, e))?;
                if got.meta.size > MAX_OBJECT_BYTES {
                    return Err(io::Error::other(format!(
                        "object store {shown}: {name} is {} bytes, more than a sealed record \
                         can be ({MAX_OBJECT_BYTES})",
                        got.meta.size
                    )));
                }
                Ok(got.bytes().await.map_err(|e| io_err(shown, e))?.to_vec())
            }
        }
    }

    /// Deletes the sealed bytes of file `name`; absent is fine.
    pub(crate) async fn delete(&self, name: &str) -> io::Result<()> {
        match self {
            Sealed::Local(dir) => match std::fs::remove_file(dir.join(name)) {
                Ok(()) => std::fs::File::open(dir)?.sync_all(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            },
            Sealed::Remote {
                store,
                prefix,
                shown,
            } => match store.delete(&Self::object(prefix, name)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(io_err(shown, e)),
            },
        }
    }
}

/// Every object under an S3 `url`'s `records/` prefix, as `(name, size)`, listed through the S3
/// API with the credentials given (an operator's tool or a test reads them from its own
/// configuration): what the bucket holds. The data dir lists nothing here.
pub async fn list_objects(
    url: &StoreUrl,
    access_key_id: &str,
    secret_access_key: &str,
) -> io::Result<Vec<(String, u64)>> {
    use futures::TryStreamExt;
    let StoreUrl::S3(u) = url else {
        return Ok(Vec::new());
    };
    let builder = s3_builder(u)
        .with_access_key_id(access_key_id)
        .with_secret_access_key(secret_access_key);
    let Sealed::Remote {
        store,
        prefix,
        shown,
    } = Sealed::remote(url, builder)?
    else {
        return Ok(Vec::new());
    };
    let under = ObjectPath::from_iter(
        prefix
            .iter()
            .map(String::as_str)
            .chain(std::iter::once("records")),
    );
    let mut out: Vec<(String, u64)> = store
        .list(Some(&under))
        .map_ok(|m| {
            (
                m.location.filename().unwrap_or_default().to_string(),
                m.size,
            )
        })
        .try_collect()
        .await
        .map_err(|e| io_err(&shown, e))?;
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_s3_url_names_bucket_prefix_endpoint_and_region() {
        let u = StoreUrl::parse(
            "s3://med-records/gw/lab-b/?endpoint=http://127.0.0.1:9000/&region=eu-west-1",
        )
        .unwrap();
        assert_eq!(
            u,
            StoreUrl::S3(Box::new(S3Url {
                bucket: "med-records".into(),
                prefix: "gw/lab-b".into(),
                endpoint: Some("http://127.0.0.1:9000".into()),
                region: Some("eu-west-1".into()),
                virtual_hosted: false,
            }))
        );
        assert_eq!(
            StoreUrl::parse("s3://bucket").unwrap(),
            StoreUrl::S3(Box::new(S3Url {
                bucket: "bucket".into(),
                prefix: String::new(),
                endpoint: None,
                region: None,
                virtual_hosted: false,
            }))
        );
    }

    /// Credentials never ride in the URL (it shows in `ps` and in logs); every other mistake
    /// is named.
    #[test]
    fn a_bad_store_url_is_refused_with_its_reason() {
        for (url, says) in [
            ("s3://AKIA:secret@bucket", "no credentials"),
            ("s3://bucket?access_key_id=AKIA", "no credentials"),
            ("s3://bucket?secret_access_key=x", "no credentials"),
            ("s3://bucket?token=x", "no credentials"),
            ("s3://bucket?endpoint=http://u:p@host", "no credentials"),
            ("file:///var/lib/x", "not supported"),
            ("gs://bucket", "not supported"),
            ("s3://Bucket", "lowercase"),
            ("s3://ab", "lowercase"),
            ("s3://-bucket", "lowercase"),
            ("s3://bucket:9000", "no port"),
            ("s3://bucket/a/../b", "prefix"),
            ("s3://bucket/./b", "prefix"),
            ("s3://bucket//b", "prefix"),
            ("s3://bucket/a%20b", "prefix"),
            ("s3://bucket?endpoint=ftp://h", "http:// or https://"),
            ("s3://bucket?region=a%20b", "region"),
            (
                "s3://bucket?virtual_hosted_style_request=yes",
                "true or false",
            ),
            ("s3://bucket?colour=blue", "unknown"),
            ("not a url", "not a URL"),
            ("s3://AKIA:hunter2@bucket:x", "not a URL"),
        ] {
            let e = StoreUrl::parse(url).unwrap_err();
            assert!(e.contains(says), "{url}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
        let long = format!("s3://bucket/{}", "a".repeat(MAX_STORE_URL_LEN));
        assert!(StoreUrl::parse(&long).unwrap_err().contains("at most"));
    }
}
