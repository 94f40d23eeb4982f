//! The process's open-file limit: raised at start, and the default connection limit sized from it.
//!
//! Every HTTP connection holds a descriptor, and so do consensus storage's journals and p2p. A
//! node that lets connections take them all fails in storage (issue 12, finding 1), so the
//! server keeps to a share of the limit.

/// The soft open-file limit after raising it to the hard limit where the OS allows.
///
/// A limit of "unlimited" counts as 2^20 (Linux refuses more than `nr_open` anyway).
pub fn raise_fd_limit() -> u64 {
    const UNLIMITED_AS: u64 = 1 << 20;
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `getrlimit` writes only into the struct it is given.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return 1024;
        }
        let hard = limit.rlim_max.min(UNLIMITED_AS as libc::rlim_t);
        if limit.rlim_cur < hard {
            let raised = libc::rlimit {
                rlim_cur: hard,
                rlim_max: limit.rlim_max,
            };
            // SAFETY: `setrlimit` reads only the struct it is given.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                limit.rlim_cur = hard;
            } else {
                tracing::warn!(
                    soft = limit.rlim_cur,
                    hard,
                    "cannot raise the open-file limit"
                );
            }
        }
        #[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux, not on every unix
        (limit.rlim_cur as u64).min(UNLIMITED_AS)
    }
    #[cfg(not(unix))]
    {
        UNLIMITED_AS
    }
}

/// The connection limit for `connections_max = 0`: a quarter of the descriptors, at least 32
/// (a node that cannot serve 32 cannot serve its own roles) and at most 8192.
pub fn connections_max_for(fd_soft_limit: u64) -> usize {
    usize::try_from(fd_soft_limit / 4)
        .unwrap_or(usize::MAX)
        .clamp(32, 8192)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_leaves_three_quarters_of_the_descriptors() {
        assert_eq!(connections_max_for(1024), 256);
        assert_eq!(connections_max_for(64), 32);
        assert_eq!(connections_max_for(1 << 20), 8192);
    }

    #[test]
    fn raising_never_lowers() {
        let first = raise_fd_limit();
        assert!(first >= 1);
        assert_eq!(raise_fd_limit(), first, "a second raise changes nothing");
    }
}
