//! The batch jobs' lock keys.

/// The key of a job's lock (`src/jobs.rs`): a stable 32-bit FNV-1a hash of its name, the same
/// in every backend and every build, so any session can find who holds a job.
pub fn lock_key(job: &str) -> u32 {
    job.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_distinct() {
        // FNV-1a's published test vectors: "" and "a".
        assert_eq!(lock_key(""), 0x811c_9dc5);
        assert_eq!(lock_key("a"), 0xe40c_292c);
        assert_ne!(
            lock_key("enrich_pending"),
            lock_key("backfill:public.raw_events")
        );
    }
}
