//! Private federated training between separate `deai node` processes: a validator, a coordinator
//! and five data owners on loopback. One owner's process crashes mid-round (after sharing its
//! keys, before sending its masked update) and the round completes by dropout recovery; a dataset
//! whose consent is revoked is never selected again; `deai verify task`, run as a process that
//! took no part, passes; a tampered blob makes it fail and name the round.

use crate::common;

use std::{
    fs,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::common::{NodeProcess, deai, init};
use deai_ledger::{
    ConsentPolicy, Digest, EPSILON_SCALE, TOKEN, Task, TaskStatus, TxBody,
    tx::{ConsentRevoke, Transfer},
};
use deai_node::{
    client::Client,
    config::{CoordinatorLie, DatasetFile, NodeConfig, RolesConfig},
    fed::{self, TaskSpec, lies::Lie},
    keyfile,
    roles::{self, RoleContext, owner::CRASH_ENV, setup},
};
use ed25519_dalek::SigningKey;

const OWNERS: usize = 5;
/// Blocks a closed task waits for challenges in the five-owner test (an idle chain makes about
/// two a second).
const CHALLENGE_WINDOW: u64 = 120;
/// The five-owner task's rounds.
const ROUNDS: u32 = 4;
/// What the five-owner task's coordinator lies about, and the claim that catches it: a group's
/// sum, a score (by one part in a million) and the model, each in its own round.
const LIES: [(u32, Lie, &str); 3] = [
    (2, Lie::GroupSum, "group-sum:0"),
    (3, Lie::Score, "score:0"),
    (4, Lie::Model, "model"),
];
const PURPOSE: &str = "digit-recognition";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A role node's data directory: a key and a config naming its roles.
/// A role node's directory: a key, the network's genesis (copied from the validator's `vdir`,
/// so the node checks what its upstream says against it) and `roles`.
fn role_dir(root: &Path, vdir: &Path, name: &str, roles: RolesConfig) -> (PathBuf, SigningKey) {
    let dir = root.join(name);
    fs::create_dir_all(&dir).expect("mkdir");
    copy_genesis(vdir, &dir);
    let key = keyfile::create(&dir.join(deai_node::config::NODE_KEY_FILE)).expect("key");
    let cfg = NodeConfig {
        http_listen: "127.0.0.1:0".parse().expect("addr"),
        p2p_listen: "127.0.0.1:0".parse().expect("addr"),
        roles,
        ..NodeConfig::default()
    };
    cfg.save(&dir).expect("config");
    (dir, key)
}

fn copy_genesis(vdir: &Path, dir: &Path) {
    let name = deai_node::config::GENESIS_FILE;
    fs::copy(vdir.join(name), dir.join(name)).expect("copy the genesis");
}

fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `deai verify task` as a separate process: whether it exited 0, and its JSON.
fn verify_task(task: u64, node: &str) -> (bool, serde_json::Value) {
    run_json(&["verify", "task", &task.to_string(), "--node", node])
}

/// Runs `deai` with `args` and `--json`: whether it exited 0, and the JSON it printed.
fn run_json(args: &[&str]) -> (bool, serde_json::Value) {
    let out = deai().args(args).arg("--json").output().expect("run deai");
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "deai {args:?} printed no JSON ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), v)
}

#[test]
fn five_owners_train_with_a_crash_and_a_revocation_and_verify() {
    let tmp = tempfile::tempdir().expect("tmp");
    let rt = rt();
    let vdir = tmp.path().join("validator");
    init(&vdir);
    // A closed task waits CHALLENGE_WINDOW blocks before it pays, so its rounds can be
    // challenged after TaskClose revealed the validation data.
    let genesis_path = vdir.join("genesis.json");
    let mut genesis =
        deai_ledger::Genesis::from_json(&fs::read_to_string(&genesis_path).expect("genesis"))
            .expect("genesis parses");
    genesis.params.challenge_window_blocks = CHALLENGE_WINDOW;
    fs::write(&genesis_path, genesis.to_json()).expect("genesis written");
    let validator = NodeProcess::start(&vdir);
    let ledger = Client::new(validator.url.clone());
    let dev = keyfile::read(&vdir.join(deai_node::config::DEV_KEY_FILE)).expect("dev key");
    let validator_key =
        keyfile::read(&vdir.join(deai_node::config::NODE_KEY_FILE)).expect("validator key");
    let dev_ctx = rt
        .block_on(RoleContext::connect(dev, ledger.clone()))
        .expect("connect");

    // Coordinator node (the task creator runs it).
    let (cdir, creator) = role_dir(
        tmp.path(),
        &vdir,
        "coordinator",
        RolesConfig {
            validator: false,
            upstream: Some(validator.url.clone()),
            coordinator: true,
            coordinator_lies: LIES
                .iter()
                .map(|&(round, claim, _)| CoordinatorLie { round, claim })
                .collect(),
            ..RolesConfig::default()
        },
    );
    // Owners: keys and data first (their datasets must be registered before their nodes start).
    let split = fed::data::digits_split(OWNERS).expect("digits");
    let owner_keys: Vec<(PathBuf, SigningKey, Digest)> = (0..OWNERS)
        .map(|i| {
            let dir = tmp.path().join(format!("owner-{i}"));
            fs::create_dir_all(&dir).expect("mkdir");
            copy_genesis(&vdir, &dir);
            let key = keyfile::create(&dir.join(deai_node::config::NODE_KEY_FILE)).expect("key");
            fs::write(dir.join("data.bin"), fed::data::encode(&split.owners[i])).expect("data");
            // Half the owners keep their commitment salt beside the data, half in config.toml.
            let salt = setup::fresh_salt();
            if i % 2 == 0 {
                let path = deai_node::roles::serve::salt_path(&dir.join("data.bin"));
                fs::write(path, format!("{salt}\n")).expect("salt");
            }
            (dir, key, salt)
        })
        .collect();
    // The validator pays the fees of its challenge votes.
    for to in std::iter::once(&creator)
        .chain(owner_keys.iter().map(|(_, k, _)| k))
        .chain([&validator_key])
    {
        rt.block_on(roles::send_tx(
            &dev_ctx,
            TxBody::Transfer(Transfer {
                to: keyfile::address(to),
                amount: 10_000 * TOKEN,
            }),
        ))
        .expect("fund");
    }
    let mut datasets = Vec::new();
    for (i, (_, key, salt)) in owner_keys.iter().enumerate() {
        let ctx = rt
            .block_on(RoleContext::connect(key.clone(), ledger.clone()))
            .expect("connect");
        let policy = ConsentPolicy {
            purposes: vec![PURPOSE.into()],
            creators: None,
            reward_min: TOKEN,
            epsilon_max: 1_000 * EPSILON_SCALE,
            expiry_height: 10_000_000,
            epsilon_round_max: 0,
            noise_multiplier_min: 0,
            royalty_bps_min: 0,
        };
        let id = rt
            .block_on(setup::register_dataset(
                &ctx,
                &split.owners[i],
                salt,
                "digits-8x8",
                policy,
            ))
            .expect("register");
        datasets.push(id);
    }

    // The task: 4 rounds, 4 of 5 owners per round, one scoring group, aggregated by FedAdam:
    // the coordinator and the verifier must carry the optimiser's moments from round to round
    // (the demo covers plain FedAvg).
    let mut spec = TaskSpec::digits_default();
    spec.rounds = ROUNDS;
    spec.datasets_per_round = 4;
    spec.group_size_min = 4;
    spec.strategy = "fedadam".into();
    spec.server_lr = 0.05;
    let creator_ctx = rt
        .block_on(RoleContext::connect(creator.clone(), ledger.clone()))
        .expect("connect");
    let salt = Digest([7; 32]);
    let terms = setup::TaskTerms {
        purpose: PURPOSE,
        spec: &spec,
        datasets: datasets.clone(),
        epsilon: Some(500 * EPSILON_SCALE),
        reward: 1_000 * TOKEN,
    };
    let task = rt
        .block_on(setup::create_task(
            &creator_ctx,
            terms,
            &split.validation,
            salt,
        ))
        .expect("task");

    let coordinator = NodeProcess::start(&cdir);
    // Owner 0 crashes in round 2 while answering the masked-input step (its shares are out).
    let crasher = 0;
    let mut owners = Vec::new();
    for (i, (dir, _, salt)) in owner_keys.iter().enumerate() {
        let cfg = NodeConfig {
            http_listen: "127.0.0.1:0".parse().expect("addr"),
            p2p_listen: "127.0.0.1:0".parse().expect("addr"),
            roles: RolesConfig {
                validator: false,
                upstream: Some(validator.url.clone()),
                datasets: vec![DatasetFile {
                    id: datasets[i],
                    file: PathBuf::from("data.bin"),
                    salt: (i % 2 == 1).then_some(*salt),
                    key: None,
                }],
                announce_to: vec![coordinator.url.clone()],
                ..RolesConfig::default()
            },
            ..NodeConfig::default()
        };
        cfg.save(dir).expect("config");
        let env = (i == crasher).then(|| (CRASH_ENV, format!("{task}:2:2")));
        owners.push(NodeProcess::start_with_env(dir, env));
    }
    let coord_api = Client::new(coordinator.url.clone());
    wait_until("owners to join", Duration::from_secs(30), || {
        let v: serde_json::Value = rt.block_on(coord_api.get("/v1/fed/directory")).ok()?;
        (v["datasets"].as_array()?.len() == OWNERS).then_some(())
    });

    // Hand over the task; the coordinator starts the rounds on its own.
    rt.block_on(setup::assign(
        &creator_ctx,
        &coordinator.url,
        task,
        &spec,
        &split.validation,
        salt,
    ))
    .expect("assign");

    // After round 1 closes, an owner it selected (not the one set to crash) revokes consent.
    let first: Vec<u64> = wait_until("round 1 to close", Duration::from_secs(60), || {
        let t: Task = rt.block_on(ledger.get(&format!("/v1/tasks/{task}"))).ok()?;
        let r = t.round_log.first()?;
        r.outcome.as_ref().map(|_| r.selected.clone())
    });
    let revoker = (0..OWNERS)
        .find(|&i| i != crasher && first.contains(&datasets[i]))
        .expect("round 1 selects 4 of 5 owners");
    let revoked = datasets[revoker];
    let owner_ctx = rt
        .block_on(RoleContext::connect(
            owner_keys[revoker].1.clone(),
            ledger.clone(),
        ))
        .expect("connect");
    let fin = rt
        .block_on(roles::send_tx(
            &owner_ctx,
            TxBody::ConsentRevoke(ConsentRevoke { dataset: revoked }),
        ))
        .expect("revoke");
    let revoked_at = fin.height;

    let t: Task = wait_until("the task to close", Duration::from_secs(180), || {
        let t: Task = rt.block_on(ledger.get(&format!("/v1/tasks/{task}"))).ok()?;
        (t.status != TaskStatus::Open).then_some(t)
    });
    assert_eq!(t.status, TaskStatus::Settling, "closed before its window");
    let t = challenges_in_the_window(&rt, &ledger, &validator.url, &vdir, task, &t);
    assert_eq!(t.round_log.len(), spec.rounds as usize);
    let after: Vec<_> = t
        .round_log
        .iter()
        .filter(|r| r.opened_height > revoked_at)
        .collect();
    assert!(
        !after.is_empty(),
        "every round opened before the revocation (height {revoked_at}): the check would be empty"
    );
    for r in after {
        assert!(
            !r.selected.contains(&revoked),
            "revoked dataset {revoked} selected in round {}",
            r.number
        );
    }
    assert!(
        t.round_log
            .iter()
            .any(|r| r.opened_height <= revoked_at && r.selected.contains(&revoked)),
        "the revoked dataset was never selected before its revocation"
    );
    // The crashed owner: selected in some round >= 2, absent from that round's survivors, and
    // the round still completed (its masks were recovered).
    let crashed = datasets[crasher];
    let recovered = t.round_log.iter().find(|r| {
        r.number >= 2
            && r.selected.contains(&crashed)
            && r.outcome
                .as_ref()
                .is_some_and(|o| !o.survivors.is_empty() && !o.survivors.contains(&crashed))
    });
    assert!(
        recovered.is_some(),
        "no round completed without the crashed owner: {:?}",
        t.round_log
            .iter()
            .map(|r| (
                r.number,
                r.selected.clone(),
                r.outcome.as_ref().map(|o| o.survivors.clone())
            ))
            .collect::<Vec<_>>()
    );
    assert!(
        owners[crasher].child.try_wait().expect("wait").is_some(),
        "crasher still running"
    );

    // A process that took no part verifies the task from the validator's ledger and blobs: the
    // lies are there, and so are the upheld challenges that invalidated their rounds, so the
    // task verifies.
    let (ok, v) = verify_task(task, &validator.url);
    assert!(ok, "verify failed: {v}");
    assert_eq!(v["ok"], true);
    assert_eq!(v["invalidated_rounds"], serde_json::json!([2, 3, 4]));
    for (round, _, _) in LIES {
        assert_eq!(v["rounds"][round as usize - 1]["ok"], false, "{v}");
    }

    // Tamper with one masked update of the one valid round in the validator's blob store:
    // verification fails and names it.
    let round = &t.round_log[0];
    let masked = round.outcome.as_ref().expect("closed").masked_updates[0];
    let hex = masked.to_string();
    let path = vdir.join("blobs").join(&hex[..2]).join(&hex);
    let mut bytes = fs::read(&path).expect("blob on disk");
    bytes[0] ^= 1;
    fs::write(&path, bytes).expect("tamper");
    let (ok, v) = verify_task(task, &validator.url);
    assert!(!ok, "a tampered blob passed verification: {v}");
    assert_eq!(v["failed_rounds"], serde_json::json!([round.number]));
}

/// While task `task` (closed as `t`) settles: anyone challenges round 1's model, which is
/// honest, and each claim the coordinator lied about ([`LIES`]). Nobody votes by hand: the
/// validator's own voter re-checks each and votes. Round 1's challenge is rejected (its deposit
/// goes to the coordinator); each lie's is upheld, and slashes the bond of its own round (half
/// to the challenger, half into the escrow), and its round earns nothing; round 1's bond comes
/// back at settlement. `deai verify challenge` says the same from the outside. Returns the task
/// once settled.
fn challenges_in_the_window(
    rt: &tokio::runtime::Runtime,
    ledger: &Client,
    url: &str,
    vdir: &Path,
    task: u64,
    t: &Task,
) -> Task {
    let dev_key = vdir.join(deai_node::config::DEV_KEY_FILE);
    let (dev, task_s) = (dev_key.to_str().expect("utf-8"), task.to_string());
    let challenge = |round: u32, claim: &str| {
        let (ok, v) = run_json(&[
            "tx",
            "round-challenge",
            "--task",
            &task_s,
            "--round",
            &round.to_string(),
            "--claim",
            claim,
            "--key",
            dev,
            "--node",
            url,
        ]);
        assert!(ok, "challenge refused: {v}");
    };
    // `deai verify challenge` (no vote): its JSON.
    let check = |n: usize| {
        let n = n.to_string();
        let args = [
            "verify",
            "challenge",
            "--task",
            &task_s,
            "--challenge",
            &n,
            "--node",
            url,
        ];
        let (ok, v) = run_json(&args);
        assert!(ok, "deai {args:?} failed: {v}");
        v
    };
    let fetch = || -> Task {
        rt.block_on(ledger.get(&format!("/v1/tasks/{task}")))
            .expect("task")
    };
    let decided = |n: usize| {
        wait_until(
            "the validator's voter to decide",
            Duration::from_secs(60),
            || fetch().challenges[n - 1].verdict,
        )
    };
    let coordinator = t.bonds[0].coordinator;
    assert_eq!(t.bonds.len(), ROUNDS as usize, "a bond per round");
    let balance = || {
        rt.block_on(ledger.account(&coordinator))
            .expect("account")
            .account
            .balance
    };
    let before = balance();
    challenge(1, "model");
    assert_eq!(decided(1), deai_ledger::Verdict::Rejected);
    assert_eq!(balance(), before + deai_ledger::CHALLENGE_DEPOSIT_DEFAULT);
    let v = check(1);
    assert_eq!(v["wrong"], false, "an honest model step refuted: {v}");

    let slashed = deai_ledger::COORDINATOR_BOND_DEFAULT;
    for (i, &(round, lie, claim)) in LIES.iter().enumerate() {
        let n = i + 2;
        challenge(round, claim);
        assert_eq!(decided(n), deai_ledger::Verdict::Upheld, "{lie:?}");
        let v = check(n);
        assert_eq!(v["wrong"], true, "the {lie:?} lie held: {v}");
        assert_eq!(v["blobs_missing_only"], false, "{v}");
        let after = fetch();
        assert!(after.round_invalid(round));
        assert_eq!(
            after.bonds[round as usize - 1].amount,
            0,
            "{lie:?}: its bond"
        );
        assert!(
            after.history.iter().any(|e| e.event
                == deai_ledger::Event::ChallengeResolved {
                    task,
                    challenge: n as u32,
                    round,
                    verdict: deai_ledger::Verdict::Upheld,
                    slashed,
                    reward: slashed / 2,
                    to_escrow: slashed - slashed / 2,
                }),
            "{lie:?}: half the bond to the challenger, half into the escrow"
        );
    }
    assert_eq!(fetch().bonds[0].amount, slashed, "round 1's bond is whole");
    let t = wait_until("the task to settle", Duration::from_secs(180), || {
        let t = fetch();
        (t.status == TaskStatus::Closed).then_some(t)
    });
    let released: Vec<u128> = t
        .history
        .iter()
        .filter_map(|e| match e.event {
            deai_ledger::Event::CoordinatorBondReleased { amount, .. } => Some(amount),
            _ => None,
        })
        .collect();
    assert_eq!(released, vec![slashed], "round 1's bond back, and only it");
    t
}

/// A validator can hold roles: with `[roles] coordinator = true` the same process validates and
/// serves the coordinator's API, under its validator key, with its own API as upstream.
#[test]
fn a_validator_also_coordinates() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("validator");
    init(&dir);
    let mut cfg = NodeConfig::load(&dir).expect("config");
    cfg.roles.coordinator = true;
    cfg.save(&dir).expect("config");
    let node = NodeProcess::start(&dir);
    let roles = node
        .roles_url
        .clone()
        .expect("the node names its roles' API");
    assert_ne!(roles, node.url, "the roles share the validator's API");
    let (status, v) = common::get(&format!("{roles}/v1/node"));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["roles"], serde_json::json!(["coordinator"]), "{v}");
    assert_eq!(v["upstream"], node.url.as_str(), "{v}");
    let key = keyfile::read(&dir.join(deai_node::config::NODE_KEY_FILE)).expect("key");
    assert_eq!(v["key"], keyfile::address(&key).to_string(), "{v}");
    // And it still validates: blocks keep coming.
    let height = |url: &str| common::get(&format!("{url}/v1/status")).1["height"].as_u64();
    let first = height(&node.url).expect("a height");
    wait_until("a new block", Duration::from_secs(30), || {
        height(&node.url).filter(|h| *h > first)
    });
}

