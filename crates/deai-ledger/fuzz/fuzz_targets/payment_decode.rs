//! Voucher and query-receipt decoding never panics: any bytes either decode to a value that
//! re-encodes to the same bytes, or are refused; checking a decoded signature never panics.
#![no_main]

use deai_ledger::{Address, Params, SignedQueryReceipt, SignedVoucher};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let params = Params::default();
    if let Ok(v) = SignedVoucher::decode(data, &params) {
        assert_eq!(v.encode(), data, "voucher re-encoding differs");
        let _ = v.verify(&Address([3; 32]));
    }
    if let Ok(r) = SignedQueryReceipt::decode(data, &params) {
        assert_eq!(r.encode(), data, "receipt re-encoding differs");
        let _ = r.verify(&Address([3; 32]));
    }
});
