//! Query input decoding never panics: for a fixed small model of each kind (picked by the first
//! byte), the rest either decodes to an input that runs, with `infer_bytes` giving the same
//! output, or is refused by both `decode_input` and `infer_bytes`.
#![no_main]

use std::sync::OnceLock;

use deai_infer::{Arch, QuantModel, decode_input, infer, infer_bytes};
use libfuzzer_sys::fuzz_target;

fn models() -> &'static [QuantModel; 4] {
    static MODELS: OnceLock<[QuantModel; 4]> = OnceLock::new();
    MODELS.get_or_init(|| {
        [
            Arch::Logistic {
                inputs: 16,
                classes: 3,
            },
            Arch::Mlp {
                inputs: 12,
                hidden: 9,
                classes: 4,
            },
            Arch::Cnn {
                side: 16,
                c1: 2,
                c2: 3,
                classes: 4,
            },
            Arch::CharLstm {
                seq: 8,
                vocab: 20,
                embed: 3,
                hidden: 5,
            },
        ]
        .map(|arch| QuantModel::seeded(arch, 1))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    let model = &models()[usize::from(which) % 4];
    match decode_input(model, bytes) {
        Ok(input) => {
            assert_eq!(input.as_bytes(), bytes);
            let out = infer(model, &input);
            assert_eq!(infer_bytes(model, bytes), Ok(out), "infer_bytes differs");
        }
        Err(e) => assert_eq!(infer_bytes(model, bytes), Err(e), "infer_bytes differs"),
    }
});