/// Runs `deai` with `args` and `--json`; its JSON (the test fails if the command failed).
fn deai_json(args: &[&str]) -> serde_json::Value {
    let (ok, v) = run_json(args);
    assert!(ok, "deai {args:?} failed: {v}");
    v
}

/// Paid inference as a buyer takes it, each step its own `deai` process against a validator
/// process and a provider node process: `deai offer create` with a quantized blob, `deai infer`
/// answering with the engine's outputs and every receipt signed before the command ends, a
/// second `deai infer --check` reusing the channel, catching the provider's deliberate wrong
/// answer and winning the dispute, after which the offer is suspended.
#[test]
fn a_buyer_pays_per_query_from_the_cli_and_wins_a_dispute() {
    use deai_infer::{Arch, QuantModel};
    use deai_node::config::ProviderConfig;

    let tmp = tempfile::tempdir().expect("tmp");
    let rt = rt();
    let vdir = tmp.path().join("validator");
    init(&vdir);
    let validator = NodeProcess::start(&vdir);
    let ledger = Client::new(validator.url.clone());
    let dev_key = vdir.join(deai_node::config::DEV_KEY_FILE);
    let dev = keyfile::read(&dev_key).expect("dev key");
    let dev_ctx = rt
        .block_on(RoleContext::connect(dev, ledger.clone()))
        .expect("connect");

    // A provider node that answers every third query wrong.
    let provider_cfg = ProviderConfig {
        claim_every_ms: 200,
        wrong_answer_every: 3,
        ..ProviderConfig::default()
    };
    let (pdir, pkey) = role_dir(
        tmp.path(),
        &vdir,
        "provider",
        RolesConfig {
            validator: false,
            upstream: Some(validator.url.clone()),
            provider: Some(provider_cfg),
            ..RolesConfig::default()
        },
    );
    rt.block_on(roles::send_tx(
        &dev_ctx,
        TxBody::Transfer(Transfer {
            to: keyfile::address(&pkey),
            amount: 1_000 * TOKEN,
        }),
    ))
    .expect("fund");
    let provider_ctx = rt
        .block_on(RoleContext::connect(pkey, ledger.clone()))
        .expect("connect");
    let model_id = rt
        .block_on(setup::register_untrained_model(
            &dev_ctx,
            &provider_ctx,
            "digits",
        ))
        .expect("model");
    let provider = NodeProcess::start(&pdir);

    let m = QuantModel::seeded(
        Arch::Mlp {
            inputs: 64,
            hidden: 32,
            classes: 10,
        },
        7,
    );
    let qfile = tmp.path().join("digits.qm");
    fs::write(&qfile, m.encode()).expect("write the model");
    let pkey_file = pdir.join(deai_node::config::NODE_KEY_FILE);
    let created = deai_json(&[
        "offer",
        "create",
        "--model",
        &model_id.to_string(),
        "--quantized",
        qfile.to_str().expect("utf-8"),
        "--price",
        "3",
        "--bond",
        &(10 * TOKEN).to_string(),
        "--endpoint",
        &provider.url,
        "--key",
        pkey_file.to_str().expect("utf-8"),
        "--node",
        &validator.url,
    ]);
    let offer = created["offer"].as_u64().expect("offer id").to_string();

    // Five inputs as a JSON array of byte arrays.
    let max = u32::from(m.input_shape().max);
    let inputs: Vec<Vec<u8>> = (0..10u32)
        .map(|i| {
            (0..64u32)
                .map(|j| ((j * 7 + i * 13) % (max + 1)) as u8)
                .collect()
        })
        .collect();
    let write = |name: &str, xs: &[Vec<u8>]| {
        let path = tmp.path().join(name);
        fs::write(&path, serde_json::to_string(xs).expect("json")).expect("write");
        path
    };
    let first = write("first.json", &inputs[..5]);
    let second = write("second.json", &inputs[5..]);
    let infer = |file: &Path, check: bool| {
        let mut args = vec![
            "infer",
            "--offer",
            &offer,
            "--input",
            file.to_str().expect("utf-8"),
            "--key",
            dev_key.to_str().expect("utf-8"),
            "--node",
            &validator.url,
        ];
        if check {
            args.push("--check");
        }
        deai_json(&args)
    };
    let local =
        |x: &[u8]| deai_infer::infer(&m, &deai_infer::decode_input(&m, x).expect("input")).class;

    let r = infer(&first, false);
    assert_eq!(r["queries"], 5, "{r}");
    assert_eq!(
        r["unsigned"], 0,
        "every receipt signed before the command ended: {r}"
    );
    let classes: Vec<u64> = r["answers"]
        .as_array()
        .expect("answers")
        .iter()
        .map(|a| a["class"].as_u64().expect("class"))
        .collect();
    for (i, class) in classes.iter().enumerate() {
        // The provider's third answer is its deliberate lie; the others are the engine's.
        assert_eq!(
            *class == u64::from(local(&inputs[i])),
            i != 2,
            "answer {i}: {r}"
        );
    }
    let channel = r["channel"].clone();

    // Checked, the next answers are re-executed: the first (the provider's sixth) is wrong,
    // and its receipt wins the dispute.
    let r = infer(&second, true);
    assert_eq!(r["channel"], channel, "the open channel is reused: {r}");
    assert_eq!(r["answers"][0]["agrees"], false, "{r}");
    assert_eq!(r["dispute"]["upheld"], true, "{r}");
    assert_eq!(r["dispute"]["sequence"], 5, "{r}");
    let shown = deai_json(&["offer", "show", &offer, "--node", &validator.url]);
    assert_eq!(shown["status"], "suspended", "{shown}");
    drop(provider);
}

