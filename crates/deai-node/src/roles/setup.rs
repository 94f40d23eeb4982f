//! The transactions and hand-overs that set a federated task up, as a creator or an owner does
//! them: register a dataset commitment, create the task, commit to validation data, hand the
//! coordinator its inputs. The demo, the tests and scripts share these.

use std::time::Duration;

use deai_learn::data::Dataset;
use deai_ledger::{
    ConsentPolicy, Digest, Event, Receipt, TxBody, dataset_commitment,
    tx::{DatasetRegister, TaskCommitValidation, TaskCreate},
    validation_commitment,
};

use super::{RoleContext, coordinator::Assign, peer::Peer, send_tx};
use crate::{client::Client, fed};

/// The id of the entity an applied transaction created, read from its receipt's events
/// (`dataset_registered`, `task_created`, `model_registered`).
pub fn created_id(receipt: &Receipt, event: &str) -> anyhow::Result<u64> {
    receipt
        .events
        .iter()
        .find_map(|e| match (event, e) {
            ("dataset_registered", Event::DatasetRegistered { id, .. })
            | ("task_created", Event::TaskCreated { id, .. })
            | ("model_registered", Event::ModelRegistered { id, .. })
            | ("offer_created", Event::OfferCreated { id, .. })
            | ("channel_opened", Event::ChannelOpened { id, .. }) => Some(*id),
            _ => None,
        })
        .ok_or_else(|| anyhow::anyhow!("no {event} event in the receipt of {}", receipt.tx_id))
}

/// BLAKE3 of a dataset's encoding (what a dataset file hashes to).
pub fn commitment(data: &Dataset) -> Digest {
    Digest(*blake3::hash(&fed::data::encode(data)).as_bytes())
}

/// The salted commitment `DatasetRegister` records for `data` ([`dataset_commitment`]).
pub fn salted_commitment(salt: &Digest, data: &Dataset) -> Digest {
    dataset_commitment(salt, &commitment(data))
}

/// 32 bytes from the OS RNG: a fresh commitment salt.
pub fn fresh_salt() -> Digest {
    let mut salt = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
    Digest(salt)
}

/// Registers a commitment to `data` salted with `salt` under `policy`; returns the dataset id.
pub async fn register_dataset(
    owner: &RoleContext,
    data: &Dataset,
    salt: &Digest,
    schema: &str,
    policy: ConsentPolicy,
) -> anyhow::Result<u64> {
    let fin = send_tx(
        owner,
        TxBody::DatasetRegister(DatasetRegister {
            commitment: salted_commitment(salt, data),
            samples: data.len() as u64,
            schema: schema.into(),
            policy,
        }),
    )
    .await?;
    created_id(&fin.receipt, "dataset_registered")
}

/// What a creator puts up.
pub struct TaskTerms<'a> {
    /// Purpose (matched against consent policies).
    pub purpose: &'a str,
    /// The spec (its hash is recorded).
    pub spec: &'a fed::TaskSpec,
    /// Datasets the task may select from.
    pub datasets: Vec<u64>,
    /// ε budget, fixed point; `None` for exactly what the spec's schedule can spend.
    pub epsilon: Option<u64>,
    /// Reward in escrow, base units.
    pub reward: u128,
}

/// Creates the task and commits to `validation` with `salt`; returns the task id.
pub async fn create_task(
    creator: &RoleContext,
    terms: TaskTerms<'_>,
    validation: &Dataset,
    salt: Digest,
) -> anyhow::Result<u64> {
    let schedule = fed::privacy::schedule(terms.spec)?;
    let needed = schedule.last().map_or(0, |s| s.epsilon);
    let fin = send_tx(
        creator,
        TxBody::TaskCreate(TaskCreate {
            purpose: terms.purpose.into(),
            model_spec: terms.spec.hash(),
            datasets: terms.datasets,
            rounds: terms.spec.rounds,
            epsilon: terms.epsilon.unwrap_or(needed),
            epsilon_schedule: schedule,
            delta: terms.spec.delta_budget(),
            reward: terms.reward,
        }),
    )
    .await?;
    let task = created_id(&fin.receipt, "task_created")?;
    let committed = send_tx(
        creator,
        TxBody::TaskCommitValidation(TaskCommitValidation {
            task,
            commitment: validation_commitment(&salt, &commitment(validation)),
        }),
    )
    .await;
    if let Err(e) = committed {
        // A task without its validation commitment cannot run: take it back rather than leave
        // its escrow locked in a task nobody can use.
        let undone = take_back(creator, task).await;
        anyhow::bail!(
            "task {task} was created but its validation commitment was not recorded ({e}); {undone}"
        );
    }
    Ok(task)
}

/// Cancels `task` after a later setup step failed (its escrow goes back to the creator) and says
/// what happened, naming the command to finish the job when the cancel fails too.
pub async fn take_back(creator: &RoleContext, task: u64) -> String {
    let cancel = send_tx(
        creator,
        TxBody::TaskCancel(deai_ledger::tx::TaskCancel { task }),
    )
    .await;
    match cancel {
        Ok(_) => "the task was cancelled and its escrow refunded".to_string(),
        Err(c) => format!(
            "cancelling it failed too ({c}): cancel it with `deai tx task-cancel --task {task}`"
        ),
    }
}

