//! `medledger bench vault` and `bench gateway-flood`: the record vault gateway's reads, and
//! its defence against a flood, on a throwaway localnet whose members run gateways.

use anyhow::Context;
use clap::Args;
use medledger_devnet::localnet::{AppKind, Localnet, Proc, Spec};
use medledger_devnet::ThrowawayNet;

use super::{me, print_report, BENCH_BASE_PORT, BENCH_CHAIN_ID};
use crate::cli::{Ctx, Exit};

/// `bench vault`.
#[derive(Debug, Args)]
pub struct VaultBenchArgs {
    /// Bytes per record.
    #[arg(long, default_value_t = 100 * 1024)]
    record_bytes: usize,
    /// Records stored (reads cycle over them).
    #[arg(long, default_value_t = 4)]
    records: usize,
    /// Reads by one reader, one after the other.
    #[arg(long, default_value_t = 50)]
    sequential: usize,
    /// Concurrent readers (hospital-a practitioners, one key each).
    #[arg(long, default_value_t = 100)]
    readers: usize,
    /// Rounds of concurrent reads.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Records lab-b stores in the put phase, after the reads (0: no put phase).
    #[arg(long, default_value_t = 20)]
    puts: usize,
    /// Bytes per record of the put phase.
    #[arg(long, default_value_t = 1024 * 1024)]
    put_bytes: usize,
    /// Puts in flight at once.
    #[arg(long, default_value_t = 4)]
    put_concurrency: usize,
    /// First port of the throwaway localnet.
    #[arg(long, default_value_t = BENCH_BASE_PORT)]
    base_port: u16,
}

impl VaultBenchArgs {
    /// lab-b stores records, hospital-a reads them (also with one of their holders' gateways
    /// stopped), then lab-b stores more; prints the latencies: exit 2 when a concurrent read
    /// or a put failed.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let (net, lab, hospital) = gateway_net(self.base_port).await?;
        let gateways = NetGateways(&net.net);
        let box_key = medledger_gateway::keyfiles::load_box_key(
            &net.net.gateway_dir(hospital).join("box.key"),
        )?;
        let rpc = net.net.spec.nodes[hospital].rpc_url();
        let report = medledger_gateway::bench::run(
            medledger_gateway::bench::Parties {
                rpc: &rpc,
                custodian: (
                    "lab-b",
                    net.keyring.get("lab-b")?,
                    net.net.spec.nodes[lab].gateway_url(),
                ),
                reader: ("hospital-a", net.keyring.get("hospital-a")?, box_key),
                gateways: Some(&gateways),
            },
            &medledger_gateway::bench::VaultBench {
                record_bytes: self.record_bytes,
                records: self.records,
                sequential_reads: self.sequential,
                readers: self.readers,
                rounds: self.rounds,
                puts: self.puts,
                put_bytes: self.put_bytes,
                put_concurrency: self.put_concurrency,
                progress: !ctx.quiet,
            },
        )
        .await?;
        print_report(ctx.out, &report, || report.text())?;
        Ok(if report.failed() {
            Exit::Failed
        } else {
            Exit::Ok
        })
    }
}

/// The throwaway localnet's gateway processes, by member.
struct NetGateways<'a>(&'a Localnet);

impl NetGateways<'_> {
    fn node(&self, member: &str) -> anyhow::Result<usize> {
        self.0
            .spec
            .nodes
            .iter()
            .position(|n| n.name == member)
            .with_context(|| format!("{member} is not a node of the localnet"))
    }
}

impl medledger_gateway::bench::GatewayProcesses for NetGateways<'_> {
    fn stop(&self, member: &str) -> anyhow::Result<()> {
        self.0.stop(self.node(member)?, Proc::Gateway, true)
    }

    fn start(&self, member: &str) -> anyhow::Result<()> {
        self.0.start(self.node(member)?, Proc::Gateway)
    }
}

/// `bench gateway-flood`.
#[derive(Debug, Args)]
pub struct GatewayFloodArgs {
    /// Seconds per phase (unloaded, unknown keys, one known key).
    #[arg(long, default_value_t = 10)]
    phase_secs: u64,
    /// Flood requests offered per second (the live attack sent 2,177).
    #[arg(long, default_value_t = 2_000)]
    flood_rate: u64,
    /// Concurrent flood connections (enough that refused requests waiting on the gateway
    /// do not hold the offered rate down).
    #[arg(long, default_value_t = 512)]
    flood_connections: usize,
    /// hospital-a's requests per second during each phase.
    #[arg(long, default_value_t = 20)]
    victim_rate: u64,
    /// First port of the throwaway localnet.
    #[arg(long, default_value_t = BENCH_BASE_PORT)]
    base_port: u16,
}

impl GatewayFloodArgs {
    /// Floods lab-b's gateway while hospital-a reads there: exit 2 unless hospital-a's p99
    /// held.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let (net, lab, hospital) = gateway_net(self.base_port).await?;
        let report = medledger_gateway::flood::run(
            &net.net.spec.nodes[hospital].rpc_url(),
            &net.net.spec.nodes[lab].gateway_url(),
            "hospital-a",
            &net.keyring.get("hospital-a")?,
            &medledger_gateway::flood::FloodBench {
                phase_secs: self.phase_secs,
                flood_rate: self.flood_rate,
                flood_connections: self.flood_connections,
                victim_rate: self.victim_rate,
                progress: !ctx.quiet,
            },
        )
        .await?;
        print_report(ctx.out, &report, || report.text())?;
        Ok(if report.held { Exit::Ok } else { Exit::Failed })
    }
}

/// A throwaway localnet whose members run gateways, with the indexes of lab-b and hospital-a.
async fn gateway_net(base_port: u16) -> anyhow::Result<(ThrowawayNet, usize, usize)> {
    let mut spec = Spec::consortium(BENCH_CHAIN_ID.into(), base_port, AppKind::Medledger)?;
    spec.gateways = true;
    let net = ThrowawayNet::start(spec, me()?).await?;
    let idx = |m: &str| net.net.spec.nodes.iter().position(|n| n.name == m);
    let lab = idx("lab-b").context("lab-b")?;
    let hospital = idx("hospital-a").context("hospital-a")?;
    Ok((net, lab, hospital))
}
