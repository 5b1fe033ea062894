//! One configuration path: the Docker localnet's init script (run here outside Docker, with the
//! same `medledger init` / `genesis assemble` / `genesis install` commands a multi-host
//! deployment uses) and `medledger localnet up` produce the same genesis and node configuration
//! in every field that matters; and genesis assembly refuses a member file that lies.

use std::path::{Path, PathBuf};
use std::process::Command;

use medledger_client::Keyring;
use medledger_devnet::deploy::{self, GenesisParams};
use medledger_devnet::localnet::{AppKind, Localnet, Spec, MEMBERS};
use medledger_devnet::medledger_bin;
use serde_json::Value;

use crate::support;

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn read_toml(p: &Path) -> toml_edit::DocumentMut {
    std::fs::read_to_string(p).unwrap().parse().unwrap()
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every member entry of `app_state` is checked like a genesis assembly would, and matches the
/// CometBFT validator of the same index.
fn check_genesis(g: &Value, what: &str) {
    let validators = g["validators"].as_array().unwrap();
    let members = g["app_state"]["members"].as_array().unwrap();
    assert_eq!(validators.len(), MEMBERS.len(), "{what}");
    for (i, ((id, name, kind), (v, m))) in MEMBERS
        .iter()
        .zip(validators.iter().zip(members))
        .enumerate()
    {
        assert_eq!(
            (v["name"].as_str(), v["power"].as_str()),
            (Some(*id), Some("10")),
            "{what} {i}"
        );
        assert_eq!(
            (m["id"].as_str(), m["name"].as_str(), m["kind"].as_str()),
            (Some(*id), Some(*name), Some(*kind)),
            "{what} {i}"
        );
        let file = deploy::MemberFile {
            id: id.to_string(),
            name: name.to_string(),
            kind: kind.to_string(),
            admin_key: m["admin_key"].as_str().unwrap().into(),
            node_id: "unused".into(),
            p2p_address: "unused:1".into(),
            validator: deploy::ValidatorFile {
                address: v["address"].as_str().unwrap().into(),
                pub_key: v["pub_key"].clone(),
                bls_key: m["validator"]["bls_key"].as_str().unwrap().into(),
                bls_pop: m["validator"]["bls_pop"].as_str().unwrap().into(),
            },
        };
        deploy::check_member(&file).unwrap_or_else(|e| panic!("{what} {id}: {e:#}"));
        assert_eq!(m["validator"]["address"], v["address"], "{what} {id}");
    }
}

#[test]
fn the_docker_path_and_localnet_up_generate_the_same_genesis_and_configs() {
    let _machine = support::exclusive();
    let tmp = tempfile::tempdir().unwrap();
    let bin = medledger_bin().unwrap();

    // The Docker localnet's init, outside Docker.
    let testnet = tmp.path().join("testnet");
    let docker_init = || {
        let out = Command::new("bash")
            .arg(repo().join("localnet/docker-init.sh"))
            .arg("init")
            .env("MEDLEDGER", &bin)
            .env("TESTNET", &testnet)
            .env("MEDLEDGER_HOME", tmp.path().join("docker-keys"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    docker_init();
    // Run twice: the second run keeps the chain.
    let before = std::fs::read(testnet.join("genesis.json")).unwrap();
    docker_init();
    assert_eq!(std::fs::read(testnet.join("genesis.json")).unwrap(), before);

    // `localnet up`'s files (initialised, not started).
    let keyring = Keyring::new(tmp.path().join("keys"));
    let spec = Spec::consortium("medledger-localnet".into(), 41_000, AppKind::Medledger).unwrap();
    let net = Localnet::open_or_init(&tmp.path().join("localnet"), spec, &keyring, bin).unwrap();

    let docker = |id: &str| testnet.join(id).join("cometbft/config");
    let native = |id: &str| {
        net.node_dir(MEMBERS.iter().position(|m| m.0 == id).unwrap())
            .join("cometbft/config")
    };
    let (gd, gn) = (
        read_json(&docker("hospital-a").join("genesis.json")),
        read_json(&native("hospital-a").join("genesis.json")),
    );
    check_genesis(&gd, "docker");
    check_genesis(&gn, "localnet");
    assert_eq!(gd["chain_id"], gn["chain_id"]);
    assert_eq!(
        gd["consensus_params"], gn["consensus_params"],
        "block size, vote extensions from block 1, …"
    );
    assert_eq!(gd["initial_height"], gn["initial_height"]);
    // Both approve the pages the binary embeds (`genesis assemble --web-release embedded`).
    let release = |g: &Value| g["app_state"]["web_release"]["bundle_sha256"].clone();
    assert_eq!(release(&gd), release(&gn));
    assert!(
        release(&gd).as_str().is_some_and(|h| h.len() == 64),
        "{}",
        gd["app_state"]
    );
    let top = |g: &Value| g.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(top(&gd), top(&gn));
    for (id, _, _) in MEMBERS {
        // Every node holds the one genesis.
        assert_eq!(read_json(&docker(id).join("genesis.json")), gd, "{id}");
        assert_eq!(read_json(&native(id).join("genesis.json")), gn, "{id}");
        // The BLS key each app signs with is the one genesis registered.
        for (g, dir) in [
            (&gd, testnet.join(id)),
            (
                &gn,
                net.node_dir(MEMBERS.iter().position(|m| m.0 == id).unwrap()),
            ),
        ] {
            let key = read_json(&dir.join("bls_key.json"));
            let member = g["app_state"]["members"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["id"] == id)
                .unwrap();
            assert_eq!(member["validator"]["bls_key"], key["public_key"], "{id}");
        }
        // config.toml: the same settings wherever they do not name a host.
        let (cd, cn) = (
            read_toml(&docker(id).join("config.toml")),
            read_toml(&native(id).join("config.toml")),
        );
        for (table, key) in [
            ("", "moniker"),
            ("p2p", "pex"),
            ("consensus", "timeout_commit"),
            ("mempool", "recheck"),
            ("mempool", "size"),
            ("mempool", "max_txs_bytes"),
            ("instrumentation", "prometheus"),
            ("tx_index", "indexer"),
        ] {
            let get = |d: &toml_edit::DocumentMut| {
                let item = if table.is_empty() {
                    &d[key]
                } else {
                    &d[table][key]
                };
                item.to_string()
            };
            assert_eq!(get(&cd), get(&cn), "{id}: [{table}] {key}");
        }
        assert_eq!(cd["moniker"].as_str(), Some(id));
        // Each node's peers are the three others, by their node ids.
        for (c, member_dir) in [(&cd, &testnet), (&cn, &net.dir)] {
            let peers = c["p2p"]["persistent_peers"].as_str().unwrap();
            assert_eq!(peers.split(',').count(), MEMBERS.len() - 1, "{id}: {peers}");
            for (other, _, _) in MEMBERS.iter().filter(|m| m.0 != id) {
                let m = read_json(&member_dir.join(other).join("member.json"));
                assert!(
                    peers.contains(m["node_id"].as_str().unwrap()),
                    "{id} peers {other}"
                );
            }
        }
    }
    // The compose file starts every app with its registered BLS key and every CometBFT on the
    // home the script wrote.
    let compose = std::fs::read_to_string(repo().join("localnet/docker-compose.yml")).unwrap();
    for (id, _, _) in MEMBERS {
        assert!(
            compose.contains(&format!("\"/testnet/{id}/bls_key.json\"")),
            "{id}"
        );
        assert!(
            compose.contains(&format!("\"/testnet/{id}/cometbft\"")),
            "{id}"
        );
    }
}

#[test]
fn genesis_assembly_refuses_a_member_file_that_lies() {
    let _machine = support::exclusive();
    let tmp = tempfile::tempdir().unwrap();
    let keyring = Keyring::new(tmp.path().join("keys"));
    let cometbft = medledger_devnet::cometbft::binary().unwrap();
    let member = |id: &str, n: u16| {
        deploy::init_member(
            &cometbft,
            &keyring,
            &deploy::MemberInit {
                home: tmp.path().join(id),
                id: id.into(),
                name: id.into(),
                kind: "hospital".into(),
                p2p_address: format!("10.0.0.{n}:26656"),
            },
        )
        .unwrap()
    };
    let (a, b) = (member("hospital-a", 1), member("lab-b", 2));
    let template = read_json(&tmp.path().join("hospital-a/cometbft/config/genesis.json"));
    let params = GenesisParams {
        chain_id: "c".into(),
        max_block_bytes: None,
    };
    let assemble = |ms: &[deploy::MemberFile]| {
        deploy::assemble_genesis(&params, &template, ms)
            .map(|_| ())
            .map_err(|e| format!("{e:#}"))
    };
    assert_eq!(assemble(&[a.clone(), b.clone()]), Ok(()));
    // Someone else's BLS key with its own proof of possession: the proof does not match.
    let mut stolen = b.clone();
    stolen.validator.bls_pop = a.validator.bls_pop.clone();
    assert!(assemble(&[a.clone(), stolen])
        .unwrap_err()
        .contains("proof of possession"));
    // An address that is not its key's.
    let mut wrong = b.clone();
    wrong.validator.address = a.validator.address.clone();
    assert!(assemble(&[a.clone(), wrong])
        .unwrap_err()
        .contains("not the address"));
    // The same member twice, or two members sharing a key.
    assert!(assemble(&[a.clone(), a.clone()])
        .unwrap_err()
        .contains("twice"));
    let mut twin = b.clone();
    twin.admin_key = a.admin_key.clone();
    assert!(assemble(&[a.clone(), twin])
        .unwrap_err()
        .contains("admin key"));
    // `genesis install` checks the genesis lists this node with its own keys.
    let g = deploy::assemble_genesis(&params, &template, std::slice::from_ref(&a)).unwrap();
    assert!(deploy::check_includes(&g, &a).is_ok());
    assert!(deploy::check_includes(&g, &b).is_err());
}
