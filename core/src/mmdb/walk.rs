//! Our own walk of a database's search tree over the mapped bytes, with a table of the
//! first 16 levels of the IPv4 tree, so that a lookup answered from a record cache needs no
//! call into the maxminddb crate at all.
//!
//! A lookup walks one node per bit, each read dependent on the one before; the profile of
//! `ip_country` puts half of its time there. The first 16 levels are the same for every
//! address of a /16: the table holds, for each of the 65 536 /16s, the node the walk reaches
//! after 16 bits, or the record where it ended sooner and at which bit. Built from the tree
//! (at most 2^17 node reads, about a millisecond) the first time a [`Database`] looks an
//! address up, and kept for its life: 256 KiB + 64 KiB per database per backend.
//!
//! The walk answers what the crate's `Reader::lookup` answers (the record's offset in the
//! data section and the prefix length), or nothing: every read is bounds-checked, the depth
//! is bounded by the address's bits, and any anomaly (a node outside the tree, a pointer into
//! the separator or past the data section, an IPv6 database whose IPv4 subtree is missing)
//! makes [`Database::lookup`](super::Database::lookup) take the crate's lookup instead, so
//! errors and odd cases stay exactly the crate's. 6to4 and Teredo need nothing here: MaxMind
//! aliases them by tree pointers, which any walk follows.

/// Bits of an IPv4 address the table resolves.
const BITS: usize = 16;
/// The metadata marker that ends the data section.
const MARKER: &[u8] = b"\xab\xcd\xefMaxMind.com";
/// The zero bytes between the search tree and the data section.
pub(super) const SEPARATOR: usize = 16;

/// Where a walk ended: the record's offset in the data section (`None`: no data) and the
/// prefix length within the address's own family (IPv4: 0..=32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Walked {
    pub offset: Option<usize>,
    pub prefix: u8,
}

/// The search tree of one mapped file, as the walk reads it.
pub(super) struct Tree {
    node_count: usize,
    /// Bytes per node: 6, 7 or 8.
    node_bytes: usize,
    /// Length of the data section, as the crate bounds it (up to the metadata marker).
    data_len: usize,
    ipv6: bool,
    /// The IPv4 first-level table; `None`: IPv4 lookups take the crate's walk.
    v4: Option<V4Table>,
}

struct V4Table {
    /// Per /16: the node after 16 bits, or the record where the walk ended.
    node: Box<[u32]>,
    /// Per /16: the bit at which `node` was reached.
    depth: Box<[u8]>,
}

impl Tree {
    /// The tree of `bytes` as the metadata describes it; `None` (every lookup takes the
    /// crate's walk) for anything the crate would not read the same way.
    pub(super) fn build(
        bytes: &[u8],
        node_count: u32,
        record_size: u16,
        ip_version: u16,
    ) -> Option<Tree> {
        let node_bytes = node_bytes(record_size)?;
        let node_count = usize::try_from(node_count).ok()?;
        let tree_len = node_count.checked_mul(node_bytes)?;
        let data_start = tree_len.checked_add(SEPARATOR)?;
        let data_len = metadata_start(bytes)?.checked_sub(data_start)?;
        let ipv6 = match ip_version {
            4 => false,
            6 => true,
            _ => return None,
        };
        let mut tree = Tree {
            node_count,
            node_bytes,
            data_len,
            ipv6,
            v4: None,
        };
        tree.v4 = tree.build_v4(bytes);
        Some(tree)
    }