/// Hands the coordinator at `coordinator` the task's spec and validation set (as blobs) and the
/// commitment's salt (signed by the creator). The answer must be signed by the coordinator the
/// ledger names for the task.
pub async fn assign(
    creator: &RoleContext,
    coordinator: &str,
    task: u64,
    spec: &fed::TaskSpec,
    validation: &Dataset,
    salt: Digest,
) -> anyhow::Result<()> {
    let task_view = super::ledger_view(creator, task)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?
        .task;
    let named = task_view.coordinator.unwrap_or(task_view.creator);
    let coordinator_key = ed25519_dalek::VerifyingKey::from_bytes(&named.0)?;
    let api = Client::new(coordinator.to_string());
    // Signed for the coordinator the ledger names, so no other node would take these uploads.
    let chain = &creator.chain_id;
    api.put_blob_to(
        &creator.key,
        chain,
        &coordinator_key,
        &spec.canonical_bytes(),
    )
    .await?;
    let validation_hash = api
        .put_blob_to(
            &creator.key,
            chain,
            &coordinator_key,
            &fed::data::encode(validation),
        )
        .await?;
    let body = serde_json::to_vec(&Assign {
        task,
        salt,
        validation: validation_hash,
    })?;
    Peer::new(
        creator.key.clone(),
        creator.chain_id.clone(),
        Duration::from_secs(10),
    )
    .post(coordinator, "/v1/fed/assign", body, Some(&coordinator_key))
    .await?;
    Ok(())
}

/// Registers a model nobody trained here: `owner` commits to a dataset (a placeholder
/// commitment), `creator` creates a one-round task over it for `purpose` and registers a model
/// of it. What a benchmark or a test of serving needs (an offer names a registered model); its
/// lineage has no scored rounds, so its offers' royalties go to the provider. The model's id.
pub async fn register_untrained_model(
    owner: &RoleContext,
    creator: &RoleContext,
    purpose: &str,
) -> anyhow::Result<u64> {
    let policy = ConsentPolicy {
        purposes: vec![purpose.into()],
        creators: None,
        reward_min: 0,
        epsilon_max: 1_000 * deai_ledger::EPSILON_SCALE,
        expiry_height: u64::MAX,
        epsilon_round_max: 0,
        noise_multiplier_min: 0,
        royalty_bps_min: 0,
    };
    let registered = send_tx(
        owner,
        TxBody::DatasetRegister(DatasetRegister {
            commitment: fresh_salt(),
            samples: 1,
            schema: "placeholder".into(),
            policy,
        }),
    )
    .await?;
    let dataset = created_id(&registered.receipt, "dataset_registered")?;
    let spec = fed::TaskSpec::digits_default();
    let task = send_tx(
        creator,
        TxBody::TaskCreate(TaskCreate {
            purpose: purpose.into(),
            model_spec: spec.hash(),
            datasets: vec![dataset],
            rounds: 1,
            epsilon: deai_ledger::EPSILON_SCALE,
            epsilon_schedule: vec![deai_ledger::EpsilonStep {
                rounds: 1,
                epsilon: deai_ledger::EPSILON_SCALE,
            }],
            delta: spec.delta_budget(),
            reward: 1,
        }),
    )
    .await?;
    let task = created_id(&task.receipt, "task_created")?;
    let registered = send_tx(
        creator,
        TxBody::ModelRegister(deai_ledger::tx::ModelRegister {
            model_hash: fresh_salt(),
            task,
            parent: None,
            metrics: vec![],
        }),
    )
    .await?;
    created_id(&registered.receipt, "model_registered")
}

/// `provider` uploads the quantized model to its validator (disputes and buyers fetch it there)
/// and offers it as `model` at `price` per query with the chain's minimum bond, answering at
/// `endpoint`; the offer as the ledger records it.
pub async fn create_offer(
    provider: &RoleContext,
    model: u64,
    quantized: &deai_infer::QuantModel,
    price: u128,
    endpoint: &str,
    royalty_bps: u32,
) -> anyhow::Result<deai_ledger::Offer> {
    provider
        .ledger
        .put_blob(&provider.key, &quantized.encode())
        .await?;
    // The bond the chain asks now: governance may have changed it since genesis.
    let params = provider.ledger.governance().await?.params;
    let created = send_tx(
        provider,
        TxBody::OfferCreate(deai_ledger::tx::OfferCreate {
            model,
            quant_hash: Digest(quantized.hash()),
            ops: quantized.ops(),
            price_per_query: price,
            bond: params.offer_bond_min,
            endpoint: endpoint.into(),
            royalty_bps,
        }),
    )
    .await?;
    let id = created_id(&created.receipt, "offer_created")?;
    Ok(provider.ledger.get(&format!("/v1/offers/{id}")).await?)
}
