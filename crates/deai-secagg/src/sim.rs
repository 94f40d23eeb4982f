//! An in-memory harness that drives one full round: `n` clients and the server in one process.
//!
//! Every message goes through its canonical encoding, so byte counts are real. Client work of a
//! step runs on the rayon pool and results are merged in client-id order, and each client has
//! its own ChaCha20 RNG derived from the seed, so a seed gives the same round bit for bit on any
//! number of threads. Faults pick, per client, a step at which it drops (sends nothing from then
//! on) or sends a corrupted message. A client that drops at [`Step::Consistency`] or
//! [`Step::Unmask`] has its masked input in the sum already: it stays a survivor. Wall-clock timings are the harness's only use of a clock;
//! the protocol state machines never read one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use ed25519_dalek::SigningKey;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use rayon::prelude::*;
use thiserror::Error;

use crate::client::{Client, ClientError, ClientPhase};
use crate::config::{ConfigError, RoundConfig};
use crate::msg::{ClientBody, ClientMsg, ServerMsg, Step};
use crate::params::Params;
use crate::quant::{QuantError, Quantizer};
use crate::server::{Aggregate, Server, ServerError, UnmaskRecord};
use crate::verify::{VerifyError, verify_aggregate};
use crate::{prg, unmask};

/// What goes wrong with one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The client sends nothing from this step on.
    Drop(Step),
    /// The client's message at this step has its last byte removed.
    Truncate(Step),
    /// The client's message at this step carries the wrong round number.
    WrongRound(Step),
}

/// One simulated round.
#[derive(Debug, Clone)]
pub struct SimSpec {
    /// Degree, threshold and number of clients.
    pub params: Params,
    /// Coordinates per client update.
    pub dim: u32,
    /// Clipping and levels.
    pub quantizer: Quantizer,
    /// Client weights are drawn uniformly from `1..=weight_max`.
    pub weight_max: u32,
    /// Seeds everything: keys, inputs, graph, dropouts.
    pub seed: u64,
    /// Faulty clients.
    pub faults: BTreeMap<u32, Fault>,
    /// Also re-compute the aggregate with [`verify_aggregate`] (not timed).
    pub verify: bool,
}

impl SimSpec {
    /// `ceil(dropout × n)` clients, chosen by the seed, drop after sharing their keys (the
    /// costliest case: their pairwise masks must be recovered).
    pub fn with_dropout(params: Params, dim: u32, dropout: f64, seed: u64) -> Self {
        let n = params.clients;
        let drops = ((dropout * f64::from(n)).ceil() as u32).min(n);
        let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0xd409);
        let mut ids: Vec<u32> = (0..n).collect();
        for i in 0..drops as usize {
            let j = i + (rng.next_u64() % (n as u64 - i as u64)) as usize;
            ids.swap(i, j);
        }
        let faults = ids[..drops as usize]
            .iter()
            .map(|&c| (c, Fault::Drop(Step::Masked)))
            .collect();
        Self {
            params,
            dim,
            quantizer: Quantizer {
                clip: 1.0,
                level_bits: 16,
            },
            weight_max: 4,
            seed,
            faults,
            verify: false,
        }
    }
}

/// What a simulated round produced.
#[derive(Debug, Clone)]
pub struct SimReport {
    /// The unmasked aggregate (quantized, mod 2^b).
    pub aggregate: Vec<u32>,
    /// The survivors' quantized inputs summed without protection.
    pub expected: Vec<u32>,
    /// Whether the two agree bit for bit.
    pub exact: bool,
    /// `Some(true)` if public re-computation gave the same aggregate (when asked for).
    pub verified: Option<bool>,
    /// The unmasking record.
    pub record: UnmaskRecord,
    /// The survivors' masked inputs, aligned with `record.survivors` (empty unless
    /// `spec.verify`).
    pub masked_inputs: Vec<Vec<u32>>,
    /// Clients the server excluded for bad messages.
    pub excluded: Vec<u32>,
    /// Modulus bits used.
    pub modulus_bits: u32,
    /// Wall time of the five steps, all clients and the server (ms).
    pub round_ms: f64,
    /// Per-client time over all steps (ms), for clients that finished.
    pub client_ms: Vec<f64>,
    /// Server time over all steps (ms).
    pub server_ms: f64,
    /// Time to sum the survivors' quantized inputs without protection (ms).
    pub plain_sum_ms: f64,
    /// Bytes sent by each client that finished.
    pub bytes_up: Vec<u64>,
    /// Largest error of the dequantized weighted mean against the exact mean of clipped inputs.
    pub mean_error_max: f64,
    /// The documented bound on that error (one quantization step).
    pub mean_error_bound: f64,
}

