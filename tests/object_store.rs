//! Sealed records in an S3-compatible object store (issue 25, point 7): lab-b's gateway keeps
//! its sealed bytes in a real S3 server that the test starts (s3s-fs, Apache-2.0, installed by
//! scripts/deps.sh at the version scripts/versions.env pins; missing is a failure), signing every
//! request with credentials from its environment. A consented read returns the bytes exactly,
//! the bucket holds ciphertext only, erasure leaves that ciphertext without a key, and a killed
//! and restarted gateway still reads from the bucket.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use medledger_devnet::localnet::Proc;
use medledger_gateway::store::{list_objects, StoreUrl};
use medledger_tx::keys;
use medledger_tx::pb;
use prost::Message;
use sha2::Digest;

use crate::support::TestNet;

const VERSIONS: &str = include_str!("../scripts/versions.env");
const BUCKET: &str = "medledger-records";
const ACCESS_KEY: &str = "medledger-it";
const SECRET_KEY: &str = "medledger-it-secret-4f1e2d";

/// The pinned s3s-fs, where scripts/deps.sh puts it; missing or another version fails the test.
fn s3s_fs() -> PathBuf {
    let pinned = VERSIONS
        .lines()
        .find_map(|l| l.strip_prefix("S3S_FS_VERSION="))
        .expect("scripts/versions.env pins S3S_FS_VERSION")
        .trim();
    let bin = medledger_devnet::cometbft::tools_dir().join("s3s-fs");
    let out = Command::new(&bin)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}: run scripts/deps.sh", bin.display()));
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(
        version,
        format!("s3s-fs {pinned}"),
        "{}: run scripts/deps.sh",
        bin.display()
    );
    bin
}

/// A running S3 server on a free loopback port, its buckets in `root`; killed on drop.
struct S3Server {
    child: Child,
    root: tempfile::TempDir,
    port: u16,
}

impl S3Server {
    fn start() -> S3Server {
        let root = tempfile::tempdir().unwrap();
        // s3s-fs serves each folder of its root as a bucket.
        std::fs::create_dir(root.path().join(BUCKET)).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = S3Server::spawn(root.path(), port);
        S3Server { child, root, port }
    }

    fn spawn(root: &Path, port: u16) -> Child {
        let child = Command::new(s3s_fs())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }

    /// Stops the server (the bucket's files stay).
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port and folder.
    fn restart(&mut self) {
        self.child = S3Server::spawn(self.root.path(), self.port);
    }

    fn url(&self) -> String {
        format!(
            "s3://{BUCKET}/lab-b?endpoint=http://127.0.0.1:{}",
            self.port
        )
    }

