//! The record vault through the `medledger` CLI, as the localnet suites drive it: `vault put`,
//! `vault get`, and `verify` against node 0.

use std::process::{Command, Output};

use super::{medledger_bin, TestNet};

impl TestNet {
    /// `medledger -o json vault put` by `from`'s key: `content` stored as `record`, a
    /// `resource_type` of `patient`, at `from`'s member's gateway. Asserts exit 0 and returns the
    /// JSON answer.
    pub fn vault_put(
        &self,
        from: &str,
        patient: &str,
        resource_type: &str,
        record: &str,
        content: &[u8],
    ) -> serde_json::Value {
        let file = self.home().join(format!("{record}.put"));
        std::fs::write(&file, content).unwrap();
        let put = self.cli(&[
            "-o",
            "json",
            "vault",
            "put",
            "--from",
            from,
            "--patient",
            patient,
            "--type",
            resource_type,
            "--file",
            file.to_str().unwrap(),
            "--record",
            record,
        ]);
        assert_eq!(put.status.code(), Some(0), "vault put {record}");
        serde_json::from_slice(&put.stdout).unwrap()
    }

    /// `medledger vault get` of `record` by `from`'s key for treatment (TREAT), then `more`
    /// (`-o json`, `--out FILE`, which are global or the command's own).
    pub fn vault_get(&self, from: &str, record: &str, more: &[&str]) -> Output {
        let mut args = vec![
            "vault",
            "get",
            "--from",
            from,
            "--record",
            record,
            "--purpose",
            "TREAT",
        ];
        args.extend_from_slice(more);
        self.cli(&args)
    }

    /// `medledger verify ARGS…` against node 0: `verify` takes its node before its subcommand,
    /// so the environment names it here.
    pub fn verify(&self, args: &[&str]) -> Output {
        let out = Command::new(medledger_bin())
            .arg("--home")
            .arg(self.home())
            .arg("verify")
            .args(args)
            .env("MEDLEDGER_NODE", self.net.spec.nodes[0].rpc_url())
            .output()
            .unwrap();
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        out
    }
}