/// Why a simulated round failed.
#[derive(Debug, Error)]
pub enum SimError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Bad quantizer.
    #[error(transparent)]
    Quant(#[from] QuantError),
    /// A client could not start.
    #[error("client {0}: {1}")]
    Client(u32, ClientError),
    /// The server aborted the round.
    #[error("round aborted: {0}")]
    Aborted(#[from] ServerError),
    /// Public verification failed.
    #[error(transparent)]
    Verify(#[from] VerifyError),
}

struct SimClient {
    client: Client,
    rng: ChaCha20Rng,
    fault: Option<Fault>,
    gone: bool,
    ms: f64,
    bytes_up: u64,
    masked: Option<Vec<u32>>,
}

impl SimClient {
    fn transmit(&mut self, step: Step, round: u64, keep_masked: bool) -> Option<Vec<u8>> {
        if self.gone || matches!(self.fault, Some(Fault::Drop(s)) if s <= step) {
            self.gone = true;
            return None;
        }
        let start = Instant::now();
        let mut msg = self.client.poll_transmit()?;
        if keep_masked && let ClientBody::Masked { vector, .. } = &msg.body {
            self.masked = Some(vector.clone());
        }
        if self.fault == Some(Fault::WrongRound(step)) {
            msg.round = round + 1;
        }
        let mut bytes = msg.encode();
        if self.fault == Some(Fault::Truncate(step)) {
            bytes.pop();
        }
        self.ms += ms_since(start);
        self.bytes_up += bytes.len() as u64;
        Some(bytes)
    }

    fn receive(&mut self, bytes: Option<Vec<u8>>, config: &RoundConfig) {
        let Some(bytes) = bytes.filter(|_| !self.gone) else {
            return;
        };
        let start = Instant::now();
        // A client that cannot use the server's message aborts; the server sees a dropout.
        if let Ok(msg) = ServerMsg::decode(&bytes, &config.limits()) {
            let _ = self.client.handle_server_msg(msg, &mut self.rng);
        }
        self.ms += ms_since(start);
    }
}

fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

fn client_rng(seed: u64, client: u32) -> ChaCha20Rng {
    let mut material = [0u8; 12];
    material[..8].copy_from_slice(&seed.to_le_bytes());
    material[8..].copy_from_slice(&client.to_le_bytes());
    ChaCha20Rng::from_seed(blake3::derive_key("deai-secagg sim client rng", &material))
}

/// Inputs of one client: floats in `[-1.2, 1.2]` (some get clipped), weight, quantized words.
fn client_input(
    spec: &SimSpec,
    client: u32,
    rng: &mut ChaCha20Rng,
) -> Result<(Vec<f32>, u32, Vec<u32>), QuantError> {
    let x: Vec<f32> = (0..spec.dim)
        .map(|_| (rng.next_u32() as f32 / u32::MAX as f32 - 0.5) * 2.4)
        .collect();
    let weight = 1 + rng.next_u32() % spec.weight_max;
    let q = spec.quantizer.quantize(&x, weight, spec.weight_max, rng)?;
    let _ = client;
    Ok((x, weight, q))
}

/// Runs one round as `spec` says.
pub fn run_round(spec: &SimSpec) -> Result<SimReport, SimError> {
    let n = spec.params.clients;
    let mut master = ChaCha20Rng::seed_from_u64(spec.seed);
    let keys: Vec<SigningKey> = (0..n)
        .map(|_| {
            let mut sk = [0u8; 32];
            master.fill_bytes(&mut sk);
            SigningKey::from_bytes(&sk)
        })
        .collect();
    let mut graph_seed = [0u8; 32];
    master.fill_bytes(&mut graph_seed);
    let modulus_bits = spec.quantizer.modulus_bits(n, spec.weight_max)?;
    let config = Arc::new(RoundConfig::new(
        1,
        spec.params,
        spec.dim + 1,
        modulus_bits,
        graph_seed,
        keys.iter().map(SigningKey::verifying_key).collect(),
    )?);
    let inputs = (0..n)
        .into_par_iter()
        .map(|c| {
            let mut rng = client_rng(spec.seed, c);
            client_input(spec, c, &mut rng).map(|input| (input, rng))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let quantized: Vec<&[u32]> = inputs.iter().map(|((_, _, q), _)| q.as_slice()).collect();

    let round_start = Instant::now();
    let mut clients = inputs
        .par_iter()
        .enumerate()
        .map(|(i, ((_, _, q), rng))| {
            let mut rng = rng.clone();
            let start = Instant::now();
            let client = Client::new(config.clone(), i as u32, &keys[i], q.clone(), &mut rng)
                .map_err(|e| SimError::Client(i as u32, e))?;
            let fault = spec.faults.get(&(i as u32)).copied();
            Ok(SimClient {
                client,
                rng,
                fault,
                gone: false,
                ms: ms_since(start),
                bytes_up: 0,
                masked: None,
            })
        })
        .collect::<Result<Vec<_>, SimError>>()?;
    let mut server = Server::new(config.clone());
    let mut server_ms = 0.0;
    let mut aggregate = None;
    for step in Step::ALL {
        let uplink: Vec<Option<Vec<u8>>> = clients
            .par_iter_mut()
            .map(|c| c.transmit(step, config.round, spec.verify))
            .collect();
        let start = Instant::now();
        // Decoding belongs to the transport (one task per connection), so it runs in parallel;
        // the state machine then takes the messages one by one, in client order.
        let limits = config.limits();
        let decoded: Vec<_> = uplink
            .par_iter()
            .map(|b| b.as_ref().map(|b| ClientMsg::decode(b, &limits)))
            .collect();
        for (i, msg) in decoded.into_iter().enumerate() {
            if let Some(msg) = msg {
                let _ = server.handle_client_decoded(i as u32, msg);
            }
        }
        let result = server.advance();
        let mut downlink: Vec<Option<Vec<u8>>> = vec![None; n as usize];
        while let Some(msg) = server.poll_transmit() {
            downlink[msg.to as usize] = Some(msg.encode());
        }
        server_ms += ms_since(start);
        aggregate = result?;
        clients
            .par_iter_mut()
            .zip(downlink)
            .for_each(|(c, bytes)| c.receive(bytes, &config));
    }
    let round_ms = ms_since(round_start);
    let Aggregate { sum, record } = aggregate.expect("the last advance returns the aggregate");

    let start = Instant::now();
    let survivors: Vec<&[u32]> = record
        .survivors
        .iter()
        .map(|&i| quantized[i as usize])
        .collect();
    let expected = unmask::unmasked_sum(config.vector_len as usize, &survivors, &[], modulus_bits);
    let plain_sum_ms = ms_since(start);

    let masked_inputs: Vec<Vec<u32>> = if spec.verify {
        record
            .survivors
            .iter()
            .map(|&i| clients[i as usize].masked.take().unwrap_or_default())
            .collect()
    } else {
        Vec::new()
    };
    let verified = if spec.verify {
        Some(verify_aggregate(&config, &record, &masked_inputs)? == sum)
    } else {
        None
    };
    let finished: Vec<&SimClient> = clients
        .iter()
        .filter(|c| c.client.phase() == ClientPhase::Done)
        .collect();
    let (mean_error_max, mean_error_bound) = mean_error(spec, &inputs, &record.survivors, &sum)?;
    Ok(SimReport {
        exact: sum == expected,
        aggregate: sum,
        expected,
        verified,
        excluded: server.excluded().keys().copied().collect(),
        record,
        masked_inputs,
        modulus_bits,
        round_ms,
        client_ms: finished.iter().map(|c| c.ms).collect(),
        server_ms,
        plain_sum_ms,
        bytes_up: finished.iter().map(|c| c.bytes_up).collect(),
        mean_error_max,
        mean_error_bound,
    })
}

type ClientInputs = Vec<((Vec<f32>, u32, Vec<u32>), ChaCha20Rng)>;

/// Largest error of the dequantized weighted mean against the exact weighted mean of the
/// survivors' clipped inputs, and the documented bound.
fn mean_error(
    spec: &SimSpec,
    inputs: &ClientInputs,
    survivors: &[u32],
    sum: &[u32],
) -> Result<(f64, f64), QuantError> {
    let mean = spec.quantizer.dequantize_mean(sum)?;
    let clip = spec.quantizer.clip;
    let mut exact = vec![0f64; spec.dim as usize];
    let mut total = 0f64;
    for &i in survivors {
        let ((x, w, _), _) = &inputs[i as usize];
        total += f64::from(*w);
        exact
            .iter_mut()
            .zip(x)
            .for_each(|(e, v)| *e += f64::from(*w) * f64::from(v.clamp(-clip, clip)));
    }
    let worst = mean
        .iter()
        .zip(&exact)
        .map(|(m, e)| (f64::from(*m) - e / total).abs())
        .fold(0.0, f64::max);
    // f32 output rounding adds at most one ulp of the clip bound.
    Ok((
        worst,
        spec.quantizer.step() + f64::from(clip) * f64::from(f32::EPSILON),
    ))
}

/// Reduces a vector mod 2^bits (re-exported for tests and benches).
pub fn reduce(v: &mut [u32], bits: u32) {
    prg::reduce(v, bits);
}