    /// The server's own file of object `records/<name>` (what the bucket holds on its disk).
    fn file(&self, name: &str) -> PathBuf {
        self.root
            .path()
            .join(BUCKET)
            .join("lab-b")
            .join("records")
            .join(name)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The gateway's environment: where the sealed bytes go, and the credentials (never a flag).
fn s3_env(url: &str, secret: &'static str) -> Vec<(&'static str, String)> {
    vec![
        ("MEDLEDGER_GATEWAY_STORE", url.to_string()),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
        ("AWS_SECRET_ACCESS_KEY", secret.to_string()),
    ]
}

fn start_on_s3(net: &TestNet, i: usize, url: &str) {
    let env = s3_env(url, SECRET_KEY);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    net.net.start_with_env(i, Proc::Gateway, &env).unwrap();
}

fn get(net: &TestNet, out: &Path) -> std::process::Output {
    let _ = std::fs::remove_file(out);
    net.cli(&[
        "-o",
        "json",
        "vault",
        "get",
        "--from",
        "hospital-a",
        "--record",
        "obs-s3",
        "--purpose",
        "TREAT",
        "--out",
        out.to_str().unwrap(),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_on_s3_stores_ciphertext_there_reads_after_a_restart_and_erasure_leaves_no_key() {
    let mut s3 = S3Server::start();
    let url = s3.url();
    let net = TestNet::prepare_with(true);
    // Records held whole by their custodian (no threshold custody), so that every read of
    // lab-b's record comes from lab-b's bucket.
    net.edit_genesis(|g| {
        g["app_state"].as_object_mut().unwrap().remove("custody");
    });
    net.up().await;
    let lab_b = net
        .net
        .spec
        .nodes
        .iter()
        .position(|n| n.name == "lab-b")
        .unwrap();
    let gw = net.net.gateway_dir(lab_b);

    // A wrong secret stops `gateway start` before it serves (exit status 2, the store named,
    // the secret not printed).
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = free.local_addr().unwrap().to_string();
    drop(free);
    let wrong = Command::new(crate::support::medledger_bin())
        .args(["gateway", "start", "--member", "lab-b", "--listen", &listen])
        .arg("--data")
        .arg(gw.join("data"))
        .arg("--admin-key")
        .arg(net.home().join("keys").join("lab-b.json"))
        .arg("--kek")
        .arg(gw.join("kek"))
        .arg("--box-key")
        .arg(gw.join("box.key"))
        .args(["--node", &net.net.spec.nodes[lab_b].rpc_url()])
        .arg("--genesis")
        .arg(net.net.node_dir(lab_b).join("cometbft/config/genesis.json"))
        .envs(s3_env(&url, "not-the-secret"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&wrong.stderr);
    assert_eq!(wrong.status.code(), Some(2), "{said}");
    assert!(said.contains("does not answer"), "{said}");
    assert!(said.contains(&format!("s3://{BUCKET}/lab-b")), "{said}");
    assert!(!said.contains("not-the-secret"), "{said}");

    // lab-b's gateway, restarted on the bucket.
    net.net.stop(lab_b, Proc::Gateway, false).unwrap();
    start_on_s3(&net, lab_b, &url);

    let patient = net.consenting_patient(41, "hospital-a").await;
    let content = br#"{"resourceType":"Observation","code":{"text":"TSH"},"valueQuantity":{"value":2.3,"unit":"mIU/L"}}"#;
    let input = net.home().join("obs.json");
    std::fs::write(&input, content).unwrap();
    let put = net.cli(&[
        "vault",
        "put",
        "--from",
        "lab-b",
        "--patient",
        &patient.id,
        "--type",
        "Observation",
        "--file",
        input.to_str().unwrap(),
        "--record",
        "obs-s3",
    ]);
    assert_eq!(put.status.code(), Some(0));

    // The bucket holds the sealed record (listed through the S3 API), and the server's disk has
    // exactly the bytes the anchor's content hash names: ciphertext, no plaintext in it. The
    // data dir keeps the metadata and the wrapped key, not the sealed bytes.
    let sealed_name = format!("{}.sealed", hex::encode("obs-s3"));
    let listed = list_objects(&StoreUrl::parse(&url).unwrap(), ACCESS_KEY, SECRET_KEY)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].0, sealed_name);
    let sealed = std::fs::read(s3.file(&sealed_name)).unwrap();
    assert_eq!(listed[0].1, sealed.len() as u64);
    let (anchor, _) = net
        .client(0)
        .query_raw(&keys::record("obs-s3"), 0)
        .await
        .unwrap();
    let anchor = pb::RecordAnchor::decode(anchor.unwrap().as_slice()).unwrap();
    assert_eq!(
        sha2::Sha256::digest(&sealed).as_slice(),
        anchor.content_hash.as_slice()
    );
    assert!(!sealed.windows(3).any(|w| w == b"TSH"), "ciphertext only");
    let data = gw.join("data");
    let name = hex::encode("obs-s3");
    assert!(data.join("records").join(format!("{name}.json")).exists());
    assert!(!data.join("records").join(&sealed_name).exists());
    let key_file = data.join("keys").join(format!("{name}.key"));
    assert_eq!(std::fs::read(&key_file).unwrap().len(), 81);

    // hospital-a (consented) reads it back byte for byte.
    let out = net.home().join("read.json");
    assert_eq!(get(&net, &out).status.code(), Some(0));
    assert_eq!(std::fs::read(&out).unwrap(), content);

    // Killed and restarted, the gateway still reads from the bucket.
    net.kill9(lab_b, Proc::Gateway);
    start_on_s3(&net, lab_b, &url);
    assert_eq!(get(&net, &out).status.code(), Some(0));
    assert_eq!(std::fs::read(&out).unwrap(), content);

    // A store that does not answer is "try again" (503), not a gateway fault (500); once it is
    // back, the record reads again.
    s3.stop();
    let down = get(&net, &out);
    let said = String::from_utf8_lossy(&down.stderr);
    assert_eq!(
        down.status.code(),
        Some(2),
        "an error, not a refusal: {said}"
    );
    assert!(
        said.contains("503") && said.contains("object store"),
        "{said}"
    );
    s3.restart();
    assert_eq!(get(&net, &out).status.code(), Some(0));
    assert_eq!(std::fs::read(&out).unwrap(), content);

    // Erasure destroys the wrapped key in the data dir; the bucket keeps the ciphertext, which
    // nothing can open any more, and a read is refused as gone (410).
    let erase = net.cli(&["vault", "erase", "--from", "lab-b", "--record", "obs-s3"]);
    assert_eq!(erase.status.code(), Some(0));
    assert!(!key_file.exists(), "the wrapped key is destroyed");
    assert_eq!(std::fs::read(s3.file(&sealed_name)).unwrap(), sealed);
    let refused = get(&net, &out);
    assert_eq!(refused.status.code(), Some(1), "Exit::Refused");
    let refused: serde_json::Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(refused["status"], 410, "{refused}");
}