/// A new user's whole flow, every step a `deai` command (the test only writes the user's CSV
/// files and reads the commands' JSON): a validator; a coordinator and four owners made with
/// `deai init --role` and funded with `deai tx transfer`; each owner's CSV imported, checked and
/// registered with consent in one step; a task created from a TOML task file; `deai task watch`
/// following it to the end with each round's accuracy; `deai verify task` and `deai lineage`.
#[test]
fn a_new_user_trains_on_their_own_csv_from_the_cli() {
    use deai_node::fed::{import, schema};

    const N: usize = 4;
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let vdir = root.join("validator");
    init(&vdir);
    let validator = NodeProcess::start(&vdir);
    let url = validator.url.as_str();
    let dev_key = vdir.join(deai_node::config::DEV_KEY_FILE);
    let dev_key = dev_key.to_str().expect("utf-8 path");
    let path = |p: &Path| p.to_str().expect("utf-8 path").to_string();
    let fund = |address: &str| {
        deai_json(&[
            "tx",
            "transfer",
            "--to",
            address,
            "--amount",
            "1000000000000000000000",
            "--key",
            dev_key,
            "--node",
            url,
        ]);
    };

    let cdir = root.join("coordinator");
    let c = deai_json(&[
        "init",
        "--dir",
        &path(&cdir),
        "--role",
        "coordinator",
        "--upstream",
        url,
    ]);
    assert_eq!(c["roles"], serde_json::json!(["coordinator"]), "{c}");
    let creator = c["address"].as_str().expect("address").to_string();
    fund(&creator);
    let coordinator = NodeProcess::start(&cdir);

    // The owners' own data, as CSV files: the digits set cut in four, a header row, the label last.
    let digits = schema::find("digits-8x8").expect("schema");
    let split = fed::data::digits_split(N).expect("digits");
    let mut owners = Vec::new();
    let mut datasets = Vec::new();
    for (i, data) in split.owners.iter().enumerate() {
        let dir = root.join(format!("owner-{i}"));
        let o = deai_json(&[
            "init",
            "--dir",
            &path(&dir),
            "--role",
            "owner",
            "--upstream",
            url,
            "--coordinator",
            &coordinator.url,
        ]);
        fund(o["address"].as_str().expect("address"));
        // The last owner's node runs before its data is imported: it picks the dataset up from
        // its config while running and announces it.
        let early = (i == N - 1).then(|| NodeProcess::start(&dir));
        let csv = root.join(format!("owner-{i}.csv"));
        fs::write(&csv, import::to_csv(data, digits)).expect("csv");
        let imported = deai_json(&[
            "dataset",
            "import",
            "--csv",
            &path(&csv),
            "--label-column",
            "label",
            "--dir",
            &path(&dir),
            "--register",
            "--purpose",
            PURPOSE,
            "--epsilon-max",
            "1000",
            "--expiry-height",
            "1000000",
            "--node",
            url,
        ]);
        assert_eq!(imported["samples"], data.len(), "{imported}");
        let counts: u64 = imported["label_counts"]
            .as_array()
            .expect("counts")
            .iter()
            .map(|c| c.as_u64().expect("count"))
            .sum();
        assert_eq!(counts, data.len() as u64);
        datasets.push(imported["dataset"].as_u64().expect("registered"));
        owners.push(early.unwrap_or_else(|| NodeProcess::start(&dir)));
    }
    let status = |node: &NodeProcess| common::get(&format!("{}/v1/status", node.url)).1;
    wait_until("the owners to join", Duration::from_secs(30), || {
        let v = status(&coordinator);
        (v["coordinator"]["datasets_joined"].as_array()?.len() == N).then_some(())
    });
    assert_eq!(status(&owners[0])["roles"], serde_json::json!(["owner"]));

    let val = root.join("validation.csv");
    fs::write(&val, import::to_csv(&split.validation, digits)).expect("csv");
    let spec = root.join("task.toml");
    fs::write(
        &spec,
        format!(
            "purpose = \"{PURPOSE}\"\nreward = \"100\"\n\
             [training]\nrounds = 3\ndatasets_per_round = {N}\n\
             [privacy]\nnoise_multiplier = 0.3\nepsilon = 200\n\
             [secure_aggregation]\ngroup_size_min = {N}\n\
             [validation]\ncsv = \"validation.csv\"\nlabel_column = \"label\"\n"
        ),
    )
    .expect("task file");
    let created = deai_json(&[
        "task",
        "create",
        "--spec",
        &path(&spec),
        "--coordinator",
        &coordinator.url,
        "--key",
        &path(&cdir.join(deai_node::config::NODE_KEY_FILE)),
        "--node",
        url,
    ]);
    let task = created["task"].as_u64().expect("task id");
    let mut picked = created["datasets"]
        .as_array()
        .expect("datasets")
        .iter()
        .map(|d| d.as_u64().expect("id"))
        .collect::<Vec<_>>();
    picked.sort_unstable();
    assert_eq!(
        picked, datasets,
        "every consenting dataset is picked: {created}"
    );
    assert_eq!(created["epsilon_decimal"], "200");
    assert_eq!(
        created["epsilon"], 200_000_000,
        "ε in the ledger's fixed point"
    );
    assert_eq!(created["reward"], (100 * TOKEN).to_string());

    let watched = deai_json(&[
        "task",
        "watch",
        &task.to_string(),
        "--coordinator",
        &coordinator.url,
        "--timeout-s",
        "300",
        "--node",
        url,
    ]);
    assert_eq!(watched["status"], "closed", "{watched}");
    let rounds = watched["rounds"].as_array().expect("rounds");
    assert_eq!(rounds.len(), 3, "{watched}");
    let last = rounds.last().expect("a round");
    // Three noisy rounds over four owners: well above the 0.1 of guessing, far from converged.
    assert!(
        last["accuracy"]
            .as_f64()
            .expect("accuracy from the coordinator")
            > 0.3,
        "{watched}"
    );
    assert!(rounds.iter().all(|r| r["survivors"] == N), "{watched}");
    let model = watched["model"].as_u64().expect("a model");
    let sessions = status(&owners[1])["sessions"]
        .as_array()
        .expect("sessions")
        .len();
    assert!(sessions >= 1, "owner 1 reports the rounds it joined");

    let verified = deai_json(&["verify", "task", &task.to_string(), "--node", url]);
    assert_eq!(verified["ok"], true, "{verified}");
    let lineage = deai_json(&["lineage", "model", &model.to_string(), "--node", url]);
    assert_eq!(lineage["task"]["id"], task, "{lineage}");
    // One field, one meaning: ε spent is the ledger's fixed point in every command's JSON, its
    // exact decimal beside it under `_decimal`.
    let shown = deai_json(&["task", "show", &task.to_string(), "--node", url]);
    let spent = shown["epsilon_spent"]
        .as_u64()
        .expect("the ledger's ε spent");
    assert!(spent > 0, "{shown}");
    assert_eq!(watched["epsilon_spent"], spent, "{watched}");
    assert_eq!(last["epsilon_spent"], spent, "{watched}");
    assert_eq!(lineage["task"]["epsilon_spent"], spent, "{lineage}");
    let decimal = format!("{}.{:06}", spent / 1_000_000, spent % 1_000_000);
    let decimal = decimal.trim_end_matches('0').trim_end_matches('.');
    assert_eq!(watched["epsilon_spent_decimal"], decimal, "{watched}");
    assert_eq!(
        lineage["task"]["epsilon_spent_decimal"], decimal,
        "{lineage}"
    );

    // Every listing read by a reader that stops early (`| head -1`): a quiet success, no panic.
    for list in [
        &["dataset", "list"][..],
        &["task", "list"],
        &["model", "list"],
        &["offer", "list"],
        &["channel", "list", "--offer", "1"],
        &["validator", "list"],
        &["schema", "list"],
        &["task", "show", "1"],
        &["dataset", "show", "1"],
    ] {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        let node: &[&str] = if list[0] == "schema" {
            &[]
        } else {
            &["--node", url]
        };
        let out = deai()
            .args(list)
            .args(node)
            .stdout(writer)
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !stderr.contains("panicked"),
            "deai {list:?} into a closed pipe: {:?} {stderr}",
            out.status
        );
    }
}

