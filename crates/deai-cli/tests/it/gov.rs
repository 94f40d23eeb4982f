//! `deai gov` and `deai tx delegate|undelegate` against a `deai node` process, each step its own
//! `deai` process: a delegation adds to the validator's vote; a parameter change is proposed,
//! voted, shown, executed and then listed as the chain's value; a change the ledger would refuse
//! is refused before anything is sent; `deai ledger status` shows the treasury and emissions.

use std::{fs, time::Duration};

use deai_ledger::{Digest, TOKEN};
use deai_node::{
    config::{DEV_KEY_FILE, NODE_KEY_FILE},
    keyfile,
};
use serde_json::Value;

use crate::common::{NodeProcess, deai, get, init};

/// Votes count for this many blocks: room for a few `deai` processes, decided in seconds.
const VOTING_BLOCKS: u64 = 10;
const TIMELOCK_BLOCKS: u64 = 2;

/// Runs `deai ARGS --json --node URL`: whether it exited 0, and the JSON it printed.
fn run(url: &str, args: &[&str]) -> (bool, Value) {
    let out = deai()
        .args(args)
        .args(["--json", "--node", url])
        .output()
        .expect("run deai");
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "deai {args:?} printed no JSON ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), v)
}

/// Like [`run`]; the test fails if the command failed.
fn ok(url: &str, args: &[&str]) -> Value {
    let (success, v) = run(url, args);
    assert!(success, "deai {args:?} failed: {v}");
    v
}

/// Polls `GET /v1/proposals/{id}` until `done` holds of it.
fn wait_for(url: &str, id: u64, done: impl Fn(&Value) -> bool) -> Value {
    let start = std::time::Instant::now();
    loop {
        let (_, p) = get(&format!("{url}/v1/proposals/{id}"));
        if done(&p) {
            return p;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "stuck: {p}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_parameter_change_goes_from_proposal_to_execution_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    init(&dir);
    let genesis_path = dir.join("genesis.json");
    let mut genesis = deai_ledger::Genesis::from_json(&fs::read_to_string(&genesis_path).unwrap())
        .expect("genesis parses");
    genesis.params.gov_voting_blocks = VOTING_BLOCKS;
    genesis.params.gov_timelock_blocks = TIMELOCK_BLOCKS;
    genesis.params.gov_deposit_min = TOKEN;
    fs::write(&genesis_path, genesis.to_json()).unwrap();
    let node = NodeProcess::start(&dir);
    let url = node.url.as_str();
    let (dev, op) = (dir.join(DEV_KEY_FILE), dir.join(NODE_KEY_FILE));
    let (dev, op) = (dev.to_str().unwrap(), op.to_str().unwrap());
    let validator = keyfile::address(&keyfile::read(&dir.join(NODE_KEY_FILE)).unwrap());
    let delegated = (10 * TOKEN).to_string();
    let validator_arg = validator.to_string();
    let delegate = [
        "--validator",
        &validator_arg,
        "--amount",
        &delegated,
        "--key",
        dev,
    ];
    ok(url, &[&["tx", "delegate"][..], &delegate].concat());

    // Refused here, with the ledger's reason, before a deposit is at stake.
    let fixed = ["gov", "propose", "param", "--set", "epoch_blocks=10"];
    let (sent, v) = run(
        url,
        &[&fixed[..], &["--description", "x", "--key", dev]].concat(),
    );
    assert!(!sent, "{v}");
    let error = v["error"].as_str().unwrap();
    assert!(
        error.contains("epoch_blocks is fixed at genesis"),
        "{error}"
    );

    let text = "double the dispute bond";
    let propose = [
        "gov",
        "propose",
        "param",
        "--set",
        "dispute_bond=2000000000000000000",
    ];
    let p = ok(
        url,
        &[&propose[..], &["--description", text, "--key", dev]].concat(),
    );
    let id = p["proposal"].as_u64().expect("a proposal id");
    assert_eq!(
        p["description_hash"],
        Digest::hash(text.as_bytes()).to_string()
    );
    assert_eq!(
        p["deposit"],
        TOKEN.to_string(),
        "the chain's gov_deposit_min"
    );
    let id_arg = id.to_string();
    ok(
        url,
        &[
            "gov",
            "vote",
            "--proposal",
            &id_arg,
            "--choice",
            "yes",
            "--key",
            op,
        ],
    );

    let shown = ok(url, &["gov", "show", &id_arg]);
    assert_eq!(shown["votes"][0]["choice"], "yes");
    // The delegator did not vote: its delegation weighs with its validator's stake.
    let weight = 1_000 * TOKEN + 10 * TOKEN;
    assert_eq!(shown["votes"][0]["weight"], weight.to_string(), "{shown}");
    assert_eq!(shown["voted_bps"], 10_000);
    assert_eq!(shown["proposal"]["kind"], "param_change");
    let listed = ok(url, &["gov", "list"]);
    assert_eq!(listed[0]["id"], id, "{listed}");

    // Once the timelock is over, anyone executes it.
    wait_for(url, id, |p| {
        p["status"] == "passed"
            && p["height"].as_u64().unwrap() + 1 >= p["executable_from"].as_u64().unwrap()
    });
    ok(
        url,
        &["gov", "execute", "--proposal", &id_arg, "--key", dev],
    );
    let (again, v) = run(
        url,
        &["gov", "execute", "--proposal", &id_arg, "--key", dev],
    );
    assert!(
        !again && v["error"].as_str().unwrap().contains("is executed"),
        "{v}"
    );
    let executed = ok(url, &["gov", "list", "--status", "executed"]);
    assert_eq!(executed[0]["id"], id, "{executed}");

    let params = ok(url, &["gov", "params"]);
    let value = |list: &str, name: &str| {
        params[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not in {list}: {params}"))
    };
    assert_eq!(
        value("governable", "dispute_bond")["value"],
        "2000000000000000000"
    );
    assert!(value("fixed", "epoch_blocks")["fixed_because"].is_string());

    ok(url, &[&["tx", "undelegate"][..], &delegate].concat());
    let status = ok(url, &["ledger", "status"]);
    assert_eq!(status["treasury"], deai_ledger::treasury().to_string());
    for field in ["chain_id", "treasury_balance", "emitted", "emission_pool"] {
        assert!(status[field].is_string(), "{field}: {status}");
    }
}