    /// The data section of `bytes` (the file this tree was built from), as the crate bounds
    /// it: from after the separator up to the metadata marker.
    pub(super) fn data<'b>(&self, bytes: &'b [u8]) -> Option<&'b [u8]> {
        let start = self.node_count * self.node_bytes + SEPARATOR;
        bytes.get(start..start.checked_add(self.data_len)?)
    }

    /// Record `bit` of node `n`; `None` when the node lies outside the tree or the file.
    #[inline(always)]
    fn read(&self, bytes: &[u8], n: usize, bit: usize) -> Option<usize> {
        if n >= self.node_count {
            return None;
        }
        let at = n * self.node_bytes;
        Some(record(bytes.get(at..at + self.node_bytes)?, bit))
    }

    /// The node IPv4 addresses start from (after 96 zero bits in an IPv6 tree), only when it
    /// is a node: otherwise the crate answers IPv6 networks for IPv4 lookups, left to it.
    fn v4_start(&self, bytes: &[u8]) -> Option<usize> {
        let mut node = 0usize;
        if self.ipv6 {
            for _ in 0..96 {
                node = self.read(bytes, node, 0)?;
            }
        }
        (node < self.node_count).then_some(node)
    }

    fn build_v4(&self, bytes: &[u8]) -> Option<V4Table> {
        let start = self.v4_start(bytes)?;
        let mut node = vec![0u32; 1 << BITS].into_boxed_slice();
        let mut depth = vec![0u8; 1 << BITS].into_boxed_slice();
        // Depth-first, by hand: (node, bits followed, those bits as a number). At most
        // 2^17 - 1 entries are pushed in all: the depth bounds it, cycles included.
        let mut stack = vec![(start, 0usize, 0usize)];
        while let Some((n, d, prefix)) = stack.pop() {
            if d == BITS || n >= self.node_count {
                let span = prefix << (BITS - d)..(prefix + 1) << (BITS - d);
                node[span.clone()].fill(u32::try_from(n).ok()?);
                depth[span].fill(d as u8);
                continue;
            }
            for bit in [1, 0] {
                stack.push((self.read(bytes, n, bit)?, d + 1, prefix << 1 | bit));
            }
        }
        Some(V4Table { node, depth })
    }

    /// The record a final tree value names, as the crate resolves it; `None` for a pointer
    /// the crate would refuse (the lookup then takes the crate's walk to raise its error).
    #[inline(always)]
    fn resolve(&self, node: usize, prefix: usize) -> Option<Walked> {
        let offset = if node <= self.node_count {
            None
        } else {
            let p = node - self.node_count;
            let resolved = p.checked_sub(SEPARATOR)?;
            if resolved >= self.data_len {
                return None;
            }
            Some(resolved)
        };
        Some(Walked {
            offset,
            prefix: prefix as u8,
        })
    }

    /// Walks an IPv4 address; `None`: take the crate's lookup.
    #[inline]
    pub(super) fn walk_v4(&self, bytes: &[u8], ip: u32) -> Option<Walked> {
        let t = self.v4.as_ref()?;
        let i = (ip >> (32 - BITS)) as usize;
        let mut node = t.node[i] as usize;
        let mut prefix = usize::from(t.depth[i]);
        if prefix == BITS {
            while prefix < 32 && node < self.node_count {
                node = self.read(bytes, node, ((ip >> (31 - prefix)) & 1) as usize)?;
                prefix += 1;
            }
        }
        self.resolve(node, prefix)
    }

    /// Every leaf of the IPv4 tree in address order: its first address, its prefix length,
    /// and what [`Tree::walk_v4`] answers for each address under it (`None`: the crate's
    /// lookup). The leaves cover the IPv4 space exactly. `None` when IPv4 lookups take the
    /// crate's walk anyway (no table), or past `cap` leaves: a real tree has one leaf per
    /// network, a hostile one can share nodes to reach 2^32.
    pub(super) fn v4_leaves(
        &self,
        bytes: &[u8],
        cap: usize,
        mut leaf: impl FnMut(u32, u8, Option<Walked>),
    ) -> Option<()> {
        self.v4.as_ref()?;
        let start = self.v4_start(bytes)?;
        // Depth-first, left before right: (node, bits followed, those bits as a number).
        let mut stack = vec![(start, 0usize, 0u64)];
        let mut leaves = 0usize;
        while let Some((n, d, prefix)) = stack.pop() {
            let children = if d == 32 || n >= self.node_count {
                None
            } else {
                Some((self.read(bytes, n, 0), self.read(bytes, n, 1)))
            };
            match children {
                Some((Some(left), Some(right))) => {
                    stack.push((right, d + 1, prefix << 1 | 1));
                    stack.push((left, d + 1, prefix << 1));
                }
                _ => {
                    leaves += 1;
                    if leaves > cap {
                        return None;
                    }
                    // A node whose bytes cannot be read makes the walk decline below it.
                    let walked = children.is_none().then(|| self.resolve(n, d)).flatten();
                    leaf((prefix << (32 - d)) as u32, d as u8, walked);
                }
            }
        }
        Some(())
    }

    /// Walks an IPv6 address from the root (IPv6 databases only); `None`: take the crate's
    /// lookup.
    #[inline]
    pub(super) fn walk_v6(&self, bytes: &[u8], ip: u128) -> Option<Walked> {
        if !self.ipv6 {
            return None;
        }
        let mut node = 0usize;
        let mut prefix = 0usize;
        while prefix < 128 && node < self.node_count {
            node = self.read(bytes, node, ((ip >> (127 - prefix)) & 1) as usize)?;
            prefix += 1;
        }
        self.resolve(node, prefix)
    }
}

/// Bytes per node for the record sizes the format defines (24, 28 and 32 bits).
pub(super) fn node_bytes(record_size: u16) -> Option<usize> {
    match record_size {
        24 => Some(6),
        28 => Some(7),
        32 => Some(8),
        _ => None,
    }
}

/// Record `bit` (0: left, 1: right) of one node, `node` being exactly its 6, 7 or 8 bytes.
/// The one place that knows the node layout: the walk and full verification both read
/// through it.
#[inline(always)]
pub(super) fn record(node: &[u8], bit: usize) -> usize {
    let b = node;
    let r = match (b.len(), bit) {
        (6, 0) => u32::from_be_bytes([0, b[0], b[1], b[2]]),
        (6, _) => u32::from_be_bytes([0, b[3], b[4], b[5]]),
        (7, 0) => u32::from_be_bytes([b[3] >> 4, b[0], b[1], b[2]]),
        (7, _) => u32::from_be_bytes([b[3] & 0x0f, b[4], b[5], b[6]]),
        (_, 0) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        (_, _) => u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
    };
    r as usize
}

/// Where the metadata starts, which ends the data section: the last metadata marker (the
/// metadata sits at the end of the file).
pub(super) fn metadata_start(bytes: &[u8]) -> Option<usize> {
    bytes.windows(MARKER.len()).rposition(|w| w == MARKER)
}