/// What a user gets wrong is refused by name, before anything is written or sent: a file that is
/// not a dataset of its schema, a consent that has already lapsed, a CSV that does not fit.
#[test]
fn bad_data_and_lapsed_consent_are_refused_by_name() {
    let tmp = tempfile::tempdir().expect("tmp");
    let vdir = tmp.path().join("validator");
    init(&vdir);
    let validator = NodeProcess::start(&vdir);
    let url = validator.url.as_str();
    let key = vdir.join(deai_node::config::DEV_KEY_FILE);
    let key = key.to_str().expect("utf-8");
    let junk = tmp.path().join("one-line.csv");
    fs::write(&junk, "hello,world\n").expect("write");
    let junk = junk.to_str().expect("utf-8");
    // `args`, signed with `signer`, sent to the validator, under a consent lapsing at `expiry`.
    let with_consent = |args: &[&str], signer: &str, expiry: &str| {
        let consent = [
            "--purpose",
            PURPOSE,
            "--epsilon-max",
            "10",
            "--expiry-height",
            expiry,
            "--key",
            signer,
            "--node",
            url,
        ];
        run_json(&[args, &consent[..]].concat())
    };

    let (ok, v) = with_consent(&["dataset", "register", "--file", junk], key, "100000");
    assert!(!ok, "a one-line text file registered: {v}");
    assert!(
        v["error"].as_str().unwrap_or("").contains("dataset import"),
        "{v}"
    );

    let (ok, v) = run_json(&[
        "dataset",
        "import",
        "--csv",
        junk,
        "--label-column",
        "world",
    ]);
    assert!(!ok, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or("")
            .contains("1 feature columns"),
        "{v}"
    );

    // A consent lapsing at height 1 has lapsed once the chain is past it.
    wait_until("height 2", Duration::from_secs(30), || {
        let h = common::get(&format!("{url}/v1/status")).1["height"].as_u64()?;
        (h >= 2).then_some(())
    });
    let csv = tmp.path().join("digits.csv");
    let digits = deai_node::fed::schema::find("digits-8x8").expect("schema");
    let split = fed::data::digits_split(2).expect("digits");
    fs::write(
        &csv,
        deai_node::fed::import::to_csv(&split.validation, digits),
    )
    .expect("csv");
    let csv = csv.to_str().expect("utf-8");
    let import = [
        "dataset",
        "import",
        "--csv",
        csv,
        "--label-column",
        "label",
        "--register",
    ];
    let (ok, v) = with_consent(&import, key, "1");
    assert!(!ok, "a consent that lapsed at height 1 was accepted: {v}");
    assert!(
        v["error"].as_str().unwrap_or("").contains("has passed"),
        "{v}"
    );
    assert!(
        !tmp.path().join("digits.ds").exists(),
        "a refused import left its dataset file behind"
    );
    // The ledger refuses the registration (an account with nothing to pay the fee): the files
    // written for it are taken back.
    let poor = tmp.path().join("poor.key");
    deai_json(&["key", "new", "--out", poor.to_str().expect("utf-8")]);
    let (ok, v) = with_consent(&import, poor.to_str().expect("utf-8"), "100000");
    assert!(!ok, "an unfunded account registered: {v}");
    assert!(
        !tmp.path().join("digits.ds").exists() && !tmp.path().join("digits.ds.salt").exists(),
        "a failed registration left its files behind: {v}"
    );
    let v = deai_json(&["dataset", "import", "--csv", csv, "--label-column", "label"]);
    assert_eq!(v["samples"], split.validation.len());
    assert!(v["dataset"].is_null(), "not registered without --register");
    // The same lapsed consent through `dataset register` of the file just written.
    let ds = v["file"].as_str().expect("file");
    let (ok, v) = with_consent(&["dataset", "register", "--file", ds], key, "1");
    assert!(!ok, "dataset register took a lapsed consent: {v}");
    assert!(
        v["error"].as_str().unwrap_or("").contains("has passed"),
        "{v}"
    );
}

