//! What the hostile-server tests share.

/// `n` bytes of deterministic noise (a linear congruential generator from `seed`): the same
/// hostile answer on every run, so a failure can be replayed.
pub fn noise(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as u8
        })
        .collect()
}