/// `deai up` as a user starts it: one JSON line describes the network it keeps up; the task file
/// it wrote trains to the end with `deai task create` and `deai task watch`; its accounts are
/// funded; SIGTERM stops it cleanly and removes its temporary directory.
#[test]
fn deai_up_stays_up_and_its_task_file_trains() {
    use std::io::{BufRead, BufReader};
    let mut child = deai()
        .args(["up", "--json", "--owners", "4", "--accounts", "1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn deai up");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read its line");
    let net: serde_json::Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("deai up's first line is not JSON ({e}): {line:?}"));
    let node = net["validators"][0].as_str().expect("a validator");
    let coordinator = net["coordinator"].as_str().expect("a coordinator");
    assert_eq!(net["owners"].as_array().expect("owners").len(), 4, "{net}");

    let account = &net["accounts"][0];
    let balance = deai_json(&[
        "account",
        "show",
        account["address"].as_str().expect("address"),
        "--node",
        node,
    ]);
    assert_eq!(
        balance["account"]["balance"], account["balance"],
        "one field, one meaning: base units in both"
    );
    assert_eq!(account["balance_decimal"], "1000000");
    assert_eq!(
        balance["account"]["balance"],
        (1_000_000 * TOKEN).to_string(),
        "{balance}"
    );

    let created = deai_json(&[
        "task",
        "create",
        "--spec",
        net["task_file"].as_str().expect("task file"),
        "--coordinator",
        coordinator,
        "--key",
        net["coordinator_key"].as_str().expect("key"),
        "--node",
        node,
    ]);
    let task = created["task"].as_u64().expect("task");
    let watched = deai_json(&[
        "task",
        "watch",
        &task.to_string(),
        "--coordinator",
        coordinator,
        "--timeout-s",
        "300",
        "--node",
        node,
    ]);
    assert_eq!(watched["status"], "closed", "{watched}");
    assert_eq!(watched["rounds"].as_array().expect("rounds").len(), 5);

    // SIGTERM (what `kill` and service managers send) stops it as cleanly as Ctrl-C.
    let interrupted = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(interrupted.success());
    let status = child.wait().expect("wait");
    assert!(status.success(), "deai up ended with {status}");
    let dir = net["dir"].as_str().expect("dir");
    assert!(
        !Path::new(dir).exists(),
        "the temporary directory {dir} outlived deai up"
    );
}
